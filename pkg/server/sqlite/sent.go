package sqlite

import (
	"context"
	"fmt"

	"github.com/v2m/v2m/pkg/server"
)

// SentLog returns the database as a server.SentLog.
func (d *DB) SentLog() server.SentLog { return (*sentLog)(d) }

type sentLog DB

func (s *sentLog) Sent(ctx context.Context, key string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sent WHERE key = ?`, key).Scan(&n); err != nil {
		return false, fmt.Errorf("select sent: %w", err)
	}
	return n > 0, nil
}

func (s *sentLog) MarkSent(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sent (key, sent_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, key, ms(s.now())); err != nil {
		return fmt.Errorf("insert sent: %w", err)
	}
	return nil
}
