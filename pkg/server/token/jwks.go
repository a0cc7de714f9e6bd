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

// RemoteKeys is a KeySource that fetches a JWKS over HTTP, caches it, and fetches it again
// when a token names a kid it does not know (a rotation), at most once per MinRefresh.
type RemoteKeys struct {
	URL        string
	Client     *http.Client
	MinRefresh time.Duration // default 10 s

	mu      sync.Mutex
	keys    []Key
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
}

// Key implements KeySource.
func (r *RemoteKeys) Key(ctx context.Context, kid string) (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.find(kid); ok {
		return k, nil
	}
	minRefresh := r.MinRefresh
	if minRefresh <= 0 {
		minRefresh = 10 * time.Second
	}
	// Fetch again at most once per minRefresh after a success, and once a second after a
	// failure (the auth service may just be starting).
	recentSuccess := !r.fetched.IsZero() && time.Since(r.fetched) < minRefresh
	recentFailure := r.tried.After(r.fetched) && time.Since(r.tried) < time.Second
	if recentSuccess || recentFailure {
		return Key{}, fmt.Errorf("unknown key id %q", kid)
	}
	if err := r.refreshLocked(ctx); err != nil {
		return Key{}, err
	}
	if k, ok := r.find(kid); ok {
		return k, nil
	}
	return Key{}, fmt.Errorf("unknown key id %q", kid)
}

// Refresh fetches the key set now. The gateway calls it at start and reports readiness by it.
func (r *RemoteKeys) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshLocked(ctx)
}

// Loaded reports whether a key set has been fetched.
func (r *RemoteKeys) Loaded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys) > 0
}

func (r *RemoteKeys) find(kid string) (Key, bool) {
	for _, k := range r.keys {
		if k.ID == kid {
			return k, true
		}
	}
	return Key{}, false
}

func (r *RemoteKeys) refreshLocked(ctx context.Context) error {
	r.tried = time.Now()
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
	r.keys = keys
	r.fetched = time.Now()
	return nil
}
