package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/v2m/v2m/pkg/server"
)

func newKey(t *testing.T) Key {
	t.Helper()
	p, err := GenerateEd25519PEM()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(EdDSA, p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestIssueVerify(t *testing.T) {
	k := newKey(t)
	iss := &Issuer{Key: k, Issuer: "v2m", TTL: time.Hour}
	tok, exp, err := iss.Issue("a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expiry %v from now, want about 1h", d)
	}
	v := &Verifier{Alg: EdDSA, Issuer: "v2m", Keys: StaticKeys{k}}
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "a@example.com" || c.Issuer != "v2m" || !c.ExpiresAt.Equal(exp) {
		t.Fatalf("claims = %+v", c)
	}
}

func TestVerifyRejects(t *testing.T) {
	k := newKey(t)
	other := newKey(t)
	now := time.Now()
	v := &Verifier{Alg: EdDSA, Issuer: "v2m", Keys: StaticKeys{k}}
	good := &Issuer{Key: k, Issuer: "v2m"}

	forged := func() string { // signed by another key but claiming the trusted kid
		o := other
		o.ID = k.ID
		s, _, _ := (&Issuer{Key: o, Issuer: "v2m"}).Issue("a@example.com")
		return s
	}
	expired := func() string {
		s, _, _ := (&Issuer{Key: k, Issuer: "v2m", TTL: time.Minute, Now: func() time.Time { return now.Add(-2 * time.Hour) }}).Issue("a@example.com")
		return s
	}
	wrongIss := func() string { s, _, _ := (&Issuer{Key: k, Issuer: "evil"}).Issue("a@example.com"); return s }
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "a@example.com", "iss": "v2m",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		tok.Header["kid"] = k.ID
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hsConfusion := func() string { // HS256 signed with the public key bytes as the secret
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a@example.com", "iss": "v2m",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		tok.Header["kid"] = k.ID
		s, _ := tok.SignedString([]byte(k.Public))
		return s
	}
	noExp := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "a@example.com", "iss": "v2m", "iat": now.Unix()})
		tok.Header["kid"] = k.ID
		s, _ := tok.SignedString(k.Private)
		return s
	}
	signed := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tok.Header["kid"] = k.ID
		s, err := tok.SignedString(k.Private)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	noIat := signed(jwt.MapClaims{"sub": "a@example.com", "iss": "v2m", "jti": "j1", "exp": now.Add(time.Hour).Unix()})
	noJti := signed(jwt.MapClaims{"sub": "a@example.com", "iss": "v2m", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	futureIat := signed(jwt.MapClaims{"sub": "a@example.com", "iss": "v2m", "jti": "j2", "iat": now.Add(time.Hour).Unix(),
		"exp": now.Add(2 * time.Hour).Unix()})
	tampered := func() string {
		s, _, _ := good.Issue("a@example.com")
		parts := strings.Split(s, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), "a@example.com", "b@example.com", 1))
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}
	for name, tok := range map[string]string{
		"empty": "", "garbage": "not.a.jwt", "forged": forged(), "expired": expired(), "wrong issuer": wrongIss(),
		"alg none": none(), "alg confusion": hsConfusion(), "no exp": noExp(), "tampered": tampered(),
		"no iat": noIat, "no jti": noJti, "iat in the future": futureIat,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tok)
			if !server.IsCode(err, server.EUNAUTHORIZED) {
				t.Fatalf("err = %v, want unauthorized", err)
			}
		})
	}
	_, err := v.Verify(context.Background(), expired())
	if server.ErrorMessage(err) != "token expired" {
		t.Errorf("expired message = %q", server.ErrorMessage(err))
	}
}

func TestHS256(t *testing.T) {
	if _, err := NewSecretKey([]byte("short")); err == nil {
		t.Fatal("short secret accepted")
	}
	k, err := ParseKey(HS256, []byte("  0123456789abcdef0123456789abcdef\n"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := (&Issuer{Key: k, Issuer: "v2m"}).Issue("a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{Alg: HS256, Issuer: "v2m", Keys: StaticKeys{k}}).Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// An EdDSA verifier must not accept an HS256 token, whatever key it holds.
	if _, err := (&Verifier{Alg: EdDSA, Issuer: "v2m", Keys: StaticKeys{k}}).Verify(context.Background(), tok); err == nil {
		t.Fatal("EdDSA verifier accepted an HS256 token")
	}
}

func TestRotation(t *testing.T) {
	old, cur := newKey(t), newKey(t)
	oldTok, _, _ := (&Issuer{Key: old, Issuer: "v2m"}).Issue("a@example.com")
	pubOnly := Key{ID: old.ID, Alg: EdDSA, Public: old.Public}
	v := &Verifier{Alg: EdDSA, Issuer: "v2m", Keys: StaticKeys{cur, pubOnly}}
	if _, err := v.Verify(context.Background(), oldTok); err != nil {
		t.Fatalf("token of a retired key rejected during rotation: %v", err)
	}
	v.Keys = StaticKeys{cur}
	if _, err := v.Verify(context.Background(), oldTok); err == nil {
		t.Fatal("token of a removed key accepted")
	}
}

func TestRemoteKeysRefreshOnUnknownKid(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	var current atomic.Value
	current.Store([]Key{k1})
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(PublicJWKS(current.Load().([]Key)))
	}))
	defer srv.Close()
	rk := &RemoteKeys{URL: srv.URL, MinRefresh: time.Nanosecond}
	v := &Verifier{Alg: EdDSA, Issuer: "v2m", Keys: rk}
	t1, _, _ := (&Issuer{Key: k1, Issuer: "v2m"}).Issue("a@example.com")
	for range 3 {
		if _, err := v.Verify(context.Background(), t1); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("fetched %d times for one kid, want 1 (cached)", n)
	}
	current.Store([]Key{k2, {ID: k1.ID, Alg: EdDSA, Public: k1.Public}})
	t2, _, _ := (&Issuer{Key: k2, Issuer: "v2m"}).Issue("a@example.com")
	if _, err := v.Verify(context.Background(), t2); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// The set holds only public keys.
	for _, k := range rk.keys {
		if k.Private != nil {
			t.Fatal("private key in fetched set")
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "jwt.pem")
	k1, err := LoadOrCreateEd25519(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	k2, err := LoadOrCreateEd25519(p)
	if err != nil || k2.ID != k1.ID {
		t.Fatalf("second load gave another key: %v", err)
	}
	if _, err := ParseKey(EdDSA, []byte("junk")); err == nil {
		t.Fatal("junk key accepted")
	}
}

// TestRemoteKeysAuthStartsLater: a gateway that started before the auth service verifies
// tokens as soon as the key set can be fetched.
func TestRemoteKeysAuthStartsLater(t *testing.T) {
	k := newKey(t)
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(PublicJWKS([]Key{k}))
	}))
	defer srv.Close()
	clock := time.Now()
	rk := &RemoteKeys{URL: srv.URL, Now: func() time.Time { return clock }}
	if err := rk.Refresh(context.Background()); err == nil || rk.Loaded() {
		t.Fatal("refresh from a server that is down succeeded")
	}
	up.Store(true)
	clock = clock.Add(1100 * time.Millisecond) // failed attempts are retried after a second
	tok, _, _ := (&Issuer{Key: k, Issuer: "v2m"}).Issue("a@example.com")
	if _, err := (&Verifier{Alg: EdDSA, Issuer: "v2m", Keys: rk}).Verify(context.Background(), tok); err != nil {
		t.Fatalf("token refused after auth came up: %v", err)
	}
}

// revocations is a RevocationChecker over a map, with an error to return.
type revocations struct {
	revoked map[string]bool
	err     error
}

func (r *revocations) Revoked(_ context.Context, jti string) (bool, error) {
	return r.revoked[jti], r.err
}

func TestJTIAndRevocation(t *testing.T) {
	k := newKey(t)
	iss := &Issuer{Key: k, Issuer: "v2m"}
	t1, _, _ := iss.Issue("a@example.com")
	t2, _, _ := iss.Issue("a@example.com")
	rev := &revocations{revoked: map[string]bool{}}
	v := &Verifier{Alg: EdDSA, Issuer: "v2m", Keys: StaticKeys{k}, Revocations: rev}
	c1, err := v.Verify(context.Background(), t1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := v.Verify(context.Background(), t2)
	if err != nil {
		t.Fatal(err)
	}
	if !server.ValidID(c1.ID) || c1.ID == c2.ID || c1.IssuedAt.IsZero() {
		t.Fatalf("jti %q and %q: want two distinct random ids; iat %v", c1.ID, c2.ID, c1.IssuedAt)
	}
	rev.revoked[c1.ID] = true
	if _, err := v.Verify(context.Background(), t1); !server.IsCode(err, server.EUNAUTHORIZED) || server.ErrorMessage(err) != "token revoked" {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := v.Verify(context.Background(), t2); err != nil {
		t.Fatalf("the other token of the same user: %v", err)
	}
	// When revocations cannot be checked, the token is not accepted, and the code is kept.
	rev.err = server.Errorf(server.EUNAVAILABLE, "not loaded")
	if _, err := v.Verify(context.Background(), t2); !server.IsCode(err, server.EUNAVAILABLE) {
		t.Fatalf("with the checker failing: %v", err)
	}
	rev.err = errors.New("disk I/O error")
	if _, err := v.Verify(context.Background(), t2); err == nil || server.IsCode(err, server.EUNAUTHORIZED) {
		t.Fatalf("with the store failing: %v, want an internal error", err)
	}
}

// TestRemoteKeysDownIsUnavailable: while the key set cannot be fetched, a token whose kid is
// not known yet is put off (EUNAVAILABLE, with a wait), not refused as invalid; once the set
// is fetched the same token passes, and a kid the set really lacks is refused.
func TestRemoteKeysDownIsUnavailable(t *testing.T) {
	k := newKey(t)
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(PublicJWKS([]Key{k}))
	}))
	defer srv.Close()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	rk := &RemoteKeys{URL: srv.URL, Now: func() time.Time { return time.Unix(0, clock.Load()) }}
	v := &Verifier{Alg: EdDSA, Issuer: "v2m", Keys: rk}
	tok, _, _ := (&Issuer{Key: k, Issuer: "v2m"}).Issue("a@example.com")
	for i, what := range []string{"first fetch fails", "within a second of the failure"} {
		_, err := v.Verify(context.Background(), tok)
		if !server.IsCode(err, server.EUNAVAILABLE) || server.RetryAfter(err) != time.Second {
			t.Fatalf("%s: %v (code %s), want unavailable with a wait of 1s", what, err, server.ErrorCode(err))
		}
		if i == 0 && strings.Contains(server.ErrorMessage(err), srv.URL) {
			t.Fatalf("message names an internal host: %q", server.ErrorMessage(err))
		}
	}
	up.Store(true)
	clock.Add(int64(1100 * time.Millisecond))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("token refused once the key set is back: %v", err)
	}
	other, _, _ := (&Issuer{Key: newKey(t), Issuer: "v2m"}).Issue("a@example.com")
	if _, err := v.Verify(context.Background(), other); !server.IsCode(err, server.EUNAUTHORIZED) {
		t.Fatalf("unknown kid with the set fetched: %v, want unauthorized", err)
	}
}
