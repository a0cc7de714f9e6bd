package cli_test

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client"
)

// storedToken returns the token the CLI keeps for the server (in the mocked keyring).
func storedToken(t *testing.T, server string) string {
	t.Helper()
	tok, err := keyring.Get(client.KeyringService, client.NormalizeServer(server))
	if err != nil {
		t.Fatalf("no stored token: %v", err)
	}
	return tok
}

// tokenStatus returns the status the test server answers GET /v1/me with tok.
func tokenStatus(t *testing.T, s *testserver.Server, tok string) int {
	t.Helper()
	return rawDo(t, s, tok, "GET", "/v1/me", nil, nil, nil)
}

func TestLogoutRevokesOnTheServer(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("a@example.com")
	tok := storedToken(t, s.URL)
	if code := tokenStatus(t, s, tok); code != 200 {
		t.Fatalf("the token before logout: %d", code)
	}
	r := e.run("", "logout", "--json")
	e.want(r, 0)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["logged_out"] != true || m["revoked"] != true {
		t.Fatalf("logout --json: %v %s", err, r.stdout)
	}
	if reqs := s.Requests(revokeRoute); len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+tok {
		t.Fatalf("logout did not call %s with the token: %+v", revokeRoute, reqs)
	}
	if code := tokenStatus(t, s, tok); code != 401 {
		t.Fatalf("the server answers %d to the token after logout, want 401", code)
	}
	if r.stderr != "" {
		t.Fatalf("logout warned: %q", r.stderr)
	}
	e.want(e.run("", "whoami"), 3)
	// Logging out again, with no token, is fine and calls nothing.
	n := len(s.Requests(anyRoute))
	e.want(e.run("", "logout"), 0)
	if reqs := s.Requests(anyRoute); len(reqs) != n {
		t.Fatalf("logout without a token called the server: %+v", reqs[n:])
	}
}

// TestLogoutWithRefusedToken: a token the server refuses already (expired) is just forgotten.
func TestLogoutWithRefusedToken(t *testing.T) {
	var skew atomic.Int64
	s := testserver.New(t, testserver.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	e := newEnv(t, s)
	e.login("a@example.com")
	skew.Store(int64(24*time.Hour + time.Minute)) // the token has expired
	r := e.run("", "logout")
	e.want(r, 0)
	if r.stderr != "" || !strings.Contains(r.stdout, "logged out of") {
		t.Fatalf("logout with an expired token: %s / %s", r.stdout, r.stderr)
	}
	if reqs := s.Requests(revokeRoute); len(reqs) != 1 {
		t.Fatalf("logout sent %d revocations, want 1", len(reqs))
	}
	e.want(e.run("", "whoami"), 3)
}

// TestLogoutServerUnreachable: the token is forgotten locally, and v2m says it stays valid
// until its expiry, read from the JWT.
func TestLogoutServerUnreachable(t *testing.T) {
	issued := time.Date(2031, 5, 5, 7, 8, 9, 0, time.UTC)
	s := testserver.New(t, testserver.Options{Now: func() time.Time { return issued }})
	e := newEnv(t, s)
	url := deadURL()
	e.vars["V2M_SERVER"] = url
	// A token the server issued, kept for a server that is gone.
	if err := keyring.Set(client.KeyringService, client.NormalizeServer(url), s.Signup(t, "a@example.com", "password1")); err != nil {
		t.Fatal(err)
	}
	r := e.run("", "logout")
	e.want(r, 0)
	exp := issued.Add(24 * time.Hour)
	if want := "stays valid until " + exp.Local().Format(time.DateTime); !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	if _, err := keyring.Get(client.KeyringService, client.NormalizeServer(url)); err == nil {
		t.Fatal("the token was not forgotten locally")
	}
}

// TestLogoutServerUnreachableJSON: the same with --json, for a token that is not a JWT.
func TestLogoutServerUnreachableJSON(t *testing.T) {
	e := newEnv(t, testserver.New(t, testserver.Options{}))
	url := deadURL()
	e.vars["V2M_SERVER"] = url
	if err := keyring.Set(client.KeyringService, client.NormalizeServer(url), "an-opaque-token"); err != nil {
		t.Fatal(err)
	}
	r := e.run("", "logout", "--json")
	e.want(r, 0)
	if !strings.Contains(r.stderr, "did not revoke the token (cannot reach "+url+")") || !strings.Contains(r.stderr, "stays valid until it expires") {
		t.Fatalf("stderr %q, want a warning that the token stays valid", r.stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["logged_out"] != true || m["revoked"] != false {
		t.Fatalf("logout --json: %v %s", err, r.stdout)
	}
	if _, err := keyring.Get(client.KeyringService, client.NormalizeServer(url)); err == nil {
		t.Fatal("the token was not forgotten locally")
	}
	e.want(e.run("", "whoami"), 3)
}
