package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// TestTokenCreateListRevoke: create prints the token alone on the last line of stdout and a
// sentence on stderr; V2M_TOKEN takes it; list never shows it; a read-only token cannot
// write; revoke makes it fail; bad flags are usage errors.
func TestTokenCreateListRevoke(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	script := newEnv(t, s) // first: newEnv resets the mocked keyring
	e := newEnv(t, s)
	e.login("a@example.com")
	e.want(e.run("", "token", "create"), 2)
	e.want(e.run("", "token", "create", "--name", "ci", "--ttl", "soon"), 2)
	r := e.run("", "token", "create", "--name", "ci", "--read-only", "--ttl", "2d")
	e.want(r, 0)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	tok := lines[len(lines)-1]
	if len(lines) != 1 || !strings.HasPrefix(tok, server.PersonalTokenPrefix) || !strings.Contains(r.stderr, "shown only this once") {
		t.Fatalf("token create: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = e.run("", "token", "list", "--json")
	e.want(r, 0)
	var list wire.PersonalTokenList
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Tokens) != 1 || !list.Tokens[0].ReadOnly ||
		list.Tokens[0].Name != "ci" || strings.Contains(r.stdout, tok) {
		t.Fatalf("token list --json: %v %s", err, r.stdout)
	}
	script.vars["V2M_TOKEN"] = tok
	if r := script.run("", "whoami"); r.code != 0 || strings.TrimSpace(r.stdout) != "a@example.com" || !strings.Contains(r.stderr, "read-only personal token") {
		t.Fatalf("whoami with V2M_TOKEN: %+v", r)
	}
	if r := script.run("", "token", "create", "--name", "more"); r.code == 0 || !strings.Contains(r.stderr, "read-only") {
		t.Fatalf("token create with a read-only token: %+v", r)
	}
	if r := e.run("", "admin", "users"); r.code == 0 || !strings.Contains(r.stderr, "not found") && !strings.Contains(r.stderr, "no such route") {
		t.Fatalf("admin users by a user: %+v", r)
	}
	e.want(e.run("", "token", "revoke", list.Tokens[0].ID), 0)
	if r := script.run("", "whoami"); r.code != 3 {
		t.Fatalf("whoami with a revoked token: %+v", r)
	}
	e.want(e.run("", "token", "revoke", list.Tokens[0].ID), 4)
}
