package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// testLimits are the server's limits scaled down so that the tests take seconds: a request
// has 500 ms for its body, a streaming body must move 1 KiB/s over each 400 ms window
// (410 bytes per window).
var testLimits = Limits{
	ReadHeaderTimeout: 300 * time.Millisecond,
	ReadTimeout:       500 * time.Millisecond,
	WriteTimeout:      time.Second,
	IdleTimeout:       5 * time.Second,
	MaxHeaderBytes:    8 << 10,
	MinRate:           1 << 10,
	RateWindow:        400 * time.Millisecond,
}

// closedWithin is how long a stalled connection may stay open in these tests: well above the
// scaled-down limits (the slowest is a window plus a write timeout, 1.4 s), well below what
// any old setting (ReadHeaderTimeout 10 s, no ReadTimeout, a 60 s body idle limit) allows.
const closedWithin = 5 * time.Second

func (e *env) addr() string { return e.srv.Listener.Addr().String() }

// dial opens a raw connection to the server.
func (e *env) dial() net.Conn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads c until the server closes it, and fails the test if that takes longer
// than closedWithin from start. It returns what the server sent.
func waitClosed(t *testing.T, c net.Conn, start time.Time) (string, time.Duration) {
	t.Helper()
	c.SetReadDeadline(start.Add(closedWithin))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("connection still open after %v (got %q)", closedWithin, b)
	}
	// A reset (the server closed with unread data) is a close too.
	return string(b), time.Since(start)
}

// rawExchange sends head and body on a new connection, half-closes it when closeWrite (the
// client is gone, or sent less than it announced), and reads the answer.
func (e *env) rawExchange(head string, body []byte, closeWrite bool) (*http.Response, string) {
	e.t.Helper()
	c := e.dial()
	if _, err := c.Write(append([]byte(head), body...)); err != nil {
		e.t.Fatal(err)
	}
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(closedWithin))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// newUpload starts an upload of size bytes and returns its id.
func (e *env) newUpload(tok string, size int) string {
	e.t.Helper()
	var up uploadResp
	if r := e.do("POST", "/v1/uploads", tok, jsonBody(map[string]any{"filename": "a.mp4", "size": size})); r.code != 201 || r.json(&up) != nil {
		e.t.Fatalf("create upload: %d %s", r.code, r.body)
	}
	return up.ID
}

// TestStalledConnectionsAreClosed is the slowloris test: connections whose headers never
// end, and connections whose announced body never comes (on a JSON route and on an upload
// part), are all closed within the limits, while real requests go on being served.
func TestStalledConnectionsAreClosed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits = testLimits })
	tok := e.user("ann@example.com")
	part := e.newUpload(tok, 1024)
	kinds := []struct {
		name, head string
		want, msg  string // the status line the server answers with, if any, and its message
	}{
		{"headers never finished", "POST /v1/users HTTP/1.1\r\nHost: v2m\r\nContent-Le", "", ""},
		{"JSON body never arrives", "POST /v1/users HTTP/1.1\r\nHost: v2m\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n",
			"HTTP/1.1 408", "the request body did not arrive within 500ms"},
		{"part body never arrives", "PUT /v1/uploads/" + part + "/parts/0 HTTP/1.1\r\nHost: v2m\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Length: 1024\r\n\r\n", "HTTP/1.1 408", "the request body arrived slower than 1024 bytes/s over 400ms"},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			start := time.Now()
			conns := make([]net.Conn, 50)
			for i := range conns {
				conns[i] = e.dial()
				if _, err := io.WriteString(conns[i], k.head); err != nil {
					t.Fatal(err)
				}
			}
			// Meanwhile, real requests are served.
			for i := range 3 {
				if r := e.do("POST", "/v1/users", "", jsonBody(map[string]string{"email": fmt.Sprintf("u%d-%d@example.com", i, start.UnixNano()), "password": "password123"})); r.code != 201 {
					t.Fatalf("a real request while %d connections stall: %d %s", len(conns), r.code, r.body)
				}
				if r := e.do("GET", "/v1/me", tok, nil); r.code != 200 {
					t.Fatalf("a real request while %d connections stall: %d %s", len(conns), r.code, r.body)
				}
			}
			var slowest time.Duration
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Go(func() {
					got, d := waitClosed(t, c, start)
					if k.want != "" && got != "" && (!strings.HasPrefix(got, k.want) || !strings.Contains(got, k.msg)) {
						t.Errorf("answer %q, want %s with %q", got, k.want, k.msg)
					}
					mu.Lock()
					slowest = max(slowest, d)
					mu.Unlock()
				})
			}
			wg.Wait()
			t.Logf("%d connections (%s) all closed within %v", len(conns), k.name, slowest.Round(time.Millisecond))
		})
	}
	if r := e.do("GET", "/healthz", "", nil); r.code != 200 {
		t.Fatalf("healthz after the stalls: %d", r.code)
	}
	e.noErrorLogs()
}

// pacedBody returns a request body that sends size bytes in pieces of chunk bytes, one every
// every: a slow client. It ends when the body is sent or the request is over.
func pacedBody(t *testing.T, data []byte, chunk int, every time.Duration) io.Reader {
	pr, pw := io.Pipe()
	tick := time.NewTicker(every)
	go func() {
		defer tick.Stop()
		for len(data) > 0 {
			n := min(chunk, len(data))
			if _, err := pw.Write(data[:n]); err != nil {
				return // the server gave up on the request
			}
			data = data[n:]
			<-tick.C
		}
		pw.Close()
	}()
	t.Cleanup(func() { pr.CloseWithError(errors.New("test over")) })
	return pr
}

func (e *env) putPaced(tok, id string, data []byte, chunk int, every time.Duration) resp {
	e.t.Helper()
	req, _ := http.NewRequest("PUT", e.srv.URL+"/v1/uploads/"+id+"/parts/0", pacedBody(e.t, data, chunk, every))
	req.ContentLength = int64(len(data))
	req.Header.Set("Authorization", "Bearer "+tok)
	return e.send(req)
}

// send sends a request on a connection of its own: a body that cannot be sent again must
// not go out on a kept-alive connection the server may be closing.
func (e *env) send(req *http.Request) resp {
	e.t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		e.t.Fatalf("%v; the server's log:\n%s", err, e.logs)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func (e *env) multipartPaced(tok string, content []byte, chunk int, every time.Duration) resp {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "slow.mp4")
	fw.Write(content)
	mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/upload", pacedBody(e.t, buf.Bytes(), chunk, every))
	req.ContentLength = int64(buf.Len())
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	return e.send(req)
}

// TestSlowUploadAboveRateSucceeds: a body sent at 2.5 KiB/s, above the 1 KiB/s minimum,
// takes 1.6 s, longer than the read timeout (0.5 s) and the write timeout (1 s) of small
// requests; it is stored.
func TestSlowUploadAboveRateSucceeds(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits = testLimits; c.Service.PartSize = 4096 })
	tok := e.user("ann@example.com")
	data := bytes.Repeat([]byte("slow-but-steady-"), 256) // 4096 bytes
	id := e.newUpload(tok, len(data))
	start := time.Now()
	if r := e.putPaced(tok, id, data, 256, 100*time.Millisecond); r.code != 204 {
		t.Fatalf("slow part: %d %s", r.code, r.body)
	}
	t.Logf("part of %d bytes at about 2.5 KiB/s took %v", len(data), time.Since(start).Round(time.Millisecond))
	var up uploadResp
	if r := e.do("GET", "/v1/uploads/"+id, tok, nil); r.json(&up) != nil || fmt.Sprint(up.Received) != "[0]" {
		t.Fatalf("received %s", r.body)
	}
	if r := e.multipartPaced(tok, data, 256, 100*time.Millisecond); r.code != 200 {
		t.Fatalf("slow tutorial upload: %d %s", r.code, r.body)
	}
	e.noErrorLogs()
}

// TestUploadBelowRateGets408: a body that trickles (320 bytes/s) never stalls long, but stays
// below the minimum rate: 408 with the API's error, nothing stored.
func TestUploadBelowRateGets408(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits = testLimits; c.Service.PartSize = 4096 })
	tok := e.user("ann@example.com")
	data := make([]byte, 4096)
	id := e.newUpload(tok, len(data))
	r := e.putPaced(tok, id, data, 16, 50*time.Millisecond)
	if r.code != http.StatusRequestTimeout || r.errCode() != "timeout" {
		t.Fatalf("trickling part: %d %s", r.code, r.body)
	}
	var up uploadResp
	if r := e.do("GET", "/v1/uploads/"+id, tok, nil); r.json(&up) != nil || len(up.Received) != 0 {
		t.Fatalf("received %s", r.body)
	}
	if r := e.multipartPaced(tok, data, 16, 50*time.Millisecond); r.code != http.StatusRequestTimeout || r.errCode() != "timeout" {
		t.Fatalf("trickling tutorial upload: %d %s", r.code, r.body)
	}
	var list struct{ Jobs []jobResp }
	if e.do("GET", "/v1/jobs", tok, nil).json(&list); len(list.Jobs) != 0 {
		t.Fatalf("a job was made of a timed-out upload: %v", list.Jobs)
	}
	e.noErrorLogs()
}

// TestLongPollOutlivesRequestTimeouts: a long-poll of 1.5 s, longer than the read and write
// timeouts of small requests, answers with the job once its wait is over.
func TestLongPollOutlivesRequestTimeouts(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits = testLimits })
	tok := e.user("ann@example.com")
	var j jobResp
	e.tutorialUpload(tok, "a.mp4", []byte("v")).json(&j)
	if r := e.do("GET", "/v1/jobs/"+j.ID+"?wait=1500ms", tok, nil); r.code != 200 || r.json(&j) != nil || j.State != "queued" {
		t.Fatalf("long-poll: %d %s", r.code, r.body)
	}
}

// TestClientBodyFaultsAre4xx: a body the client cuts short or garbles is the client's fault,
// on every route that reads a body: 400 with the API's error, never 500, and no ERROR log.
func TestClientBodyFaultsAre4xx(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits = testLimits })
	tok := e.user("ann@example.com")
	id := e.newUpload(tok, 1024)
	auth := "Authorization: Bearer " + tok + "\r\n"
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "v.mp4")
	fw.Write(bytes.Repeat([]byte("video"), 200))
	mw.Close()
	form := mp.Bytes()
	formHead := func(n int) string {
		return fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: v2m\r\n%sContent-Type: %s\r\nContent-Length: %d\r\n\r\n", auth, mw.FormDataContentType(), n)
	}
	cut := form[:len(form)/2]
	for _, tc := range []struct {
		name       string
		head       string
		body       []byte
		closeWrite bool
	}{
		{"part shorter than its Content-Length, client gone", "PUT /v1/uploads/" + id + "/parts/0 HTTP/1.1\r\nHost: v2m\r\n" + auth +
			"Content-Length: 1024\r\n\r\n", make([]byte, 100), true},
		{"multipart cut short, client gone", formHead(len(form)), cut, true},
		{"multipart without its closing boundary", formHead(len(cut)), cut, false},
		{"JSON shorter than its Content-Length, client gone", "POST /v1/users HTTP/1.1\r\nHost: v2m\r\nContent-Length: 100\r\n\r\n",
			[]byte(`{"email":"a@exa`), true},
		{"upload JSON shorter than its Content-Length, client gone", "POST /v1/uploads HTTP/1.1\r\nHost: v2m\r\n" + auth +
			"Content-Length: 100\r\n\r\n", []byte(`{"filename":"a.mp4","si`), true},
		{"registration JSON cut, client gone", "POST /registration HTTP/1.1\r\nHost: v2m\r\nContent-Length: 100\r\n\r\n",
			[]byte(`{"username":`), true},
		{"chunked part with a garbled chunk", "PUT /v1/uploads/" + id + "/parts/0 HTTP/1.1\r\nHost: v2m\r\n" + auth +
			"Transfer-Encoding: chunked\r\n\r\n", []byte("10\r\n0123456789abcdef\r\nzz\r\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := e.rawExchange(tc.head, tc.body, tc.closeWrite)
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"invalid"`) {
				t.Fatalf("%d %s, want 400 invalid", res.StatusCode, body)
			}
			if strings.Contains(body, "tcp") || strings.Contains(body, "EOF") || strings.Contains(body, "multipart:") {
				t.Errorf("the message leaks a Go error: %s", body)
			}
		})
	}
	var up uploadResp
	if r := e.do("GET", "/v1/uploads/"+id, tok, nil); r.json(&up) != nil || len(up.Received) != 0 {
		t.Fatalf("received %s", r.body)
	}
	var list struct{ Jobs []jobResp }
	if e.do("GET", "/v1/jobs", tok, nil).json(&list); len(list.Jobs) != 0 {
		t.Fatalf("a job was made of a broken upload: %v", list.Jobs)
	}
	e.noErrorLogs()
}

// TestSlowDownloadOutlivesWriteTimeout: a client that reads a 16 MiB MP3 at about 6 MiB/s
// (through a small receive buffer) takes longer than the write timeout of small requests
// (1 s); the download's moving write deadline lets it finish, whole.
func TestSlowDownloadOutlivesWriteTimeout(t *testing.T) {
	// A window longer than testLimits', so that this slow but steady reader is not taken for
	// a stalled one when a busy machine (CI runs many tests at once) holds it back for a few
	// hundred milliseconds; the write timeout stays 1 s, which the download outlives.
	limits := testLimits
	limits.RateWindow = 1500 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.Limits = limits })
	tok := e.user("ann@example.com")
	fid, mp3 := e.downloadable(tok, 16<<20)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/files/"+fid, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got bytes.Buffer
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 64<<10)
	for {
		n, err := io.ReadFull(res.Body, buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
		<-tick.C // a slow reader
	}
	took := time.Since(start)
	if res.StatusCode != 200 || !bytes.Equal(got.Bytes(), mp3) {
		t.Fatalf("slow download: %d, %d of %d bytes in %v", res.StatusCode, got.Len(), len(mp3), took)
	}
	t.Logf("16 MiB read slowly in %v", took.Round(time.Millisecond))
	if took < testLimits.WriteTimeout {
		t.Logf("the download was faster than the write timeout: this run proves little")
	}
}

// slowCompletion is a BlobStore whose CompleteUpload takes a while, as reading back a large
// upload from GridFS does; it gives up when its request is cancelled.
type slowCompletion struct {
	server.BlobStore
	took time.Duration
}

func (s slowCompletion) CompleteUpload(ctx context.Context, u *server.Upload) error {
	select {
	case <-time.After(s.took):
	case <-ctx.Done():
		return fmt.Errorf("complete upload: %w", ctx.Err())
	}
	return s.BlobStore.CompleteUpload(ctx, u)
}

// TestSlowCompletionOutlivesRequestTimeouts: completing an upload is the server's work; when
// it takes longer than the read timeout (0.5 s) and the write timeout (1 s) of small
// requests, the request is neither cancelled nor cut off.
func TestSlowCompletionOutlivesRequestTimeouts(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits = testLimits
		c.Service.Blobs = slowCompletion{BlobStore: c.Service.Blobs, took: 1200 * time.Millisecond}
	})
	tok := e.user("ann@example.com")
	id := e.newUpload(tok, 5)
	if r := e.do("PUT", "/v1/uploads/"+id+"/parts/0", tok, strings.NewReader("hello")); r.code != 204 {
		t.Fatalf("part: %d %s", r.code, r.body)
	}
	var j jobResp
	if r := e.do("POST", "/v1/uploads/"+id+"/complete", tok, nil); r.code != 201 || r.json(&j) != nil || j.State != "queued" {
		t.Fatalf("slow completion: %d %s", r.code, r.body)
	}
	e.noErrorLogs()
}

// smallSendBuffers makes the server's connections buffer little, so that a client that reads
// slowly holds the server's writes at once instead of after megabytes of kernel buffers.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// TestDownloadBelowRateIsCut: a client that reads a download at about 160 KiB/s, below a
// minimum rate of 1 MiB/s, is cut off after a window, long before it has the 8 MiB file.
func TestDownloadBelowRateIsCut(t *testing.T) {
	limits := testLimits
	limits.MinRate = 1 << 20
	e := newEnvOn(t, func(l net.Listener) net.Listener { return smallSendBuffers{l} }, func(c *Config) { c.Limits = limits })
	tok := e.user("ann@example.com")
	fid, mp3 := e.downloadable(tok, 8<<20)
	c := e.dial()
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	fmt.Fprintf(c, "GET /v1/files/%s HTTP/1.1\r\nHost: v2m\r\nAuthorization: Bearer %s\r\n\r\n", fid, tok)
	start := time.Now()
	c.SetReadDeadline(start.Add(closedWithin))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var got int
	buf := make([]byte, 16<<10)
	for {
		n, err := io.ReadFull(res.Body, buf)
		got += n
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("a download read below the minimum rate still goes on after %v (%d bytes)", closedWithin, got)
			}
			break // cut: unexpected EOF or a reset
		}
		<-tick.C // a slow reader
	}
	if res.StatusCode != 200 || got >= len(mp3) {
		t.Fatalf("slow reader: %d, got %d of %d bytes", res.StatusCode, got, len(mp3))
	}
	t.Logf("a reader at 160 KiB/s was cut after %d bytes, %v", got, time.Since(start).Round(time.Millisecond))
	e.noErrorLogs()
}

// slowPartStore stores a part, then takes took more: a disk that is slow to sync.
type slowPartStore struct {
	server.BlobStore
	took time.Duration
}

func (s slowPartStore) WritePart(ctx context.Context, u *server.Upload, n int, r io.Reader) error {
	if err := s.BlobStore.WritePart(ctx, u, n, r); err != nil {
		return err
	}
	select {
	case <-time.After(s.took):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("write part: %w", ctx.Err())
	}
}

// TestSlowStoreStillAnswers: a store that reads a part to its exact length (never seeing the
// body's end) and then works for longer than the rate window plus the write timeout still gets
// its 204 to the client: the answer has a write deadline of its own.
func TestSlowStoreStillAnswers(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits = testLimits
		c.Service.Blobs = slowPartStore{BlobStore: c.Service.Blobs, took: testLimits.RateWindow + testLimits.WriteTimeout + 300*time.Millisecond}
	})
	tok := e.user("ann@example.com")
	id := e.newUpload(tok, 5)
	if r := e.do("PUT", "/v1/uploads/"+id+"/parts/0", tok, strings.NewReader("hello")); r.code != 204 {
		t.Fatalf("part stored slowly: %d %s", r.code, r.body)
	}
	e.noErrorLogs()
}
