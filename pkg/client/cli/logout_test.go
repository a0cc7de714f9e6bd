package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/client/internal/apitest"
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

func TestLogoutRevokesOnTheServer(t *testing.T) {
	s := apitest.New()
	defer s.Close()
	e := newEnv(t, s)
	e.login("a@example.com")
	tok := storedToken(t, s.URL)
	r := e.run("", "logout", "--json")
	e.want(r, 0)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["logged_out"] != true || m["revoked"] != true {
		t.Fatalf("logout --json: %v %s", err, r.stdout)
	}
	if !slices.Contains(s.Requests(), "DELETE /v1/tokens/current") {
		t.Fatalf("logout did not call DELETE /v1/tokens/current: %v", s.Requests())
	}
	if s.TokenValid(tok) {
		t.Fatal("the server still accepts the token after logout")
	}
	if r.stderr != "" {
		t.Fatalf("logout warned: %q", r.stderr)
	}
	e.want(e.run("", "whoami"), 3)
	// Logging out again, with no token, is fine and calls nothing.
	n := len(s.Requests())
	e.want(e.run("", "logout"), 0)
	if len(s.Requests()) != n {
		t.Fatalf("logout without a token called the server: %v", s.Requests()[n:])
	}
}

// TestLogoutWithRefusedToken: a token the server refuses already (expired) is just forgotten.
func TestLogoutWithRefusedToken(t *testing.T) {
	s := apitest.New()
	defer s.Close()
	e := newEnv(t, s)
	e.login("a@example.com")
	s.ExpireToken(storedToken(t, s.URL))
	r := e.run("", "logout")
	e.want(r, 0)
	if r.stderr != "" || !strings.Contains(r.stdout, "logged out of") {
		t.Fatalf("logout with an expired token: %s / %s", r.stdout, r.stderr)
	}
	e.want(e.run("", "whoami"), 3)
}

// TestLogoutServerUnreachable: the token is forgotten locally, and v2m says it stays valid
// until its expiry, read from the JWT.
func TestLogoutServerUnreachable(t *testing.T) {
	s := apitest.New()
	e := newEnv(t, s)
	s.Close()
	exp := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	jwt := "eyJhbGciOiJFZERTQSJ9." + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"a@example.com","exp":%d}`, exp.Unix()))) + ".c2ln"
	if err := keyring.Set(client.KeyringService, client.NormalizeServer(s.URL), jwt); err != nil {
		t.Fatal(err)
	}
	r := e.run("", "logout")
	e.want(r, 0)
	if want := "stays valid until " + exp.Local().Format(time.DateTime); !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	if _, err := keyring.Get(client.KeyringService, client.NormalizeServer(s.URL)); err == nil {
		t.Fatal("the token was not forgotten locally")
	}
}

// TestLogoutServerUnreachableJSON: the same with --json, for a token that is not a JWT.
func TestLogoutServerUnreachableJSON(t *testing.T) {
	s := apitest.New()
	e := newEnv(t, s)
	e.login("a@example.com")
	s.Close()
	r := e.run("", "logout", "--json")
	e.want(r, 0)
	if !strings.Contains(r.stderr, "did not revoke the token (cannot reach "+s.URL+")") || !strings.Contains(r.stderr, "stays valid until it expires") {
		t.Fatalf("stderr %q, want a warning that the token stays valid", r.stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["logged_out"] != true || m["revoked"] != false {
		t.Fatalf("logout --json: %v %s", err, r.stdout)
	}
	if _, err := keyring.Get(client.KeyringService, client.NormalizeServer(s.URL)); err == nil {
		t.Fatal("the token was not forgotten locally")
	}
	e.want(e.run("", "whoami"), 3)
}
