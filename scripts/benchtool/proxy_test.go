package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// startProxy serves a proxy to target at rate (bytes per second) and returns its URL.
func startProxy(t *testing.T, target string, rate float64) (string, *proxy) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(u, rate)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL, p
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, u string, body []byte) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %d %v %.200s", u, resp.StatusCode, err, got)
	}
	return got
}

func TestProxyForwardsBodiesUnchanged(t *testing.T) {
	// The target answers with the SHA-256 of the body it got in a header and the body reversed.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("X-Sum", hex.EncodeToString(sum[:]))
		for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
		_, _ = w.Write(b)
	}))
	defer up.Close()
	purl, p := startProxy(t, up.URL, 0)

	body := randomBytes(t, 3<<20+17)
	req, _ := http.NewRequest(http.MethodPost, purl+"/v1/uploads/x/parts/1?a=b", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(body)
	if resp.Header.Get("X-Sum") != hex.EncodeToString(want[:]) {
		t.Errorf("the target got other bytes than were sent")
	}
	for i := range got {
		if got[i] != body[len(body)-1-i] || len(got) != len(body) {
			t.Fatalf("the response differs from the target's at byte %d (len %d, want %d)", i, len(got), len(body))
		}
	}
	stats := p.stats()
	wantStats := fmt.Sprintf("up_bytes=%d down_bytes=%d sink_bytes=0 requests=1", len(body), len(body))
	if stats != wantStats {
		t.Errorf("stats %q, want %q", stats, wantStats)
	}

	// A body-less request passes too, and the proxy's own paths answer without the target.
	resp, err = http.Get(purl + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := strings.TrimSpace(string(put(t, purl+sinkPath, body[:1000]))); got != "bytes=1000" {
		t.Errorf("sink answered %q", got)
	}
	resp, err = http.Get(purl + statsPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "sink_bytes=1000 requests=2") {
		t.Errorf("GET %s: %q", statsPath, b)
	}
}

// At a low rate, transfers take at least their size over the rate, and parallel ones share
// it. Only a generous lower bound is checked: a loaded machine may be slower still.
func TestProxyRateIsShared(t *testing.T) {
	const rate = 1 << 20 // bytes per second
	purl, p := startProxy(t, "http://127.0.0.1:1", rate)
	const each = 512 << 10
	body := randomBytes(t, each)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { put(t, purl+sinkPath, body) })
	}
	wg.Wait()
	took := time.Since(t0)
	least := time.Duration(float64(3*each-burst) / rate * 0.9 * float64(time.Second))
	if took < least {
		t.Errorf("3 × %d bytes at %d B/s took %v, want at least %v", each, rate, took, least)
	}
	if got := p.sink.Load(); got != 3*each {
		t.Errorf("sink counted %d bytes, want %d", got, 3*each)
	}
}

func TestBucketStopsWithContext(t *testing.T) {
	b := newBucket(1000)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.take(ctx, burst+1e6); err == nil {
		t.Fatal("a take of 1000 s of tokens returned before its context ended")
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{
		"100Mbit": 12.5e6, "100mbit/s": 12.5e6, "8kbit": 1000, "0": 0, "512": 512,
		"10MB": 10e6, "2MiB": 2 << 20, "1.5KiB": 1536, "1Gbit": 125e6,
	} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1Mbit", "10 parsecs", "1Tbit"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) accepted", in)
		}
	}
}
