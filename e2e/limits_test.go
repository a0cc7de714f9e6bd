package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// limitArgs scale the connection limits down so that the test takes seconds.
var limitArgs = []string{"--read-header-timeout", "1s", "--read-timeout", "2s", "--min-transfer-rate", "1024",
	"--transfer-rate-window", "2s"}

// checkConnectionLimits: against a real v2md, 50 connections that stall (headers never
// finished, a JSON body that never comes, an upload part that never comes) are all closed
// within the limits while a real user keeps working; a part cut short is 400, never 500; every
// answer carries the security headers; HEAD works on downloads; /metrics is not on the API port.
func checkConnectionLimits(t *testing.T, base string, u *user) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	tok := httpLogin(t, u.server, u.email, "s3cret-password")
	up := startUpload(t, base, tok, 4096)

	stalls := []string{
		"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", // headers never end
		"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{",
		"PUT /v1/uploads/" + up + "/parts/0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nContent-Length: 4096\r\n\r\nabc",
	}
	var wg sync.WaitGroup
	closed := make(chan time.Duration, 50)
	start := time.Now()
	for i := range 50 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, stalls[i%len(stalls)]); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(time.Minute)) // the test's own bound, far above the server's
			io.Copy(io.Discard, c)                         // until the server closes it
			closed <- time.Since(start)
		}()
	}
	// Meanwhile the user's own requests go through.
	for range 5 {
		if r := u.run("", "jobs"); r.code != 0 {
			t.Fatalf("a real request failed during the stall: %s", r)
		}
	}
	wg.Wait()
	close(closed)
	var longest time.Duration
	for d := range closed {
		longest = max(longest, d)
	}
	t.Logf("50 stalled connections closed within %v", longest)
	if longest > 20*time.Second {
		t.Errorf("the last stalled connection closed after %v; the limits are 1 s and 2 s", longest)
	}

	// A part body cut short: the client's fault, 400.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "PUT /v1/uploads/%s/parts/0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 4096\r\n\r\n%s", up, tok, strings.Repeat("a", 100))
	c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close()
	if err == nil && resp.StatusCode >= 500 {
		t.Errorf("a part cut short answered %d", resp.StatusCode)
	}

	for _, path := range []string{"/healthz", "/v1/me", "/nope"} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: security headers missing: %v", path, resp.Header)
		}
	}
	if resp, err := http.Get(base + "/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the API port: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	req, _ := http.NewRequest(http.MethodHead, base+"/v1/files/0123456789abcdef01234567", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of a download that does not exist: %v %v, want 404", resp, err)
	}
}

// startUpload starts an upload of size bytes and returns its id.
func startUpload(t *testing.T, base, tok string, size int) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/uploads", strings.NewReader(fmt.Sprintf(`{"filename":"a.mp4","size":%d}`, size)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.ID == "" {
		t.Fatalf("start upload: %s %v", resp.Status, err)
	}
	return out.ID
}

func TestStandaloneConnectionLimits(t *testing.T) {
	srv := startStandalone(t, t.TempDir(), append([]string{"--part-size", "4KiB"}, limitArgs...)...)
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	checkConnectionLimits(t, srv.url(), u)
}

func TestDistributedConnectionLimits(t *testing.T) {
	c := startCluster(t, 1, append(limitArgs, "--part-size", "128KiB")...)
	checkConnectionLimits(t, c.gateway.url(), c.user("ann"))
}
