package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// UserStates tells a Verifier what it must know about a token's subject at the time of a
// request, whatever the token says.
type UserStates interface {
	// UserState reports whether the user is disabled, and whether they are an administrator
	// as far as a token issued at issuedAt can tell. An unknown user is neither.
	UserState(ctx context.Context, subject string, issuedAt time.Time) (disabled, admin bool, err error)
}

// PersonalVerifier checks personal API tokens: Service against its store, Remote through the
// auth service.
type PersonalVerifier interface {
	VerifyPersonal(ctx context.Context, raw string) (*server.Claims, error)
}

// Verifier implements server.TokenVerifier for both kinds of token: a personal one
// (server.PersonalTokenPrefix) goes to Personal, anything else to JWT. Then States, when set,
// refuses the tokens of a disabled user (EFORBIDDEN), and takes the admin role away from a
// token whose user is no longer an administrator. A grant is not added: a token issued before
// it has the role only after the next login.
type Verifier struct {
	JWT      server.TokenVerifier
	Personal PersonalVerifier // nil: personal tokens are refused
	States   UserStates
}

// Verify implements server.TokenVerifier.
func (v *Verifier) Verify(ctx context.Context, raw string) (*server.Claims, error) {
	var c *server.Claims
	var err error
	if strings.HasPrefix(raw, server.PersonalTokenPrefix) {
		if v.Personal == nil {
			return nil, errBadToken
		}
		c, err = v.Personal.VerifyPersonal(ctx, raw)
	} else {
		c, err = v.JWT.Verify(ctx, raw)
	}
	if err != nil || v.States == nil {
		return c, err
	}
	disabled, admin, err := v.States.UserState(ctx, c.Subject, c.IssuedAt)
	if err != nil {
		return nil, fmt.Errorf("check the state of the token's user: %w", err)
	}
	if disabled {
		return nil, errDisabled(c.Subject)
	}
	if c.Role == server.RoleAdmin && !admin {
		c.Role = server.RoleUser
	}
	return c, nil
}

// StoreStates answers UserStates from a UserStore: standalone and the auth service.
type StoreStates struct{ Users server.UserStore }

// UserState implements UserStates.
func (s StoreStates) UserState(ctx context.Context, subject string, _ time.Time) (bool, bool, error) {
	u, err := s.Users.UserByEmail(ctx, subject)
	if server.IsCode(err, server.ENOTFOUND) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("look up user: %w", err)
	}
	return u.Disabled, u.Role == server.RoleAdmin, nil
}

// SubjectKey is how the auth service names a user to gateways in GET /v1/revocations: a
// hash of the lower-cased email, so that the list shows no addresses.
func SubjectKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return hex.EncodeToString(sum[:16])
}

// UserState is one user's state as GET /v1/revocations lists it, for users who are disabled
// or administrators.
type UserState struct {
	Subject  string `json:"sub"` // SubjectKey
	Disabled bool   `json:"disabled,omitempty"`
	Admin    bool   `json:"admin,omitempty"`
}

// States returns the list of UserState of users.
func States(users []*server.User) []UserState {
	out := make([]UserState, 0, len(users))
	for _, u := range users {
		out = append(out, UserState{Subject: SubjectKey(u.Email), Disabled: u.Disabled, Admin: u.Role == server.RoleAdmin})
	}
	return out
}
