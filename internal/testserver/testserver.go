// Package testserver runs the real v2m API for tests: pkg/server/api's handler with the real
// accounts and tokens, SQLite, blobs on local disk and the durable SQLite queue, over
// httptest, with the real worker.Converter taking jobs off the queue. Only the conversion
// itself is a stub (Options.Convert), so no ffmpeg is needed. Between the network and the
// handler sits a fault injector (Server.Faults) that cuts request bodies, cuts responses and
// loses answers, so that a client's recovery can be tested against what the server really
// does.
//
//	s := testserver.New(t, testserver.Options{PartSize: 1000})
//	tok := s.Signup(t, "ann@example.com", "password1")
//	s.Faults.LoseAnswer("POST /v1/uploads/{id}/complete", 1) // done, but the client never hears
//	c, _ := client.New(s.URL, client.WithToken(tok))
//	job, err := c.Upload(ctx, "talk.mp4", client.UploadOptions{})
//	s.Requests("POST /v1/uploads/{id}/complete") // two: the lost answer, and the retry
//
// It is for tests only: import it from _test.go files, never from a package that ships.
//
// Everything lives in t.TempDir() and stops when the test ends (the HTTP server first, then
// the converter, then the database); a failed test gets the server's log in its output.
//
// Patterns are http.ServeMux patterns: "PUT /v1/uploads/{id}/parts/{n}" matches every part
// PUT, "PUT /v1/uploads/{id}/parts/3" only part 3's, "/v1/jobs/{id}" any method. As with
// ServeMux, "GET" also matches HEAD, and an invalid pattern panics.
//
// Conversions run on the queue as in v2md: a job is queued when its upload completes, then
// converting while Convert runs, then done (its MP3 stored under the job's mp3_fid) or failed.
// A Convert error made by Fail fails the job at once with its reason; any other error is
// retried by the queue, MaxAttempts times in all with Backoff between (here 3 and 10 ms), and
// then fails the job. Convert must return when its context ends: that is how the converter
// stops at the end of the test. Long polls answer as soon as a job changes, and event streams
// (GET /v1/jobs/{id}/events, /v1/events) get each change of state and progress as it happens,
// as in standalone mode.
package testserver

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/inproc"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/token"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/server/worker"
	"github.com/v2m/v2m/pkg/wire"
)

// The queue's retry policy for conversions that fail with an error not made by Fail.
const (
	MaxAttempts = 3                     // deliveries of a job before it fails
	Backoff     = 10 * time.Millisecond // between two deliveries
)

// ConvertFunc converts the video at src into an MP3 at dst, calling progress with 0-100; it
// has the signature of server.Converter's Convert.
type ConvertFunc func(ctx context.Context, src, dst string, progress func(pct int)) error

// Options configure a Server. The zero value is a working server.
type Options struct {
	PartSize      int64       // upload part size; 1024 bytes when zero
	MaxUploadSize int64       // largest video accepted; 64 MiB when zero
	Convert       ConvertFunc // the conversion; FakeConvert when nil
	// Now is the clock tokens are issued and checked by (they last 24 hours from their
	// issue); time.Now when nil. A test moves it to make the server refuse a token as
	// expired.
	Now func() time.Time
}

// Server is a running v2m API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's root, such as "http://127.0.0.1:41234", without a trailing slash.
	URL string
	// Faults injects network faults into the requests that come next.
	Faults *Faults

	db     *sqlite.DB
	blobs  *disk.Store
	issuer *token.Issuer

	mu      sync.Mutex
	seen    []Request
	waiters []*waiter
}

// Request is what the server saw of one request, in the order requests arrived.
type Request struct {
	Method string
	Path   string      // URL path, without the query
	Query  string      // raw query, without "?"
	Header http.Header // a copy of the request's headers
	// Fault names the fault injected into this request: "CutRequestBody", "CutResponse",
	// "LoseAnswer", or "" for none.
	Fault string
}

type waiter struct {
	mux *http.ServeMux
	ch  chan Request
}

// New starts a Server for the test t.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.PartSize <= 0 {
		opts.PartSize = 1024
	}
	if opts.MaxUploadSize <= 0 {
		opts.MaxUploadSize = 64 << 20
	}
	if opts.Convert == nil {
		opts.Convert = FakeConvert
	}
	dir := t.TempDir()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the test server's log:\n%s", logs.String())
		}
	})

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "v2m.db"))
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("testserver: close the database: %v", err)
		}
	})
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	pem, err := token.GenerateEd25519PEM()
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	key, err := token.ParseKey(token.EdDSA, pem)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatalf("testserver: %v", err)
	}

	q := db.Queue(sqlite.QueueConfig{MaxAttempts: MaxAttempts, Backoff: func(int) time.Duration { return Backoff },
		Poll: 25 * time.Millisecond, Logger: log})
	changes := api.NewSignal()
	updates := inproc.New()
	accounts := &auth.Service{Users: db.Users(), Tokens: &token.Issuer{Key: key, Issuer: "v2m", Now: opts.Now}, Cost: bcrypt.MinCost,
		Revocations: db.Revocations(), Personal: db.PersonalTokens(), Issuer: "v2m"}
	h := api.New(api.Config{
		Accounts: accounts,
		Verifier: &auth.Verifier{JWT: &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{key}, Revocations: db.Revocations(),
			Now: opts.Now}, Personal: accounts, States: auth.StoreStates{Users: db.Users()}},
		Revoker: accounts, PersonalTokens: accounts, UserAdmin: accounts,
		Service: &jobs.Service{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: blobs, Queue: q, Updates: updates,
			PartSize: opts.PartSize, MaxUploadSize: opts.MaxUploadSize, Logger: log, Limits: db.Limits()},
		PollInterval: 20 * time.Millisecond, Changes: changes, Updates: updates,
		Webhooks: &webhook.Service{Store: db.Webhooks(), Logger: log},
		Logger:   log,
	})
	conv := &worker.Converter{Jobs: db.Jobs(), Blobs: blobs, Queue: q, Converter: convertFunc(opts.Convert),
		TmpDir: tmp, Logger: log, Changed: changes.Notify, Updates: updates}

	wctx, stop := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() { consumed <- q.Consume(wctx, server.TopicVideo, 2, conv.Handle) }()
	t.Cleanup(func() {
		stop()
		if err := <-consumed; err != nil {
			t.Errorf("testserver: converter: %v", err)
		}
	})

	s := &Server{Faults: &Faults{}, db: db, blobs: blobs, issuer: &token.Issuer{Key: key, Issuer: "v2m", Now: opts.Now}}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = api.NewHTTPServer(s.inject(h), api.Limits{}, log)
	srv.Start()
	t.Cleanup(func() {
		h.Drain() // long-polls answer now rather than hold Close up
		srv.Close()
	})
	s.URL = srv.URL
	return s
}

// convertFunc makes a ConvertFunc a server.Converter.
type convertFunc ConvertFunc

func (f convertFunc) Convert(ctx context.Context, src, dst string, _ server.Conversion, progress func(int)) error {
	return f(ctx, src, dst, progress)
}

// Split makes a job split by chapters: two parts, "Part one" and "Part two", each the
// conversion's MP3 of the video with the part's number appended, stored in a zip as the
// real converter stores them.
func (f convertFunc) Split(ctx context.Context, src, dst string, _ server.Conversion, progress func(int)) ([]server.JobFile, error) {
	zf, err := os.Create(dst)
	if err != nil {
		return nil, fmt.Errorf("create zip: %w", err)
	}
	defer zf.Close()
	zw := zip.NewWriter(zf)
	var files []server.JobFile
	for i, title := range []string{"Part one", "Part two"} {
		part := dst + ".part"
		if err := f(ctx, src, part, func(pct int) { progress(min(99, (i*100+pct)/2)) }); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(part)
		if err != nil {
			return nil, fmt.Errorf("read part: %w", err)
		}
		b = append(b, byte('1'+i))
		w, err := zw.CreateHeader(&zip.FileHeader{Name: wire.TrackName(i, title), Method: zip.Store})
		if err != nil {
			return nil, fmt.Errorf("zip part: %w", err)
		}
		if _, err := w.Write(b); err != nil {
			return nil, fmt.Errorf("zip part: %w", err)
		}
		files = append(files, server.JobFile{Title: title, Start: time.Duration(i) * time.Minute,
			End: time.Duration(i+1) * time.Minute, Size: int64(len(b))})
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("write zip: %w", err)
	}
	progress(100)
	return files, zf.Close()
}

// FakeConvert is the default conversion: it reports 50 %, writes FakeMP3 of the video to dst
// and reports 100 %.
func FakeConvert(ctx context.Context, src, dst string, progress func(int)) error {
	video, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read video: %w", err)
	}
	progress(50)
	if err := os.WriteFile(dst, FakeMP3(video), 0o600); err != nil {
		return fmt.Errorf("write mp3: %w", err)
	}
	progress(100)
	return nil
}

// Stepped returns a conversion whose progress the test drives: each value received on steps
// is reported as the progress, and once steps is closed it converts as FakeConvert does.
func Stepped(steps <-chan int) ConvertFunc {
	return func(ctx context.Context, src, dst string, progress func(int)) error {
		for {
			select {
			case p, ok := <-steps:
				if !ok {
					return FakeConvert(ctx, src, dst, func(int) {})
				}
				progress(p)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// Converter makes f a server.Converter (that splits by chapters too), for tests that run a
// worker.Converter of their own.
func Converter(f ConvertFunc) server.Converter { return convertFunc(f) }

// FakeMP3 is what FakeConvert makes of a video: an ID3 header and a deterministic filler
// derived from the video, at least 4 KiB.
func FakeMP3(video []byte) []byte {
	sum := sha256.Sum256(video)
	out := []byte("ID3\x04\x00\x00\x00\x00\x00\x00")
	for len(out) < 4096+len(video)/8 {
		out = append(out, sum[:]...)
	}
	return out
}

// Fail returns a conversion that fails every job for good with reason, which becomes the
// job's error, as ffmpeg's refusal of a file that is not a usable video does.
func Fail(reason string) ConvertFunc {
	return func(context.Context, string, string, func(int)) error {
		return server.Permanent(server.Errorf(server.EINVALID, "%s", reason))
	}
}

// AdminToken registers an administrator with this email, granted as `v2md admin grant` does,
// and returns a token of theirs, signed as the server's logins are.
func (s *Server) AdminToken(t testing.TB, email string) string {
	t.Helper()
	s.Signup(t, email, "admin password")
	if _, err := s.db.Users().SetRole(context.Background(), email, server.RoleAdmin); err != nil {
		t.Fatalf("testserver: grant %s: %v", email, err)
	}
	tok, _, err := s.issuer.IssueRole(email, server.RoleAdmin)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	return tok
}

// Signup registers an account and logs in through the API, returning a bearer token.
func (s *Server) Signup(t testing.TB, email, password string) (token string) {
	t.Helper()
	body, _ := json.Marshal(wire.Credentials{Email: email, Password: password})
	if code, b := s.call(t, http.MethodPost, "/v1/users", bytes.NewReader(body), ""); code != http.StatusCreated {
		t.Fatalf("testserver: register %s: %d %s", email, code, b)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+password))
	code, b := s.call(t, http.MethodPost, "/v1/tokens", nil, basic)
	var tok wire.Token
	if code != http.StatusOK || json.Unmarshal(b, &tok) != nil || tok.Token == "" {
		t.Fatalf("testserver: log in as %s: %d %s", email, code, b)
	}
	return tok.Token
}

func (s *Server) call(t testing.TB, method, path string, body io.Reader, auth string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testserver: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("testserver: %s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// Video returns the video the server stored for job id (for an upload's job, the assembled
// parts), or fails the test.
func (s *Server) Video(t testing.TB, jobID string) []byte {
	t.Helper()
	ctx := context.Background()
	j, err := s.db.Jobs().Job(ctx, jobID)
	if err != nil {
		t.Fatalf("testserver: job %s: %v", jobID, err)
	}
	b, err := s.blobs.Open(ctx, server.BucketVideos, j.VideoFID)
	if err != nil {
		t.Fatalf("testserver: video of job %s: %v", jobID, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("testserver: video of job %s: %v", jobID, err)
	}
	return data
}

// Requests returns the requests so far that match pattern, in the order they arrived;
// faulted ones included.
func (s *Server) Requests(pattern string) []Request {
	m := newMatcher(pattern)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.seen {
		if m.match(r.Method, r.Path) {
			out = append(out, cloneRequest(r))
		}
	}
	return out
}

// Next returns a channel that receives the first request matching pattern to arrive after
// the call, as it arrives (before the handler runs). It lets a test act while a request is
// in flight, such as finishing a job while a client long-polls it, without sleeping.
func (s *Server) Next(pattern string) <-chan Request {
	w := &waiter{mux: newMatcher(pattern).mux, ch: make(chan Request, 1)}
	s.mu.Lock()
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	return w.ch
}

// arrived records r and hands it to the waiters it matches.
func (s *Server) arrived(r *http.Request, fault string) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Fault: fault}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, rec)
	s.waiters = slices.DeleteFunc(s.waiters, func(w *waiter) bool {
		if !(matcher{w.mux}).match(r.Method, r.URL.Path) {
			return false
		}
		w.ch <- cloneRequest(rec)
		return true
	})
}

func cloneRequest(r Request) Request {
	r.Header = r.Header.Clone()
	return r
}

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
