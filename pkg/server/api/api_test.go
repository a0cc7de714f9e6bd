package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/token"
)

type env struct {
	t     *testing.T
	srv   *httptest.Server
	logs  *syncBuffer // the server's log, as text
	db    *sqlite.DB
	q     *sqlite.Queue
	blobs *disk.Store
	key   token.Key
	dir   string // the blob store's root
}

// failingQueue is a Queue whose broker is down.
type failingQueue struct{}

func (failingQueue) Publish(context.Context, string, []byte) error { return errors.New("broker down") }
func (failingQueue) Consume(context.Context, string, int, server.Handler) error {
	return errors.New("broker down")
}

func newEnv(t *testing.T, edit ...func(*Config)) *env {
	t.Helper()
	return newEnvOn(t, nil, edit...)
}

// newEnvOn is newEnv with the server's listener wrapped by wrap (when not nil).
func newEnvOn(t *testing.T, wrap func(net.Listener) net.Listener, edit ...func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := token.GenerateEd25519PEM()
	k, _ := token.ParseKey(token.EdDSA, pem)
	q := db.Queue(sqlite.QueueConfig{})
	cfg := Config{
		Accounts: &auth.Service{Users: db.Users(), Tokens: &token.Issuer{Key: k, Issuer: "v2m"}, Cost: bcrypt.MinCost},
		Verifier: &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{k}},
		Service: &jobs.Service{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: blobs, Queue: q,
			PartSize: 1024, MaxUploadSize: 1 << 20, Limits: db.Limits()},
		PollInterval: 10 * time.Millisecond,
	}
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, f := range edit {
		f(&cfg)
	}
	// The real server configuration, as v2md runs it, on a real listener.
	h := New(cfg)
	srv := httptest.NewUnstartedServer(h)
	srv.Config = NewHTTPServer(h, cfg.Limits, cfg.Logger)
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, logs: logs, db: db, q: q, blobs: blobs, key: k, dir: filepath.Join(dir, "blobs")}
}

// issuer signs tokens with the server's key, as its login does.
func (e *env) issuer() *token.Issuer { return &token.Issuer{Key: e.key, Issuer: "v2m"} }

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// noErrorLogs fails the test when the server logged at ERROR: that level is for its own faults.
func (e *env) noErrorLogs() {
	e.t.Helper()
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			e.t.Errorf("server logged an error for a client's fault: %s", line)
		}
	}
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) json(v any) error { return json.Unmarshal(r.body, v) }

func (r resp) errCode() string {
	var e struct{ Error struct{ Code string } }
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (e *env) do(method, path, tok string, body io.Reader, hdr ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func jsonBody(v any) io.Reader { b, _ := json.Marshal(v); return bytes.NewReader(b) }

// user registers and logs in, returning a token.
func (e *env) user(email string) string {
	e.t.Helper()
	if r := e.do("POST", "/v1/users", "", jsonBody(map[string]string{"email": email, "password": "password123"})); r.code != 201 {
		e.t.Fatalf("register %s: %d %s", email, r.code, r.body)
	}
	r := e.do("POST", "/v1/tokens", "", nil, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(email+":password123")))
	var tok struct{ Token string }
	if r.code != 200 || r.json(&tok) != nil || tok.Token == "" {
		e.t.Fatalf("login: %d %s", r.code, r.body)
	}
	return tok.Token
}

func TestUsersAndTokens(t *testing.T) {
	e := newEnv(t)
	e.user("ann@example.com")
	for _, tc := range []struct {
		body any
		code int
	}{
		{map[string]string{"email": "ann@example.com", "password": "password123"}, 409},
		{map[string]string{"email": "not-an-email", "password": "password123"}, 400},
		{map[string]string{"email": "bob@example.com", "password": "short"}, 400},
		{map[string]string{"email": "bob@example.com", "password": strings.Repeat("p", 73)}, 400},
		{"not an object", 400},
	} {
		if r := e.do("POST", "/v1/users", "", jsonBody(tc.body)); r.code != tc.code {
			t.Errorf("register %v: %d %s, want %d", tc.body, r.code, r.body, tc.code)
		}
	}
	if r := e.do("POST", "/v1/users", "", strings.NewReader("{")); r.code != 400 || r.errCode() != "invalid" {
		t.Errorf("malformed JSON: %d %s", r.code, r.body)
	}
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	if r := e.do("POST", "/v1/tokens", "", nil, "Authorization", basic("ann@example.com", "wrong-password")); r.code != 401 {
		t.Errorf("bad password: %d", r.code)
	}
	if r := e.do("POST", "/v1/tokens", "", nil); r.code != 401 || r.hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials: %d", r.code)
	}
}

func TestTokensRejected(t *testing.T) {
	e := newEnv(t)
	good := e.user("ann@example.com")
	parts := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	for name, tok := range map[string]string{"missing": "", "garbage": "abc", "alg none": none, "bad signature": parts[0] + "." + parts[1] + ".AAAA"} {
		r := e.do("GET", "/v1/jobs", tok, nil)
		if r.code != 401 || r.errCode() != "unauthorized" {
			t.Errorf("%s: %d %s", name, r.code, r.body)
		}
	}
	if r := e.do("GET", "/v1/me", good, nil); r.code != 200 || !strings.Contains(string(r.body), "ann@example.com") {
		t.Errorf("me: %d %s", r.code, r.body)
	}
}

func crc(b []byte) string {
	return fmt.Sprintf("%08x", crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

type uploadResp struct {
	ID       string
	PartSize int64 `json:"part_size"`
	Parts    int
	Received []int
}

type jobResp struct {
	ID, State, Error, Filename string
	MP3FID                     string `json:"mp3_fid"`
	Progress                   int
	FinishedAt                 *time.Time `json:"finished_at"`
}

func TestChunkedUpload(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	data := bytes.Repeat([]byte("0123456789abcdef"), 200) // 3200 bytes: parts of 1024, 1024, 1024, 128
	var up uploadResp
	r := e.do("POST", "/v1/uploads", tok, jsonBody(map[string]any{"filename": "../dir/talk.mp4", "size": len(data)}))
	if r.code != 201 || r.json(&up) != nil || up.Parts != 4 || up.PartSize != 1024 || len(up.Received) != 0 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	part := func(n int) []byte { return data[n*1024 : min(len(data), (n+1)*1024)] }
	put := func(n int, b []byte, hdr ...string) resp {
		return e.do("PUT", fmt.Sprintf("/v1/uploads/%s/parts/%d", up.ID, n), tok, bytes.NewReader(b), hdr...)
	}
	if r := put(3, part(3), "X-Part-CRC32C", crc(part(3))); r.code != 204 {
		t.Fatalf("part 3: %d %s", r.code, r.body)
	}
	if r := put(1, part(1)); r.code != 204 {
		t.Fatalf("part 1: %d %s", r.code, r.body)
	}
	if r := put(0, part(0), "X-Part-CRC32C", "00000000"); r.code != 400 || !strings.Contains(string(r.body), "CRC-32C") {
		t.Fatalf("bad checksum: %d %s", r.code, r.body)
	}
	if r := put(0, part(0)[:10]); r.code != 400 {
		t.Fatalf("short part: %d %s", r.code, r.body)
	}
	if r := put(4, nil); r.code != 400 {
		t.Fatalf("part out of range: %d", r.code)
	}
	r = e.do("GET", "/v1/uploads/"+up.ID, tok, nil)
	if r.json(&up) != nil || fmt.Sprint(up.Received) != "[1 3]" {
		t.Fatalf("received after bad parts = %v", up.Received)
	}
	if r := e.do("POST", "/v1/uploads/"+up.ID+"/complete", tok, nil); r.code != 409 {
		t.Fatalf("complete with parts missing: %d %s", r.code, r.body)
	}
	// Someone else sees nothing of it.
	other := e.user("bob@example.com")
	if r := e.do("GET", "/v1/uploads/"+up.ID, other, nil); r.code != 404 {
		t.Fatalf("other user's upload: %d", r.code)
	}
	if r := e.do("PUT", "/v1/uploads/"+up.ID+"/parts/0", other, bytes.NewReader(part(0))); r.code != 404 {
		t.Fatalf("other user's part: %d", r.code)
	}
	for _, n := range []int{0, 2, 2} {
		if r := put(n, part(n), "X-Part-CRC32C", crc(part(n))); r.code != 204 {
			t.Fatalf("part %d: %d %s", n, r.code, r.body)
		}
	}
	var j jobResp
	r = e.do("POST", "/v1/uploads/"+up.ID+"/complete", tok, nil)
	if r.code != 201 || r.json(&j) != nil || j.State != "queued" || j.Filename != "talk.mp4" || j.MP3FID != "" {
		t.Fatalf("complete: %d %s", r.code, r.body)
	}
	var again jobResp
	if r := e.do("POST", "/v1/uploads/"+up.ID+"/complete", tok, nil); r.code != 201 || r.json(&again) != nil || again.ID != j.ID {
		t.Fatalf("complete again: %d %s", r.code, r.body)
	}
	live, _, _ := e.q.Depth(context.Background(), server.TopicVideo)
	if live != 1 {
		t.Fatalf("video queue holds %d messages, want 1", live)
	}
	b, err := e.blobs.Open(context.Background(), server.BucketVideos, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(b)
	b.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("stored video differs")
	}
	if r := e.do("GET", "/v1/jobs/"+j.ID, other, nil); r.code != 404 {
		t.Fatalf("other user's job: %d", r.code)
	}
}

func TestUploadLimitsAndAbort(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	if r := e.do("POST", "/v1/uploads", tok, jsonBody(map[string]any{"filename": "big.mp4", "size": 2 << 20})); r.code != 413 || r.errCode() != "too_large" {
		t.Fatalf("too large: %d %s", r.code, r.body)
	}
	for _, body := range []any{
		map[string]any{"filename": "", "size": 10}, map[string]any{"filename": "a.mp4", "size": -1},
		map[string]any{"filename": "a.mp4", "size": 1.5}, map[string]any{"filename": "a.mp4", "size": 10, "sha256": "xyz"},
	} {
		if r := e.do("POST", "/v1/uploads", tok, jsonBody(body)); r.code != 400 {
			t.Errorf("%v: %d %s", body, r.code, r.body)
		}
	}
	sum := strings.Repeat("0", 64)
	var up uploadResp
	e.do("POST", "/v1/uploads", tok, jsonBody(map[string]any{"filename": "a.mp4", "size": 5, "sha256": sum})).json(&up)
	e.do("PUT", "/v1/uploads/"+up.ID+"/parts/0", tok, strings.NewReader("hello"))
	if r := e.do("POST", "/v1/uploads/"+up.ID+"/complete", tok, nil); r.code != 400 || !strings.Contains(string(r.body), "sha256") {
		t.Fatalf("sha mismatch: %d %s", r.code, r.body)
	}
	e.do("POST", "/v1/uploads", tok, jsonBody(map[string]any{"filename": "a.mp4", "size": 5})).json(&up)
	if r := e.do("DELETE", "/v1/uploads/"+up.ID, tok, nil); r.code != 204 {
		t.Fatalf("abort: %d", r.code)
	}
	if r := e.do("GET", "/v1/uploads/"+up.ID, tok, nil); r.code != 404 {
		t.Fatalf("after abort: %d", r.code)
	}
	if r := e.do("GET", "/v1/uploads/zzz", tok, nil); r.code != 404 {
		t.Fatalf("bad id: %d", r.code)
	}
}

// finish makes job id done with an MP3 of the given content, as a converter would.
func (e *env) finish(id string, mp3 []byte) *server.Job {
	e.t.Helper()
	return e.finishFiles(id, mp3, nil)
}

// finishFiles makes job id done with content as its stored file and files as its files.
func (e *env) finishFiles(id string, mp3 []byte, files []server.JobFile) *server.Job {
	e.t.Helper()
	ctx := context.Background()
	j, err := e.db.Jobs().ClaimJob(ctx, id, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.blobs.Put(ctx, server.BucketMP3s, j.MP3FID, "", bytes.NewReader(mp3)); err != nil {
		e.t.Fatal(err)
	}
	if j, err = e.db.Jobs().FinishJob(ctx, id, j.Attempts, server.JobResult{Size: int64(len(mp3)), Files: files}); err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *env) tutorialUpload(tok, name string, content []byte) resp {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(content)
	mw.Close()
	return e.do("POST", "/upload", tok, &buf, "Content-Type", mw.FormDataContentType())
}

func TestDownloadRangeETagOwnership(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	var j jobResp
	if r := e.tutorialUpload(tok, "Talk été.mp4", []byte("video bytes")); r.code != 200 || r.json(&j) != nil {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	mp3 := bytes.Repeat([]byte("ID3-audio-"), 100)
	e.finish(j.ID, mp3)
	if r := e.do("GET", "/v1/jobs/"+j.ID, tok, nil); r.json(&j) != nil || j.State != "done" || j.MP3FID == "" || j.FinishedAt == nil {
		t.Fatalf("job: %s", r.body)
	}
	r := e.do("GET", "/v1/files/"+j.MP3FID, tok, nil)
	if r.code != 200 || !bytes.Equal(r.body, mp3) || r.hdr.Get("Content-Type") != "audio/mpeg" ||
		!strings.Contains(r.hdr.Get("Content-Disposition"), "attachment") || !strings.Contains(r.hdr.Get("Content-Disposition"), ".mp3") {
		t.Fatalf("download: %d %v", r.code, r.hdr)
	}
	etag := r.hdr.Get("ETag")
	if r := e.do("GET", "/v1/files/"+j.MP3FID, tok, nil, "Range", "bytes=10-19"); r.code != 206 || !bytes.Equal(r.body, mp3[10:20]) {
		t.Fatalf("range: %d %q", r.code, r.body)
	}
	if r := e.do("GET", "/v1/files/"+j.MP3FID, tok, nil, "If-None-Match", etag); r.code != 304 {
		t.Fatalf("etag: %d", r.code)
	}
	if r := e.do("GET", "/download?fid="+j.MP3FID, tok, nil); r.code != 200 || !bytes.Equal(r.body, mp3) {
		t.Fatalf("tutorial download: %d", r.code)
	}
	other := e.user("bob@example.com")
	for _, p := range []string{"/v1/files/" + j.MP3FID, "/download?fid=" + j.MP3FID, "/v1/jobs/" + j.ID} {
		if r := e.do("GET", p, other, nil); r.code != 404 {
			t.Errorf("other user %s: %d", p, r.code)
		}
	}
	var list struct{ Jobs []jobResp }
	if e.do("GET", "/v1/jobs", other, nil).json(&list); len(list.Jobs) != 0 {
		t.Errorf("other user's list has %d jobs", len(list.Jobs))
	}
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t)
	tok := e.user("ann@example.com")
	var j jobResp
	e.tutorialUpload(tok, "a.mp4", []byte("v")).json(&j)
	start := time.Now()
	if r := e.do("GET", "/v1/jobs/"+j.ID+"?wait=300ms", tok, nil); r.json(&j) != nil || j.State != "queued" {
		t.Fatalf("wait on a queued job: %s", r.body)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("long-poll answered before the wait ran out")
	}
	go func() { time.Sleep(100 * time.Millisecond); e.finish(j.ID, []byte("mp3")) }()
	if r := e.do("GET", "/v1/jobs/"+j.ID+"?wait=30", tok, nil); r.json(&j) != nil || j.State != "done" {
		t.Fatalf("wait until done: %s", r.body)
	}
	if r := e.do("GET", "/v1/jobs/"+j.ID+"?wait=soon", tok, nil); r.code != 400 {
		t.Fatalf("bad wait: %d", r.code)
	}
}

func TestTutorialFlow(t *testing.T) {
	e := newEnv(t)
	if r := e.do("POST", "/registration", "", jsonBody(map[string]string{"username": "ann@example.com", "password": "password123"})); r.code != 201 {
		t.Fatalf("registration: %d %s", r.code, r.body)
	}
	r := e.do("POST", "/login", "", nil, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ann@example.com:password123")))
	if r.code != 200 || strings.Count(string(r.body), ".") != 2 {
		t.Fatalf("login: %d %s", r.code, r.body)
	}
	tok := string(r.body)
	if r := e.do("POST", "/validate", tok, nil); r.code != 200 || !strings.Contains(string(r.body), `"username":"ann@example.com"`) {
		t.Fatalf("validate: %d %s", r.code, r.body)
	}
	if r := e.tutorialUpload(tok, "v.mp4", []byte("x")); r.code != 200 {
		t.Fatalf("upload: %d %s", r.code, r.body)
	}
	if r := e.do("POST", "/upload", tok, strings.NewReader("x"), "Content-Type", "text/plain"); r.code != 400 {
		t.Fatalf("upload without a form: %d", r.code)
	}
	if r := e.tutorialUpload("", "v.mp4", []byte("x")); r.code != 401 {
		t.Fatalf("upload without a token: %d", r.code)
	}
}

func TestTutorialUploadTooLarge(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Service.MaxUploadSize = 100 })
	tok := e.user("ann@example.com")
	if r := e.tutorialUpload(tok, "v.mp4", make([]byte, 101)); r.code != 413 {
		t.Fatalf("too large: %d %s", r.code, r.body)
	}
}

func TestPublishFailureKeepsJobQueued(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Service.Queue = failingQueue{} })
	tok := e.user("ann@example.com")
	var j jobResp
	if r := e.tutorialUpload(tok, "v.mp4", []byte("x")); r.code != 200 || r.json(&j) != nil {
		t.Fatalf("upload with the broker down: %d %s", r.code, r.body)
	}
	stale, err := e.db.Jobs().StaleJobs(context.Background(), server.JobQueued, time.Now().Add(time.Second), 10)
	if err != nil || len(stale) != 1 || stale[0].ID != j.ID {
		t.Fatalf("job not kept for the sweeper: %v %v", stale, err)
	}
}

func TestHealthReadyNotFound(t *testing.T) {
	down := errors.New("db down")
	e := newEnv(t, func(c *Config) { c.Ready = func(context.Context) error { return down } })
	if r := e.do("GET", "/healthz", "", nil); r.code != 200 {
		t.Fatalf("healthz: %d", r.code)
	}
	if r := e.do("GET", "/readyz", "", nil); r.code != 503 {
		t.Fatalf("readyz: %d", r.code)
	}
	if r := e.do("GET", "/nope", "", nil); r.code != 404 || r.errCode() != "not_found" {
		t.Fatalf("unknown route: %d %s", r.code, r.body)
	}
}

func TestDrainEndsLongPolls(t *testing.T) {
	var srv *Server
	e := newEnv(t, func(c *Config) { c.MaxWait = time.Minute })
	srv = e.srv.Config.Handler.(*Server)
	tok := e.user("ann@example.com")
	var j jobResp
	e.tutorialUpload(tok, "a.mp4", []byte("v")).json(&j)
	go func() { time.Sleep(200 * time.Millisecond); srv.Drain() }()
	start := time.Now()
	if r := e.do("GET", "/v1/jobs/"+j.ID+"?wait=60s", tok, nil); r.code != 200 || r.json(&j) != nil || j.State != "queued" {
		t.Fatalf("long-poll during drain: %d %s", r.code, r.body)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("long-poll outlived the drain")
	}
}

func TestLongPollWokenBySignal(t *testing.T) {
	sig := NewSignal()
	e := newEnv(t, func(c *Config) { c.PollInterval = time.Hour; c.Changes = sig })
	tok := e.user("ann@example.com")
	var j jobResp
	e.tutorialUpload(tok, "a.mp4", []byte("v")).json(&j)
	go func() {
		time.Sleep(100 * time.Millisecond)
		e.finish(j.ID, []byte("mp3"))
		sig.Notify()
	}()
	// With an hour between polls, only the signal can end this wait before its 30 s.
	start := time.Now()
	if r := e.do("GET", "/v1/jobs/"+j.ID+"?wait=30s", tok, nil); r.json(&j) != nil || j.State != "done" {
		t.Fatalf("wait: %s", r.body)
	}
	if time.Since(start) >= 30*time.Second {
		t.Fatal("the signal did not end the long-poll")
	}
}

func TestStalledPartUploadTimesOut(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits = Limits{RateWindow: 200 * time.Millisecond} })
	tok := e.user("ann@example.com")
	var up uploadResp
	e.do("POST", "/v1/uploads", tok, jsonBody(map[string]any{"filename": "a.mp4", "size": 1024})).json(&up)
	pr, pw := io.Pipe()
	stop := make(chan struct{})
	defer close(stop)
	go func() { pw.Write(make([]byte, 100)); <-stop; pw.Close() }() // then stalls for good
	req, _ := http.NewRequest("PUT", e.srv.URL+"/v1/uploads/"+up.ID+"/parts/0", pr)
	req.ContentLength = 1024
	req.Header.Set("Authorization", "Bearer "+tok)
	// Without the server's idle limit this request would hang until the test binary's timeout.
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"timeout"`) {
		t.Fatalf("stalled part: %d %s", res.StatusCode, body)
	}
	if r := e.do("GET", "/v1/uploads/"+up.ID, tok, nil); r.json(&up) != nil || len(up.Received) != 0 {
		t.Fatalf("received %v", up.Received)
	}
}
