package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/v2m/v2m/internal/sqlrows"
	"github.com/v2m/v2m/pkg/server"
)

// PersonalTokens returns the database as a server.PersonalTokenStore.
func (d *DB) PersonalTokens() server.PersonalTokenStore { return (*tokenStore)(d) }

type tokenStore DB

const tokenColumns = `id, owner, name, hash, read_only, created_at, expires_at, last_used_at`

func scanToken(r sqlrows.Scanner) (*server.PersonalToken, error) {
	var t server.PersonalToken
	var created, expires, used int64
	if err := r.Scan(&t.ID, &t.Owner, &t.Name, &t.Hash, &t.ReadOnly, &created, &expires, &used); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt = fromMS(created), fromMS(expires)
	if used != 0 {
		t.LastUsedAt = fromMS(used)
	}
	return &t, nil
}

func (s *tokenStore) CreatePersonalToken(ctx context.Context, t *server.PersonalToken) error {
	var used int64
	if !t.LastUsedAt.IsZero() {
		used = ms(t.LastUsedAt)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO personal_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Owner, t.Name, t.Hash, t.ReadOnly, ms(t.CreatedAt), ms(t.ExpiresAt), used)
	if isUnique(err) {
		return server.Errorf(server.ECONFLICT, "personal token %s exists already", t.ID)
	}
	if err != nil {
		return fmt.Errorf("insert personal token: %w", err)
	}
	return nil
}

func (s *tokenStore) PersonalTokenByHash(ctx context.Context, hash string) (*server.PersonalToken, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM personal_tokens WHERE hash = ?`, hash))
	if isNoRows(err) {
		return nil, server.Errorf(server.ENOTFOUND, "no such personal token")
	}
	if err != nil {
		return nil, fmt.Errorf("select personal token: %w", err)
	}
	return t, nil
}

func (s *tokenStore) PersonalTokens(ctx context.Context, owner string) ([]*server.PersonalToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM personal_tokens WHERE owner = ? ORDER BY created_at DESC, id`, owner)
	if err != nil {
		return nil, fmt.Errorf("list personal tokens: %w", err)
	}
	return sqlrows.Collect(rows, scanToken)
}

func (s *tokenStore) DeletePersonalToken(ctx context.Context, owner, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM personal_tokens WHERE id = ? AND owner = ?`, id, owner)
	if err != nil {
		return fmt.Errorf("delete personal token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete personal token: %w", err)
	} else if n == 0 {
		return notFound("personal token", id)
	}
	return nil
}

func (s *tokenStore) TouchPersonalToken(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE personal_tokens SET last_used_at = ? WHERE id = ?`, ms(at), id); err != nil {
		return fmt.Errorf("touch personal token: %w", err)
	}
	return nil
}
