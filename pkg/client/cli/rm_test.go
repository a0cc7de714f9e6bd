package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testserver"
)

// converted uploads a small file and waits for its job, returning the job's id.
func (e *env) converted(name string) string {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), name)
	if err := os.WriteFile(path, []byte("not really a video, the test server converts anything"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	r := e.run("", "upload", path, "--wait", "--json")
	e.want(r, 0)
	var job struct{ ID, State string }
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || job.ID == "" || job.State != "done" {
		e.t.Fatalf("upload --wait --json: %v %s", err, r.stdout)
	}
	return job.ID
}

func TestRm(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("ann@example.com")
	a, b := e.converted("a.mp4"), e.converted("b.mp4")

	r := e.run("", "rm", a)
	e.want(r, 0)
	if r.stdout != "deleted job "+a+"\n" {
		t.Fatalf("rm printed %q", r.stdout)
	}
	e.want(e.run("", "status", a), 4)
	r = e.run("", "rm", a)
	e.want(r, 4)
	if !strings.Contains(r.stderr, "not found") || strings.Count(r.stderr, a) != 1 {
		t.Fatalf("rm of a deleted job says %q", r.stderr)
	}

	// Several: the ones that exist go, the exit code says one failed, and which.
	r = e.run("", "rm", b, a)
	e.want(r, 4)
	if r.stdout != "deleted job "+b+"\n" || !strings.Contains(r.stderr, "could not delete job "+a) || !strings.Contains(r.stderr, "1 of 2 jobs") {
		t.Fatalf("rm of two: stdout %q stderr %q", r.stdout, r.stderr)
	}
	c := e.converted("c.mp4")
	r = e.run("", "rm", c, a, "--json")
	e.want(r, 4)
	var out []struct {
		ID      string
		Deleted bool
		Error   string
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 2 || !out[0].Deleted || out[1].Deleted || out[1].Error == "" {
		t.Fatalf("rm --json: %v %s", err, r.stdout)
	}
	if strings.Contains(r.stdout, `"code"`) {
		t.Fatalf("rm --json printed an error document after its own: %s", r.stdout)
	}
	e.want(e.run("", "rm"), 2)
}

func TestAdminLimitsCommand(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("ann@example.com")
	// A user is told there is no such thing, as for every admin route.
	e.want(e.run("", "admin", "limits", "ann@example.com"), 4)

	e.vars["V2M_TOKEN"] = s.AdminToken(t, "root@example.com")
	r := e.run("", "admin", "limits", "ann@example.com")
	e.want(r, 0)
	if !strings.Contains(r.stdout, "quota-bytes       default") {
		t.Fatalf("limits of a user with none: %q", r.stdout)
	}
	r = e.run("", "admin", "limits", "ann@example.com", "--quota-bytes", "2GiB", "--max-active-jobs", "0", "--max-duration", "90m")
	e.want(r, 0)
	for _, want := range []string{"quota-bytes       2.0 GiB", "max-active-jobs   no limit", "max-open-uploads  default", "max-duration      1h30m0s"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("limits after a set: %q, want %q in it", r.stdout, want)
		}
	}
	r = e.run("", "admin", "limits", "ann@example.com", "--max-duration", "default", "--json")
	e.want(r, 0)
	var l map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || l["quota_bytes"] != float64(2<<30) || l["max_duration"] != nil || l["max_active_jobs"] != float64(0) {
		t.Fatalf("limits --json: %v %s", err, r.stdout)
	}
	e.want(e.run("", "admin", "limits", "ann@example.com", "--max-open-uploads", "-3"), 2)
	e.want(e.run("", "admin", "limits", "ann@example.com", "--quota-bytes", "lots"), 2)

	// The user sees the limit in whoami.
	delete(e.vars, "V2M_TOKEN")
	r = e.run("", "whoami", "--json")
	e.want(r, 0)
	var me struct {
		Usage struct {
			QuotaBytes int64 `json:"quota_bytes"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &me); err != nil || me.Usage.QuotaBytes != 2<<30 {
		t.Fatalf("whoami --json: %v %s", err, r.stdout)
	}
	e.ttyOut = true
	r = e.run("", "whoami")
	e.want(r, 0)
	if !strings.HasPrefix(r.stdout, "ann@example.com\n") || !strings.Contains(r.stdout, "storage     0 B of 2.0 GiB") {
		t.Fatalf("whoami on a terminal: %q", r.stdout)
	}
}

// TestQuotaLimitIsNotRetried: a 429 "limit_reached" (a quota of open uploads) is said at once,
// not waited out as an outage.
func TestQuotaLimitIsNotRetried(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	e := newEnv(t, s)
	e.login("ann@example.com")
	e.vars["V2M_TOKEN"] = s.AdminToken(t, "root@example.com")
	e.want(e.run("", "admin", "limits", "ann@example.com", "--max-open-uploads", "1"), 0)
	delete(e.vars, "V2M_TOKEN")
	seedUpload(t, s, storedToken(t, s.URL), []byte("an upload left open"), 0)
	path := filepath.Join(t.TempDir(), "b.mp4")
	if err := os.WriteFile(path, []byte("another video"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.run("", "upload", path, "--retry-for", "1m")
	if r.code == 0 || r.code == 8 || !strings.Contains(r.stderr, "uploads open") || strings.Contains(r.stderr, "waiting for it") {
		t.Fatalf("upload over the open-uploads quota: %+v", r)
	}
}
