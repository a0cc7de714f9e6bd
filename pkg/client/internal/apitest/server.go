// Package apitest is an in-memory implementation of the v2m HTTP API (docs/api.md) on an
// httptest.Server, for testing the CLI without the real daemon. It follows the documented
// contract (error shape and codes, chunked uploads with CRC-32C checks, long-poll, Range/ETag
// on files) and adds a few knobs to provoke failures and to observe what a client sent.
//
// Deprecated: use internal/testserver, which runs the real API. This package goes once the
// CLI's tests have moved there.
package apitest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/v2m/v2m/pkg/wire"
)

// Server is a running fake v2m API.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	partSize int64
	maxSize  int64
	manual   bool
	convert  func(filename string, video []byte) ([]byte, error)
	users    map[string]string // email → password
	tokens   map[string]tokenInfo
	uploads  map[string]*upload
	jobs     map[string]*job
	files    map[string]*file
	seq      int
	changed  chan struct{} // closed and replaced whenever a job changes
	puts     map[string]map[int]int
	requests []string
	failPut  map[int]int // part → how many more PUTs of it answer 500
	cutNext  int64       // cut the next file download after this many body bytes
}

type tokenInfo struct {
	email   string
	expires time.Time
}

type upload struct {
	id, owner, filename, sha string
	size                     int64
	parts                    map[int][]byte
}

type job struct {
	wire.Job

	owner string
	seq   int
	mp3   string // the fid, shown only when done
	video []byte
}

type file struct {
	owner, name string
	data        []byte
	etag        string
	mod         time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithPartSize sets the part size the server hands out (default 1024 bytes).
func WithPartSize(n int64) Option { return func(s *Server) { s.partSize = n } }

// WithMaxSize sets the largest upload accepted (default 1 GiB).
func WithMaxSize(n int64) Option { return func(s *Server) { s.maxSize = n } }

// WithManualJobs leaves completed uploads' jobs queued until Finish or Fail is called.
func WithManualJobs() Option { return func(s *Server) { s.manual = true } }

// WithConverter sets the conversion run for every job; an error fails the job with its text.
func WithConverter(fn func(filename string, video []byte) ([]byte, error)) Option {
	return func(s *Server) { s.convert = fn }
}

// New starts a Server; Close it when done.
func New(opts ...Option) *Server {
	s := &Server{
		partSize: 1024,
		maxSize:  1 << 30,
		users:    map[string]string{},
		tokens:   map[string]tokenInfo{},
		uploads:  map[string]*upload{},
		jobs:     map[string]*job{},
		files:    map[string]*file{},
		changed:  make(chan struct{}),
		puts:     map[string]map[int]int{},
		failPut:  map[int]int{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.convert == nil {
		s.convert = FakeMP3
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/users", s.register)
	mux.HandleFunc("POST /v1/tokens", s.login)
	mux.HandleFunc("GET /v1/me", s.auth(s.me))
	mux.HandleFunc("DELETE /v1/tokens/current", s.auth(s.revoke))
	mux.HandleFunc("POST /v1/uploads", s.auth(s.createUpload))
	mux.HandleFunc("GET /v1/uploads/{id}", s.auth(s.getUpload))
	mux.HandleFunc("DELETE /v1/uploads/{id}", s.auth(s.deleteUpload))
	mux.HandleFunc("PUT /v1/uploads/{id}/parts/{n}", s.auth(s.putPart))
	mux.HandleFunc("POST /v1/uploads/{id}/complete", s.auth(s.complete))
	mux.HandleFunc("GET /v1/jobs", s.auth(s.listJobs))
	mux.HandleFunc("GET /v1/jobs/{id}", s.auth(s.getJob))
	mux.HandleFunc("GET /v1/files/{fid}", s.auth(s.getFile))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route")
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		line := r.Method + " " + r.URL.Path
		if rg := r.Header.Get("Range"); rg != "" {
			line += " Range=" + rg + " If-Range=" + r.Header.Get("If-Range")
		}
		s.requests = append(s.requests, line)
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	return s
}

// FakeMP3 is the default conversion: a deterministic pseudo-MP3 derived from the video.
func FakeMP3(_ string, video []byte) ([]byte, error) {
	sum := sha256.Sum256(video)
	out := []byte("ID3\x04\x00\x00\x00\x00\x00\x00")
	for len(out) < 4096+len(video)/8 {
		out = append(out, sum[:]...)
	}
	return out, nil
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AddUser creates an account and returns a valid token for it.
func (s *Server) AddUser(email, password string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	email = strings.ToLower(email)
	s.users[email] = password
	tok := "tok-" + newID()
	s.tokens[tok] = tokenInfo{email: email, expires: time.Now().Add(24 * time.Hour)}
	return tok
}

// ExpireToken makes tok invalid.
func (s *Server) ExpireToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ti := s.tokens[tok]
	ti.expires = time.Now().Add(-time.Minute)
	s.tokens[tok] = ti
}

// SeedUpload creates an upload of data for owner with the given parts already stored, as if
// an earlier run had sent them, and returns its id.
func (s *Server) SeedUpload(owner, filename string, data []byte, received []int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &upload{id: newID(), owner: strings.ToLower(owner), filename: filename, size: int64(len(data)), parts: map[int][]byte{}}
	for _, n := range received {
		off, l := int64(n)*s.partSize, s.partLen(u, n)
		u.parts[n] = bytes.Clone(data[off : off+l])
	}
	s.uploads[u.id] = u
	return u.id
}

// DropUpload forgets an upload, as a server that expired it would.
func (s *Server) DropUpload(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.uploads, id)
}

// PartPuts returns how many PUTs each part of upload id received (failed ones included).
func (s *Server) PartPuts(id string) map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for k, v := range s.puts[id] {
		out[k] = v
	}
	return out
}

// TotalPuts returns how many part PUTs the server received in all.
func (s *Server) TotalPuts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.puts {
		for _, v := range m {
			n += v
		}
	}
	return n
}

// Requests returns "METHOD /path" for every request so far (with Range headers if any).
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// FailPart makes the next times PUTs of part n answer 500.
func (s *Server) FailPart(n, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPut[n] = times
}

// CutNextDownload makes the next file download break after n body bytes.
func (s *Server) CutNextDownload(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutNext = n
}

// AddFile stores an MP3 owned by owner and returns its fid.
func (s *Server) AddFile(owner, name string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	fid := newID()
	s.addFileLocked(fid, strings.ToLower(owner), name, data)
	return fid
}

// ReplaceFile changes the content (and so the ETag) of file fid.
func (s *Server) ReplaceFile(fid string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[fid]
	s.addFileLocked(fid, f.owner, f.name, data)
}

func (s *Server) addFileLocked(fid, owner, name string, data []byte) {
	sum := sha256.Sum256(data)
	s.files[fid] = &file{owner: owner, name: name, data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, mod: time.Now().UTC().Truncate(time.Second)}
}

// FileData returns the content of file fid.
func (s *Server) FileData(fid string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[fid]; f != nil {
		return f.data
	}
	return nil
}

// Video returns the assembled upload behind job id.
func (s *Server) Video(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[id]; j != nil {
		return j.video
	}
	return nil
}

// AddJob creates a job for owner in the given state (a done job gets an MP3) and returns it.
func (s *Server) AddJob(owner, filename, state, reason string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.newJobLocked(newID(), strings.ToLower(owner), filename, []byte("video of "+filename))
	switch state {
	case "done":
		s.finishLocked(j, nil)
	case "failed":
		s.finishLocked(j, fmt.Errorf("%s", reason))
	case "converting":
		j.State, j.Progress = state, 40
	}
	return j.ID
}

// Finish runs the conversion of a queued job now (with WithManualJobs).
func (s *Server) Finish(id string) {
	s.mu.Lock()
	j := s.jobs[id]
	video, name := j.video, j.Filename
	s.mu.Unlock()
	mp3, err := s.convert(name, video)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.finishLocked(j, err)
		return
	}
	s.finishLockedMP3(j, mp3)
}

// Fail fails job id with reason.
func (s *Server) Fail(id, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(s.jobs[id], fmt.Errorf("%s", reason))
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) newJobLocked(id, owner, filename string, video []byte) *job {
	now := time.Now().UTC()
	s.seq++
	j := &job{Job: wire.Job{ID: id, State: "queued", Filename: filename, Size: int64(len(video)), CreatedAt: now, UpdatedAt: now},
		owner: owner, seq: s.seq, mp3: newID(), video: video}
	s.jobs[j.ID] = j
	return j
}

func (s *Server) finishLocked(j *job, err error) {
	if err != nil {
		now := time.Now().UTC()
		j.State, j.Error, j.UpdatedAt, j.FinishedAt = "failed", err.Error(), now, &now
		s.notifyLocked()
		return
	}
	mp3, _ := FakeMP3(j.Filename, j.video)
	s.finishLockedMP3(j, mp3)
}

func (s *Server) finishLockedMP3(j *job, mp3 []byte) {
	now := time.Now().UTC()
	name := wire.MP3Name(j.Filename)
	s.addFileLocked(j.mp3, j.owner, name, mp3)
	j.State, j.Progress, j.MP3FID, j.UpdatedAt, j.FinishedAt = "done", 100, j.mp3, now, &now
	s.notifyLocked()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, wire.ErrorBody{Error: wire.Error{Code: code, Message: msg}})
}

func (s *Server) auth(h func(w http.ResponseWriter, r *http.Request, email string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		ti, found := s.tokens[tok]
		s.mu.Unlock()
		if !ok || !found || time.Now().After(ti.expires) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing, invalid or expired token")
			return
		}
		h(w, r, ti.email)
	}
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "malformed JSON")
		return
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if at := strings.IndexByte(email, '@'); at < 1 || at == len(email)-1 {
		writeError(w, http.StatusBadRequest, "invalid", "bad email")
		return
	}
	if len(in.Password) < 8 || len(in.Password) > 72 {
		writeError(w, http.StatusBadRequest, "invalid", "password must be 8 to 72 bytes")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[email]; ok {
		writeError(w, http.StatusConflict, "conflict", "email taken")
		return
	}
	s.users[email] = in.Password
	writeJSON(w, http.StatusCreated, wire.User{ID: int64(len(s.users)), Email: email, CreatedAt: time.Now().UTC()})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	email, pw, ok := r.BasicAuth()
	email = strings.ToLower(email)
	s.mu.Lock()
	defer s.mu.Unlock()
	if want, found := s.users[email]; !ok || !found || want != pw {
		writeError(w, http.StatusUnauthorized, "unauthorized", "wrong email or password")
		return
	}
	tok := "tok-" + newID()
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	s.tokens[tok] = tokenInfo{email: email, expires: exp}
	writeJSON(w, http.StatusOK, wire.Token{Token: tok, ExpiresAt: exp})
}

// revoke makes the caller's token invalid, as DELETE /v1/tokens/current does.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, _ string) {
	s.mu.Lock()
	delete(s.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// TokenValid reports whether the server accepts tok.
func (s *Server) TokenValid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ti, ok := s.tokens[tok]
	return ok && time.Now().Before(ti.expires)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, email string) {
	s.mu.Lock()
	exp := s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")].expires
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, wire.Me{Email: email, Issuer: "v2m", ExpiresAt: exp.UTC()})
}

func (s *Server) partLen(u *upload, n int) int64 {
	parts := s.parts(u)
	if n < 0 || n >= parts {
		return -1
	}
	if n == parts-1 {
		return u.size - int64(n)*s.partSize
	}
	return s.partSize
}

func (s *Server) parts(u *upload) int {
	if u.size == 0 {
		return 1
	}
	return int((u.size + s.partSize - 1) / s.partSize)
}

func (s *Server) uploadJSON(u *upload) wire.Upload {
	rec := []int{}
	for n := range u.parts {
		rec = append(rec, n)
	}
	slices.Sort(rec)
	return wire.Upload{ID: u.id, Filename: u.filename, Size: u.size, PartSize: s.partSize, Parts: s.parts(u), Received: rec}
}

func (s *Server) createUpload(w http.ResponseWriter, r *http.Request, email string) {
	var in struct {
		Filename string `json:"filename"`
		Size     *int64 `json:"size"`
		SHA256   string `json:"sha256"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Filename == "" || in.Size == nil || *in.Size < 0 {
		writeError(w, http.StatusBadRequest, "invalid", "filename and size are required")
		return
	}
	if in.SHA256 != "" {
		if b, err := hex.DecodeString(in.SHA256); err != nil || len(b) != 32 {
			writeError(w, http.StatusBadRequest, "invalid", "sha256 must be 64 hex digits")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if *in.Size > s.maxSize {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "upload too large")
		return
	}
	u := &upload{id: newID(), owner: email, filename: in.Filename, size: *in.Size, sha: strings.ToLower(in.SHA256), parts: map[int][]byte{}}
	s.uploads[u.id] = u
	writeJSON(w, http.StatusCreated, s.uploadJSON(u))
}

// uploadOf returns the caller's upload, or answers 404.
func (s *Server) uploadOf(w http.ResponseWriter, r *http.Request, email string) *upload {
	u := s.uploads[r.PathValue("id")]
	if u == nil || u.owner != email {
		writeError(w, http.StatusNotFound, "not_found", "upload not found")
		return nil
	}
	return u
}

func (s *Server) getUpload(w http.ResponseWriter, r *http.Request, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.uploadOf(w, r, email); u != nil {
		writeJSON(w, http.StatusOK, s.uploadJSON(u))
	}
}

func (s *Server) deleteUpload(w http.ResponseWriter, r *http.Request, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.uploadOf(w, r, email); u != nil {
		delete(s.uploads, u.id)
		w.WriteHeader(http.StatusNoContent)
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (s *Server) putPart(w http.ResponseWriter, r *http.Request, email string) {
	id := r.PathValue("id")
	s.mu.Lock()
	n, err := strconv.Atoi(r.PathValue("n"))
	if s.puts[id] == nil {
		s.puts[id] = map[int]int{}
	}
	s.puts[id][n]++
	u := s.uploadOf(w, r, email)
	if u == nil {
		s.mu.Unlock()
		return
	}
	want := s.partLen(u, n)
	fail := s.failPut[n] > 0
	if fail {
		s.failPut[n]--
	}
	s.mu.Unlock()
	if err != nil || want < 0 {
		writeError(w, http.StatusBadRequest, "invalid", "no such part")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, want+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "read part: "+err.Error())
		return
	}
	if fail {
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	if int64(len(body)) != want {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("part %d must be %d bytes, got %d", n, want, len(body)))
		return
	}
	if h := r.Header.Get("X-Part-CRC32C"); h != "" {
		if got := fmt.Sprintf("%08x", crc32.Checksum(body, castagnoli)); h != got {
			writeError(w, http.StatusBadRequest, "invalid", "part checksum mismatch")
			return
		}
	}
	s.mu.Lock()
	u.parts[n] = body
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[r.PathValue("id")]; j != nil && j.owner == email {
		writeJSON(w, http.StatusCreated, j) // completed before: the answer was lost
		return
	}
	u := s.uploadOf(w, r, email)
	if u == nil {
		return
	}
	var video []byte
	for n := range s.parts(u) {
		p, ok := u.parts[n]
		if !ok {
			writeError(w, http.StatusConflict, "conflict", fmt.Sprintf("part %d is missing", n))
			return
		}
		video = append(video, p...)
	}
	if u.sha != "" {
		if sum := sha256.Sum256(video); hex.EncodeToString(sum[:]) != u.sha {
			delete(s.uploads, u.id)
			writeError(w, http.StatusBadRequest, "invalid", "sha256 mismatch")
			return
		}
	}
	delete(s.uploads, u.id)
	j := s.newJobLocked(u.id, email, u.filename, video) // the job takes the upload's id
	writeJSON(w, http.StatusCreated, j)
	if !s.manual {
		go func() {
			s.mu.Lock()
			j.State, j.Progress, j.UpdatedAt = "converting", 50, time.Now().UTC()
			s.notifyLocked()
			s.mu.Unlock()
			s.Finish(j.ID)
		}()
	}
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []*job{}
	for _, j := range s.jobs {
		if j.owner == email {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b *job) int { return b.seq - a.seq })
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, email string) {
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			secs, err2 := strconv.Atoi(v)
			if err2 != nil || secs < 0 {
				writeError(w, http.StatusBadRequest, "invalid", "bad wait")
				return
			}
			d = time.Duration(secs) * time.Second
		}
		wait = min(d, 60*time.Second)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		j := s.jobs[r.PathValue("id")]
		if j == nil || j.owner != email {
			s.mu.Unlock()
			writeError(w, http.StatusNotFound, "not_found", "job not found")
			return
		}
		if j.State == "done" || j.State == "failed" || wait == 0 {
			writeJSON(w, http.StatusOK, j)
			s.mu.Unlock()
			return
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			wait = 0
		case <-r.Context().Done():
			return
		}
	}
}

// cutWriter breaks the response after limit body bytes.
type cutWriter struct {
	http.ResponseWriter
	limit int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.limit {
		_, _ = c.ResponseWriter.Write(p[:c.limit])
		c.limit = 0
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // the server closes the connection mid-body
	}
	c.limit -= int64(len(p))
	return c.ResponseWriter.Write(p)
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request, email string) {
	s.mu.Lock()
	f := s.files[r.PathValue("fid")]
	if f == nil || f.owner != email {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", "file not found")
		return
	}
	cut := s.cutNext
	s.cutNext = 0
	s.mu.Unlock()
	w.Header().Set("Content-Type", "audio/mpeg")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", f.name))
	w.Header().Set("ETag", f.etag)
	w.Header().Set("Accept-Ranges", "bytes")
	if cut > 0 {
		w = &cutWriter{ResponseWriter: w, limit: cut}
	}
	http.ServeContent(w, r, f.name, f.mod, bytes.NewReader(f.data))
}
