package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/metrics"
	"github.com/v2m/v2m/pkg/server/tracing"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/wire"
)

// Notifier mails users the outcome of their jobs, and POSTs it to their webhooks: at most one
// mail per job outcome, and one successful delivery per webhook, however often the event is
// delivered.
type Notifier struct {
	Mailer    server.Mailer
	Sent      server.SentLog
	PublicURL string // the server's address as users reach it, for the download command
	Logger    *slog.Logger
	Metrics   *metrics.Metrics

	// Webhooks, when set, are the users' webhooks, each outcome delivered by Deliverer to
	// those that subscribe to it, with the job read from Jobs (see webhooks.go).
	Webhooks  server.WebhookStore
	Jobs      server.JobStore
	Deliverer *webhook.Deliverer
	// Retention says until when a done job's MP3 is kept, for the mail.
	Retention jobs.Retention

	// TracerProvider, when set, records a consumer span per delivery ("notify", in the trace
	// of the job's conversion), with a child span for the mail and one per webhook delivery.
	TracerProvider trace.TracerProvider
}

// Handle is the server.Handler for TopicMP3.
func (n *Notifier) Handle(ctx context.Context, d server.Delivery) (err error) {
	ctx, span := tracing.StartConsume(ctx, n.TracerProvider, "notify", d.Topic, d.Attempt)
	defer func() { tracing.Fail(span, err); span.End() }()
	var ev server.JobEvent
	if err := json.Unmarshal(d.Body, &ev); err != nil || ev.JobID == "" || ev.Username == "" || !ev.State.Final() {
		return server.Permanent(fmt.Errorf("malformed job event %q", truncate(d.Body, 200)))
	}
	span.SetAttributes(tracing.JobID.String(ev.JobID), attribute.String("v2m.job.state", string(ev.State)))
	log := n.log().With("job_id", ev.JobID, "state", ev.State)
	err = n.mail(ctx, d, ev, log)
	if n.Webhooks != nil {
		// A mail that failed does not hold the webhooks up, nor the other way round: each is
		// retried with the event, and each that went out is not sent again.
		err = errors.Join(err, n.webhooks(ctx, d, ev, log))
	}
	return err
}

// mail sends the event's mail unless the sent log has it.
func (n *Notifier) mail(ctx context.Context, d server.Delivery, ev server.JobEvent, log *slog.Logger) error {
	key := ev.JobID + ":" + string(ev.State)
	sent, err := n.Sent.Sent(ctx, key)
	if err != nil {
		return fmt.Errorf("check sent log: %w", err)
	}
	if sent {
		log.InfoContext(ctx, "mail already sent")
		return nil
	}
	if err := n.send(ctx, ev); err != nil {
		n.Metrics.Mail("failed")
		log.WarnContext(ctx, "mail failed", "attempt", d.Attempt, "err", err)
		return fmt.Errorf("send mail for job %s: %w", ev.JobID, err)
	}
	n.Metrics.Mail("sent")
	log.InfoContext(ctx, "mail sent")
	if err := n.Sent.MarkSent(ctx, key); err != nil {
		// The mail went out; failing now would send it again.
		log.ErrorContext(ctx, "record sent mail", "err", err)
	}
	return nil
}

// send sends the event's mail in a span of its own.
func (n *Notifier) send(ctx context.Context, ev server.JobEvent) error {
	ctx, span := tracing.Tracer(n.TracerProvider).Start(ctx, "send mail", trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	err := n.Mailer.Send(ctx, n.Compose(ev))
	tracing.Fail(span, err)
	return err
}

func (n *Notifier) log() *slog.Logger {
	if n.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Logger
}

// Compose writes the mail for an event.
func (n *Notifier) Compose(ev server.JobEvent) server.Mail {
	var b strings.Builder
	if ev.State == server.JobDone {
		fmt.Fprintf(&b, "Your MP3 of %s is ready.\n\n", ev.Filename)
		fmt.Fprintf(&b, "File id: %s\n\nDownload it with:\n\n    %s\n", ev.MP3FID, n.downloadCommand(ev))
		finished := ev.FinishedAt
		if finished.IsZero() {
			finished = time.Now()
		}
		if exp := n.Retention.ExpiryOf(finished); !exp.IsZero() {
			fmt.Fprintf(&b, "\nYou can download it until %s; it is deleted after that.\n", exp.UTC().Format("Monday 2 January 2006, 15:04 UTC"))
		}
		return server.Mail{To: ev.Username, Subject: "Your MP3 is ready: " + wire.MP3Name(ev.Filename), Body: b.String()}
	}
	fmt.Fprintf(&b, "We could not convert %s.\n\nReason: %s\n\nJob id: %s\n", ev.Filename, ev.Error, ev.JobID)
	return server.Mail{To: ev.Username, Subject: "Conversion failed: " + ev.Filename, Body: b.String()}
}

func (n *Notifier) downloadCommand(ev server.JobEvent) string {
	cmd := "v2m"
	if n.PublicURL != "" {
		cmd += " --server " + n.PublicURL
	}
	return fmt.Sprintf("%s download %s -o '%s'", cmd, ev.MP3FID, strings.ReplaceAll(wire.MP3Name(ev.Filename), "'", `'\''`))
}
