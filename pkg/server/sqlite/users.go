package sqlite

import (
	"context"
	"fmt"

	"github.com/v2m/v2m/pkg/server"
)

// Users returns the database as a server.UserStore.
func (d *DB) Users() server.UserStore { return (*userStore)(d) }

type userStore DB

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
	return &server.User{ID: id, Email: email, PasswordHash: hash, CreatedAt: fromMS(ms(now))}, nil
}

func (s *userStore) UserByEmail(ctx context.Context, email string) (*server.User, error) {
	var u server.User
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, email, password_hash, created_at FROM users WHERE email = ?`, email).
		Scan(&u.ID, &u.Email, &u.PasswordHash, &created)
	if isNoRows(err) {
		return nil, notFound("user", email)
	}
	if err != nil {
		return nil, fmt.Errorf("select user: %w", err)
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}
