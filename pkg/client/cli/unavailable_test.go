package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client/cli"
)

// TestUnavailableRetriesThenExits8: a login put off once with 503 and Retry-After is sent
// again after the wait, with one line on stderr; a server unavailable for longer than
// --retry-for gets exit code 8 and the server's words, in text and in --json.
func TestUnavailableRetriesThenExits8(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	s.Signup(t, "a@example.com", "password1")
	s.Faults.Unavailable("POST /v1/tokens", 1, 1)
	r := e.run("password1\n", "login", "--email", "a@example.com", "--password-stdin")
	e.want(r, 0)
	if n := strings.Count(r.stderr, "waiting for it"); n != 1 || !strings.Contains(r.stderr, "v2m: the server is unavailable; waiting for it (retrying for up to 2m0s, see --retry-for)\n") {
		t.Fatalf("stderr %q, want one waiting line", r.stderr)
	}

	s.Faults.Unavailable("GET /v1/jobs", 1, 100)
	r = e.run("", "jobs", "--retry-for", "1500ms")
	e.want(r, cli.ExitUnavailable)
	if strings.Count(r.stderr, "waiting for it") != 1 ||
		!strings.Contains(r.stderr, "the database is unavailable; try again shortly (unavailable) (gave up after retrying for up to 1.5s; try again later)") {
		t.Fatalf("stderr %q", r.stderr)
	}
	e.vars["V2M_RETRY_FOR"] = "0"
	r = e.run("", "jobs", "--json")
	e.want(r, cli.ExitUnavailable)
	var out struct {
		Error struct {
			Code string
			Exit int
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Error.Code != "unavailable" || out.Error.Exit != 8 {
		t.Fatalf("--json: %v %s", err, r.stdout)
	}
	if strings.Contains(r.stderr, "waiting") {
		t.Fatalf("V2M_RETRY_FOR=0 waited: %q", r.stderr)
	}
	e.vars["V2M_RETRY_FOR"] = "soon"
	e.want(e.run("", "jobs"), cli.ExitUsage)
}
