package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/throttle"
	"github.com/v2m/v2m/pkg/server/token"
)

// stack is an auth service (api over auth.Service on SQLite) and gateways in front of it
// (api over auth.Remote), as the distributed services run, on loopback.
type stack struct {
	t    *testing.T
	key  token.Key
	auth *httptest.Server
	db   *sqlite.DB
}

func newStack(t *testing.T, authLimit *throttle.Policy) *stack {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pem, _ := token.GenerateEd25519PEM()
	k, _ := token.ParseKey(token.EdDSA, pem)
	svc := &auth.Service{Users: db.Users(), Tokens: &token.Issuer{Key: k, Issuer: "v2m"}, Cost: bcrypt.MinCost,
		Revocations: db.Revocations(), Personal: db.PersonalTokens(), Issuer: "v2m"}
	h := api.New(api.Config{
		Accounts: svc, Revoker: svc, Revocations: db.Revocations(),
		Users: db.Users(), PersonalTokens: svc, UserAdmin: svc,
		Verifier: &auth.Verifier{
			JWT:      &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{k}, Revocations: db.Revocations()},
			Personal: svc, States: auth.StoreStates{Users: db.Users()},
		},
		LoginLimit: authLimit, RegisterLimit: authLimit,
		// The gateways reach auth from loopback: auth trusts their X-Forwarded-For.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	s := &stack{t: t, key: k, auth: httptest.NewServer(h), db: db}
	t.Cleanup(s.auth.Close)
	return s
}

// gateway starts a gateway with its own revocation set, refreshed every interval.
func (s *stack) gateway(interval time.Duration) (*httptest.Server, *auth.RemoteRevocations) {
	s.t.Helper()
	revs := &auth.RemoteRevocations{URL: s.auth.URL + "/v1/revocations", Interval: interval}
	remote := &auth.Remote{BaseURL: s.auth.URL, Revocations: revs, PersonalTTL: interval}
	h := api.New(api.Config{
		Accounts: remote, Revoker: remote, PersonalTokens: remote, UserAdmin: remote,
		Verifier: &auth.Verifier{
			JWT:      &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{s.key}, Revocations: revs},
			Personal: remote, States: revs,
		},
		// Its clients reach it from loopback too, as through an ingress controller.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { revs.Run(ctx); close(done) }()
	gw := httptest.NewServer(h)
	s.t.Cleanup(func() { gw.Close(); cancel(); <-done })
	return gw, revs
}

type answer struct {
	code int
	hdr  http.Header
	body string
}

func call(t *testing.T, method, url string, hdr ...string) answer {
	t.Helper()
	return send(t, method, url, "", hdr...)
}

func basic(email, pw string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+pw))}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func (s *stack) register(gw, email string) {
	s.t.Helper()
	req, _ := http.NewRequest("POST", gw+"/v1/users", stringsReader(fmt.Sprintf(`{"email":%q,"password":"password123"}`, email)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		s.t.Fatalf("register %s: %d", email, resp.StatusCode)
	}
}

func (s *stack) login(gw, email string) string {
	s.t.Helper()
	a := call(s.t, "POST", gw+"/v1/tokens", basic(email, "password123")...)
	var tok struct{ Token string }
	if a.code != 200 || json.Unmarshal([]byte(a.body), &tok) != nil || tok.Token == "" {
		s.t.Fatalf("login %s: %d %s", email, a.code, a.body)
	}
	return tok.Token
}

// TestGatewayForwardsClientIP: the auth service behind a gateway throttles by the client's IP,
// which the gateway sends as X-Forwarded-For, and its 429 reaches the client with Retry-After.
func TestGatewayForwardsClientIP(t *testing.T) {
	perIP := throttle.NewPolicy(nil, throttle.NewStore(throttle.Limit{Rate: rate.Every(time.Hour), Burst: 3}, 0))
	s := newStack(t, perIP)
	gw, _ := s.gateway(time.Hour)
	client := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	for i := range 3 {
		a := call(t, "POST", gw.URL+"/v1/tokens", append(basic(fmt.Sprintf("u%d@example.com", i), "wrong-password"), client("203.0.113.1")...)...)
		if a.code != 401 || a.hdr.Get("WWW-Authenticate") != `Basic realm="v2m"` {
			t.Fatalf("attempt %d: %d %q %s", i, a.code, a.hdr.Get("WWW-Authenticate"), a.body)
		}
	}
	a := call(t, "POST", gw.URL+"/v1/tokens", append(basic("u9@example.com", "wrong-password"), client("203.0.113.1")...)...)
	if a.code != 429 || a.hdr.Get("Retry-After") == "" || !contains(a.body, `"rate_limited"`) {
		t.Fatalf("fourth attempt from one client through the gateway: %d Retry-After %q %s", a.code, a.hdr.Get("Retry-After"), a.body)
	}
	// Another client behind the same gateway has its own bucket at auth: auth saw the client's
	// IP, not the gateway's.
	if a := call(t, "POST", gw.URL+"/v1/tokens", append(basic("u9@example.com", "wrong-password"), client("203.0.113.2")...)...); a.code != 401 {
		t.Fatalf("another client: %d %s", a.code, a.body)
	}
}

// TestRevocationReachesGateways: a token revoked through one gateway is refused by it at once,
// and by another gateway after its next refresh; one revoked at auth directly, too.
func TestRevocationReachesGateways(t *testing.T) {
	s := newStack(t, nil)
	gw1, _ := s.gateway(time.Hour) // never refreshes during the test: only its own revocations
	gw2, revs2 := s.gateway(50 * time.Millisecond)
	s.register(gw1.URL, "ann@example.com")
	tok := s.login(gw1.URL, "ann@example.com")
	keep := s.login(gw1.URL, "ann@example.com")
	for _, gw := range []string{gw1.URL, gw2.URL} {
		if a := call(t, "GET", gw+"/v1/me", bearer(tok)...); a.code != 200 {
			t.Fatalf("me before logout: %d %s", a.code, a.body)
		}
	}
	if a := call(t, "DELETE", gw1.URL+"/v1/tokens/current", bearer(tok)...); a.code != 204 {
		t.Fatalf("DELETE through the gateway: %d %s", a.code, a.body)
	}
	if a := call(t, "GET", gw1.URL+"/v1/me", bearer(tok)...); a.code != 401 {
		t.Fatalf("the gateway that forwarded the revocation still accepts the token: %d", a.code)
	}
	if a := call(t, "GET", s.auth.URL+"/v1/me", bearer(tok)...); a.code != 401 {
		t.Fatalf("auth still accepts the token: %d", a.code)
	}
	pollStatus(t, gw2.URL+"/v1/me", tok, 401)

	// Revoked at auth directly: gw2 learns it from its refresh.
	if a := call(t, "DELETE", s.auth.URL+"/v1/tokens/current", bearer(keep)...); a.code != 204 {
		t.Fatalf("DELETE at auth: %d", a.code)
	}
	pollStatus(t, gw2.URL+"/v1/me", keep, 401)

	// Auth goes away: gw2 keeps its last list (revoked tokens stay refused, others accepted).
	third := s.login(gw2.URL, "ann@example.com")
	s.auth.Close()
	if err := revs2.Refresh(context.Background()); err == nil {
		t.Fatal("refresh from a closed auth service succeeded")
	}
	if a := call(t, "GET", gw2.URL+"/v1/me", bearer(tok)...); a.code != 401 {
		t.Fatalf("revoked token while auth is down: %d", a.code)
	}
	if a := call(t, "GET", gw2.URL+"/v1/me", bearer(third)...); a.code != 200 {
		t.Fatalf("valid token while auth is down: %d %s", a.code, a.body)
	}
	// Logging out while auth is down fails visibly, the token stays valid.
	if a := call(t, "DELETE", gw2.URL+"/v1/tokens/current", bearer(third)...); a.code != 503 {
		t.Fatalf("DELETE while auth is down: %d %s", a.code, a.body)
	}
}

// TestRevocationsUnknownRefuses: a gateway that never fetched the list refuses tokens with 503.
func TestRevocationsUnknownRefuses(t *testing.T) {
	s := newStack(t, nil)
	gw, revs := s.gateway(time.Hour)
	s.register(gw.URL, "ann@example.com")
	tok := s.login(gw.URL, "ann@example.com")
	down := &auth.RemoteRevocations{URL: "http://127.0.0.1:1/v1/revocations"}
	ok, err := down.Revoked(context.Background(), "x")
	if ok || !server.IsCode(err, server.EUNAVAILABLE) {
		t.Fatalf("Revoked before any list = %v, %v; want EUNAVAILABLE", ok, err)
	}
	h := api.New(api.Config{
		Accounts: &auth.Remote{BaseURL: s.auth.URL},
		Verifier: &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{s.key}, Revocations: down},
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	if a := call(t, "GET", srv.URL+"/v1/me", bearer(tok)...); a.code != 503 || a.hdr.Get("Retry-After") == "" {
		t.Fatalf("token with no list: %d Retry-After %q %s", a.code, a.hdr.Get("Retry-After"), a.body)
	}
	if !revs.Loaded() || revs.Len() != 0 {
		t.Fatalf("working gateway: loaded %v, %d revocations", revs.Loaded(), revs.Len())
	}
}

// pollStatus polls GET url with the token until it answers want, for at most 10 s.
func pollStatus(t *testing.T, url, tok string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := call(t, "GET", url, bearer(tok)...)
		if a.code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s still answers %d after 10 s, want %d", url, a.code, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
