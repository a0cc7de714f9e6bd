package server

import (
	"context"
	"time"
)

// PersonalTokenPrefix starts every personal API token, so that people and secret scanners
// recognise one, and verifiers tell it from a JWT without parsing it.
const PersonalTokenPrefix = "v2m_pat_"

// PersonalToken is a personal API token as stored: never the token itself, only its hash.
type PersonalToken struct {
	ID         string // NewID's shape
	Owner      string // the owner's email
	Name       string
	Hash       string // lowercase hex SHA-256 of the whole token
	ReadOnly   bool
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time // zero when never used
}

// PersonalTokenStore keeps personal API tokens. Owners are compared case-insensitively; times
// are kept in UTC to the millisecond.
type PersonalTokenStore interface {
	// CreatePersonalToken stores t as given. An existing ID or Hash gives ECONFLICT.
	CreatePersonalToken(ctx context.Context, t *PersonalToken) error
	// PersonalTokenByHash returns the token with this hash, expired or not, or ENOTFOUND.
	PersonalTokenByHash(ctx context.Context, hash string) (*PersonalToken, error)
	// PersonalTokens returns owner's tokens, expired ones too, newest CreatedAt first.
	PersonalTokens(ctx context.Context, owner string) ([]*PersonalToken, error)
	// DeletePersonalToken removes owner's token id; ENOTFOUND when owner has no such token
	// (someone else's token is left alone).
	DeletePersonalToken(ctx context.Context, owner, id string) error
	// TouchPersonalToken sets the token's LastUsedAt to at; a missing token is not an error.
	TouchPersonalToken(ctx context.Context, id string, at time.Time) error
}

// Caller is who makes a request: the raw bearer token and what verifying it gave. The gateway
// forwards the token to the auth service, which checks it again.
type Caller struct {
	Token  string
	Claims *Claims
}

// NewPersonalToken is what a caller asks for when creating a personal token.
type NewPersonalToken struct {
	Name     string
	TTL      time.Duration // 0: the default lifetime
	ReadOnly bool
}

// PersonalTokens creates, lists and revokes the caller's personal tokens. The auth service
// (and standalone) implement it over a PersonalTokenStore; the gateway by calling auth.
type PersonalTokens interface {
	// CreatePersonalToken returns the new token, shown once, and its record. A caller
	// authenticated by a personal token gets EFORBIDDEN.
	CreatePersonalToken(ctx context.Context, c Caller, req NewPersonalToken) (string, *PersonalToken, error)
	ListPersonalTokens(ctx context.Context, c Caller) ([]*PersonalToken, error)
	// RevokePersonalToken deletes the caller's token id, or ENOTFOUND.
	RevokePersonalToken(ctx context.Context, c Caller, id string) error
}

// UserAdmin is what administrators do to users over the API. Every method gives ENOTFOUND
// to a caller who is not an administrator.
type UserAdmin interface {
	ListUsers(ctx context.Context, c Caller, after int64, limit int) ([]*User, error)
	SetUserDisabled(ctx context.Context, c Caller, email string, disabled bool) (*User, error)
}
