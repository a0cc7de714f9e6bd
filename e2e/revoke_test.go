package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// httpLogin logs in over HTTP Basic and returns the token.
func httpLogin(t *testing.T, base, email, password string) string {
	t.Helper()
	code, body, _ := send(t, "POST", base+"/v1/tokens", "", func(r *http.Request) { r.SetBasicAuth(email, password) })
	var tok struct{ Token string }
	if code != 200 || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
		t.Fatalf("login %s at %s: %d %s", email, base, code, body)
	}
	return tok.Token
}

func send(t *testing.T, method, url, tok string, edit func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), resp.Header
}

// status answers GET base+path with tok.
func status(t *testing.T, base, path, tok string) int {
	t.Helper()
	code, _, _ := send(t, "GET", base+path, tok, nil)
	return code
}

// useToken makes the user's v2m hold tok, as `v2m login` would have stored it where there is
// no OS keyring.
func (u *user) useToken(tok string) {
	u.t.Helper()
	if err := os.WriteFile(filepath.Join(u.dir, "tokens.json"), []byte(`{"`+u.server+`":"`+tok+`"}`), 0o600); err != nil {
		u.t.Fatal(err)
	}
}

// logoutRevokes: after `v2m logout`, the token it held gets 401 at every base within a few
// seconds (polled, no fixed wait), while another token of the same user still works.
func logoutRevokes(t *testing.T, u *user, bases ...string) {
	t.Helper()
	tok := httpLogin(t, u.server, u.email, "s3cret-password")
	other := httpLogin(t, u.server, u.email, "s3cret-password")
	u.useToken(tok)
	if r := u.must("", "whoami"); !strings.Contains(r.stdout, u.email) {
		t.Fatalf("whoami: %s", r)
	}
	for _, b := range bases {
		if c := status(t, b, "/v1/jobs", tok); c != 200 {
			t.Fatalf("GET %s/v1/jobs before logout: %d", b, c)
		}
	}
	r := u.must("", "logout")
	if r.stderr != "" {
		t.Fatalf("logout warned: %s", r)
	}
	for _, b := range bases {
		waitUntil(t, 10*time.Second, "the revoked token to get 401 at "+b, func() bool {
			return status(t, b, "/v1/me", tok) == 401
		})
		for _, path := range []string{"/v1/jobs", "/v1/me"} {
			if c := status(t, b, path, tok); c != 401 {
				t.Fatalf("GET %s%s with the revoked token: %d", b, path, c)
			}
		}
		if c := status(t, b, "/v1/jobs", other); c != 200 {
			t.Fatalf("the user's other token at %s: %d", b, c)
		}
	}
	if r := u.run("", "whoami"); r.code != 3 {
		t.Fatalf("whoami after logout: %s", r)
	}
}

// loginThrottled: bad logins for one email get 429 with Retry-After after the default burst,
// well before 200 attempts.
func loginThrottled(t *testing.T, base string) {
	t.Helper()
	email := "nobody-" + server.NewID()[:8] + "@example.com" // no such account
	var codes []int
	for range 200 {
		code, body, hdr := send(t, "POST", base+"/v1/tokens", "", func(r *http.Request) { r.SetBasicAuth(email, "wrong-password") })
		codes = append(codes, code)
		if code != 429 {
			continue
		}
		secs, err := strconv.Atoi(hdr.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 3600 || !strings.Contains(body, `"rate_limited"`) {
			t.Fatalf("429 with Retry-After %q: %s", hdr.Get("Retry-After"), body)
		}
		break
	}
	if n := slices.Index(codes, 429); n < 5 || n > 30 || slices.ContainsFunc(codes[:n], func(c int) bool { return c != 401 }) {
		t.Fatalf("bad logins through %s: %v; want 401s then 429 after the burst", base, codes)
	}
}

func TestRevokeStandalone(t *testing.T) {
	srv := startStandalone(t, t.TempDir())
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	logoutRevokes(t, u, srv.url())
	loginThrottled(t, srv.url())
}

// TestRevokeDistributed: against the real gateway with auth on MariaDB, a token revoked through
// one gateway gets 401 there and, after its refresh from auth, at a second gateway; login
// throttling answers 429 through the gateway.
func TestRevokeDistributed(t *testing.T) {
	c := startCluster(t, 0)
	args := c.gateway.cmd.Args
	i := slices.Index(args, "--auth-url")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("no --auth-url in the gateway's arguments %v", args)
	}
	addr := freeAddr(t)
	gw2 := start(t, "gateway-2", addr, c.env, "gateway", "--listen", addr, "--auth-url", args[i+1], "--part-size", "1MiB",
		"--revocations-refresh", "1s")
	waitUntil(t, time.Minute, "the second gateway to be ready", func() bool { return status(t, gw2.url(), "/readyz", "") == 200 })
	u := newUser(t, c.gateway.url(), fmt.Sprintf("ann-%s@example.com", server.NewID()[:8]))
	u.signup()
	logoutRevokes(t, u, c.gateway.url(), gw2.url())
	loginThrottled(t, c.gateway.url())
}
