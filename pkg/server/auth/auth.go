// Package auth registers users and logs them in. Service does it over a UserStore with bcrypt
// and a token Issuer (the auth service, and standalone); Remote does it by calling an auth
// service over HTTP (the gateway). Both implement server.Accounts.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/v2m/v2m/pkg/server"
)

// Password length limits in bytes. bcrypt reads at most 72 bytes, so a longer password would
// be silently truncated: it is refused instead.
const (
	MinPassword = 8
	MaxPassword = 72
)

// NormalizeEmail checks an email address and returns it lower-cased. It gives EINVALID for
// anything but a bare address.
func NormalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || len(email) > 254 || !strings.Contains(email, "@") {
		return "", server.Errorf(server.EINVALID, "invalid email address %q", email)
	}
	return strings.ToLower(email), nil
}

// CheckPassword gives EINVALID for a password outside MinPassword..MaxPassword bytes.
func CheckPassword(password string) error {
	if n := len(password); n < MinPassword || n > MaxPassword {
		return server.Errorf(server.EINVALID, "password must be %d to %d bytes long, got %d", MinPassword, MaxPassword, n)
	}
	return nil
}

// Issuer signs a token for a subject.
type Issuer interface {
	Issue(subject string) (string, time.Time, error)
}

// Service implements server.Accounts over a UserStore.
type Service struct {
	Users  server.UserStore
	Tokens Issuer
	Cost   int // bcrypt cost; bcrypt.DefaultCost when zero

	dummyOnce sync.Once
	dummy     []byte // a hash to compare against when the user does not exist
}

// Register implements server.Accounts.
func (s *Service) Register(ctx context.Context, email, password string) (*server.User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := CheckPassword(password); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost())
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	u, err := s.Users.CreateUser(ctx, email, hash)
	if err != nil {
		if server.IsCode(err, server.ECONFLICT) {
			return nil, server.Errorf(server.ECONFLICT, "a user with email %s already exists", email)
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// Login implements server.Accounts. An unknown email and a wrong password look the same to the
// caller, in the answer and in the time it takes.
func (s *Service) Login(ctx context.Context, email, password string) (string, time.Time, error) {
	bad := server.Errorf(server.EUNAUTHORIZED, "wrong email or password")
	norm, err := NormalizeEmail(email)
	if err != nil || len(password) > MaxPassword {
		return "", time.Time{}, bad
	}
	u, err := s.Users.UserByEmail(ctx, norm)
	if server.IsCode(err, server.ENOTFOUND) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return "", time.Time{}, bad
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("look up user: %w", err)
	}
	if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)); err != nil {
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return "", time.Time{}, bad
		}
		return "", time.Time{}, fmt.Errorf("compare password: %w", err)
	}
	return s.Tokens.Issue(u.Email)
}

func (s *Service) cost() int {
	if s.Cost == 0 {
		return bcrypt.DefaultCost
	}
	return s.Cost
}

func (s *Service) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a real password"), s.cost())
	})
	return s.dummy
}
