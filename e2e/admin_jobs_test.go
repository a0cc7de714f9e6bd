package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	mongostore "github.com/v2m/v2m/pkg/server/mongo"
	"github.com/v2m/v2m/pkg/wire"
)

// adminUser is a registered user granted the administrator's role by v2md admin grant on the
// server's database (db: its flags), logged in again so that the token carries the role.
func adminUser(t *testing.T, server, email string, db ...string) *user {
	t.Helper()
	u := newUser(t, server, email)
	u.signup()
	v2mdAdmin(t, nil, append([]string{"grant", email}, db...)...)
	u.must("s3cret-password\n", "login", "--email", email, "--password-stdin")
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
	ann := newUser(t, srv.url(), "ann@example.com")
	ann.signup()
	root := adminUser(t, srv.url(), "root@example.com", "--data", data)

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

// TestDistributedAdminDeadLetters: on the distributed services, a corrupt video and a job
// whose video was briefly missing from GridFS show up in video.dlq with their reasons; once
// the video is back, the replay makes the job finish, with one mail per outcome. The broker's
// dead-letter queues are shared with other tests, so only this test's letters are looked at.
func TestDistributedAdminDeadLetters(t *testing.T) {
	c := startCluster(t, 0) // no converter yet: the job waits in the queue
	root := adminUser(t, c.gateway.url(), "root-"+server.NewID()[:12]+"@example.com",
		"--mysql-dsn", testenv.Get(t, testenv.MySQLDSN))
	ann := c.user("ann")
	good := testmedia.Good[1]
	ann.must("", "upload", media(t, good))
	jobs := ann.jobs()
	if len(jobs) != 1 || jobs[0].State != "queued" {
		t.Fatalf("ann's jobs: %+v", jobs)
	}
	missing := jobs[0]

	// The video goes missing before a converter takes the job, and is kept aside.
	ctx := t.Context()
	var dbName, uriFile string
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "V2MD_MONGO_DB="); ok {
			dbName = v
		}
		if v, ok := strings.CutPrefix(kv, "V2MD_MONGO_URI_FILE="); ok {
			uriFile = v
		}
	}
	uri, err := os.ReadFile(uriFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := mongostore.Open(ctx, mongostore.Config{URI: strings.TrimSpace(string(uri)), Database: dbName})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	b, err := db.Blobs().Open(ctx, "videos", missing.ID)
	if err != nil {
		t.Fatal(err)
	}
	video, err := io.ReadAll(b)
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Blobs().Delete(ctx, "videos", missing.ID); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	c.converters = append(c.converters, start(t, "convert-1", addr, c.env, "convert", "--listen", addr,
		"--concurrency", "1", "--stale-after", "20s", "--tmp-dir", c.tmp))

	var corrupt testmedia.Sample
	for _, s := range testmedia.Bad {
		if s.Name == "corrupt" {
			corrupt = s
		}
	}
	if r := ann.run("", "upload", media(t, corrupt), "--wait", "--timeout", "3m"); r.code != 5 {
		t.Fatalf("corrupt upload: %s", r)
	}
	var ls []wire.DeadLetter
	mine := func(id string) (wire.DeadLetter, bool) {
		for _, l := range ls {
			if l.JobID == id {
				return l, true
			}
		}
		return wire.DeadLetter{}, false
	}
	jobs = ann.jobs()
	badJob := jobs[0]
	waitUntil(t, time.Minute, "both of ann's letters", func() bool {
		ls = letters(t, root.must("", "admin", "dead-letters", "--topic", "video", "--json").stdout)
		_, a := mine(missing.ID)
		_, b := mine(badJob.ID)
		return a && b
	})
	gone, _ := mine(missing.ID)
	bad, _ := mine(badJob.ID)
	if gone.Reason != "the uploaded video is missing" || gone.Owner != ann.email || gone.JobState != "failed" {
		t.Errorf("the missing video's letter: %+v", gone)
	}
	if !strings.Contains(bad.Reason, corrupt.WantErr) || bad.JobError != bad.Reason {
		t.Errorf("the corrupt video's letter: %+v, want %q", bad, corrupt.WantErr)
	}
	if r := ann.run("", "admin", "dead-letters"); r.code != 4 {
		t.Errorf("dead-letters as a user: %s, want exit 4", r)
	}
	// v2md admin sees them too, on the gateway's MongoDB and RabbitMQ settings.
	ls = letters(t, v2mdAdmin(t, c.env, "dead-letters", "--topic", "video", "--json"))
	if l, ok := mine(missing.ID); !ok || l.ID != gone.ID {
		t.Errorf("v2md admin dead-letters lacks %+v", gone)
	}
	failed := v2mdAdmin(t, c.env, "jobs", "--state", "failed", "--owner", ann.email)
	if strings.Count(failed, "\n") != 2 {
		t.Errorf("v2md admin jobs --state failed:\n%s", failed)
	}

	// The video is back: the replay makes the job finish.
	if _, err := db.Blobs().Put(ctx, "videos", missing.ID, missing.Filename, bytes.NewReader(video)); err != nil {
		t.Fatal(err)
	}
	if r := root.must("", "admin", "replay", gone.ID); !strings.Contains(r.stdout, "replayed "+gone.ID) {
		t.Errorf("replay: %s", r)
	}
	waitUntil(t, 2*time.Minute, "the replayed job done", func() bool {
		for _, j := range ann.jobs() {
			if j.ID == missing.ID {
				return j.State == "done"
			}
		}
		return false
	})
	dst := filepath.Join(t.TempDir(), "replayed.mp3")
	ann.must("", "download", missing.ID, "-o", dst)
	checkMP3(t, dst, good.AudioDuration)
	if r := root.run("", "admin", "replay", gone.ID); r.code != 4 {
		t.Errorf("second replay: %s, want exit 4", r)
	}
	if r := root.must("", "admin", "purge", bad.ID); !strings.Contains(r.stdout, "purged 1 ") {
		t.Errorf("purge: %s", r)
	}
	ls = letters(t, root.must("", "admin", "dead-letters", "--topic", "video", "--json").stdout)
	if _, ok := mine(badJob.ID); ok {
		t.Error("the purged letter is still listed")
	}
	// One mail per outcome: the missing video's failure and then its success, and the corrupt
	// video's failure.
	waitUntil(t, time.Minute, "three mails", func() bool { return len(c.mails(ann.email)) >= 3 })
	if n := len(c.mails(ann.email)); n != 3 {
		t.Errorf("%d mails to ann, want 3", n)
	}
}
