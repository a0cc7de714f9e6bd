package server

import (
	"context"
	"slices"
	"time"
)

// The events a webhook subscribes to: a job's outcome, as TopicMP3 announces it.
const (
	EventJobDone   = "job.done"
	EventJobFailed = "job.failed"
)

// WebhookEvents are every event, in the order webhooks list them.
var WebhookEvents = []string{EventJobDone, EventJobFailed}

// EventOf returns the webhook event that announces a job in state s, or "" for a state that is
// not final.
func EventOf(s JobState) string {
	switch s {
	case JobDone:
		return EventJobDone
	case JobFailed:
		return EventJobFailed
	}
	return ""
}

// Webhook is a user's subscription to the outcomes of their jobs: each event it names is
// POSTed to URL, signed with Secret.
type Webhook struct {
	ID     string
	Owner  string // the owner's email
	URL    string
	Events []string // a subset of WebhookEvents, in their order, without duplicates
	// Secret is the HMAC-SHA256 key of the deliveries' signatures. The API shows it once, when
	// the webhook is created; the notifier needs it in the clear to sign.
	Secret    string
	CreatedAt time.Time
}

// Subscribes reports whether w wants event.
func (w *Webhook) Subscribes(event string) bool { return slices.Contains(w.Events, event) }

// WebhookStore keeps webhooks. Every read and write names the owner: someone else's webhook
// is ENOTFOUND, as one that does not exist. Times are kept in UTC to the millisecond.
type WebhookStore interface {
	// CreateWebhook stores w as given, unless w.Owner has limit (> 0) webhooks already: then
	// ECONFLICT, and nothing is stored. Of concurrent creations by one owner, no more succeed
	// than the limit leaves room for. An existing ID gives ECONFLICT and leaves that webhook
	// unchanged.
	CreateWebhook(ctx context.Context, w *Webhook, limit int) error
	// Webhook returns owner's webhook id, or ENOTFOUND.
	Webhook(ctx context.Context, owner, id string) (*Webhook, error)
	// Webhooks returns owner's webhooks and no one else's, oldest CreatedAt first (ties by ID);
	// an owner without webhooks gets an empty list.
	Webhooks(ctx context.Context, owner string) ([]*Webhook, error)
	// DeleteWebhook removes owner's webhook id; ENOTFOUND when owner has none of that id (it
	// never existed, was deleted already, or is someone else's).
	DeleteWebhook(ctx context.Context, owner, id string) error
}
