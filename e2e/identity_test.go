package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
)

// identityFlow, against a running server at base whose users' database db names (the flags
// of v2md admin): an operator grants the admin role with v2md admin while the server runs;
// after a new login the admin routes work; a personal token scripts v2m through V2M_TOKEN;
// disabling a user makes their existing JWT and personal token fail within seconds.
func identityFlow(t *testing.T, base string, db ...string) {
	id := server.NewID()[:8]
	root := newUser(t, base, "root-"+id+"@example.com")
	ann := newUser(t, base, "ann-"+id+"@example.com")
	root.signup()
	ann.signup()
	if r := root.run("", "admin", "users"); r.code == 0 {
		t.Fatalf("admin users before the grant: %s", r)
	}
	if out := v2mdAdmin(t, nil, append([]string{"grant", root.email}, db...)...); !strings.Contains(out, root.email+" is an administrator") {
		t.Fatalf("grant: %s", out)
	}
	if out := v2mdAdmin(t, nil, append([]string{"users"}, db...)...); !strings.Contains(out, root.email) || !strings.Contains(out, "admin") {
		t.Fatalf("v2md admin users: %s", out)
	}
	root.must("s3cret-password\n", "login", "--email", root.email, "--password-stdin")
	if r := root.must("", "whoami"); !strings.Contains(r.stderr, "Role: admin") {
		t.Fatalf("whoami of the admin: %s", r)
	}
	if r := root.must("", "admin", "users", "--json"); !strings.Contains(r.stdout, `"email": "`+ann.email+`"`) {
		t.Fatalf("v2m admin users: %s", r)
	}
	if r := ann.run("", "admin", "users"); r.code == 0 {
		t.Fatalf("admin users by a user: %s", r)
	}

	// A personal token, read-only, scripts v2m through V2M_TOKEN.
	r := ann.must("", "token", "create", "--name", "ci", "--read-only", "--ttl", "7d")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	pat := lines[len(lines)-1]
	if !strings.HasPrefix(pat, server.PersonalTokenPrefix) || !strings.Contains(r.stderr, "shown only this once") {
		t.Fatalf("token create: %s", r)
	}
	script := &user{t: t, server: base, email: ann.email, dir: t.TempDir(), token: pat}
	if r := script.must("", "whoami"); !strings.Contains(r.stdout, ann.email) || !strings.Contains(r.stderr, "read-only personal token") {
		t.Fatalf("whoami with the personal token: %s", r)
	}
	script.must("", "jobs")
	if r := script.run("", "token", "create", "--name", "more"); r.code == 0 || !strings.Contains(r.stderr, "read-only") {
		t.Fatalf("token create with a read-only token: %s", r)
	}
	if r := ann.must("", "token", "list"); !strings.Contains(r.stdout, "ci") || strings.Contains(r.stdout, pat) {
		t.Fatalf("token list: %s", r)
	}

	// Disabling ann refuses her existing JWT and personal token within seconds, and her login.
	jwt := httpLogin(t, base, ann.email, "s3cret-password")
	root.must("", "admin", "disable", ann.email)
	start := time.Now()
	for _, tok := range []string{jwt, pat} {
		waitUntil(t, 10*time.Second, "a disabled user's token to get 403", func() bool { return status(t, base, "/v1/me", tok) == 403 })
	}
	t.Logf("tokens of the disabled user refused after %v", time.Since(start).Round(time.Millisecond))
	if r := ann.run("s3cret-password\n", "login", "--email", ann.email, "--password-stdin"); r.code == 0 || !strings.Contains(r.stderr, "disabled") {
		t.Fatalf("login of a disabled user: %s", r)
	}
	v2mdAdmin(t, nil, append([]string{"enable", ann.email}, db...)...)
	waitUntil(t, 10*time.Second, "the enabled user's token to work again", func() bool { return status(t, base, "/v1/me", jwt) == 200 })
}

func TestIdentityStandalone(t *testing.T) {
	data := t.TempDir()
	srv := startStandalone(t, data)
	identityFlow(t, srv.url(), "--data", data)
}

func TestIdentityDistributed(t *testing.T) {
	c := startCluster(t, 0)
	dsn := testenv.Get(t, testenv.MySQLDSN)
	identityFlow(t, c.gateway.url(), "--mysql-dsn", dsn)
}
