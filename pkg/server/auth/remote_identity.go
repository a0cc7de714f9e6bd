package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// DefaultPersonalCache is how long a gateway caches what auth said about a personal token.
const DefaultPersonalCache = 5 * time.Second

// maxPersonalCache bounds the cached answers; when full, the expired ones are dropped, and if
// none is, all of them.
const maxPersonalCache = 10000

func withBearer(raw string) func(*http.Request) {
	return func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+raw) }
}

type cached struct {
	claims *server.Claims
	err    error
	until  time.Time
}

// personalCache holds auth's answers about personal tokens, by the token's hash.
type personalCache struct {
	mu      sync.Mutex
	entries map[string]cached
}

func (p *personalCache) get(key string, now time.Time) (cached, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[key]
	if !ok || !now.Before(e.until) {
		return cached{}, false
	}
	return e, true
}

func (p *personalCache) put(key string, e cached, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries == nil {
		p.entries = map[string]cached{}
	}
	if len(p.entries) >= maxPersonalCache {
		for k, old := range p.entries {
			if !now.Before(old.until) {
				delete(p.entries, k)
			}
		}
		if len(p.entries) >= maxPersonalCache {
			clear(p.entries)
		}
	}
	p.entries[key] = e
}

// drop forgets the answers about token id.
func (p *personalCache) drop(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.entries {
		if e.claims != nil && e.claims.ID == id {
			delete(p.entries, k)
		}
	}
}

// VerifyPersonal implements PersonalVerifier through the auth service's GET
// /v1/tokens/introspect, and caches its answers, refusals too, for PersonalTTL. An auth
// service that cannot be reached gives EUNAVAILABLE, which is not cached.
func (r *Remote) VerifyPersonal(ctx context.Context, raw string) (*server.Claims, error) {
	key, now := HashPersonalToken(raw), time.Now()
	if e, ok := r.cache.get(key, now); ok {
		if e.err != nil {
			return nil, e.err
		}
		c := *e.claims
		return &c, nil
	}
	var c server.Claims
	err := r.do(ctx, http.MethodGet, "/v1/tokens/introspect", nil, withBearer(raw), &c)
	if err != nil && !server.IsCode(err, server.EUNAUTHORIZED) && !server.IsCode(err, server.EFORBIDDEN) {
		return nil, err
	}
	ttl := r.PersonalTTL
	if ttl <= 0 {
		ttl = DefaultPersonalCache
	}
	if err == nil && !c.Personal {
		err = errBadToken // auth took it for something else: not a personal token
	}
	if err != nil {
		r.cache.put(key, cached{err: err, until: now.Add(ttl)}, now)
		return nil, err
	}
	r.cache.put(key, cached{claims: &c, until: now.Add(ttl)}, now)
	out := c
	return &out, nil
}

// CreatePersonalToken implements server.PersonalTokens: POST /v1/tokens/personal on auth.
func (r *Remote) CreatePersonalToken(ctx context.Context, c server.Caller, req server.NewPersonalToken) (string, *server.PersonalToken, error) {
	body, _ := json.Marshal(wire.NewPersonalToken{Name: req.Name, TTL: strconv.FormatInt(int64(req.TTL/time.Second), 10) + "s", ReadOnly: req.ReadOnly})
	var out wire.CreatedPersonalToken
	if err := r.do(ctx, http.MethodPost, "/v1/tokens/personal", body, withBearer(c.Token), &out); err != nil {
		return "", nil, err
	}
	return out.Token, fromWireToken(c.Claims.Subject, out.PersonalToken), nil
}

// ListPersonalTokens implements server.PersonalTokens.
func (r *Remote) ListPersonalTokens(ctx context.Context, c server.Caller) ([]*server.PersonalToken, error) {
	var out wire.PersonalTokenList
	if err := r.do(ctx, http.MethodGet, "/v1/tokens/personal", nil, withBearer(c.Token), &out); err != nil {
		return nil, err
	}
	list := make([]*server.PersonalToken, 0, len(out.Tokens))
	for _, t := range out.Tokens {
		list = append(list, fromWireToken(c.Claims.Subject, t))
	}
	return list, nil
}

// RevokePersonalToken implements server.PersonalTokens; this gateway forgets the token at
// once, the others within their PersonalTTL.
func (r *Remote) RevokePersonalToken(ctx context.Context, c server.Caller, id string) error {
	if !server.ValidID(id) {
		return server.Errorf(server.ENOTFOUND, "personal token %q not found", id)
	}
	if err := r.do(ctx, http.MethodDelete, "/v1/tokens/personal/"+id, nil, withBearer(c.Token), nil); err != nil {
		return err
	}
	r.cache.drop(id)
	return nil
}

func fromWireToken(owner string, t wire.PersonalToken) *server.PersonalToken {
	p := &server.PersonalToken{ID: t.ID, Owner: owner, Name: t.Name, ReadOnly: t.ReadOnly, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
	if t.LastUsedAt != nil {
		p.LastUsedAt = *t.LastUsedAt
	}
	return p
}

// ListUsers implements server.UserAdmin: GET /v1/admin/users on auth, which checks that the
// caller is an administrator.
func (r *Remote) ListUsers(ctx context.Context, c server.Caller, after int64, limit int) ([]*server.User, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}}
	var out wire.AdminUserList
	if err := r.do(ctx, http.MethodGet, "/v1/admin/users?"+q.Encode(), nil, withBearer(c.Token), &out); err != nil {
		return nil, err
	}
	list := make([]*server.User, 0, len(out.Users))
	for _, u := range out.Users {
		list = append(list, &server.User{ID: u.ID, Email: u.Email, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt})
	}
	return list, nil
}

// SetUserDisabled implements server.UserAdmin: POST /v1/admin/users/{email}/disable or
// enable on auth. This gateway applies it at once, the others at their next refresh.
func (r *Remote) SetUserDisabled(ctx context.Context, c server.Caller, email string, disabled bool) (*server.User, error) {
	verb := "enable"
	if disabled {
		verb = "disable"
	}
	var u wire.AdminUser
	if err := r.do(ctx, http.MethodPost, "/v1/admin/users/"+url.PathEscape(email)+"/"+verb, nil, withBearer(c.Token), &u); err != nil {
		return nil, err
	}
	if r.Revocations != nil {
		r.Revocations.SetDisabled(u.Email, u.Disabled)
	}
	return &server.User{ID: u.ID, Email: u.Email, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt}, nil
}
