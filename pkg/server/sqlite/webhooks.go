package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/v2m/v2m/pkg/server"
)

// Webhooks returns the database as a server.WebhookStore.
func (d *DB) Webhooks() server.WebhookStore { return (*webhookStore)(d) }

type webhookStore DB

func (s *webhookStore) CreateWebhook(ctx context.Context, w *server.Webhook, limit int) error {
	// An immediate transaction holds the write lock from the count to the insert, so that
	// concurrent creations cannot all see room for one more.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE owner = ?`, w.Owner).Scan(&n); err != nil {
		return fmt.Errorf("count webhooks: %w", err)
	}
	if n >= limit {
		return server.Errorf(server.ECONFLICT, "%s has %d webhooks, the most allowed", w.Owner, n)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO webhooks (id, owner, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		w.ID, w.Owner, w.URL, strings.Join(w.Events, ","), w.Secret, ms(w.CreatedAt))
	if isUnique(err) {
		return server.Errorf(server.ECONFLICT, "webhook %s already exists", w.ID)
	}
	if err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	return nil
}

const webhookColumns = `id, owner, url, events, secret, created_at`

func scanWebhook(row interface{ Scan(...any) error }) (*server.Webhook, error) {
	var w server.Webhook
	var events string
	var created int64
	if err := row.Scan(&w.ID, &w.Owner, &w.URL, &events, &w.Secret, &created); err != nil {
		return nil, err
	}
	if events != "" {
		w.Events = strings.Split(events, ",")
	}
	w.CreatedAt = fromMS(created)
	return &w, nil
}

func (s *webhookStore) Webhook(ctx context.Context, owner, id string) (*server.Webhook, error) {
	w, err := scanWebhook(s.db.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ? AND owner = ?`, id, owner))
	if isNoRows(err) {
		return nil, notFound("webhook", id)
	}
	if err != nil {
		return nil, fmt.Errorf("select webhook: %w", err)
	}
	return w, nil
}

func (s *webhookStore) Webhooks(ctx context.Context, owner string) ([]*server.Webhook, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE owner = ? ORDER BY created_at, id`, owner)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	out := []*server.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

func (s *webhookStore) DeleteWebhook(ctx context.Context, owner, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ? AND owner = ?`, id, owner)
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	if n == 0 {
		return notFound("webhook", id)
	}
	return nil
}
