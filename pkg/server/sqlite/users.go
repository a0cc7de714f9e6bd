package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/v2m/v2m/internal/sqlrows"
	"github.com/v2m/v2m/pkg/server"
)

// Users returns the database as a server.UserStore.
func (d *DB) Users() server.UserStore { return (*userStore)(d) }

type userStore DB

const userColumns = `id, email, password_hash, created_at, role, disabled`

func (s *userStore) CreateUser(ctx context.Context, email string, hash []byte) (*server.User, error) {
	now := s.now().UTC()
	res, err := s.db.ExecContext(ctx, `INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)`, email, hash, ms(now))
	if isUnique(err) {
		return nil, server.Errorf(server.ECONFLICT, "a user with email %s already exists", email)
	}
	if err != nil {
		return nil, fmt.Errorf("insert user: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("insert user: %w", err)
	}
	return &server.User{ID: id, Email: email, PasswordHash: hash, CreatedAt: fromMS(ms(now)), Role: server.RoleUser}, nil
}

func scanUser(r sqlrows.Scanner) (*server.User, error) {
	var u server.User
	var created int64
	if err := r.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.Role, &u.Disabled); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}

func (s *userStore) UserByEmail(ctx context.Context, email string) (*server.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if isNoRows(err) {
		return nil, notFound("user", email)
	}
	if err != nil {
		return nil, fmt.Errorf("select user: %w", err)
	}
	return u, nil
}

func (s *userStore) SetRole(ctx context.Context, email, role string) (*server.User, error) {
	if role != server.RoleUser && role != server.RoleAdmin {
		return nil, server.Errorf(server.EINVALID, "unknown role %q: it must be %s or %s", role, server.RoleUser, server.RoleAdmin)
	}
	return s.setUser(ctx, email, `role = ?`, role)
}

func (s *userStore) SetDisabled(ctx context.Context, email string, disabled bool) (*server.User, error) {
	return s.setUser(ctx, email, `disabled = ?`, disabled)
}

// setUser sets one column of the user email and returns the user.
func (s *userStore) setUser(ctx context.Context, email, set string, v any) (*server.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `UPDATE users SET `+set+` WHERE email = ? RETURNING `+userColumns, v, email))
	if isNoRows(err) {
		return nil, notFound("user", email)
	}
	if err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	return u, nil
}

func (s *userStore) ListUsers(ctx context.Context, after int64, limit int) ([]*server.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return collectUsers(rows)
}

func (s *userStore) UserStates(ctx context.Context) ([]*server.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE disabled != 0 OR role != 'user' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list user states: %w", err)
	}
	users, err := collectUsers(rows)
	for _, u := range users {
		u.PasswordHash = nil
	}
	return users, err
}

func collectUsers(rows *sql.Rows) ([]*server.User, error) { return sqlrows.Collect(rows, scanUser) }
