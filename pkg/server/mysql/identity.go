package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/v2m/v2m/internal/sqlrows"
	"github.com/v2m/v2m/pkg/server"
)

const userColumns = "id, email, password, created_at, role, disabled"

func scanUser(r sqlrows.Scanner) (*server.User, error) {
	var u server.User
	var hash string
	if err := r.Scan(&u.ID, &u.Email, &hash, &u.CreatedAt, &u.Role, &u.Disabled); err != nil {
		return nil, err
	}
	u.PasswordHash = []byte(hash)
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, nil
}

// migrateIdentity adds the role and disabled columns to the users table, and creates the
// personal tokens table.
func (s *Store) migrateIdentity(ctx context.Context) error {
	tokens := fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%s` ("+
		"id CHAR(24) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, "+
		"owner VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL, "+
		"name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, "+
		"hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE, "+
		"read_only BOOLEAN NOT NULL DEFAULT FALSE, "+
		"created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, last_used_at BIGINT NOT NULL DEFAULT 0, "+
		"INDEX owner_created (owner, created_at)"+
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci", s.tokens)
	if _, err := s.db.ExecContext(ctx, tokens); err != nil {
		return fmt.Errorf("create table %s: %w", s.tokens, err)
	}
	if err := s.addColumn(ctx, "role", "VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'user'"); err != nil {
		return err
	}
	return s.addColumn(ctx, "disabled", "BOOLEAN NOT NULL DEFAULT FALSE")
}

// SetRole implements server.UserStore.
func (s *Store) SetRole(ctx context.Context, email, role string) (*server.User, error) {
	if role != server.RoleUser && role != server.RoleAdmin {
		return nil, server.Errorf(server.EINVALID, "unknown role %q: it must be %s or %s", role, server.RoleUser, server.RoleAdmin)
	}
	return s.setUser(ctx, email, "role", role)
}

// SetDisabled implements server.UserStore.
func (s *Store) SetDisabled(ctx context.Context, email string, disabled bool) (*server.User, error) {
	return s.setUser(ctx, email, "disabled", disabled)
}

// setUser sets one column of the user email and returns the user. MySQL reports no change
// for a value already set, so a missing user is told by reading it back.
func (s *Store) setUser(ctx context.Context, email, column string, v any) (*server.User, error) {
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf("UPDATE `%s` SET %s = ? WHERE email = ?", s.table, column), v, email); err != nil {
		return nil, fmt.Errorf("update user %s: %w", column, err)
	}
	return s.UserByEmail(ctx, email)
}

// ListUsers implements server.UserStore.
func (s *Store) ListUsers(ctx context.Context, after int64, limit int) ([]*server.User, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM `%s` WHERE id > ? ORDER BY id LIMIT ?", userColumns, s.table), after, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return sqlrows.Collect(rows, scanUser)
}

// UserStates implements server.UserStore.
func (s *Store) UserStates(ctx context.Context) ([]*server.User, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM `%s` WHERE disabled OR role <> 'user' ORDER BY id", userColumns, s.table))
	if err != nil {
		return nil, fmt.Errorf("list user states: %w", err)
	}
	users, err := sqlrows.Collect(rows, scanUser)
	for _, u := range users {
		u.PasswordHash = nil
	}
	return users, err
}

const tokenColumns = "id, owner, name, hash, read_only, created_at, expires_at, last_used_at"

func scanToken(r sqlrows.Scanner) (*server.PersonalToken, error) {
	var t server.PersonalToken
	var created, expires, used int64
	if err := r.Scan(&t.ID, &t.Owner, &t.Name, &t.Hash, &t.ReadOnly, &created, &expires, &used); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	if used != 0 {
		t.LastUsedAt = time.UnixMilli(used).UTC()
	}
	return &t, nil
}

// CreatePersonalToken implements server.PersonalTokenStore.
func (s *Store) CreatePersonalToken(ctx context.Context, t *server.PersonalToken) error {
	var used int64
	if !t.LastUsedAt.IsZero() {
		used = t.LastUsedAt.UnixMilli()
	}
	_, err := s.db.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", s.tokens, tokenColumns),
		t.ID, t.Owner, t.Name, t.Hash, t.ReadOnly, t.CreatedAt.UnixMilli(), t.ExpiresAt.UnixMilli(), used)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == errDupEntry {
			return server.Errorf(server.ECONFLICT, "personal token %s exists already", t.ID)
		}
		return fmt.Errorf("insert personal token: %w", err)
	}
	return nil
}

// PersonalTokenByHash implements server.PersonalTokenStore.
func (s *Store) PersonalTokenByHash(ctx context.Context, hash string) (*server.PersonalToken, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, fmt.Sprintf("SELECT %s FROM `%s` WHERE hash = ?", tokenColumns, s.tokens), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, server.Errorf(server.ENOTFOUND, "no such personal token")
	}
	if err != nil {
		return nil, fmt.Errorf("select personal token: %w", err)
	}
	return t, nil
}

// PersonalTokens implements server.PersonalTokenStore.
func (s *Store) PersonalTokens(ctx context.Context, owner string) ([]*server.PersonalToken, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM `%s` WHERE owner = ? ORDER BY created_at DESC, id", tokenColumns, s.tokens), owner)
	if err != nil {
		return nil, fmt.Errorf("list personal tokens: %w", err)
	}
	return sqlrows.Collect(rows, scanToken)
}

// DeletePersonalToken implements server.PersonalTokenStore.
func (s *Store) DeletePersonalToken(ctx context.Context, owner, id string) error {
	res, err := s.db.ExecContext(ctx, fmt.Sprintf("DELETE FROM `%s` WHERE id = ? AND owner = ?", s.tokens), id, owner)
	if err != nil {
		return fmt.Errorf("delete personal token: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete personal token: %w", err)
	}
	if n == 0 {
		return server.Errorf(server.ENOTFOUND, "personal token %s not found", strings.ToLower(id))
	}
	return nil
}

// TouchPersonalToken implements server.PersonalTokenStore.
func (s *Store) TouchPersonalToken(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf("UPDATE `%s` SET last_used_at = ? WHERE id = ?", s.tokens), at.UnixMilli(), id); err != nil {
		return fmt.Errorf("touch personal token: %w", err)
	}
	return nil
}
