package mysql

import (
	"context"
	"fmt"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Revoke implements server.RevocationStore. Expiries are kept as Unix milliseconds.
func (s *Store) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" {
		return server.Errorf(server.EINVALID, "a revocation needs a token id")
	}
	now := time.Now()
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf("DELETE FROM `%s` WHERE expires_at <= ?", s.revoked), now.UnixMilli()); err != nil {
		return wrap("purge revocations", err)
	}
	if !exp.After(now) {
		return nil // the token is refused for its expiry already
	}
	_, err := s.db.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (jti, expires_at) VALUES (?, ?) "+
		"ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, VALUES(expires_at))", s.revoked), jti, exp.UnixMilli())
	if err != nil {
		return wrap("insert revocation", err)
	}
	return nil
}

// Revoked implements server.RevocationStore.
func (s *Store) Revoked(ctx context.Context, jti string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM `%s` WHERE jti = ?", s.revoked), jti).Scan(&n)
	if err != nil {
		return false, wrap("select revocation", err)
	}
	return n > 0, nil
}

// Revocations implements server.RevocationStore.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]server.Revocation, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT jti, expires_at FROM `%s` WHERE expires_at > ?", s.revoked), now.UnixMilli())
	if err != nil {
		return nil, wrap("list revocations", err)
	}
	defer rows.Close()
	var out []server.Revocation
	for rows.Next() {
		var r server.Revocation
		var exp int64
		if err := rows.Scan(&r.ID, &exp); err != nil {
			return nil, wrap("list revocations", err)
		}
		r.ExpiresAt = time.UnixMilli(exp).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list revocations", err)
	}
	return out, nil
}
