package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Revocations returns the database as a server.RevocationStore.
func (d *DB) Revocations() server.RevocationStore { return (*revocationStore)(d) }

type revocationStore DB

func (s *revocationStore) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" {
		return server.Errorf(server.EINVALID, "a revocation needs a token id")
	}
	now := s.now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM revocations WHERE expires_at <= ?`, ms(now)); err != nil {
		return fmt.Errorf("purge revocations: %w", err)
	}
	if !exp.After(now) {
		return tx.Commit() // the token is refused for its expiry already
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO revocations (jti, expires_at) VALUES (?, ?)
		ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`, jti, ms(exp))
	if err != nil {
		return fmt.Errorf("insert revocation: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

func (s *revocationStore) Revoked(ctx context.Context, jti string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM revocations WHERE jti = ?`, jti).Scan(&n); err != nil {
		return false, fmt.Errorf("select revocation: %w", err)
	}
	return n > 0, nil
}

func (s *revocationStore) Revocations(ctx context.Context, now time.Time) ([]server.Revocation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT jti, expires_at FROM revocations WHERE expires_at > ?`, ms(now))
	if err != nil {
		return nil, fmt.Errorf("list revocations: %w", err)
	}
	defer rows.Close()
	var out []server.Revocation
	for rows.Next() {
		var r server.Revocation
		var exp int64
		if err := rows.Scan(&r.ID, &exp); err != nil {
			return nil, fmt.Errorf("list revocations: %w", err)
		}
		r.ExpiresAt = fromMS(exp)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list revocations: %w", err)
	}
	return out, nil
}
