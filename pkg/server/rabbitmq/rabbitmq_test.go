package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
	"github.com/v2m/v2m/pkg/server/servertest"
)

// patience bounds every wait for the broker; it only turns a hang into a failure.
const patience = 90 * time.Second

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func fastBackoff(int) time.Duration { return 20 * time.Millisecond }

// topic returns a topic no other test uses, and deletes its queues when the test ends.
func topic(t *testing.T, url string) string {
	t.Helper()
	name := "test-" + server.NewID()
	t.Cleanup(func() {
		onChannel(url, func(ch *amqp.Channel) {
			for _, q := range append([]string{name, name + rabbitmq.RetrySuffix, name + rabbitmq.DLQSuffix}, rabbitmq.DelayQueues(name)...) {
				_, _ = ch.QueueDelete(q, false, false, false)
			}
		})
	})
	return name
}

// onChannel runs f on a channel of a connection of its own, for cleaning up; nothing when the
// broker cannot be reached.
func onChannel(url string, f func(*amqp.Channel)) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	f(ch)
}

func dial(t *testing.T, cfg rabbitmq.Config) *rabbitmq.Queue {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = testenv.Get(t, testenv.AMQPURL)
	}
	if cfg.Logger == nil {
		cfg.Logger = logger(t)
	}
	if cfg.Backoff == nil {
		cfg.Backoff = fastBackoff
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	q, err := rabbitmq.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// consume runs q.Consume in the background; the returned stop cancels it and returns its error.
func consume(t *testing.T, q *rabbitmq.Queue, topic string, concurrency int, h server.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- q.Consume(ctx, topic, concurrency, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(patience):
				err = errors.New("Consume did not return after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// depth returns the number of ready messages in queue.
func depth(t *testing.T, url, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}

// getOne takes one message from queue, acking it.
func getOne(t *testing.T, url, queue string) amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	d, ok, err := ch.Get(queue, true)
	if err != nil || !ok {
		t.Fatalf("get from %s: ok=%v err=%v", queue, ok, err)
	}
	return d
}

func publish(t *testing.T, q *rabbitmq.Queue, topic string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := q.Publish(t.Context(), topic, []byte(b)); err != nil {
			t.Fatalf("Publish(%s): %v", b, err)
		}
	}
}

// recorder collects deliveries.
type recorder struct {
	mu  sync.Mutex
	got []server.Delivery
}

func (r *recorder) add(d server.Delivery) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	return len(r.got)
}

func (r *recorder) snapshot() []server.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) len() int { return len(r.snapshot()) }

func numbered(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%03d", prefix, i))
	}
	return out
}

// queueTypes are the queue types the contract runs with: the classic default and quorum.
var queueTypes = []string{rabbitmq.QueueClassic, rabbitmq.QueueQuorum}

func TestContractQueue(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	const maxAttempts = 3
	for _, qt := range queueTypes {
		t.Run(qt, func(t *testing.T) {
			servertest.TestQueue(t, func(t *testing.T) server.Queue {
				return dial(t, rabbitmq.Config{URL: url, MaxAttempts: maxAttempts, Backoff: fastBackoff, QueueType: qt})
			}, servertest.QueueOptions{
				MaxAttempts: maxAttempts,
				Topic:       func(t *testing.T) string { return topic(t, url) },
				DeadLetters: func(t *testing.T, _ server.Queue, topic string) int { return depth(t, url, topic+rabbitmq.DLQSuffix) },
			})
		})
	}
}

// TestQueueType: with QueueType quorum the three queues of a topic are quorum queues (a
// declaration without x-queue-type is refused as inequivalent), with classic they take no
// argument; an unknown type is refused by Dial.
func TestQueueType(t *testing.T) {
	t.Parallel()
	url := testenv.Get(t, testenv.AMQPURL)
	for _, tc := range []struct {
		typ         string
		plainRefuse bool // a declaration without arguments is refused
	}{{rabbitmq.QueueQuorum, true}, {rabbitmq.QueueClassic, false}, {"", false}} {
		t.Run("type="+tc.typ, func(t *testing.T) {
			q := dial(t, rabbitmq.Config{URL: url, QueueType: tc.typ})
			tp := topic(t, url)
			publish(t, q, tp, "one")
			for _, name := range []string{tp, tp + rabbitmq.RetrySuffix, tp + rabbitmq.DLQSuffix} {
				var err error
				onChannel(url, func(ch *amqp.Channel) {
					args := amqp.Table(nil)
					if name == tp+rabbitmq.RetrySuffix {
						args = amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": tp}
					}
					_, err = ch.QueueDeclare(name, true, false, false, false, args)
				})
				var aerr *amqp.Error
				switch {
				case tc.plainRefuse && !(errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed && strings.Contains(aerr.Reason, "x-queue-type")):
					t.Errorf("%s: a classic redeclaration gave %v, want PRECONDITION_FAILED on x-queue-type", name, err)
				case !tc.plainRefuse && err != nil:
					t.Errorf("%s: a classic redeclaration failed: %v", name, err)
				}
			}
			if n := depth(t, url, tp); n != 1 {
				t.Errorf("%d messages in %s, want 1", n, tp)
			}
		})
	}
	if _, err := rabbitmq.Dial(t.Context(), rabbitmq.Config{URL: url, QueueType: "stream"}); err == nil || !strings.Contains(err.Error(), `queue type "stream"`) {
		t.Errorf("Dial with queue type stream: %v", err)
	}
}

func TestContractDeadLetters(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	const maxAttempts = 3
	for _, qt := range queueTypes {
		t.Run(qt, func(t *testing.T) {
			servertest.TestDeadLetters(t, func(t *testing.T) server.Queue {
				return dial(t, rabbitmq.Config{URL: url, MaxAttempts: maxAttempts, Backoff: fastBackoff, QueueType: qt})
			}, servertest.QueueOptions{MaxAttempts: maxAttempts, Topic: func(t *testing.T) string { return topic(t, url) }})
		})
	}
}

// TestListingKeepsQuorumLetters: listing dead letters hands each back to the broker, which
// counts a delivery each time. A quorum queue drops a message past its delivery limit (20 by
// default from RabbitMQ 4.0), so listing must not be a way to lose letters: after more
// listings than that, the letter is still there.
func TestListingKeepsQuorumLetters(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	q := dial(t, rabbitmq.Config{URL: url, MaxAttempts: 1, Backoff: fastBackoff, QueueType: rabbitmq.QueueQuorum})
	tp := topic(t, url)
	publish(t, q, tp, `{"job_id":"j1","username":"ann@example.com"}`)
	stop := consume(t, q, tp, 1, func(context.Context, server.Delivery) error {
		return server.Permanent(errors.New("bad"))
	})
	eventually(t, "the dead letter", func() bool { return depth(t, url, tp+rabbitmq.DLQSuffix) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		ls, err := q.DeadLetters(t.Context(), tp, 10)
		if err != nil || len(ls) != 1 {
			t.Fatalf("listing %d: %d letters, %v", i+1, len(ls), err)
		}
	}
}

func TestNilHandlerAcks(t *testing.T) {
	t.Parallel()
	url := testenv.Get(t, testenv.AMQPURL)
	q := dial(t, rabbitmq.Config{URL: url})
	tp := topic(t, url)
	publish(t, q, tp, numbered("m", 5)...)
	stop := consume(t, q, tp, 2, nil)
	eventually(t, "queue drained", func() bool { return depth(t, url, tp) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Nothing was left unacked: after the consumer is gone, nothing came back.
	if n := depth(t, url, tp); n != 0 {
		t.Fatalf("%d messages came back after the consumer stopped", n)
	}
}

func TestRetryThenDeadLetter(t *testing.T) {
	t.Parallel()
	for _, qt := range queueTypes {
		t.Run(qt, func(t *testing.T) { t.Parallel(); testRetryThenDeadLetter(t, qt) })
	}
}

func testRetryThenDeadLetter(t *testing.T, queueType string) {
	url := testenv.Get(t, testenv.AMQPURL)
	var backoffs atomic.Int32
	q := dial(t, rabbitmq.Config{URL: url, MaxAttempts: 3, QueueType: queueType, Backoff: func(a int) time.Duration {
		backoffs.Add(1)
		return time.Duration(a) * 30 * time.Millisecond
	}})
	tp := topic(t, url)
	var r recorder
	consume(t, q, tp, 1, func(ctx context.Context, d server.Delivery) error {
		r.add(d)
		return fmt.Errorf("transient failure %d", d.Attempt)
	})
	publish(t, q, tp, "poison")
	eventually(t, "a dead-lettered message", func() bool { return depth(t, url, tp+rabbitmq.DLQSuffix) == 1 })
	var attempts []int
	for _, d := range r.snapshot() {
		attempts = append(attempts, d.Attempt)
		if d.MaxAttempts != 3 || string(d.Body) != "poison" {
			t.Errorf("delivery %+v", d)
		}
	}
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Fatalf("attempts %v, want [1 2 3]", attempts)
	}
	if n := backoffs.Load(); n != 2 {
		t.Errorf("Backoff called %d times, want 2", n)
	}
	d := getOne(t, url, tp+rabbitmq.DLQSuffix)
	if string(d.Body) != "poison" || d.DeliveryMode != amqp.Persistent {
		t.Errorf("dead letter %q mode %d", d.Body, d.DeliveryMode)
	}
	if fmt.Sprint(d.Headers[rabbitmq.HeaderAttempt]) != "3" || d.Headers[rabbitmq.HeaderError] != "transient failure 3" {
		t.Errorf("dead letter headers %v", d.Headers)
	}
	if n := depth(t, url, tp) + retryDepth(t, url, tp); n != 0 {
		t.Errorf("%d messages left in the work and retry queues", n)
	}
}

func TestTransientErrorThenSuccess(t *testing.T) {
	t.Parallel()
	url := testenv.Get(t, testenv.AMQPURL)
	var events sync.Map
	q := dial(t, rabbitmq.Config{URL: url, Observer: rabbitmq.ObserverFunc(func(topic string, e rabbitmq.Event) {
		v, _ := events.LoadOrStore(e, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
	})})
	count := func(e rabbitmq.Event) int32 {
		if v, ok := events.Load(e); ok {
			return v.(*atomic.Int32).Load()
		}
		return 0
	}
	tp := topic(t, url)
	var r recorder
	consume(t, q, tp, 1, func(ctx context.Context, d server.Delivery) error {
		r.add(d)
		if d.Attempt == 1 {
			return errors.New("database busy")
		}
		return nil
	})
	publish(t, q, tp, "job")
	eventually(t, "a second attempt", func() bool { return r.len() >= 2 })
	eventually(t, "the queues to drain", func() bool {
		return depth(t, url, tp) == 0 && retryDepth(t, url, tp) == 0
	})
	if n := depth(t, url, tp+rabbitmq.DLQSuffix); n != 0 {
		t.Fatalf("%d dead letters, want 0", n)
	}
	if got := r.snapshot(); len(got) != 2 || got[1].Attempt != 2 {
		t.Fatalf("deliveries %+v", got)
	}
	if count(rabbitmq.EventPublished) != 1 || count(rabbitmq.EventRetried) != 1 || count(rabbitmq.EventDeadLettered) != 0 {
		t.Errorf("events: published %d retried %d dead-lettered %d", count(rabbitmq.EventPublished),
			count(rabbitmq.EventRetried), count(rabbitmq.EventDeadLettered))
	}
}

func TestPermanentErrorDeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	url := testenv.Get(t, testenv.AMQPURL)
	q := dial(t, rabbitmq.Config{URL: url, MaxAttempts: 5})
	tp := topic(t, url)
	var r recorder
	consume(t, q, tp, 2, func(ctx context.Context, d server.Delivery) error {
		r.add(d)
		if string(d.Body) == "panic" {
			panic("handler bug")
		}
		return server.Permanent(errors.New("not a video"))
	})
	publish(t, q, tp, "corrupt")
	eventually(t, "a dead letter", func() bool { return depth(t, url, tp+rabbitmq.DLQSuffix) == 1 })
	if n := r.len(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
	d := getOne(t, url, tp+rabbitmq.DLQSuffix)
	if d.Headers[rabbitmq.HeaderError] != "not a video" || fmt.Sprint(d.Headers[rabbitmq.HeaderAttempt]) != "1" {
		t.Fatalf("dead letter headers %v", d.Headers)
	}
	// A panicking handler does not take the consumer down: it is retried, then dead-lettered.
	publish(t, q, tp, "panic")
	eventually(t, "the panicking message dead-lettered", func() bool { return depth(t, url, tp+rabbitmq.DLQSuffix) == 1 })
	if n := r.len(); n != 1+5 {
		t.Fatalf("handler ran %d times, want 6", n)
	}
	d = getOne(t, url, tp+rabbitmq.DLQSuffix)
	if s, _ := d.Headers[rabbitmq.HeaderError].(string); !strings.Contains(s, "handler bug") {
		t.Fatalf("dead letter error %q", s)
	}
}

// TestConsumerDiesWithoutAck: a consumer whose connection goes away mid-handler loses
// nothing; the redelivery counts as an attempt, so a message that kills every consumer
// reaches the dead-letter queue.
func TestConsumerDiesWithoutAck(t *testing.T) {
	t.Parallel()
	url := testenv.Get(t, testenv.AMQPURL)
	tp := topic(t, url)
	pub := dial(t, rabbitmq.Config{URL: url, MaxAttempts: 2})
	publish(t, pub, tp, "crasher")

	crash := func(wantAttempt int) {
		t.Helper()
		q := dial(t, rabbitmq.Config{URL: url, MaxAttempts: 2})
		started := make(chan server.Delivery, 1)
		release := make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- q.Consume(ctx, tp, 1, func(ctx context.Context, d server.Delivery) error {
				started <- d
				<-release
				return nil // its ack goes to a dead channel: logged, not a crash
			})
		}()
		var d server.Delivery
		select {
		case d = <-started:
		case <-time.After(patience):
			t.Fatal("no delivery")
		}
		if d.Attempt != wantAttempt {
			t.Errorf("attempt %d, want %d", d.Attempt, wantAttempt)
		}
		q.Close() // the process "dies": its connection goes, the message is unacked
		close(release)
		if err := <-done; !errors.Is(err, rabbitmq.ErrClosed) {
			t.Errorf("Consume after Close = %v, want ErrClosed", err)
		}
	}
	crash(1)
	crash(2)
	// Third delivery: attempt 3 > MaxAttempts 2, so it goes to the DLQ without running.
	q := dial(t, rabbitmq.Config{URL: url, MaxAttempts: 2})
	var r recorder
	consume(t, q, tp, 1, func(ctx context.Context, d server.Delivery) error { r.add(d); return nil })
	eventually(t, "the crasher dead-lettered", func() bool { return depth(t, url, tp+rabbitmq.DLQSuffix) == 1 })
	if n := r.len(); n != 0 {
		t.Fatalf("handler ran %d more times", n)
	}
	d := getOne(t, url, tp+rabbitmq.DLQSuffix)
	if s, _ := d.Headers[rabbitmq.HeaderError].(string); !strings.Contains(s, "without being acknowledged") {
		t.Fatalf("dead letter error %q", s)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	url := testenv.Get(t, testenv.AMQPURL)
	q := dial(t, rabbitmq.Config{URL: url})
	tp := topic(t, url)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := q.Publish(ctx, tp, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled ctx = %v, want context.Canceled", err)
	}
	if err := q.Publish(t.Context(), "", []byte("x")); !server.IsCode(err, server.EINVALID) {
		t.Errorf("Publish to an empty topic = %v", err)
	}
	if err := q.Consume(t.Context(), "amq.bad", 1, nil); !server.IsCode(err, server.EINVALID) {
		t.Errorf("Consume(amq.bad) = %v", err)
	}

	// A queue declared elsewhere with other arguments is refused, not retried forever.
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	odd := topic(t, url)
	if _, err := ch.QueueDeclare(odd, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Consume(t.Context(), odd, 1, nil); err == nil {
		t.Error("Consume on a queue with other arguments returned nil")
	}
	if err := q.Publish(t.Context(), odd, []byte("x")); err == nil {
		t.Error("Publish to a queue with other arguments succeeded")
	}

	// Nothing listens on port 1.
	dctx, dcancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer dcancel()
	if _, err := rabbitmq.Dial(dctx, rabbitmq.Config{URL: "amqp://guest:guest@127.0.0.1:1/", Logger: logger(t)}); err == nil {
		t.Error("Dial to a closed port succeeded")
	}
	if _, err := rabbitmq.Dial(t.Context(), rabbitmq.Config{URL: "http://x"}); err == nil {
		t.Error("Dial with a bad URL succeeded")
	}
	wctx, wcancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer wcancel()
	bad := strings.Replace(url, "guest:guest@", "guest:wrong@", 1)
	if _, err := rabbitmq.Dial(wctx, rabbitmq.Config{URL: bad, Logger: logger(t)}); err == nil {
		t.Error("Dial with a wrong password succeeded")
	}

	q.Close()
	if err := q.Publish(t.Context(), tp, []byte("x")); !errors.Is(err, rabbitmq.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := q.Consume(t.Context(), tp, 1, nil); !errors.Is(err, rabbitmq.ErrClosed) {
		t.Errorf("Consume after Close = %v, want ErrClosed", err)
	}
	if err := q.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBrokerRestart stops and starts the broker under a running publisher and consumer:
// every confirmed message is delivered, and consumption resumes by itself. It needs a broker
// of its own (V2M_TEST_RABBITCTL controls the one at V2M_TEST_AMQP_URL).
func TestBrokerRestart(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	ctl := strings.Fields(testenv.Get(t, testenv.RabbitCtl))
	if len(ctl) == 0 {
		t.Skip("no broker control command")
	}
	broker := func(verb string) {
		t.Helper()
		t0 := time.Now()
		defer func() { t.Logf("broker %s took %v", verb, time.Since(t0).Round(time.Millisecond)) }()
		out, err := exec.CommandContext(t.Context(), ctl[0], append(ctl[1:], verb)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", strings.Join(ctl, " "), verb, err, out)
		}
	}
	var reconnects atomic.Int32
	q := dial(t, rabbitmq.Config{URL: url, Heartbeat: 2 * time.Second, PublishTimeout: patience,
		Observer: rabbitmq.ObserverFunc(func(_ string, e rabbitmq.Event) {
			if e == rabbitmq.EventReconnected {
				reconnects.Add(1)
			}
		})})
	tp := topic(t, url)
	var (
		mu  sync.Mutex
		got = map[string]bool{}
	)
	seen := func(b string) bool { mu.Lock(); defer mu.Unlock(); return got[b] }
	consume(t, q, tp, 2, func(ctx context.Context, d server.Delivery) error {
		mu.Lock()
		got[string(d.Body)] = true
		mu.Unlock()
		return nil
	})
	before := numbered("before", 50)
	publish(t, q, tp, before...)
	eventually(t, "some deliveries before the restart", func() bool { return seen(before[0]) })

	broker("stop")
	// While the broker is down, Publish gives up within its deadline instead of hanging.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	err := q.Publish(ctx, tp, []byte("during"))
	cancel()
	if err == nil {
		t.Fatal("Publish with the broker down succeeded")
	}
	if err := q.Ping(t.Context()); err == nil {
		t.Error("Ping with the broker down succeeded")
	}
	broker("start")

	after := numbered("after", 50)
	for _, b := range after { // the first ones may wait for the reconnect
		pctx, pcancel := context.WithTimeout(t.Context(), patience)
		if err := q.Publish(pctx, tp, []byte(b)); err != nil {
			pcancel()
			t.Fatalf("Publish(%s) after the restart: %v", b, err)
		}
		pcancel()
	}
	eventually(t, "every confirmed message", func() bool {
		for _, b := range append(slices.Clone(before), after...) {
			if !seen(b) {
				return false
			}
		}
		return true
	})
	if reconnects.Load() < 1 {
		t.Error("no reconnect observed")
	}
	if err := q.Ping(t.Context()); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}
}

// TestNoGoroutineLeak: after Consume returns and Close, nothing of the Queue keeps running.
// Not parallel, so that other tests' goroutines do not blur the count.
func TestNoGoroutineLeak(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	before := runtime.NumGoroutine()
	cfg := rabbitmq.Config{URL: url, Logger: logger(t), Backoff: fastBackoff}
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	q, err := rabbitmq.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := topic(t, url)
	publish(t, q, tp, numbered("l", 10)...)
	var r recorder
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(cctx, tp, 3, func(ctx context.Context, d server.Delivery) error {
			if r.add(d) == 1 {
				return errors.New("retry me")
			}
			return nil
		})
	}()
	eventually(t, "11 deliveries", func() bool { return r.len() >= 11 })
	ccancel()
	if err := <-done; err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestConsumerTimeout: the broker closes the channel of a handler that outlives its
// consumer_timeout. The delivery is requeued, not lost; the consumer subscribes again and
// the message comes back as a new attempt, and the first handler's late ack is harmless.
// It changes the broker's settings, so it needs a broker of its own (V2M_TEST_RABBITCTL).
func TestConsumerTimeout(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	ctl := strings.Fields(testenv.Get(t, testenv.RabbitCtl))
	if len(ctl) == 0 {
		t.Skip("no broker control command")
	}
	eval := func(expr string) {
		t.Helper()
		args := append(ctl[1:], "ctl", "eval", expr)
		if out, err := exec.CommandContext(context.Background(), ctl[0], args...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl eval %s: %v\n%s", expr, err, out)
		}
	}
	eval("application:set_env(rabbit, consumer_timeout, 1000).")
	eval("application:set_env(rabbit, channel_tick_interval, 200).")
	t.Cleanup(func() {
		eval("application:set_env(rabbit, consumer_timeout, 1800000).")
		eval("application:set_env(rabbit, channel_tick_interval, 60000).")
	})
	q := dial(t, rabbitmq.Config{URL: url})
	tp := topic(t, url)
	publish(t, q, tp, "slow")
	var r recorder
	release := make(chan struct{})
	var releaseOnce sync.Once
	firstDone := make(chan struct{})
	stop := consume(t, q, tp, 2, func(ctx context.Context, d server.Delivery) error {
		if r.add(d) == 1 {
			defer close(firstDone)
			select { // outlive consumer_timeout: wait for the redelivery
			case <-release:
			case <-time.After(patience):
			}
			return nil
		}
		releaseOnce.Do(func() { close(release) })
		return nil
	})
	eventually(t, "the redelivery", func() bool { return r.len() >= 2 })
	<-firstDone
	got := r.snapshot()
	if got[0].Attempt != 1 || got[1].Attempt != 2 || string(got[1].Body) != "slow" {
		t.Fatalf("deliveries %+v", got)
	}
	// Back to normal settings: the consumer still works.
	eval("application:set_env(rabbit, consumer_timeout, 1800000).")
	publish(t, q, tp, "next")
	eventually(t, "a later message", func() bool { return r.len() >= 3 })
	if err := stop(); err != nil {
		t.Fatalf("Consume returned %v", err)
	}
	if n := depth(t, url, tp) + depth(t, url, tp+rabbitmq.DLQSuffix); n != 0 {
		t.Fatalf("%d messages left", n)
	}
}
