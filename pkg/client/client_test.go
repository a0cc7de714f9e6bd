package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/wire"
)

// Route patterns of the test server's requests.
const (
	createRoute   = "POST /v1/uploads"
	partRoute     = "PUT /v1/uploads/{id}/parts/{n}"
	completeRoute = "POST /v1/uploads/{id}/complete"
	jobRoute      = "GET /v1/jobs/{id}"
	fileRoute     = "GET /v1/files/{fid}"
)

// newUser signs up on s and returns a client with the token.
func newUser(t *testing.T, s *testserver.Server, email string, opts ...client.Option) *client.Client {
	t.Helper()
	tok := s.Signup(t, email, "password1")
	c, err := client.New(s.URL+"/", append([]client.Option{client.WithToken(tok), client.WithUserAgent("test")}, opts...)...)
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

func keyFor(t *testing.T, s *testserver.Server, path string) client.UploadKey {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return client.UploadKey{Server: s.URL, Path: path, Size: fi.Size(), ModTime: fi.ModTime()}
}

// partPuts counts the part PUTs the server saw for upload id, by part number.
func partPuts(s *testserver.Server, id string) map[int]int {
	out := map[int]int{}
	for _, r := range s.Requests("PUT /v1/uploads/" + id + "/parts/{n}") {
		var n int
		fmt.Sscanf(r.Path[strings.LastIndexByte(r.Path, '/')+1:], "%d", &n)
		out[n]++
	}
	return out
}

// uploadIDOf returns the upload id in a request's path (/v1/uploads/{id}/...).
func uploadIDOf(r testserver.Request) string {
	return strings.Split(strings.TrimPrefix(r.Path, "/v1/uploads/"), "/")[0]
}

// seedUpload creates an upload of data for tok with the given parts already sent, as an
// earlier, interrupted run would have, and returns its id.
func seedUpload(t *testing.T, s *testserver.Server, c *client.Client, data []byte, parts ...int) string {
	t.Helper()
	in, _ := json.Marshal(wire.NewUpload{Filename: "talk.mp4", Size: int64(len(data))})
	var up wire.Upload
	if code := rawDo(t, c, "POST", "/v1/uploads", in, nil, &up); code != 201 {
		t.Fatalf("create upload: %d", code)
	}
	for _, n := range parts {
		part := data[int64(n)*up.PartSize : int64(n)*up.PartSize+up.PartLen(n)]
		sum := fmt.Sprintf("%08x", crc32.Checksum(part, crc32.MakeTable(crc32.Castagnoli)))
		if code := rawDo(t, c, "PUT", fmt.Sprintf("/v1/uploads/%s/parts/%d", up.ID, n), part, http.Header{"X-Part-Crc32c": {sum}}, nil); code != 204 {
			t.Fatalf("part %d: %d", n, code)
		}
	}
	return up.ID
}

func rawDo(t *testing.T, c *client.Client, method, path string, body []byte, hdr http.Header, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
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

func TestRegisterLoginMeLogout(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	ctx := context.Background()
	c, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.Register(ctx, "A@Example.com", "password1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "a@example.com" || u.ID == 0 || u.CreatedAt.IsZero() {
		t.Fatalf("user = %+v", u)
	}
	_, err = c.Register(ctx, "a@example.com", "password1")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "conflict" || ae.Message == "" {
		t.Fatalf("second register: %v (%#v)", err, ae)
	}
	if !strings.HasSuffix(err.Error(), ae.Message+" (conflict)") {
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
	if me.Email != "a@example.com" || me.Issuer != "v2m" || !me.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("me = %+v, token %+v", me, tok)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(ctx); !client.IsUnauthorized(err) {
		t.Fatalf("me after logout: %v", err)
	}
}

func TestUploadNewFile(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
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
	creates := s.Requests(createRoute)
	puts := s.Requests(partRoute)
	if len(creates) != 1 || len(puts) != 11 {
		t.Fatalf("%d uploads created and %d PUTs, want 1 and 11", len(creates), len(puts))
	}
	// The job takes the upload's id.
	if id := uploadIDOf(puts[0]); job.ID != id || job.Filename != "talk.mp4" || job.Size != int64(len(data)) || job.State != client.JobQueued {
		t.Fatalf("job = %+v, upload %s", job, id)
	}
	if !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatal("the server assembled other bytes than the file's")
	}
	// Every part carries its CRC-32C; the server checks it, so a wrong one would have failed.
	for _, r := range puts {
		if len(r.Header.Get("X-Part-CRC32C")) != 8 {
			t.Errorf("%s without X-Part-CRC32C", r.Path)
		}
	}
	if last != int64(len(data)) || total != int64(len(data)) {
		t.Fatalf("progress ended at %d/%d", last, total)
	}
	if id, err := state.Load(keyFor(t, s, path)); err != nil || id != "" {
		t.Fatalf("state after success: %q %v", id, err)
	}
}

// gate holds the first n part PUTs until all n are in flight: an upload gets past it only
// when it sends n parts at once.
type gate struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    int
	open chan struct{}
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		g.mu.Lock()
		if g.n > 0 {
			if g.n--; g.n == 0 {
				close(g.open)
			}
		}
		g.mu.Unlock()
		select {
		case <-g.open:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return g.next.RoundTrip(r)
}

func TestUploadSendsPartsInParallel(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	g := &gate{next: http.DefaultTransport, n: 3, open: make(chan struct{})}
	c := newUser(t, s, "a@example.com", client.WithHTTPClient(&http.Client{Transport: g}))
	path, data := writeFile(t, 7*1000)
	// Sent one at a time, the parts would never pass the gate: the test context ends the
	// upload, and the test fails, instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	job, err := c.Upload(ctx, path, client.UploadOptions{Parallel: 3})
	if err != nil {
		t.Fatalf("fewer than 3 parts in flight at once: %v", err)
	}
	if !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatal("assembled video differs")
	}
}

func TestUploadResumeSendsOnlyMissingParts(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	path, data := writeFile(t, 4500) // parts 0..4, the last 500 bytes
	id := seedUpload(t, s, c, data, 0, 2)
	state := client.NewFileState(filepath.Join(t.TempDir(), "state", "uploads.json"))
	if err := state.Save(keyFor(t, s, path), id); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var first, last int64 = -1, 0
	job, err := c.Upload(context.Background(), path, client.UploadOptions{State: state, Progress: func(d, _ int64) {
		mu.Lock()
		defer mu.Unlock()
		if first < 0 {
			first = d
		}
		last = d
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := partPuts(s, id), map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("PUTs per part = %v, want %v (parts 0 and 2 by the earlier run)", got, want)
	}
	if n := len(s.Requests(createRoute)); n != 1 {
		t.Fatalf("%d uploads created", n)
	}
	if job.ID != id || !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatalf("job %s of upload %s, or its video differs", job.ID, id)
	}
	if first != 2000 || last != 4500 {
		t.Fatalf("progress went from %d to %d, want 2000 (the parts the server had) to 4500", first, last)
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
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	path, data := writeFile(t, 2500)
	old := seedUpload(t, s, c, data, 0)
	if err := c.AbortUpload(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	state := client.NewFileState(filepath.Join(t.TempDir(), "uploads.json"))
	if err := state.Save(keyFor(t, s, path), old); err != nil {
		t.Fatal(err)
	}
	job, err := c.Upload(context.Background(), path, client.UploadOptions{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID == old || !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatalf("job %s (the forgotten upload was %s), or its video differs", job.ID, old)
	}
	if got := partPuts(s, job.ID); len(got) != 3 {
		t.Fatalf("PUTs of the new upload: %v, want all 3 parts", got)
	}
}

func TestUploadRetriesCutParts(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	path, data := writeFile(t, 3000)
	s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/1", 500, 2)
	var last int64
	job, err := c.Upload(context.Background(), path, client.UploadOptions{Parallel: 1, Progress: func(d, _ int64) { last = d }})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatal("assembled video differs")
	}
	if last != 3000 {
		t.Fatalf("progress ended at %d after retries, want 3000", last)
	}
	if got := partPuts(s, job.ID); got[0] != 1 || got[1] != 3 || got[2] != 1 {
		t.Fatalf("PUTs per part %v, want part 1 three times", got)
	}
}

func TestUploadGivesUpAndKeepsStateForResume(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	path, data := writeFile(t, 3000)
	state := client.NewFileState(filepath.Join(t.TempDir(), "uploads.json"))
	s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/2", 10, 100)
	_, err := c.Upload(context.Background(), path, client.UploadOptions{Parallel: 1, State: state})
	if err == nil || !strings.Contains(err.Error(), "part 2") {
		t.Fatalf("err = %v", err)
	}
	id, err := state.Load(keyFor(t, s, path))
	if err != nil || id == "" {
		t.Fatalf("state lost after failure: %q %v", id, err)
	}
	before := partPuts(s, id)
	s.Faults.Reset()
	job, err := c.Upload(context.Background(), path, client.UploadOptions{State: state})
	if err != nil {
		t.Fatal(err)
	}
	after := partPuts(s, id)
	if after[0] != before[0] || after[1] != before[1] || after[2] != before[2]+1 {
		t.Fatalf("resume sent %v after %v", after, before)
	}
	if job.ID != id || !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatal("assembled video differs")
	}
}

// TestUploadRecoversLostComplete: the server completes the upload but its answer is lost;
// the client completes again and gets the job (the real server answers 201 with it), whose
// id is the upload's. No second upload or job is made.
func TestUploadRecoversLostComplete(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	path, data := writeFile(t, 2500)
	s.Faults.LoseAnswer(completeRoute, 1)
	job, err := c.Upload(context.Background(), path, client.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	completes := s.Requests(completeRoute)
	if len(completes) != 2 || completes[0].Fault != "LoseAnswer" {
		t.Fatalf("completes: %+v", completes)
	}
	if id := uploadIDOf(completes[0]); job.ID != id || uploadIDOf(completes[1]) != id {
		t.Fatalf("job %s, upload %s", job.ID, id)
	}
	jobs, err := c.Jobs(context.Background())
	if err != nil || len(jobs) != 1 || jobs[0].ID != job.ID {
		t.Fatalf("jobs %+v %v", jobs, err)
	}
	if !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatal("assembled video differs")
	}
}

// TestUploadRecoversLostCompleteOnRerun: every answer to complete is lost, so the upload
// fails; a rerun finds the upload gone, completes it again, and reports the job made the
// first time instead of uploading the file again.
func TestUploadRecoversLostCompleteOnRerun(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	path, data := writeFile(t, 2500)
	state := client.NewFileState(filepath.Join(t.TempDir(), "uploads.json"))
	s.Faults.LoseAnswer(completeRoute, 100)
	if _, err := c.Upload(context.Background(), path, client.UploadOptions{State: state}); err == nil {
		t.Fatal("upload succeeded with every answer to complete lost")
	}
	id, err := state.Load(keyFor(t, s, path))
	if err != nil || id == "" {
		t.Fatalf("state lost: %q %v", id, err)
	}
	s.Faults.Reset()
	job, err := c.Upload(context.Background(), path, client.UploadOptions{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID != id {
		t.Fatalf("job %s, want the upload's id %s", job.ID, id)
	}
	if n := len(s.Requests(createRoute)); n != 1 {
		t.Fatalf("%d uploads created, want 1", n)
	}
	if got := partPuts(s, id); len(got) != 3 || got[0] != 1 || got[1] != 1 || got[2] != 1 {
		t.Fatalf("PUTs per part %v, want each once", got)
	}
	if !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatal("assembled video differs")
	}
	if id, _ := state.Load(keyFor(t, s, path)); id != "" {
		t.Fatalf("state kept %q after the job was found", id)
	}
}

func TestUploadEmptyFileAndSHA256(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	c := newUser(t, s, "a@example.com")
	path, _ := writeFile(t, 0)
	job, err := c.Upload(context.Background(), path, client.UploadOptions{SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if job.Size != 0 || len(s.Video(t, job.ID)) != 0 {
		t.Fatalf("job = %+v", job)
	}
	path, data := writeFile(t, 5000)
	job, err = c.Upload(context.Background(), path, client.UploadOptions{SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatal("assembled video differs")
	}
}

func TestUploadErrors(t *testing.T) {
	s := testserver.New(t, testserver.Options{MaxUploadSize: 100})
	c := newUser(t, s, "a@example.com")
	ctx := context.Background()
	if _, err := c.Upload(ctx, filepath.Join(t.TempDir(), "missing.mp4"), client.UploadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := c.Upload(ctx, t.TempDir(), client.UploadOptions{}); err == nil {
		t.Fatal("uploading a directory succeeded")
	}
	path, _ := writeFile(t, 101)
	var ae *client.APIError
	if _, err := c.Upload(ctx, path, client.UploadOptions{}); !errors.As(err, &ae) || ae.Status != 413 || ae.Code != "too_large" {
		t.Fatalf("too large: %v", err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	path, _ = writeFile(t, 10)
	if _, err := c.Upload(ctx, path, client.UploadOptions{}); !client.IsUnauthorized(err) {
		t.Fatalf("revoked token: %v", err)
	}
}

// gatedConvert converts like testserver.FakeConvert, except that a video starting with "fail"
// fails for good and one starting with "hold" waits for release.
func gatedConvert(release <-chan struct{}) testserver.ConvertFunc {
	return func(ctx context.Context, src, dst string, progress func(int)) error {
		video, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(video, []byte("fail")):
			return testserver.Fail("no audio stream")(ctx, src, dst, progress)
		case bytes.HasPrefix(video, []byte("hold")):
			progress(40)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return testserver.FakeConvert(ctx, src, dst, progress)
	}
}

func upload(t *testing.T, c *client.Client, name string, video []byte) *client.Job {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, video, 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := c.Upload(context.Background(), p, client.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJobsAndWait(t *testing.T) {
	release := make(chan struct{})
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(release)})
	c := newUser(t, s, "a@example.com")
	other := upload(t, newUser(t, s, "b@example.com"), "theirs.mp4", []byte("theirs"))
	j1 := upload(t, c, "one.mp4", []byte("fail: not a video"))
	j2 := upload(t, c, "two.mp4", []byte("hold: a video"))
	ctx := context.Background()

	jobs, err := c.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != j2.ID || jobs[1].ID != j1.ID {
		t.Fatalf("jobs = %+v", jobs)
	}
	if _, err := c.Job(ctx, other.ID); !client.IsNotFound(err) {
		t.Fatalf("someone else's job: %v", err)
	}
	if _, err := c.Wait(ctx, other.ID, nil); !client.IsNotFound(err) {
		t.Fatalf("wait on someone else's job: %v", err)
	}
	if _, err := c.Wait(ctx, "nope", nil); !client.IsNotFound(err) {
		t.Fatalf("wait on a missing job: %v", err)
	}

	j, err := c.Wait(ctx, j1.ID, nil)
	if err != nil || j.State != client.JobFailed || j.Error != "no audio stream" || j.FinishedAt == nil || j.MP3FID != "" {
		t.Fatalf("failed job: %+v %v", j, err)
	}

	// The job finishes while Wait long-polls it.
	poll := s.Next(jobRoute)
	go func() { <-poll; close(release) }()
	var calls int
	j, err = c.Wait(ctx, j2.ID, func(*client.Job) { calls++ })
	if err != nil || j.State != client.JobDone || j.MP3FID == "" || j.Progress != 100 || j.FinishedAt == nil {
		t.Fatalf("done job: %+v %v", j, err)
	}
	if calls == 0 {
		t.Error("progress was never called")
	}
	for _, r := range s.Requests("GET /v1/jobs/" + j2.ID) {
		if r.Query != "wait=30s" {
			t.Errorf("Wait asked %s?%s, want a long-poll", r.Path, r.Query)
		}
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(nil)}) // held until the end
	c := newUser(t, s, "a@example.com")
	job := upload(t, c, "x.mp4", []byte("hold"))
	ctx, cancel := context.WithCancel(context.Background())
	poll := s.Next(jobRoute)
	go func() { <-poll; cancel() }()
	j, err := c.Wait(ctx, job.ID, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if j != nil && j.Final() {
		t.Fatalf("job %+v", j)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.Jobs(context.Background()); !client.IsUnreachable(err) {
		t.Fatalf("IsUnreachable(%v) = false", err)
	}
	// The message says why in a few words, not with the transport's details.
	var ce *client.ConnError
	if !errors.As(err, &ce) || ce.Error() != "connection refused" || err.Error() != "list jobs: connection refused" {
		t.Fatalf("%v (%T), want a ConnError saying \"connection refused\"", err, err)
	}
	if client.IsUnreachable(&client.APIError{Status: 503}) {
		t.Fatal("an API error counted as unreachable")
	}
}

// mp3Server is a test server whose conversions all give mp3, and a user's client on it.
func mp3Server(t *testing.T, mp3 []byte) (*testserver.Server, *client.Client) {
	s := testserver.New(t, testserver.Options{Convert: func(_ context.Context, _, dst string, _ func(int)) error {
		return os.WriteFile(dst, mp3, 0o600)
	}})
	return s, newUser(t, s, "a@example.com")
}

// converted uploads a video with c and returns its done job.
func converted(t *testing.T, c *client.Client) *client.Job {
	t.Helper()
	j, err := c.Wait(context.Background(), upload(t, c, "talk.mp4", []byte("video")).ID, nil)
	if err != nil || j.State != client.JobDone {
		t.Fatalf("job %+v %v", j, err)
	}
	return j
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestDownload(t *testing.T) {
	data := randomBytes(200_000)
	s, c := mp3Server(t, data)
	fid := converted(t, c).MP3FID
	theirs := converted(t, newUser(t, s, "b@example.com")).MP3FID
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

	if err := c.Download(ctx, theirs, filepath.Join(dir, "b.mp3"), nil); !client.IsNotFound(err) {
		t.Fatalf("someone else's file: %v", err)
	}
	assertGone(t, filepath.Join(dir, "b.mp3"), filepath.Join(dir, "b.mp3.part"))
}

func TestDownloadResumesWithRange(t *testing.T) {
	data := randomBytes(300_000)
	s, c := mp3Server(t, data)
	fid := converted(t, c).MP3FID
	dst := filepath.Join(t.TempDir(), "talk.mp3")
	ctx := context.Background()

	s.Faults.CutResponse(fileRoute, 100_000, 1)
	if err := c.Download(ctx, fid, dst, nil); err == nil {
		t.Fatal("a cut download succeeded")
	}
	fi, err := os.Stat(dst + ".part")
	if err != nil || fi.Size() != 100_000 {
		t.Fatalf("part file after the cut: %v %v", fi, err)
	}
	assertGone(t, dst)
	var firstDone int64 = -1
	if err := c.Download(ctx, fid, dst, func(d, _ int64) {
		if firstDone < 0 {
			firstDone = d
		}
	}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, data)
	if firstDone != 100_000 {
		t.Fatalf("resume started at %d, want 100000", firstDone)
	}
	reqs := s.Requests(fileRoute)
	if len(reqs) != 2 || reqs[0].Fault != "CutResponse" {
		t.Fatalf("downloads: %+v", reqs)
	}
	if h := reqs[1].Header; h.Get("Range") != "bytes=100000-" || h.Get("If-Range") != `"`+fid+`"` {
		t.Fatalf("resume sent Range %q, If-Range %q", h.Get("Range"), h.Get("If-Range"))
	}
	assertGone(t, dst+".part", dst+".part.etag")
}

// TestDownloadRefetchesChangedFile: a part file kept for another version of the file (its
// ETag differs) is replaced by the whole file, which the server sends for If-Range.
func TestDownloadRefetchesChangedFile(t *testing.T) {
	data := randomBytes(100_000)
	s, c := mp3Server(t, data)
	fid := converted(t, c).MP3FID
	dst := filepath.Join(t.TempDir(), "talk.mp3")
	if err := os.WriteFile(dst+".part", bytes.Repeat([]byte("b"), 50_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".part.etag", []byte(`"another-version"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Download(context.Background(), fid, dst, nil); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, data)
	if h := s.Requests(fileRoute)[0].Header; h.Get("Range") != "bytes=50000-" || h.Get("If-Range") != `"another-version"` {
		t.Fatalf("sent Range %q, If-Range %q", h.Get("Range"), h.Get("If-Range"))
	}
}

// TestDownloadStartsOverWhenPartIsTooLong: a part file longer than the file gets 416 for its
// Range, and the client fetches the whole file instead.
func TestDownloadStartsOverWhenPartIsTooLong(t *testing.T) {
	data := randomBytes(10_000)
	s, c := mp3Server(t, data)
	fid := converted(t, c).MP3FID
	dst := filepath.Join(t.TempDir(), "talk.mp3")
	if err := os.WriteFile(dst+".part", randomBytes(20_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".part.etag", []byte(`"`+fid+`"`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Download(context.Background(), fid, dst, nil); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, data)
	if reqs := s.Requests(fileRoute); len(reqs) != 2 || reqs[1].Header.Get("Range") != "" {
		t.Fatalf("downloads: %+v", reqs)
	}
}

func TestDownloadPartWithoutETagStartsOver(t *testing.T) {
	data := bytes.Repeat([]byte("xyz"), 10_000)
	s, c := mp3Server(t, data)
	fid := converted(t, c).MP3FID
	dst := filepath.Join(t.TempDir(), "talk.mp3")
	if err := os.WriteFile(dst+".part", []byte("garbage that must not survive"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Download(context.Background(), fid, dst, nil); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, data)
	for _, r := range s.Requests(fileRoute) {
		if r.Header.Get("Range") != "" {
			t.Fatalf("sent a Range without an ETag: %v", r.Header)
		}
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

// TestUploadOptionsAndResume: the options go in POST /v1/uploads and the job has them. They
// are part of the resume key: after an interrupted upload with some options, a run with other
// options makes a new upload and a job with its own options rather than completing the old
// upload with the old ones; a run with the first options then resumes the first upload.
func TestUploadOptionsAndResume(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	path, data := writeFile(t, 3000)
	state := client.NewFileState(filepath.Join(t.TempDir(), "uploads.json"))
	cbr := &client.JobOptions{Bitrate: "192k", Start: "5s"}
	best := &client.JobOptions{Quality: ptr(0), Cover: ptr(false)}

	s.Faults.CutRequestBody("PUT /v1/uploads/{id}/parts/2", 10, 100)
	if _, err := c.Upload(context.Background(), path, client.UploadOptions{Parallel: 1, State: state, Options: cbr}); err == nil {
		t.Fatal("the interrupted upload succeeded")
	}
	s.Faults.Reset()
	first := uploadIDOf(s.Requests(partRoute)[0])

	job, err := c.Upload(context.Background(), path, client.UploadOptions{State: state, Options: best})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID == first || len(s.Requests(createRoute)) != 2 {
		t.Fatalf("the run with other options completed upload %s (first %s; %d created)", job.ID, first, len(s.Requests(createRoute)))
	}
	if o := job.Options; o == nil || o.Quality == nil || *o.Quality != 0 || o.Cover == nil || *o.Cover || o.Bitrate != "" {
		t.Fatalf("job options %+v, want quality 0 without cover", o)
	}
	if got, err := c.Job(context.Background(), job.ID); err != nil || got.Options == nil || *got.Options.Quality != 0 {
		t.Fatalf("GET job = %+v, %v", got, err)
	}

	job, err = c.Upload(context.Background(), path, client.UploadOptions{State: state, Options: cbr})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID != first || len(s.Requests(createRoute)) != 2 {
		t.Fatalf("the run with the first options made job %s, want the resumed upload %s", job.ID, first)
	}
	if o := job.Options; o == nil || o.Bitrate != "192k" || o.Start != "5s" || o.Quality != nil {
		t.Fatalf("resumed job options %+v, want the first run's", o)
	}
	if !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatal("assembled video differs")
	}
}

// TestUploadBadOptionsSendNothing: options that the server would refuse are refused before any
// request, with the server's message.
func TestUploadBadOptionsSendNothing(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	c := newUser(t, s, "a@example.com")
	path, _ := writeFile(t, 100)
	before := len(s.Requests("/"))
	_, err := c.Upload(context.Background(), path, client.UploadOptions{Options: &client.JobOptions{Quality: ptr(12)}})
	var oe *wire.OptionError
	if !errors.As(err, &oe) || oe.Option != "quality" || !strings.Contains(err.Error(), `option "quality" must be 0 (best) to 9, not 12`) {
		t.Fatalf("err = %v, want the quality option refused", err)
	}
	if n := len(s.Requests("/")); n != before {
		t.Fatalf("%d requests for an upload with bad options", n-before)
	}
}

func ptr[T any](v T) *T { return &v }
