package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/v2m/v2m/pkg/server"
)

// Limits of personal API tokens.
const (
	DefaultPersonalTTL = 30 * 24 * time.Hour
	MinPersonalTTL     = time.Minute
	MaxPersonalTTL     = 366 * 24 * time.Hour
	MaxTokenName       = 64 // characters
	MaxPersonalTokens  = 50 // per user
	personalTokenBytes = 32
	// touchEvery bounds how often a token's last use is written: at most once a minute.
	touchEvery = time.Minute
)

// errDisabled is the answer to a disabled user's login or token.
func errDisabled(email string) error {
	return server.Errorf(server.EFORBIDDEN, "the account %s is disabled; ask an administrator to enable it", email)
}

var (
	errBadToken       = server.Errorf(server.EUNAUTHORIZED, "invalid token")
	errPersonalMints  = server.Errorf(server.EFORBIDDEN, "a personal token cannot create personal tokens; log in with your password to create one")
	errNotAdminRoute  = server.Errorf(server.ENOTFOUND, "no such route")
	errNoPersonalRepo = server.Errorf(server.ENOTFOUND, "personal tokens are not enabled on this server")
)

// HashPersonalToken returns the stored form of a personal token: lowercase hex SHA-256. A
// token carries 256 random bits, so a fast hash is enough.
func HashPersonalToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// CheckTokenName trims a personal token's name and gives EINVALID for an empty one, one
// longer than MaxTokenName characters, or one with control characters.
func CheckTokenName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return "", server.Errorf(server.EINVALID, `"name" is required: say what the token is for, such as "ci"`)
	case n > MaxTokenName || !utf8.ValidString(name):
		return "", server.Errorf(server.EINVALID, `"name" must be at most %d characters, got %d`, MaxTokenName, n)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", server.Errorf(server.EINVALID, `"name" must not contain control characters`)
	}
	return name, nil
}

// CheckPersonalTTL returns the lifetime of a new token: DefaultPersonalTTL for 0, EINVALID
// outside MinPersonalTTL..MaxPersonalTTL.
func CheckPersonalTTL(ttl time.Duration) (time.Duration, error) {
	if ttl == 0 {
		return DefaultPersonalTTL, nil
	}
	if ttl < MinPersonalTTL || ttl > MaxPersonalTTL {
		return 0, server.Errorf(server.EINVALID, `"ttl" must be from %v to %d days, got %v`, MinPersonalTTL, MaxPersonalTTL/(24*time.Hour), ttl)
	}
	return ttl, nil
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// CreatePersonalToken implements server.PersonalTokens.
func (s *Service) CreatePersonalToken(ctx context.Context, c server.Caller, req server.NewPersonalToken) (string, *server.PersonalToken, error) {
	if s.Personal == nil {
		return "", nil, errNoPersonalRepo
	}
	if c.Claims.Personal {
		return "", nil, errPersonalMints
	}
	name, err := CheckTokenName(req.Name)
	if err != nil {
		return "", nil, err
	}
	ttl, err := CheckPersonalTTL(req.TTL)
	if err != nil {
		return "", nil, err
	}
	if err := s.enabled(ctx, c.Claims.Subject); err != nil {
		return "", nil, err
	}
	have, err := s.Personal.PersonalTokens(ctx, c.Claims.Subject)
	if err != nil {
		return "", nil, fmt.Errorf("count personal tokens: %w", err)
	}
	if len(have) >= MaxPersonalTokens {
		return "", nil, server.Errorf(server.ECONFLICT, "you have %d personal tokens, the most allowed; revoke one first", len(have))
	}
	var b [personalTokenBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	raw := server.PersonalTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	now := time.Now().UTC().Truncate(time.Millisecond)
	t := &server.PersonalToken{ID: server.NewID(), Owner: c.Claims.Subject, Name: name, Hash: HashPersonalToken(raw),
		ReadOnly: req.ReadOnly, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.Personal.CreatePersonalToken(ctx, t); err != nil {
		return "", nil, fmt.Errorf("store personal token: %w", err)
	}
	return raw, t, nil
}

// enabled gives EFORBIDDEN for a disabled user; an unknown one passes (the token says who).
func (s *Service) enabled(ctx context.Context, email string) error {
	u, err := s.Users.UserByEmail(ctx, email)
	if server.IsCode(err, server.ENOTFOUND) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up user: %w", err)
	}
	if u.Disabled {
		return errDisabled(u.Email)
	}
	return nil
}

// ListPersonalTokens implements server.PersonalTokens.
func (s *Service) ListPersonalTokens(ctx context.Context, c server.Caller) ([]*server.PersonalToken, error) {
	if s.Personal == nil {
		return nil, errNoPersonalRepo
	}
	list, err := s.Personal.PersonalTokens(ctx, c.Claims.Subject)
	if err != nil {
		return nil, fmt.Errorf("list personal tokens: %w", err)
	}
	return list, nil
}

// RevokePersonalToken implements server.PersonalTokens.
func (s *Service) RevokePersonalToken(ctx context.Context, c server.Caller, id string) error {
	if s.Personal == nil {
		return errNoPersonalRepo
	}
	if !server.ValidID(id) {
		return server.Errorf(server.ENOTFOUND, "personal token %q not found", id)
	}
	return s.Personal.DeletePersonalToken(ctx, c.Claims.Subject, id)
}

// VerifyPersonal checks a personal token against the store: an unknown or expired one gives
// EUNAUTHORIZED, one of a disabled user EFORBIDDEN. The claims carry the owner's current role.
func (s *Service) VerifyPersonal(ctx context.Context, raw string) (*server.Claims, error) {
	if s.Personal == nil || !strings.HasPrefix(raw, server.PersonalTokenPrefix) || len(raw) > 200 {
		return nil, errBadToken
	}
	t, err := s.Personal.PersonalTokenByHash(ctx, HashPersonalToken(raw))
	if server.IsCode(err, server.ENOTFOUND) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, fmt.Errorf("look up personal token: %w", err)
	}
	now := time.Now()
	if !now.Before(t.ExpiresAt) {
		return nil, server.Errorf(server.EUNAUTHORIZED, "token expired")
	}
	u, err := s.Users.UserByEmail(ctx, t.Owner)
	if server.IsCode(err, server.ENOTFOUND) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	if u.Disabled {
		return nil, errDisabled(u.Email)
	}
	if now.Sub(t.LastUsedAt) >= touchEvery {
		if err := s.Personal.TouchPersonalToken(ctx, t.ID, now); err != nil {
			s.log().Warn("cannot record the use of a personal token", "token_id", t.ID, "err", err)
		}
	}
	return &server.Claims{ID: t.ID, Subject: u.Email, Issuer: s.Issuer, IssuedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		Role: u.Role, ReadOnly: t.ReadOnly, Personal: true}, nil
}

// ListUsers implements server.UserAdmin.
func (s *Service) ListUsers(ctx context.Context, c server.Caller, after int64, limit int) ([]*server.User, error) {
	if !c.Claims.Admin() {
		return nil, errNotAdminRoute
	}
	list, err := s.Users.ListUsers(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return list, nil
}

// SetUserDisabled implements server.UserAdmin. An administrator cannot disable themselves.
func (s *Service) SetUserDisabled(ctx context.Context, c server.Caller, email string, disabled bool) (*server.User, error) {
	if !c.Claims.Admin() {
		return nil, errNotAdminRoute
	}
	norm, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if disabled && strings.EqualFold(norm, c.Claims.Subject) {
		return nil, server.Errorf(server.EINVALID, "you cannot disable your own account")
	}
	u, err := s.Users.SetDisabled(ctx, norm, disabled)
	if server.IsCode(err, server.ENOTFOUND) {
		return nil, server.Errorf(server.ENOTFOUND, "no user with email %s", norm)
	}
	if err != nil {
		return nil, fmt.Errorf("set user disabled: %w", err)
	}
	return u, nil
}
