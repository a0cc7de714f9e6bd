package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Limits returns the database as a server.LimitStore.
func (d *DB) Limits() server.LimitStore { return (*limitStore)(d) }

type limitStore DB

func (s *limitStore) UserLimits(ctx context.Context, owner string) (server.Limits, error) {
	var l server.Limits
	var enc string
	err := s.db.QueryRowContext(ctx, `SELECT limits FROM limits WHERE owner = ?`, owner).Scan(&enc)
	if isNoRows(err) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("select limits of %s: %w", owner, err)
	}
	if err := json.Unmarshal([]byte(enc), &l); err != nil {
		return l, fmt.Errorf("limits of %s: %w", owner, err)
	}
	return l, nil
}

func (s *limitStore) SetUserLimits(ctx context.Context, owner string, l server.Limits) error {
	enc, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode limits: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO limits (owner, limits) VALUES (?, ?)
		ON CONFLICT (owner) DO UPDATE SET limits = excluded.limits`, owner, string(enc))
	if err != nil {
		return fmt.Errorf("store limits of %s: %w", owner, err)
	}
	return nil
}

// Lease returns the database as a server.Lease.
func (d *DB) Lease() server.Lease { return (*lease)(d) }

type lease DB

func (l *lease) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := (*DB)(l).now()
	res, err := l.db.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`, name, holder, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return n > 0, nil
}
