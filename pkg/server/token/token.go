// Package token issues and verifies v2m's JWTs (golang-jwt/jwt/v5).
//
// The default algorithm is EdDSA (Ed25519): the auth service signs with a private key and
// publishes the public keys as a JWKS, and the gateway verifies locally against that set, with
// no network hop per request. HS256 with a shared secret of at least 32 bytes is the
// alternative. Verification always pins the expected algorithm, so "alg":"none" and
// algorithm-confusion tokens are rejected, and requires exp, iat, jti and the issuer.
//
// Every token carries a random jti (server.NewID), so that it can be revoked: a Verifier with
// Revocations refuses the tokens listed there.
package token

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/v2m/v2m/pkg/server"
)

// Algorithms.
const (
	EdDSA = "EdDSA"
	HS256 = "HS256"
)

// MinSecretLen is the shortest HS256 secret accepted.
const MinSecretLen = 32

// Key is one signing or verification key.
type Key struct {
	ID      string             // kid
	Alg     string             // EdDSA or HS256
	Private ed25519.PrivateKey // EdDSA signing key (nil when verifying only)
	Public  ed25519.PublicKey  // EdDSA verification key
	Secret  []byte             // HS256 key
}

// NewEd25519Key returns a Key for a private key, with the kid derived from its public key.
func NewEd25519Key(priv ed25519.PrivateKey) Key {
	pub := priv.Public().(ed25519.PublicKey)
	return Key{ID: KeyID(pub), Alg: EdDSA, Private: priv, Public: pub}
}

// NewSecretKey returns an HS256 Key; a secret shorter than MinSecretLen is refused.
func NewSecretKey(secret []byte) (Key, error) {
	if len(secret) < MinSecretLen {
		return Key{}, fmt.Errorf("HS256 secret is %d bytes; it must be at least %d", len(secret), MinSecretLen)
	}
	sum := sha256.Sum256(secret)
	return Key{ID: base64.RawURLEncoding.EncodeToString(sum[:8]), Alg: HS256, Secret: secret}, nil
}

// KeyID derives a stable kid from an Ed25519 public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func (k Key) signingKey() any {
	if k.Alg == HS256 {
		return k.Secret
	}
	return k.Private
}

func (k Key) verifyKey() any {
	if k.Alg == HS256 {
		return k.Secret
	}
	return k.Public
}

func method(alg string) jwt.SigningMethod {
	if alg == HS256 {
		return jwt.SigningMethodHS256
	}
	return jwt.SigningMethodEdDSA
}

// DefaultTTL is the lifetime of a token when Issuer.TTL is zero.
const DefaultTTL = 24 * time.Hour

// Issuer signs tokens.
type Issuer struct {
	Key Key
	// Signer, when set, gives the key to sign with at each Issue instead of Key (a FileKeys
	// that follows a key rotation).
	Signer interface{ Signing() Key }
	Issuer string        // iss claim
	TTL    time.Duration // lifetime; DefaultTTL when zero
	Now    func() time.Time
}

// claims are the JWT's claims: the registered ones plus the user's role.
type claims struct {
	jwt.RegisteredClaims
	Role string `json:"role,omitempty"`
}

// Issue returns a signed token for subject, with no role (a plain user), and its expiry.
func (i *Issuer) Issue(subject string) (string, time.Time, error) {
	return i.IssueRole(subject, "")
}

// IssueRole returns a signed token for subject carrying role (omitted when "" or
// server.RoleUser), and its expiry.
func (i *Issuer) IssueRole(subject, role string) (string, time.Time, error) {
	if role == server.RoleUser {
		role = ""
	}
	now := time.Now
	if i.Now != nil {
		now = i.Now
	}
	ttl := i.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	iat := now().UTC().Truncate(time.Second)
	exp := iat.Add(ttl)
	key := i.Key
	if i.Signer != nil {
		key = i.Signer.Signing()
	}
	t := jwt.NewWithClaims(method(key.Alg), claims{RegisteredClaims: jwt.RegisteredClaims{
		ID:        server.NewID(),
		Subject:   subject,
		Issuer:    i.Issuer,
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(exp),
	}, Role: role})
	t.Header["kid"] = key.ID
	s, err := t.SignedString(key.signingKey())
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// KeySource finds verification keys by kid. A key that it does not know gives an error.
type KeySource interface {
	Key(ctx context.Context, kid string) (Key, error)
}

// StaticKeys is a fixed KeySource: the current key plus older ones kept during a rotation.
type StaticKeys []Key

// Key implements KeySource.
func (s StaticKeys) Key(_ context.Context, kid string) (Key, error) {
	for _, k := range s {
		if k.ID == kid {
			return k, nil
		}
	}
	if kid == "" && len(s) == 1 { // tokens from before kids were issued
		return s[0], nil
	}
	return Key{}, fmt.Errorf("unknown key id %q", kid)
}

// Verifier checks tokens against a KeySource. It implements server.TokenVerifier.
type Verifier struct {
	Alg    string // the only algorithm accepted
	Issuer string // required iss
	Keys   KeySource
	Leeway time.Duration
	Now    func() time.Time
	// Revocations, when set, is asked about every token that is otherwise valid: a revoked
	// one gives EUNAUTHORIZED, and an error from it is returned (wrapped, keeping its code):
	// a token is not accepted while its state is unknown.
	Revocations server.RevocationChecker
}

// Verify implements server.TokenVerifier.
func (v *Verifier) Verify(ctx context.Context, raw string) (*server.Claims, error) {
	if raw == "" {
		return nil, server.Errorf(server.EUNAUTHORIZED, "missing token")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{v.Alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(v.Issuer),
		jwt.WithLeeway(v.Leeway),
	}
	if v.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(v.Now))
	}
	var cl claims
	rc := &cl.RegisteredClaims
	_, err := jwt.ParseWithClaims(raw, &cl, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := v.Keys.Key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k.Alg != v.Alg {
			return nil, fmt.Errorf("key %q is for %s", kid, k.Alg)
		}
		return k.verifyKey(), nil
	}, opts...)
	if server.IsCode(err, server.EUNAVAILABLE) { // the keys cannot be had: the token is not judged
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if err != nil {
		msg := "invalid token"
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "token expired"
		}
		return nil, &server.Error{Code: server.EUNAUTHORIZED, Message: msg}
	}
	switch {
	case rc.Subject == "":
		return nil, server.Errorf(server.EUNAUTHORIZED, "token has no subject")
	case rc.IssuedAt == nil: // WithIssuedAt checks iat only when it is present
		return nil, server.Errorf(server.EUNAUTHORIZED, "token has no issue time")
	case rc.ID == "" || len(rc.ID) > 64:
		return nil, server.Errorf(server.EUNAUTHORIZED, "token has no id; log in again")
	}
	if v.Revocations != nil {
		revoked, err := v.Revocations.Revoked(ctx, rc.ID)
		if err != nil {
			return nil, fmt.Errorf("check revocation of token %s: %w", rc.ID, err)
		}
		if revoked {
			return nil, server.Errorf(server.EUNAUTHORIZED, "token revoked")
		}
	}
	role := server.RoleUser
	if cl.Role == server.RoleAdmin {
		role = server.RoleAdmin
	}
	return &server.Claims{ID: rc.ID, Subject: rc.Subject, Issuer: rc.Issuer,
		IssuedAt: rc.IssuedAt.UTC(), ExpiresAt: rc.ExpiresAt.UTC(), Role: role}, nil
}
