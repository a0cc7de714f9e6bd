package servertest

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
)

// testQueueTrace checks that a message carries its publisher's trace context: the handler's
// ctx is in the trace of the ctx given to Publish, on its first delivery and on a retry, and a
// message published outside any trace reaches its handler outside any trace too (no context
// leaks from one message to the next).
func testQueueTrace(t *testing.T, newQueue NewQueue, opts QueueOptions) {
	t.Run("TraceContextReachesHandler", func(t *testing.T) {
		q, topic := newQueue(t), opts.Topic(t)
		var tid trace.TraceID
		var sid trace.SpanID
		rand.Read(tid[:])
		rand.Read(sid[:])
		parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
		type seen struct {
			body    string
			attempt int
			sc      trace.SpanContext
		}
		got := make(chan seen, 10)
		stop := consume(t, q, topic, 1, func(ctx context.Context, d server.Delivery) error {
			got <- seen{string(d.Body), d.Attempt, trace.SpanContextFromContext(ctx)}
			if string(d.Body) == "traced" && d.Attempt == 1 {
				return errors.New("try again")
			}
			return nil
		})
		if err := q.Publish(trace.ContextWithSpanContext(t.Context(), parent), topic, []byte("traced")); err != nil {
			t.Fatalf("Publish with a span: %v", err)
		}
		for want := 1; want <= 2; want++ {
			s := receive(t, got, "a delivery of the traced message")
			if s.body != "traced" || s.attempt != want {
				t.Fatalf("delivery %q attempt %d, want %q attempt %d", s.body, s.attempt, "traced", want)
			}
			if !s.sc.IsValid() || s.sc.TraceID() != tid || !s.sc.IsRemote() || !s.sc.IsSampled() {
				t.Fatalf("attempt %d: handler's span context %+v, want a sampled remote one in trace %s", want, s.sc, tid)
			}
		}
		publish(t, q, topic, "untraced")
		if s := receive(t, got, "a delivery of the untraced message"); s.body != "untraced" || s.sc.IsValid() {
			t.Fatalf("delivery %q has span context %+v, want none", s.body, s.sc)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}
