package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/v2m/v2m/pkg/wire"
)

// Webhook is a completion webhook, as the /v1/webhooks routes return it. Secret is set only
// in the answer of CreateWebhook.
type Webhook = wire.Webhook

// Webhook events.
const (
	EventJobDone   = wire.EventJobDone
	EventJobFailed = wire.EventJobFailed
)

// CreateWebhook registers a webhook that gets events (nil: every event) POSTed to rawURL. The
// answer carries its secret, which the server never shows again.
func (c *Client) CreateWebhook(ctx context.Context, rawURL string, events []string) (*Webhook, error) {
	var w Webhook
	if err := c.doJSON(ctx, http.MethodPost, "/v1/webhooks", wire.NewWebhook{URL: rawURL, Events: events}, &w, nil); err != nil {
		return nil, fmt.Errorf("create webhook: %w", err)
	}
	return &w, nil
}

// Webhooks returns the caller's webhooks, oldest first.
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var out wire.WebhookList
	if err := c.doJSON(ctx, http.MethodGet, "/v1/webhooks", nil, &out, nil); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	if out.Webhooks == nil {
		out.Webhooks = []Webhook{}
	}
	return out.Webhooks, nil
}

// Webhook returns one of the caller's webhooks.
func (c *Client) Webhook(ctx context.Context, id string) (*Webhook, error) {
	var w Webhook
	if err := c.doJSON(ctx, http.MethodGet, "/v1/webhooks/"+url.PathEscape(id), nil, &w, nil); err != nil {
		return nil, fmt.Errorf("get webhook %s: %w", id, err)
	}
	return &w, nil
}

// DeleteWebhook removes one of the caller's webhooks.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	if err := c.doJSON(ctx, http.MethodDelete, "/v1/webhooks/"+url.PathEscape(id), nil, nil, nil); err != nil {
		return fmt.Errorf("remove webhook %s: %w", id, err)
	}
	return nil
}
