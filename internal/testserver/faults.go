package testserver

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
)

// Faults injects network faults into requests that match a pattern (see the package doc),
// each for the given number of matching requests, after which they pass untouched. Faults
// are taken in the order they were added; a request gets at most one. The zero value
// injects nothing.
//
// Go's http.Transport by itself sends a GET, HEAD or other replayable request again when a
// reused connection dies before any answer; that second request is a new one, which meets
// the next fault if any.
type Faults struct {
	mu    sync.Mutex
	rules []*rule
}

type rule struct {
	kind  string // the name of the method that added it
	m     matcher
	after int64
	left  int
}

// CutRequestBody lets the handler read only the first afterBytes bytes of the body, as if the
// connection broke there: the handler gets an unexpected EOF and does whatever the real
// server does with a body cut short (a part PUT stores nothing), and the client's connection
// is reset without an answer. A body no longer than afterBytes is read whole, which makes
// this LoseAnswer.
func (f *Faults) CutRequestBody(pattern string, afterBytes int64, times int) {
	f.add("CutRequestBody", pattern, afterBytes, times)
}

// CutResponse sends the status, the headers and the first afterBytes bytes of the response
// body, then closes the connection, as a network that breaks during a download does. A
// response body no longer than afterBytes goes out whole.
func (f *Faults) CutResponse(pattern string, afterBytes int64, times int) {
	f.add("CutResponse", pattern, afterBytes, times)
}

// LoseAnswer lets the server do all the work of the request, then resets the connection
// instead of answering: the client cannot tell whether anything happened.
func (f *Faults) LoseAnswer(pattern string, times int) {
	f.add("LoseAnswer", pattern, 0, times)
}

// Unavailable answers the next times requests matching pattern with 503 and Retry-After:
// seconds, the API's error shape, without running the handler: as a server whose database
// is down answers (nothing was done).
func (f *Faults) Unavailable(pattern string, seconds int64, times int) {
	f.add("Unavailable", pattern, seconds, times)
}

// Reset drops all faults not injected yet.
func (f *Faults) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

func (f *Faults) add(kind, pattern string, after int64, times int) {
	r := &rule{kind: kind, m: newMatcher(pattern), after: max(after, 0), left: times}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
}

// take returns the kind and byte count of the fault r gets, using it up; "" for none.
func (f *Faults) take(r *http.Request) (string, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rl := range f.rules {
		if rl.left > 0 && rl.m.match(r.Method, r.URL.Path) {
			rl.left--
			return rl.kind, rl.after
		}
	}
	return "", 0
}

// matcher matches requests against one http.ServeMux pattern.
type matcher struct{ mux *http.ServeMux }

func newMatcher(pattern string) matcher {
	mux := http.NewServeMux()
	mux.Handle(pattern, http.NotFoundHandler()) // panics on an invalid pattern
	return matcher{mux}
}

func (m matcher) match(method, path string) bool {
	_, pattern := m.mux.Handler(&http.Request{Method: method, URL: &url.URL{Path: path}, Host: "testserver"})
	return pattern != ""
}

// inject is the fault-injecting middleware in front of the API's handler.
func (s *Server) inject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, after := s.Faults.take(r)
		s.arrived(r, kind)
		switch kind {
		case "CutRequestBody":
			r.Body = &cutBody{r: r.Body, left: after}
			next.ServeHTTP(&sink{w: w, h: http.Header{}}, r)
			resetConn(w)
		case "LoseAnswer":
			next.ServeHTTP(&sink{w: w, h: http.Header{}}, r)
			resetConn(w)
		case "Unavailable":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Retry-After", strconv.FormatInt(after, 10))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"the database is unavailable; try again shortly"}}`)
		case "CutResponse":
			next.ServeHTTP(&cutWriter{w: w, left: after}, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// resetConn takes the connection over from net/http, which has written nothing on it for this
// request, and resets it (TCP RST): the client gets no answer at all.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // net/http closes the connection instead
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// errCut is what a handler reads or writes past a cut.
var errCut = errors.New("testserver: connection cut")

// cutBody is a request body that breaks after left bytes, as a body does whose connection
// was lost.
type cutBody struct {
	r    io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.r.Close() }

// sink is a ResponseWriter that throws the answer away. Connection deadlines still reach the
// real connection (Unwrap), so the handler runs as it would on it.
type sink struct {
	w http.ResponseWriter
	h http.Header
}

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(p []byte) (int, error) { return len(p), nil }
func (s *sink) WriteHeader(int)             {}
func (s *sink) Flush()                      {}
func (s *sink) Unwrap() http.ResponseWriter { return s.w }

// cutWriter passes the first left bytes of the body through, then flushes and closes the
// connection.
type cutWriter struct {
	w    http.ResponseWriter
	left int64
	cut  bool
}

func (c *cutWriter) Header() http.Header { return c.w.Header() }

func (c *cutWriter) WriteHeader(code int) {
	if !c.cut {
		c.w.WriteHeader(code)
	}
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.cut {
		return 0, errCut
	}
	if int64(len(p)) <= c.left {
		n, err := c.w.Write(p)
		c.left -= int64(n)
		return n, err
	}
	n, err := c.w.Write(p[:c.left])
	c.cut = true
	if err != nil {
		return n, err
	}
	rc := http.NewResponseController(c.w)
	if err := rc.Flush(); err != nil {
		return n, err
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close() // an orderly close: what was flushed arrives, then EOF
	return n, errCut
}

func (c *cutWriter) Flush() {
	if !c.cut {
		_ = http.NewResponseController(c.w).Flush()
	}
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.w }
