package rabbitmq_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
)

func TestDelayQueueSteps(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{
		{0, "t.retry.10"},
		{10 * time.Millisecond, "t.retry.10"},
		{20 * time.Millisecond, "t.retry.20"},
		{time.Second, "t.retry.1280"},
		{750 * time.Millisecond, "t.retry.640"},
		{5 * time.Minute, "t.retry.327680"},
		{1000 * time.Hour, "t.retry." + strconv.Itoa(10<<24)},
	} {
		if got := rabbitmq.DelayQueue("t", tc.wait); got != tc.want {
			t.Errorf("DelayQueue(%v) = %s, want %s", tc.wait, got, tc.want)
		}
	}
}

// A retry with a short backoff does not wait behind one with a long backoff (RabbitMQ expires
// messages only at the head of a queue, so a per-message expiration in one retry queue would
// hold it back).
func TestShortRetryDoesNotWaitBehindLongOne(t *testing.T) {
	t.Parallel()
	url := testenv.Get(t, testenv.AMQPURL)
	q := dial(t, rabbitmq.Config{URL: url, MaxAttempts: 5, Backoff: func(attempt int) time.Duration {
		if attempt >= 2 {
			return 5 * time.Second
		}
		return 100 * time.Millisecond
	}})
	tp := topic(t, url)
	var r recorder
	waiting := make(chan int, 1) // messages in the delay queues when fast came back
	consume(t, q, tp, 2, func(ctx context.Context, d server.Delivery) error {
		r.add(d)
		if string(d.Body) == "fast" && d.Attempt == 2 {
			waiting <- retryDepth(t, url, tp)
		}
		if string(d.Body) == "slow" && d.Attempt <= 2 || string(d.Body) == "fast" && d.Attempt == 1 {
			return errors.New("not yet")
		}
		return nil
	})
	publish(t, q, tp, "slow")
	// slow's second failure puts it in the 5 s delay queue; then fast fails once (100 ms).
	eventually(t, "slow to wait its long backoff", func() bool { return r.len() == 2 && retryDepth(t, url, tp) == 1 })
	publish(t, q, tp, "fast")
	eventually(t, "both to be delivered again", func() bool { return r.len() == 5 })
	var order []string
	for _, d := range r.snapshot() {
		order = append(order, string(d.Body)+"#"+strconv.Itoa(d.Attempt))
	}
	if n := <-waiting; n != 1 {
		t.Errorf("fast came back after slow's long backoff (%d messages were still waiting), want before", n)
	}
	want := []string{"slow#1", "slow#2", "fast#1", "fast#2", "slow#3"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("deliveries %v, want %v", order, want)
		}
	}
}

// A broker upgraded from the single retry queue keeps working: messages waiting in T.retry
// with a per-message expiration still come back, and a delay queue that the broker refuses
// (declared elsewhere with other arguments: PRECONDITION_FAILED) makes retries wait in T.retry
// instead, not fail.
func TestRetryQueueMigration(t *testing.T) {
	t.Parallel()
	url := testenv.Get(t, testenv.AMQPURL)
	tp := topic(t, url)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// The old topology, with a message waiting in it, and a clashing delay queue.
	if _, err := ch.QueueDeclare(tp, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	old := amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": tp}
	if _, err := ch.QueueDeclare(tp+rabbitmq.RetrySuffix, true, false, false, false, old); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(rabbitmq.DelayQueue(tp, fastBackoff(1)), true, false, false, false, amqp.Table{"x-max-length": int32(1000)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(t.Context(), "", tp+rabbitmq.RetrySuffix, false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent, Expiration: "50", Body: []byte("waiting"),
		Headers: amqp.Table{rabbitmq.HeaderAttempt: int32(2)}}); err != nil {
		t.Fatal(err)
	}

	q := dial(t, rabbitmq.Config{URL: url, MaxAttempts: 5})
	var r recorder
	consume(t, q, tp, 1, func(ctx context.Context, d server.Delivery) error {
		r.add(d)
		if string(d.Body) == "new" && d.Attempt == 1 {
			return errors.New("not yet")
		}
		return nil
	})
	publish(t, q, tp, "new")
	eventually(t, "the old retry and the new one", func() bool { return r.len() == 3 })
	got := map[string]bool{}
	for _, d := range r.snapshot() {
		got[string(d.Body)+"#"+strconv.Itoa(d.Attempt)] = true
	}
	if !got["waiting#2"] || !got["new#1"] || !got["new#2"] {
		t.Fatalf("deliveries %v", got)
	}
	eventually(t, "the queues to drain", func() bool {
		return depth(t, url, tp) == 0 && retryDepth(t, url, tp) == 0
	})
}

// retryDepth returns the number of messages waiting in topic's retry and delay queues that
// exist.
func retryDepth(t *testing.T, url, topic string) int {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := 0
	for _, name := range append([]string{topic + rabbitmq.RetrySuffix}, rabbitmq.DelayQueues(topic)...) {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			continue // the channel is closed
		}
		if err != nil {
			t.Fatalf("inspect %s: %v", name, err)
		}
		n += q.Messages
		ch.Close()
	}
	return n
}
