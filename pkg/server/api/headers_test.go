package api

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestSecurityHeadersOnEveryResponse: successes, errors, unknown routes, wrong methods,
// downloads and the service routes all carry the security headers.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Ready = func(context.Context) error { return errors.New("down") } })
	tok := e.user("ann@example.com")
	var j jobResp
	e.tutorialUpload(tok, "a.mp4", []byte("v")).json(&j)
	j2 := e.finish(j.ID, []byte("mp3"))
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
	}
	for _, rq := range []struct{ method, path, tok, body string }{
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""}, // 503
		{"GET", "/nope", "", ""},
		{"DELETE", "/v1/jobs", tok, ""}, // 405
		{"POST", "/v1/users", "", "{"},
		{"POST", "/v1/tokens", "", ""}, // 401
		{"GET", "/v1/me", tok, ""},
		{"GET", "/v1/jobs", tok, ""},
		{"GET", "/v1/files/" + j2.MP3FID, tok, ""},
		{"HEAD", "/v1/files/" + j2.MP3FID, tok, ""},
		{"GET", "/download?fid=" + j2.MP3FID, tok, ""},
		{"GET", "/v1/files/" + j2.MP3FID, tok, ""},
		{"POST", "/login", "", ""},
	} {
		r := e.do(rq.method, rq.path, rq.tok, strings.NewReader(rq.body))
		for k, v := range want {
			if got := r.hdr.Get(k); got != v {
				t.Errorf("%s %s (%d): %s = %q, want %q", rq.method, rq.path, r.code, k, got, v)
			}
		}
	}
}
