package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The proxy answers these paths itself; every other request goes to the target.
const (
	sinkPath  = "/_sink"  // reads the request body through the bucket and discards it
	statsPath = "/_stats" // prints the counters as key=value pairs
)

// chunk is the most a metered Read passes on at once, and burst the most the bucket holds:
// small enough that parallel transfers share the rate evenly and the rate holds over a few
// milliseconds already.
const (
	chunk = 16 << 10
	burst = 64 << 10
)

// bucket is a token bucket of bytes, shared by every connection and both directions. A take
// may leave it in debt; the taker then sleeps until the debt is paid, so that takers are
// served in the order they came and the long-run rate never exceeds rate.
type bucket struct {
	rate float64 // bytes per second; 0 or less: unlimited

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBucket(rate float64) *bucket {
	return &bucket{rate: rate, tokens: burst, last: time.Now()}
}

// take blocks until n bytes may pass, or until ctx is done.
func (b *bucket) take(ctx context.Context, n int) error {
	if b.rate <= 0 || n <= 0 {
		return nil
	}
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	wait := time.Duration(-b.tokens / b.rate * float64(time.Second))
	b.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// meteredBody passes a body on at the bucket's rate and counts the bytes it passed.
type meteredBody struct {
	ctx context.Context
	rc  io.ReadCloser
	b   *bucket
	n   *atomic.Int64
}

func (m *meteredBody) Read(p []byte) (int, error) {
	if len(p) > chunk {
		p = p[:chunk]
	}
	n, err := m.rc.Read(p)
	if n > 0 {
		if werr := m.b.take(m.ctx, n); werr != nil {
			return 0, werr
		}
		m.n.Add(int64(n))
	}
	return n, err
}

func (m *meteredBody) Close() error { return m.rc.Close() }

// proxy is a reverse proxy to one target with a shared rate limit and byte counters.
type proxy struct {
	b        *bucket
	rp       *httputil.ReverseProxy
	up       atomic.Int64 // request body bytes forwarded to the target
	down     atomic.Int64 // response body bytes forwarded to the clients
	sink     atomic.Int64 // request body bytes read and discarded at sinkPath
	requests atomic.Int64 // requests forwarded to the target
}

func newProxy(target *url.URL, rate float64) *proxy {
	p := &proxy{b: newBucket(rate)}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			if r.Out.Body != nil && r.Out.Body != http.NoBody {
				r.Out.Body = &meteredBody{ctx: r.In.Context(), rc: r.Out.Body, b: p.b, n: &p.up}
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Body = &meteredBody{ctx: resp.Request.Context(), rc: resp.Body, b: p.b, n: &p.down}
			return nil
		},
		ErrorLog: log.New(os.Stderr, "benchtool proxy: ", 0),
	}
	return p
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case statsPath:
		fmt.Fprintln(w, p.stats())
	case sinkPath:
		body := &meteredBody{ctx: r.Context(), rc: r.Body, b: p.b, n: &p.sink}
		n, err := io.Copy(io.Discard, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "bytes=%d\n", n)
	default:
		p.requests.Add(1)
		p.rp.ServeHTTP(w, r)
	}
}

func (p *proxy) stats() string {
	return fmt.Sprintf("up_bytes=%d down_bytes=%d sink_bytes=%d requests=%d",
		p.up.Load(), p.down.Load(), p.sink.Load(), p.requests.Load())
}

// runProxy serves the proxy on listen until ctx is done (SIGTERM, SIGINT), printing its URL
// first and its counters last on out.
func runProxy(ctx context.Context, out io.Writer, listen, target, rate string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("proxy: -target must be an http(s) URL, got %q", target)
	}
	bps, err := parseRate(rate)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	p := newProxy(u, bps)
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "url=http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("proxy: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("proxy: %w", err)
	}
	fmt.Fprintln(out, p.stats())
	return nil
}

// parseRate reads a rate such as 100Mbit, 12.5MB, 8MiB or 0 (unlimited), optionally with
// "/s", and returns it in bytes per second. Decimal prefixes are powers of 1000, binary ones
// (KiB, MiB, GiB) powers of 1024; a bare number is bytes.
func parseRate(s string) (float64, error) {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "/s")
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], t[i:]
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad rate %q (want e.g. 100Mbit, 10MB, 8MiB or 0)", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
		"bit": 1.0 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
	}
	m, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("bad rate %q: unknown unit %q", s, unit)
	}
	return v * m, nil
}
