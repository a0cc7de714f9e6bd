package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
)

// Limits bound how long a client may hold a connection. Small requests get fixed deadlines
// from the http.Server; streaming routes (upload parts, the tutorial's upload, downloads and
// long-polls) move their own deadlines forward for as long as data keeps flowing at MinRate
// or more. Zero fields take the value of DefaultLimits.
type Limits struct {
	ReadHeaderTimeout time.Duration // to read a request's headers
	ReadTimeout       time.Duration // to read a whole request of a non-streaming route, body included
	WriteTimeout      time.Duration // from the end of the headers to the end of the response, for non-streaming routes
	IdleTimeout       time.Duration // between two requests on a kept-alive connection
	MaxHeaderBytes    int           // request line and headers
	MinRate           int64         // bytes per second a streaming body or download must average over each RateWindow
	RateWindow        time.Duration // the window MinRate is measured over
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      60 * time.Second,
	IdleTimeout:       2 * time.Minute,
	MaxHeaderBytes:    64 << 10,
	MinRate:           1 << 10,
	RateWindow:        30 * time.Second,
}

// withDefaults fills zero (or negative) fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MinRate <= 0 {
		l.MinRate = d.MinRate
	}
	if l.RateWindow <= 0 {
		l.RateWindow = d.RateWindow
	}
	return l
}

// windowBytes is how many bytes a streaming transfer must move in each window.
func (l Limits) windowBytes() int64 {
	return max(1, int64(float64(l.MinRate)*l.RateWindow.Seconds()))
}

// NewHTTPServer returns the http.Server every v2md listener runs: h behind the connection
// limits l. The caller sets Addr or serves a listener. log receives the server's own
// complaints (TLS handshakes, bad requests) at WARN; nil discards them.
func NewHTTPServer(h http.Handler, l Limits, log *slog.Logger) *http.Server {
	l = l.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// bodyReader reads a request body for a streaming route. It replaces the server's fixed read
// deadline with a moving one: the client must send at least windowBytes in every window, so a
// slow but real upload goes on for as long as it needs while a stalled one ends with a timeout.
// It also remembers any read error, so that a handler can tell a fault of the client's body
// (cut short, stalled, malformed) from a fault of its own storage.
type bodyReader struct {
	r     io.Reader
	rc    *http.ResponseController
	l     Limits
	start time.Time // of the current window; zero before the first read
	got   int64     // bytes read in the current window
	err   error     // the first read error other than io.EOF, of the body or of a tracked reader
	done  bool      // the body ended (io.EOF or an error): deadlines are back to normal
}

// requestBody returns the request body behind a bodyReader.
func (s *Server) requestBody(c *gin.Context) *bodyReader {
	return &bodyReader{r: c.Request.Body, rc: http.NewResponseController(c.Writer), l: s.cfg.Limits}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	now := time.Now()
	if b.start.IsZero() || (!b.done && b.got >= b.l.windowBytes()) {
		b.window(now)
	}
	n, err := b.r.Read(p)
	b.got += int64(n)
	if err != nil && !b.done {
		b.done = true
		b.record(err)
		if errors.Is(err, io.EOF) {
			// The whole body is in: the server's background read, which only watches for
			// the client leaving, needs no deadline (one would cancel the request).
			_ = b.rc.SetReadDeadline(time.Time{})
		} else {
			// The body failed: what the server still reads of it, to discard it, fails fast.
			_ = b.rc.SetReadDeadline(time.Now())
		}
		// Whatever comes next (storing, answering, an error) gets a fresh write deadline.
		_ = b.rc.SetWriteDeadline(time.Now().Add(b.l.WriteTimeout))
	}
	return n, err
}

// window starts a measurement window at now: the next windowBytes must arrive before its end.
// The write deadline follows, so that an "Expect: 100-continue" answer or an early error can
// still be written.
func (b *bodyReader) window(now time.Time) {
	b.start, b.got = now, 0
	// A ResponseController that cannot set deadlines (a writer that is not a connection's)
	// leaves the server's own deadlines in place.
	_ = b.rc.SetReadDeadline(now.Add(b.l.RateWindow))
	_ = b.rc.SetWriteDeadline(now.Add(b.l.RateWindow + b.l.WriteTimeout))
}

// answer gives the answer that follows the handler's work a write deadline of its own: a
// store that reads a body to its exact length never sees its end, and the time it spends
// storing after the last read must not eat into the time to answer.
func (b *bodyReader) answer() {
	_ = b.rc.SetWriteDeadline(time.Now().Add(b.l.WriteTimeout))
}

func (b *bodyReader) record(err error) {
	if b.err == nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
}

// blame returns the error to answer for err, the failure of a handler that read this body:
// when the body failed first, the client is at fault (408 when it stalled, 400 when it was
// cut short or malformed), whatever err the store made of it; otherwise err itself.
func (b *bodyReader) blame(err error) error {
	if b.err == nil {
		return err
	}
	return clientBodyError(b.err, fmt.Sprintf("the request body arrived slower than %d bytes/s over %v", b.l.MinRate, b.l.RateWindow))
}

// clientBodyError turns a read error of a request body into the API's error: a timeout is a
// stall (408, with the message stalled), a body over its limit is too large (413), anything
// else is a body that ended early or was malformed (400). The message never carries the Go
// error.
func clientBodyError(err error, stalled string) error {
	var ne net.Error
	var mbe *http.MaxBytesError
	var se *server.Error
	switch {
	case errors.As(err, &se):
		return err // already the API's (a checksum mismatch, say)
	case errors.As(err, &ne) && ne.Timeout():
		return server.Errorf(server.ETIMEOUT, "%s", stalled)
	case errors.As(err, &mbe):
		return server.Errorf(server.ETOOLARGE, "the request body is larger than %d bytes", mbe.Limit)
	default:
		return server.Errorf(server.EINVALID, "the request body ended early or is malformed")
	}
}

// streamWriter is a response writer for long responses (downloads): it replaces the server's
// fixed write deadline with a moving one, so that a download goes on for as long as the
// client takes at least windowBytes in every window. The connection's read deadline is
// lifted, since nothing more is read from a client that is downloading; the write deadline
// bounds the request.
type streamWriter struct {
	gin.ResponseWriter
	rc    *http.ResponseController
	l     Limits
	start time.Time
	got   int64
	n     int64 // bytes written in all
}

func (s *Server) streamResponse(c *gin.Context) *streamWriter {
	w := &streamWriter{ResponseWriter: c.Writer, rc: http.NewResponseController(c.Writer), l: s.cfg.Limits}
	_ = w.rc.SetReadDeadline(time.Time{})
	w.window(time.Now())
	return w
}

func (w *streamWriter) window(now time.Time) {
	w.start, w.got = now, 0
	_ = w.rc.SetWriteDeadline(now.Add(w.l.RateWindow))
}

func (w *streamWriter) Write(p []byte) (int, error) {
	var total int
	for len(p) > 0 {
		// Write in pieces no larger than a window's worth, so that each piece has a full
		// window to go out in and a large write is not held to one window.
		chunk := p[:min(int64(len(p)), w.l.windowBytes())]
		if w.got >= w.l.windowBytes() {
			w.window(time.Now())
		}
		n, err := w.ResponseWriter.Write(chunk)
		total += n
		w.got += int64(n)
		w.n += int64(n)
		if err != nil {
			return total, err
		}
		p = p[n:]
	}
	return total, nil
}

func (w *streamWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// extendFor gives a request that will answer within d (a long-poll, or a completion that
// reads a whole upload back) its time: d plus the usual write timeout to write the answer, and
// no read deadline (the server only watches the connection for the client leaving, and a read
// deadline there would cancel the request).
func (s *Server) extendFor(c *gin.Context, d time.Duration) {
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(d + s.cfg.Limits.WriteTimeout))
}
