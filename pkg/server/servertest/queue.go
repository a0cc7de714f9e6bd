package servertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// patience bounds every wait for a delivery. It only turns a hang into a failure; no test
// depends on how long anything takes.
const patience = 60 * time.Second

// NewQueue returns a fresh Queue. Its MaxAttempts must be QueueOptions.MaxAttempts and its
// backoff short (milliseconds), so that retries happen within the test.
type NewQueue func(t *testing.T) server.Queue

// QueueOptions says what the suite may expect of an adapter's queues.
type QueueOptions struct {
	// MaxAttempts is the limit of the queues NewQueue returns; at least 2.
	MaxAttempts int
	// Topic returns a topic name no other test uses (and may clean it up at the end). The
	// default is "contract-" and a new id.
	Topic func(t *testing.T) string
	// DeadLetters, when set, counts the dead letters of topic in q, so that the suite can see
	// where failed messages went. It is called only once the dead-lettering has happened.
	DeadLetters func(t *testing.T, q server.Queue, topic string) int
}

// TestQueue checks a Queue against the contract of server.Queue.
func TestQueue(t *testing.T, newQueue NewQueue, opts QueueOptions) {
	if opts.MaxAttempts < 2 {
		t.Fatalf("QueueOptions.MaxAttempts is %d; the suite needs at least 2", opts.MaxAttempts)
	}
	if opts.Topic == nil {
		opts.Topic = func(*testing.T) string { return "contract-" + server.NewID() }
	}
	deadLetters := func(t *testing.T, q server.Queue, topic string, want int) {
		t.Helper()
		if opts.DeadLetters == nil {
			return
		}
		if n := opts.DeadLetters(t, q, topic); n != want {
			t.Errorf("%d dead letters in %s, want %d", n, topic, want)
		}
	}

	t.Run("PublishThenConsume", func(t *testing.T) {
		q, topic, other := newQueue(t), opts.Topic(t), opts.Topic(t)
		publish(t, q, other, "elsewhere")
		want := numbered("m", 10)
		publish(t, q, topic, want[:5]...) // before any consumer: stored durably
		got := make(chan server.Delivery, len(want)+1)
		stop := consume(t, q, topic, 2, func(_ context.Context, d server.Delivery) error { got <- d; return nil })
		publish(t, q, topic, want[5:]...)
		var bodies []string
		for range want {
			d := receive(t, got, "a delivery")
			if d.Topic != topic || d.Attempt != 1 || d.MaxAttempts != opts.MaxAttempts || d.LastAttempt() {
				t.Errorf("delivery %+v: want topic %s, attempt 1 of %d", d, topic, opts.MaxAttempts)
			}
			bodies = append(bodies, string(d.Body))
		}
		if err := stop(); err != nil {
			t.Fatalf("Consume returned %v after its context ended, want nil", err)
		}
		slices.Sort(bodies)
		if !slices.Equal(bodies, want) {
			t.Fatalf("delivered %v, want %v", bodies, want)
		}
		if len(got) != 0 {
			t.Fatalf("%d extra deliveries, e.g. %q", len(got), (<-got).Body)
		}
	})
	t.Run("StopWhenIdle", func(t *testing.T) {
		q, topic := newQueue(t), opts.Topic(t)
		stop := consume(t, q, topic, 1, func(context.Context, server.Delivery) error { return nil })
		if err := stop(); err != nil {
			t.Fatalf("Consume returned %v, want nil", err)
		}
	})
	t.Run("ErrorRetriesWithRisingAttempt", func(t *testing.T) {
		q, topic := newQueue(t), opts.Topic(t)
		got := make(chan server.Delivery, 10)
		stop := consume(t, q, topic, 1, func(_ context.Context, d server.Delivery) error {
			got <- d
			if d.Attempt == 1 {
				return errors.New("database busy")
			}
			return nil
		})
		publish(t, q, topic, "flaky")
		for want := 1; want <= 2; want++ {
			if d := receive(t, got, "a delivery"); d.Attempt != want || d.MaxAttempts != opts.MaxAttempts || string(d.Body) != "flaky" {
				t.Fatalf("delivery %+v, want attempt %d of %d", d, want, opts.MaxAttempts)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		deadLetters(t, q, topic, 0)
	})
	t.Run("LastAttemptDeadLetters", func(t *testing.T) {
		q, topic := newQueue(t), opts.Topic(t)
		var attempts []int
		marker := make(chan server.Delivery, 1)
		stop := consume(t, q, topic, 1, func(ctx context.Context, d server.Delivery) error {
			if string(d.Body) == "marker" {
				marker <- d
				return nil
			}
			attempts = append(attempts, d.Attempt) // concurrency 1: one handler at a time
			if d.MaxAttempts != opts.MaxAttempts {
				return fmt.Errorf("MaxAttempts %d, want %d", d.MaxAttempts, opts.MaxAttempts)
			}
			if d.LastAttempt() {
				// Delivered once this failure is settled, since one handler runs at a time.
				if err := q.Publish(ctx, topic, []byte("marker")); err != nil {
					return server.Permanent(err)
				}
			}
			return errors.New("always fails")
		})
		publish(t, q, topic, "poison")
		receive(t, marker, "the message after the last attempt")
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		want := make([]int, opts.MaxAttempts)
		for i := range want {
			want[i] = i + 1
		}
		if !slices.Equal(attempts, want) {
			t.Fatalf("attempts %v, want %v then dead", attempts, want)
		}
		deadLetters(t, q, topic, 1)
	})
	t.Run("PermanentErrorDeadLettersAtOnce", func(t *testing.T) {
		q, topic := newQueue(t), opts.Topic(t)
		var bad atomic.Int32
		marker := make(chan server.Delivery, 1)
		stop := consume(t, q, topic, 1, func(_ context.Context, d server.Delivery) error {
			if string(d.Body) == "marker" {
				marker <- d
				return nil
			}
			bad.Add(1)
			return server.Permanent(errors.New("not a video"))
		})
		publish(t, q, topic, "corrupt", "marker") // one handler at a time: in this order
		receive(t, marker, "the message after the permanent failure")
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if n := bad.Load(); n != 1 {
			t.Fatalf("a permanent failure ran %d times, want 1", n)
		}
		deadLetters(t, q, topic, 1)
	})
	t.Run("StopWaitsForHandlersAndKeepsTheMessage", func(t *testing.T) {
		q, topic := newQueue(t), opts.Topic(t)
		publish(t, q, topic, "long")
		started := make(chan struct{})
		var returned atomic.Bool
		stop := consume(t, q, topic, 1, func(ctx context.Context, d server.Delivery) error {
			close(started)
			<-ctx.Done() // a long conversion interrupted by shutdown
			returned.Store(true)
			return ctx.Err()
		})
		receive(t, started, "the handler to start")
		if err := stop(); err != nil {
			t.Fatalf("Consume returned %v, want nil", err)
		}
		if !returned.Load() {
			t.Fatal("Consume returned before its handler did")
		}
		// The interrupted delivery used up no attempt: it comes again as attempt 1.
		got := make(chan server.Delivery, 2)
		stop = consume(t, q, topic, 1, func(_ context.Context, d server.Delivery) error { got <- d; return nil })
		if d := receive(t, got, "the interrupted message again"); d.Attempt != 1 || string(d.Body) != "long" {
			t.Fatalf("after a shutdown: %+v, want %q as attempt 1", d, "long")
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		deadLetters(t, q, topic, 0)
	})
	t.Run("ConcurrencyBound", func(t *testing.T) {
		q, topic := newQueue(t), opts.Topic(t)
		const limit, n = 3, 12
		publish(t, q, topic, numbered("c", n)...)
		var inFlight, peak atomic.Int32
		full := make(chan struct{})
		var fullOnce sync.Once
		got := make(chan string, n)
		stop := consume(t, q, topic, limit, func(ctx context.Context, d server.Delivery) error {
			cur := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
			}
			if cur == limit {
				fullOnce.Do(func() { close(full) })
			}
			select { // the first handlers wait until limit run at once
			case <-full:
			case <-ctx.Done():
				return ctx.Err()
			}
			got <- string(d.Body)
			return nil
		})
		var bodies []string
		for range n {
			bodies = append(bodies, receive(t, got, "a delivery"))
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if p := peak.Load(); p != limit {
			t.Fatalf("peak concurrency %d, want %d", p, limit)
		}
		slices.Sort(bodies)
		if !slices.Equal(bodies, numbered("c", n)) {
			t.Fatalf("delivered %v", bodies)
		}
	})
	testQueueTrace(t, newQueue, opts)
}

// consume runs q.Consume in the background; stop cancels its context and returns its error.
func consume(t *testing.T, q server.Queue, topic string, concurrency int, h server.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
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
				err = errors.New("the consumer did not return after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(patience):
		t.Fatalf("no %s within %v", what, patience)
		panic("unreachable")
	}
}

func publish(t *testing.T, q server.Queue, topic string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := q.Publish(t.Context(), topic, []byte(b)); err != nil {
			t.Fatalf("Publish(%s, %q): %v", topic, b, err)
		}
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}
