// Package auth registers users and logs them in. Service does it over a UserStore with bcrypt
// and a token Issuer (the auth service, and standalone); Remote does it by calling an auth
// service over HTTP (the gateway). Both implement server.Accounts.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"runtime"
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

// Issuer signs a token for a subject, with a role.
type Issuer interface {
	IssueRole(subject, role string) (string, time.Time, error)
}

// DefaultHashWait is how long a login or registration waits for a free bcrypt slot when
// Service.HashWait is zero.
const DefaultHashWait = 2 * time.Second

// DefaultHashConcurrency is the default number of bcrypt computations at once: half the CPUs,
// at least one, so that a flood of logins leaves the other half to everything else.
func DefaultHashConcurrency() int { return max(1, runtime.NumCPU()/2) }

// Service implements server.Accounts over a UserStore, and server.TokenRevoker over a
// RevocationStore.
type Service struct {
	Users  server.UserStore
	Tokens Issuer
	Cost   int // bcrypt cost; DefaultCost when zero
	// HashConcurrency bounds the bcrypt hashes and comparisons running at once
	// (DefaultHashConcurrency when zero). A request waits at most HashWait (DefaultHashWait
	// when zero) or until its context ends for a slot; then it gets EUNAVAILABLE with a
	// RetryAfter, instead of queueing without end.
	HashConcurrency int
	HashWait        time.Duration
	// Revocations records the tokens revoked by RevokeToken.
	Revocations server.RevocationStore
	// Personal keeps personal API tokens; without it they are refused.
	Personal server.PersonalTokenStore
	Issuer   string // the iss of personal tokens' claims
	Logger   *slog.Logger

	dummyOnce sync.Once
	dummy     []byte // a hash to compare against when the user does not exist

	slotsOnce sync.Once
	slots     chan struct{}
}

// errBusy is the answer when no bcrypt slot frees up in time.
var errBusy = &server.Error{Code: server.EUNAVAILABLE, Message: "the server is busy; retry in a moment", RetryAfter: time.Second}

// hashing runs f, a bcrypt computation, in one of the bounded slots.
func (s *Service) hashing(ctx context.Context, f func()) error {
	s.slotsOnce.Do(func() {
		n := s.HashConcurrency
		if n <= 0 {
			n = DefaultHashConcurrency()
		}
		s.slots = make(chan struct{}, n)
	})
	wait := s.HashWait
	if wait <= 0 {
		wait = DefaultHashWait
	}
	select {
	case s.slots <- struct{}{}:
	default:
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case s.slots <- struct{}{}:
		case <-t.C:
			return errBusy
		case <-ctx.Done():
			return fmt.Errorf("wait for a password hashing slot: %w", ctx.Err())
		}
	}
	defer func() { <-s.slots }()
	f()
	return nil
}

// RevokeToken implements server.TokenRevoker: the token's jti is recorded until it expires.
func (s *Service) RevokeToken(ctx context.Context, _ string, c *server.Claims) error {
	if c.Personal { // logging out with a personal token revokes it
		return s.RevokePersonalToken(ctx, server.Caller{Claims: c}, c.ID)
	}
	if s.Revocations == nil {
		return errors.New("no revocation store configured")
	}
	if err := s.Revocations.Revoke(ctx, c.ID, c.ExpiresAt); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
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
	var hash []byte
	if werr := s.hashing(ctx, func() { hash, err = bcrypt.GenerateFromPassword([]byte(password), s.cost()) }); werr != nil {
		return nil, werr
	}
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
		if werr := s.hashing(ctx, func() { _ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password)) }); werr != nil {
			return "", time.Time{}, werr
		}
		return "", time.Time{}, bad
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("look up user: %w", err)
	}
	var cmpErr error
	if werr := s.hashing(ctx, func() { cmpErr = bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) }); werr != nil {
		return "", time.Time{}, werr
	}
	if err := cmpErr; err != nil {
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return "", time.Time{}, bad
		}
		return "", time.Time{}, fmt.Errorf("compare password: %w", err)
	}
	if u.Disabled {
		return "", time.Time{}, errDisabled(u.Email)
	}
	return s.Tokens.IssueRole(u.Email, u.Role)
}

// DefaultCost is the bcrypt cost of password hashes when Service.Cost is zero: about a
// quarter of a second per hash on one core of a current server.
const DefaultCost = 12

func (s *Service) cost() int {
	if s.Cost == 0 {
		return DefaultCost
	}
	return s.Cost
}

func (s *Service) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a real password"), s.cost())
	})
	return s.dummy
}
