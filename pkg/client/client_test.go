package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/client/internal/apitest"
)

func newClient(t *testing.T, s *apitest.Server, token string) *client.Client {
	t.Helper()
	c, err := client.New(s.URL+"/", client.WithToken(token), client.WithUserAgent("test"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	p := filepath.Join(t.TempDir(), "talk.mp4")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "localhost:8080", "http://", "http://x/?a=1"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
	c, err := client.New("http://127.0.0.1:8080/")
	if err != nil || c.BaseURL != "http://127.0.0.1:8080" {
		t.Fatalf("New: %v %q", err, c.BaseURL)
	}
}

func TestRegisterLoginMe(t *testing.T) {
	s := apitest.New()
	defer s.Close()
	ctx := context.Background()
	c := newClient(t, s, "")
	u, err := c.Register(ctx, "A@Example.com", "password1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "a@example.com" || u.ID == 0 || u.CreatedAt.IsZero() {
		t.Fatalf("user = %+v", u)
	}
	_, err = c.Register(ctx, "a@example.com", "password1")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "conflict" || ae.Message != "email taken" {
		t.Fatalf("second register: %v (%#v)", err, ae)
	}
	if !strings.Contains(err.Error(), "email taken (conflict)") {
		t.Fatalf("error text %q", err)
	}
	if _, err := c.Register(ctx, "b@example.com", "short"); client.StatusOf(err) != 400 {
		t.Fatalf("short password: %v", err)
	}
	if _, err := c.Login(ctx, "a@example.com", "wrong-password"); !client.IsUnauthorized(err) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := c.Me(ctx); !client.IsUnauthorized(err) {
		t.Fatalf("me without token: %v", err)
	}
	tok, err := c.Login(ctx, "a@example.com", "password1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || tok.ExpiresAt.IsZero() {
		t.Fatalf("token = %+v", tok)
	}
	c.Token = tok.Token
	me, err := c.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.Email != "a@example.com" || me.Issuer != "v2m" {
		t.Fatalf("me = %+v", me)
	}
}

func TestUploadNewFile(t *testing.T) {
	s := apitest.New(apitest.WithPartSize(1000))
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	path, data := writeFile(t, 10*1000+123)
	state := client.NewFileState(filepath.Join(t.TempDir(), "uploads.json"))
	var mu sync.Mutex
	var last, total int64
	job, err := c.Upload(context.Background(), path, client.UploadOptions{
		Parallel: 3, State: state,
		Progress: func(d, tt int64) { mu.Lock(); last, total = d, tt; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID == "" || job.Filename != "talk.mp4" || job.Size != int64(len(data)) || job.State != client.JobQueued {
		t.Fatalf("job = %+v", job)
	}
	if !bytes.Equal(s.Video(job.ID), data) {
		t.Fatal("the server assembled other bytes than the file's")
	}
	if n := s.TotalPuts(); n != 11 {
		t.Fatalf("%d PUTs, want 11", n)
	}
	if last != int64(len(data)) || total != int64(len(data)) {
		t.Fatalf("progress ended at %d/%d", last, total)
	}
	key := keyFor(t, s, path)
	if id, err := state.Load(key); err != nil || id != "" {
		t.Fatalf("state after success: %q %v", id, err)
	}
}

func keyFor(t *testing.T, s *apitest.Server, path string) client.UploadKey {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return client.UploadKey{Server: s.URL, Path: path, Size: fi.Size(), ModTime: fi.ModTime()}
}

func TestUploadResumeSendsOnlyMissingParts(t *testing.T) {
	s := apitest.New(apitest.WithPartSize(1000))
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	path, data := writeFile(t, 4500) // parts 0..4, the last 500 bytes
	id := s.SeedUpload("a@example.com", "talk.mp4", data, []int{0, 2})
	state := client.NewFileState(filepath.Join(t.TempDir(), "state", "uploads.json"))
	if err := state.Save(keyFor(t, s, path), id); err != nil {
		t.Fatal(err)
	}
	var last int64
	job, err := c.Upload(context.Background(), path, client.UploadOptions{State: state, Progress: func(d, _ int64) { last = d }})
	if err != nil {
		t.Fatal(err)
	}
	puts := s.PartPuts(id)
	want := map[int]int{1: 1, 3: 1, 4: 1}
	if len(puts) != len(want) || puts[1] != 1 || puts[3] != 1 || puts[4] != 1 {
		t.Fatalf("PUTs per part = %v, want %v", puts, want)
	}
	if !bytes.Equal(s.Video(job.ID), data) {
		t.Fatal("assembled video differs")
	}
	if last != 4500 {
		t.Fatalf("progress ended at %d", last)
	}
	fi, err := os.Stat(state.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v", fi.Mode().Perm())
	}
}

func TestUploadRestartsWhenServerForgotUpload(t *testing.T) {
	s := apitest.New(apitest.WithPartSize(1000))
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	path, data := writeFile(t, 2500)
	old := s.SeedUpload("a@example.com", "talk.mp4", data, []int{0})
	s.DropUpload(old)
	state := client.NewFileState(filepath.Join(t.TempDir(), "uploads.json"))
	if err := state.Save(keyFor(t, s, path), old); err != nil {
		t.Fatal(err)
	}
	job, err := c.Upload(context.Background(), path, client.UploadOptions{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Video(job.ID), data) {
		t.Fatal("assembled video differs")
	}
	if n := s.TotalPuts(); n != 3 {
		t.Fatalf("%d PUTs, want 3", n)
	}
}

func TestUploadRetriesServerErrors(t *testing.T) {
	s := apitest.New(apitest.WithPartSize(1000))
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	path, data := writeFile(t, 3000)
	s.FailPart(1, 2)
	var last int64
	job, err := c.Upload(context.Background(), path, client.UploadOptions{Parallel: 1, Progress: func(d, _ int64) { last = d }})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Video(job.ID), data) {
		t.Fatal("assembled video differs")
	}
	if last != 3000 {
		t.Fatalf("progress ended at %d after retries, want 3000", last)
	}
	if got := s.TotalPuts(); got != 5 {
		t.Fatalf("%d PUTs, want 5 (part 1 three times)", got)
	}
}

func TestUploadGivesUpAndKeepsStateForResume(t *testing.T) {
	s := apitest.New(apitest.WithPartSize(1000))
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	path, data := writeFile(t, 3000)
	state := client.NewFileState(filepath.Join(t.TempDir(), "uploads.json"))
	s.FailPart(2, 100)
	_, err := c.Upload(context.Background(), path, client.UploadOptions{Parallel: 1, State: state})
	if client.StatusOf(err) != 500 || !strings.Contains(err.Error(), "part 2") {
		t.Fatalf("err = %v", err)
	}
	id, err := state.Load(keyFor(t, s, path))
	if err != nil || id == "" {
		t.Fatalf("state lost after failure: %q %v", id, err)
	}
	before := s.PartPuts(id)
	s.FailPart(2, 0)
	job, err := c.Upload(context.Background(), path, client.UploadOptions{State: state})
	if err != nil {
		t.Fatal(err)
	}
	after := s.PartPuts(id)
	if after[0] != before[0] || after[1] != before[1] || after[2] != before[2]+1 {
		t.Fatalf("resume sent %v after %v", after, before)
	}
	if !bytes.Equal(s.Video(job.ID), data) {
		t.Fatal("assembled video differs")
	}
}

func TestUploadEmptyFileAndSHA256(t *testing.T) {
	s := apitest.New()
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	path, _ := writeFile(t, 0)
	job, err := c.Upload(context.Background(), path, client.UploadOptions{SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if job.Size != 0 || len(s.Video(job.ID)) != 0 {
		t.Fatalf("job = %+v", job)
	}
	path, data := writeFile(t, 5000)
	job, err = c.Upload(context.Background(), path, client.UploadOptions{SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Video(job.ID), data) {
		t.Fatal("assembled video differs")
	}
}

func TestUploadErrors(t *testing.T) {
	s := apitest.New(apitest.WithMaxSize(100))
	defer s.Close()
	tok := s.AddUser("a@example.com", "password1")
	c := newClient(t, s, tok)
	ctx := context.Background()
	if _, err := c.Upload(ctx, filepath.Join(t.TempDir(), "missing.mp4"), client.UploadOptions{}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := c.Upload(ctx, t.TempDir(), client.UploadOptions{}); err == nil {
		t.Fatal("uploading a directory succeeded")
	}
	path, _ := writeFile(t, 101)
	if _, err := c.Upload(ctx, path, client.UploadOptions{}); client.StatusOf(err) != 413 {
		t.Fatalf("too large: %v", err)
	}
	s.ExpireToken(tok)
	path, _ = writeFile(t, 10)
	if _, err := c.Upload(ctx, path, client.UploadOptions{}); !client.IsUnauthorized(err) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestJobsAndWait(t *testing.T) {
	s := apitest.New(apitest.WithManualJobs())
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	other := s.AddJob("b@example.com", "theirs.mp4", "done", "")
	j1 := s.AddJob("a@example.com", "one.mp4", "failed", "no audio stream")
	j2 := s.AddJob("a@example.com", "two.mp4", "queued", "")
	ctx := context.Background()

	jobs, err := c.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != j2 || jobs[1].ID != j1 {
		t.Fatalf("jobs = %+v", jobs)
	}
	if _, err := c.Job(ctx, other); !client.IsNotFound(err) {
		t.Fatalf("someone else's job: %v", err)
	}
	if _, err := c.Wait(ctx, "nope", nil); !client.IsNotFound(err) {
		t.Fatalf("wait on a missing job: %v", err)
	}

	j, err := c.Wait(ctx, j1, nil)
	if err != nil || j.State != client.JobFailed || j.Error != "no audio stream" || j.FinishedAt == nil {
		t.Fatalf("failed job: %+v %v", j, err)
	}

	// The job finishes while Wait long-polls.
	go func() {
		for !slices.Contains(s.Requests(), "GET /v1/jobs/"+j2) {
			time.Sleep(5 * time.Millisecond)
		}
		s.Finish(j2)
	}()
	var calls int
	j, err = c.Wait(ctx, j2, func(*client.Job) { calls++ })
	if calls == 0 {
		t.Error("progress was never called")
	}
	if err != nil || j.State != client.JobDone || j.MP3FID == "" || j.Progress != 100 {
		t.Fatalf("done job: %+v %v", j, err)
	}
}

func TestWaitTimeout(t *testing.T) {
	s := apitest.New(apitest.WithManualJobs())
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	id := s.AddJob("a@example.com", "x.mp4", "queued", "")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	j, err := c.Wait(ctx, id, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	_ = j // nil or queued, depending on when the deadline hit
}

func TestUnreachable(t *testing.T) {
	s := apitest.New()
	url := s.URL
	s.Close()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Jobs(context.Background())
	if !client.IsUnreachable(err) {
		t.Fatalf("IsUnreachable(%v) = false", err)
	}
	if client.IsUnreachable(&client.APIError{Status: 503}) {
		t.Fatal("an API error counted as unreachable")
	}
}

func TestDownload(t *testing.T) {
	s := apitest.New()
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	data := make([]byte, 200_000)
	_, _ = rand.Read(data)
	fid := s.AddFile("a@example.com", "talk.mp3", data)
	theirs := s.AddFile("b@example.com", "theirs.mp3", data)
	dir := t.TempDir()
	ctx := context.Background()

	dst := filepath.Join(dir, "a.mp3")
	var done, total int64
	if err := c.Download(ctx, fid, dst, func(d, tt int64) { done, total = d, tt }); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, data)
	if done != int64(len(data)) || total != int64(len(data)) {
		t.Fatalf("progress %d/%d", done, total)
	}
	assertGone(t, dst+".part", dst+".part.etag")

	err := c.Download(ctx, theirs, filepath.Join(dir, "b.mp3"), nil)
	if !client.IsNotFound(err) {
		t.Fatalf("someone else's file: %v", err)
	}
}

func TestDownloadResumesWithRange(t *testing.T) {
	s := apitest.New()
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	data := make([]byte, 300_000)
	_, _ = rand.Read(data)
	fid := s.AddFile("a@example.com", "talk.mp3", data)
	dst := filepath.Join(t.TempDir(), "talk.mp3")
	ctx := context.Background()

	s.CutNextDownload(100_000)
	if err := c.Download(ctx, fid, dst, nil); err == nil {
		t.Fatal("a cut download succeeded")
	}
	fi, err := os.Stat(dst + ".part")
	if err != nil {
		t.Fatal(err)
	}
	have := fi.Size()
	if have == 0 || have > 100_000 {
		t.Fatalf("part file has %d bytes", have)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("dst exists after a failed download")
	}
	var firstDone int64 = -1
	if err := c.Download(ctx, fid, dst, func(d, _ int64) {
		if firstDone < 0 {
			firstDone = d
		}
	}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, data)
	if firstDone != have {
		t.Fatalf("resume started at %d, want %d", firstDone, have)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if !strings.Contains(last, "Range=bytes="+itoa(have)+"-") || !strings.Contains(last, `If-Range="`) {
		t.Fatalf("last request %q", last)
	}
}

func TestDownloadRefetchesChangedFile(t *testing.T) {
	s := apitest.New()
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	data := bytes.Repeat([]byte("a"), 100_000)
	fid := s.AddFile("a@example.com", "talk.mp3", data)
	dst := filepath.Join(t.TempDir(), "talk.mp3")
	s.CutNextDownload(50_000)
	if err := c.Download(context.Background(), fid, dst, nil); err == nil {
		t.Fatal("a cut download succeeded")
	}
	changed := bytes.Repeat([]byte("b"), 80_000)
	s.ReplaceFile(fid, changed)
	if err := c.Download(context.Background(), fid, dst, nil); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, changed)
}

func TestDownloadPartWithoutETagStartsOver(t *testing.T) {
	s := apitest.New()
	defer s.Close()
	c := newClient(t, s, s.AddUser("a@example.com", "password1"))
	data := bytes.Repeat([]byte("xyz"), 10_000)
	fid := s.AddFile("a@example.com", "talk.mp3", data)
	dst := filepath.Join(t.TempDir(), "talk.mp3")
	if err := os.WriteFile(dst+".part", []byte("garbage that must not survive"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Download(context.Background(), fid, dst, nil); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, data)
	reqs := s.Requests()
	if slices.ContainsFunc(reqs, func(r string) bool { return strings.Contains(r, "Range=") }) {
		t.Fatalf("sent a Range without an ETag: %v", reqs)
	}
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d expected", path, len(got), len(want))
	}
}

func assertGone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (%v)", p, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
