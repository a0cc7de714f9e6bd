package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testmedia"
)

// convertJob converts sample for u into dir and returns its job, as `v2m jobs` shows it.
func convertJob(t *testing.T, u *user, sample testmedia.Sample, dir string) job {
	t.Helper()
	r := u.must("", "convert", media(t, sample), "-o", dir+string(filepath.Separator), "--json")
	var res struct{ Job job }
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Job.ID == "" {
		t.Fatalf("convert --json: %v\n%s", err, r.stdout)
	}
	j := res.Job
	for _, k := range u.jobs() {
		if k.ID == j.ID {
			return k
		}
	}
	t.Fatalf("job %s is not listed", j.ID)
	return j
}

// files lists the regular files under dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestStandaloneRetention: a done job's video goes at once, its MP3 at the end of --mp3-ttl,
// after which a download says it expired; the mail says until when; v2m rm deletes a job.
func TestStandaloneRetention(t *testing.T) {
	data := t.TempDir()
	srv := startStandalone(t, data, "--mp3-ttl", "4s", "--sweep-interval", "200ms")
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	out := t.TempDir()
	j := convertJob(t, u, testmedia.Good[0], out)
	videos := filepath.Join(data, "blobs", "videos")
	waitUntil(t, 30*time.Second, "the done job's video to be deleted", func() bool { return len(files(t, videos)) == 0 })
	if r := u.must("", "download", j.MP3FID, "-o", filepath.Join(out, "again.mp3")); r.code != 0 {
		t.Fatalf("download before expiry: %s", r)
	}
	var mail string
	waitUntil(t, 30*time.Second, "the mail", func() bool {
		m, _ := filepath.Glob(filepath.Join(data, "outbox", "*.eml"))
		if len(m) == 0 {
			return false
		}
		b, _ := os.ReadFile(m[0])
		mail = string(b)
		return true
	})
	if !strings.Contains(mail, "You can download it until") {
		t.Errorf("the mail does not say until when:\n%s", mail)
	}
	var gone result
	waitUntil(t, 30*time.Second, "the MP3 to expire", func() bool {
		gone = u.run("", "download", j.MP3FID, "-o", filepath.Join(out, "late.mp3"), "--clobber")
		return gone.code != 0
	})
	if !strings.Contains(gone.stderr, "expired on") {
		t.Fatalf("download of an expired MP3: %s", gone)
	}
	if left := files(t, filepath.Join(data, "blobs", "mp3s")); len(left) != 0 {
		t.Fatalf("MP3 files left after expiry: %v", left)
	}
	if r := u.must("", "status", j.ID, "--json"); !strings.Contains(r.stdout, `"expired": true`) {
		t.Errorf("status of an expired job: %s", r.stdout)
	}
	u.must("", "rm", j.ID)
	if r := u.run("", "status", j.ID); r.code != 4 {
		t.Fatalf("status of a deleted job: %s", r)
	}
}

// TestDistributedRetention: the gateway's janitor (the lease holder) expires MP3s in GridFS,
// and v2m rm deletes a job and its files through the gateway.
func TestDistributedRetention(t *testing.T) {
	c := startCluster(t, 1, "--mp3-ttl", "4s")
	u := c.user("ann")
	out := t.TempDir()
	a := convertJob(t, u, testmedia.Good[0], out)
	b := convertJob(t, u, testmedia.Good[1], out)
	u.must("", "rm", b.ID)
	if r := u.run("", "download", b.MP3FID, "-o", filepath.Join(out, "b.mp3"), "--clobber"); r.code != 4 {
		t.Fatalf("download of a deleted job's MP3: %s", r)
	}
	var gone result
	waitUntil(t, 30*time.Second, "the MP3 to expire", func() bool {
		gone = u.run("", "download", a.MP3FID, "-o", filepath.Join(out, "a.mp3"), "--clobber")
		return gone.code != 0
	})
	if !strings.Contains(gone.stderr, "expired on") {
		t.Fatalf("download of an expired MP3: %s", gone)
	}
	if n := metric(t, c.gateway, "v2m_retention_freed_files_total", `reason="expired"`); n < 1 {
		t.Errorf("the gateway counted %v expired files", n)
	}
	if n := metric(t, c.gateway, "v2m_retention_freed_files_total", `reason="deleted"`); n < 2 {
		t.Errorf("the gateway counted %v files of deleted jobs, want the video and the MP3", n)
	}
}
