package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/tracing"
	"github.com/v2m/v2m/pkg/server/webhook"
)

// webhooks delivers the event to each of the owner's webhooks that subscribes to it and did
// not get it yet. A delivery that succeeded, or failed for good (the receiver refused it, or
// its address is forbidden), is recorded in the sent log and not made again when the event is
// redelivered; the others make the event fail, to be retried with the queue's backoff and
// dead-lettered after its last attempt. They run at once, so that one slow receiver does not
// delay the others.
func (n *Notifier) webhooks(ctx context.Context, d server.Delivery, ev server.JobEvent, log *slog.Logger) error {
	event := server.EventOf(ev.State)
	all, err := n.Webhooks.Webhooks(ctx, ev.Username)
	if err != nil {
		return fmt.Errorf("list webhooks of job %s: %w", ev.JobID, err)
	}
	var hooks []*server.Webhook
	for _, w := range all {
		if w.Subscribes(event) {
			hooks = append(hooks, w)
		}
	}
	if len(hooks) == 0 {
		return nil
	}
	j, err := n.Jobs.Job(ctx, ev.JobID)
	if server.IsCode(err, server.ENOTFOUND) {
		log.WarnContext(ctx, "the job is gone; its webhooks are not called")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read job %s for its webhooks: %w", ev.JobID, err)
	}
	if j.Owner != ev.Username || j.State != ev.State {
		log.WarnContext(ctx, "the event does not match its job; its webhooks are not called", "job_state", j.State)
		return nil
	}
	e, err := webhook.Event(j)
	if err != nil {
		return server.Permanent(err)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return server.Permanent(fmt.Errorf("encode webhook event of job %s: %w", ev.JobID, err))
	}
	errs := make([]error, len(hooks))
	var wg sync.WaitGroup
	for i, w := range hooks {
		if !j.FinishedAt.IsZero() && w.CreatedAt.After(j.FinishedAt) {
			continue // created after the outcome: it did not ask for this one
		}
		dv := webhook.Delivery{ID: webhook.DeliveryID(w.ID, e.ID), Event: event, Body: body}
		wg.Go(func() { errs[i] = n.deliver(ctx, d, w, dv, log) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliver makes one delivery unless the sent log has it.
func (n *Notifier) deliver(ctx context.Context, d server.Delivery, w *server.Webhook, dv webhook.Delivery, log *slog.Logger) error {
	key := "webhook:" + dv.ID
	log = log.With("webhook_id", w.ID, "delivery", dv.ID, "attempt", d.Attempt)
	sent, err := n.Sent.Sent(ctx, key)
	if err != nil {
		return fmt.Errorf("check sent log: %w", err)
	}
	if sent {
		log.InfoContext(ctx, "webhook already delivered")
		return nil
	}
	sctx, span := tracing.Tracer(n.TracerProvider).Start(ctx, "deliver webhook", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("v2m.webhook_id", w.ID), attribute.String("v2m.webhook.event", string(dv.Event))))
	status, err := n.Deliverer.Deliver(sctx, w, dv)
	if status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	tracing.Fail(span, err)
	span.End()
	switch {
	case err == nil:
		log.InfoContext(ctx, "webhook delivered", "status", status)
	case server.IsPermanent(err):
		log.WarnContext(ctx, "webhook delivery refused; not retried", "status", status, "err", err)
	case ctx.Err() != nil:
		return fmt.Errorf("deliver webhook %s: %w", w.ID, errors.Join(ctx.Err(), err))
	default:
		log.WarnContext(ctx, "webhook delivery failed", "status", status, "err", err, "last_attempt", d.LastAttempt())
		return fmt.Errorf("deliver webhook %s: %w", w.ID, err)
	}
	// The delivery is settled; a cancelled ctx must not make it happen again.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := n.Sent.MarkSent(mctx, key); err != nil {
		log.ErrorContext(ctx, "record delivered webhook", "err", err)
	}
	return nil
}
