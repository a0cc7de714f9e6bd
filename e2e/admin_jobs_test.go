package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server/token"
	"github.com/v2m/v2m/pkg/wire"
)

// adminUser is a registered user whose v2m runs with an administrator's token, signed with
// the server's own key as a grant would give it.
func adminUser(t *testing.T, server, email string, key token.Key) *user {
	t.Helper()
	u := newUser(t, server, email)
	u.signup()
	tok, _, err := (&token.Issuer{Key: key, Issuer: "v2m"}).IssueRole(email, "admin")
	if err != nil {
		t.Fatal(err)
	}
	u.env = []string{"V2M_TOKEN=" + tok}
	return u
}

// v2mdAdmin runs `v2md admin args...` and returns its stdout; it must succeed.
func v2mdAdmin(t *testing.T, env []string, args ...string) string {
	t.Helper()
	_, v2md := binaries(t)
	cmd := exec.Command(v2md, append([]string{"admin"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("v2md admin %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func letters(t *testing.T, jsonText string) []wire.DeadLetter {
	t.Helper()
	var l wire.DeadLetterList
	if err := json.Unmarshal([]byte(jsonText), &l); err != nil {
		t.Fatalf("dead letters JSON: %v\n%s", err, jsonText)
	}
	return l.Letters
}

func letterOf(t *testing.T, ls []wire.DeadLetter, jobID string) wire.DeadLetter {
	t.Helper()
	for _, l := range ls {
		if l.JobID == jobID {
			return l
		}
	}
	t.Fatalf("no dead letter of job %s among %+v", jobID, ls)
	return wire.DeadLetter{}
}

// TestStandaloneAdminDeadLetters: a corrupt video and a job whose conversion failed for a
// passing cause (its work directory could not be made) show up among the dead letters with
// their reasons, to the administrator only, over the API and through v2md admin beside the
// running server; the replay of the passing one finishes its job, with one mail per outcome.
func TestStandaloneAdminDeadLetters(t *testing.T) {
	data, tmp := t.TempDir(), filepath.Join(t.TempDir(), "work")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	srv := startStandalone(t, data, "--max-attempts", "1", "--tmp-dir", tmp)
	key, err := token.LoadOrCreateEd25519(filepath.Join(data, "jwt-ed25519.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ann := newUser(t, srv.url(), "ann@example.com")
	ann.signup()
	root := adminUser(t, srv.url(), "root@example.com", key)

	corrupt := testmedia.Bad[len(testmedia.Bad)-1]
	if r := ann.run("", "upload", media(t, corrupt), "--wait"); r.code != 5 {
		t.Fatalf("upload of a corrupt video: %s, want exit 5", r)
	}
	// The converter cannot make its work directory: the job fails on its one attempt.
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	good := testmedia.Good[1]
	if r := ann.run("", "upload", media(t, good), "--wait"); r.code != 5 {
		t.Fatalf("upload while the work directory is missing: %s, want exit 5", r)
	}
	jobs := ann.jobs()
	if len(jobs) != 2 {
		t.Fatalf("ann's jobs: %+v", jobs)
	}
	goodJob, badJob := jobs[0], jobs[1]

	// A user sees no admin commands' data: not found, exit 4.
	for _, args := range [][]string{{"admin", "jobs"}, {"admin", "dead-letters"}, {"admin", "replay", "--all"}, {"admin", "purge"}} {
		if r := ann.run("", args...); r.code != 4 {
			t.Errorf("v2m %s as a user: %s, want exit 4", strings.Join(args, " "), r)
		}
	}

	ls := letters(t, root.must("", "admin", "dead-letters", "--json").stdout)
	bad, transient := letterOf(t, ls, badJob.ID), letterOf(t, ls, goodJob.ID)
	if bad.Topic != "video" || bad.Owner != "ann@example.com" || bad.Reason != badJob.Error || bad.JobState != "failed" || bad.Attempts != 1 {
		t.Errorf("corrupt video's letter = %+v, want its job's error %q", bad, badJob.Error)
	}
	if !strings.Contains(transient.Reason, "create work dir") || transient.JobError != goodJob.Error || !strings.Contains(goodJob.Error, "after 1 attempts") {
		t.Errorf("the passing failure's letter = %+v, job error %q", transient, goodJob.Error)
	}
	// The same through v2md admin, on the data directory the server is running on.
	direct := letters(t, v2mdAdmin(t, nil, "dead-letters", "--data", data, "--json"))
	if len(direct) != len(ls) || letterOf(t, direct, badJob.ID).Reason != bad.Reason {
		t.Errorf("v2md admin dead-letters = %+v, want %+v", direct, ls)
	}
	tsv := root.must("", "admin", "jobs", "--state", "failed", "--owner", "ANN@example.com").stdout
	if strings.Count(tsv, "\n") != 2 || !strings.Contains(tsv, badJob.ID+"\tfailed\tann@example.com\t") {
		t.Errorf("admin jobs --state failed:\n%s", tsv)
	}

	// The cause is gone; the replay through v2md admin makes the job finish.
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if out := v2mdAdmin(t, nil, "replay", transient.ID, "--data", data); !strings.Contains(out, "replayed "+transient.ID) {
		t.Errorf("v2md admin replay: %q", out)
	}
	waitUntil(t, time.Minute, "the replayed job done", func() bool {
		for _, j := range ann.jobs() {
			if j.ID == goodJob.ID {
				return j.State == "done"
			}
		}
		return false
	})
	checkDownload := filepath.Join(t.TempDir(), "replayed.mp3")
	ann.must("", "download", goodJob.ID, "-o", checkDownload)
	checkMP3(t, checkDownload, good.AudioDuration)

	// Replaying the corrupt video fails it again: it is a dead letter again, with its reason.
	root.must("", "admin", "replay", bad.ID)
	waitUntil(t, time.Minute, "the corrupt video dead again", func() bool {
		again := letters(t, root.must("", "admin", "dead-letters", "--json", "--topic", "video").stdout)
		return len(again) == 1 && again[0].JobID == badJob.ID && again[0].JobState == "failed" && again[0].Reason == badJob.Error
	})
	if r := root.run("", "admin", "replay", "no-such-letter"); r.code != 4 {
		t.Errorf("replay of an unknown letter: %s, want exit 4", r)
	}
	if r := root.must("", "admin", "purge", "--topic", "video"); !strings.Contains(r.stdout, "purged 1 ") {
		t.Errorf("purge: %s", r)
	}
	if left := letters(t, root.must("", "admin", "dead-letters", "--json").stdout); len(left) != 0 {
		t.Errorf("letters after the purge: %+v", left)
	}

	// One mail per outcome: the corrupt video's failure (once, though it failed twice), the
	// passing failure, and the replayed job's success.
	waitUntil(t, 30*time.Second, "three mails", func() bool {
		files, _ := filepath.Glob(filepath.Join(data, "outbox", "*.eml"))
		return len(files) >= 3
	})
	files, _ := filepath.Glob(filepath.Join(data, "outbox", "*.eml"))
	if len(files) != 3 {
		t.Errorf("%d mails in the outbox, want 3", len(files))
	}
}
