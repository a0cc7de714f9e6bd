package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// JWK is one JSON Web Key (RFC 8037 for Ed25519).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWKS returns the set of public Ed25519 keys among keys; HS256 secrets are never
// published.
func PublicJWKS(keys []Key) JWKS {
	set := JWKS{Keys: []JWK{}}
	for _, k := range keys {
		if k.Alg != EdDSA || k.Public == nil {
			continue
		}
		set.Keys = append(set.Keys, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public),
			Kid: k.ID, Alg: EdDSA, Use: "sig"})
	}
	return set
}

func parseJWKS(s JWKS) ([]Key, error) {
	var out []Key
	for _, j := range s.Keys {
		if j.Kty != "OKP" || j.Crv != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("jwks key %q: bad x", j.Kid)
		}
		out = append(out, Key{ID: j.Kid, Alg: EdDSA, Public: ed25519.PublicKey(x)})
	}
	return out, nil
}

// errKeysUnavailable is the answer for a kid not in the cached set while the set cannot be
// fetched: the token may well be valid, so it is not refused (401, "log in again") but put
// off (503), and the next fetch is tried a second later.
var errKeysUnavailable = &server.Error{Code: server.EUNAVAILABLE, RetryAfter: time.Second,
	Message: "the token's signing keys cannot be fetched from the auth service; try again shortly"}

// RemoteKeys is a KeySource that fetches a JWKS over HTTP, caches it, and fetches it again
// when a token names a kid it does not know (a rotation), at most once per MinRefresh after a
// success and once a second after a failure. An unknown kid while the set cannot be fetched
// gives EUNAVAILABLE, not an unknown key. Known keys are served without waiting for a
// fetch in progress.
type RemoteKeys struct {
	URL        string
	Client     *http.Client
	MinRefresh time.Duration    // default 10 s
	Now        func() time.Time // the clock; time.Now when nil

	refreshOnce sync.Once
	refresh     chan struct{} // a one-slot semaphore: one fetch at a time, waiters can give up

	mu      sync.RWMutex // guards the fields below; never held across the network
	keys    []Key
	fetched time.Time // last successful fetch
	failed  time.Time // end of the last failed fetch
}

// lock takes the fetch slot, or gives up when ctx ends.
func (r *RemoteKeys) lock(ctx context.Context) error {
	r.refreshOnce.Do(func() { r.refresh = make(chan struct{}, 1) })
	select {
	case r.refresh <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the key set: %w", ctx.Err())
	}
}

func (r *RemoteKeys) unlock() { <-r.refresh }

// Key implements KeySource.
func (r *RemoteKeys) Key(ctx context.Context, kid string) (Key, error) {
	if k, ok := r.find(kid); ok {
		return k, nil
	}
	if err := r.lock(ctx); err != nil {
		return Key{}, err
	}
	defer r.unlock()
	if k, ok := r.find(kid); ok { // fetched while this call waited
		return k, nil
	}
	minRefresh := r.MinRefresh
	if minRefresh <= 0 {
		minRefresh = 10 * time.Second
	}
	r.mu.RLock()
	now := r.now()
	recentSuccess := !r.fetched.IsZero() && now.Sub(r.fetched) < minRefresh
	recentFailure := r.failed.After(r.fetched) && now.Sub(r.failed) < time.Second
	r.mu.RUnlock()
	switch {
	case recentSuccess:
		return Key{}, fmt.Errorf("unknown key id %q", kid)
	case recentFailure:
		return Key{}, fmt.Errorf("key id %q: %w", kid, errKeysUnavailable)
	}
	// The fetch serves every request that waits for it: it does not end with this one's.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.fetch(fctx); err != nil {
		return Key{}, fmt.Errorf("key id %q: %w: %w", kid, errKeysUnavailable, err)
	}
	if k, ok := r.find(kid); ok {
		return k, nil
	}
	return Key{}, fmt.Errorf("unknown key id %q", kid)
}

// Refresh fetches the key set now. The gateway calls it at start and reports readiness by it.
func (r *RemoteKeys) Refresh(ctx context.Context) error {
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.unlock()
	return r.fetch(ctx)
}

// Loaded reports whether a key set has been fetched.
func (r *RemoteKeys) Loaded() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.keys) > 0
}

func (r *RemoteKeys) find(kid string) (Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.ID == kid {
			return k, true
		}
	}
	return Key{}, false
}

// fetch gets the key set and records a failure's time; callers hold the fetch slot.
func (r *RemoteKeys) fetch(ctx context.Context) error {
	err := r.get(ctx)
	if err != nil {
		r.mu.Lock()
		r.failed = r.now()
		r.mu.Unlock()
	}
	return err
}

func (r *RemoteKeys) get(ctx context.Context) error {
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return fmt.Errorf("jwks request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch jwks: %s", resp.Status)
	}
	var set JWKS
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("decode jwks: %w", err)
	}
	keys, err := parseJWKS(set)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.keys = keys
	r.fetched = r.now()
	r.mu.Unlock()
	return nil
}

func (r *RemoteKeys) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}
