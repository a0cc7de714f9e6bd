package api

import (
	"net/http"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/v2m/v2m/pkg/server/api/web"
)

var (
	// The files the page names: <script src>, <link href>, <img src>.
	pageRefs = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)
	// The modules a module imports: import ... from "./x.js".
	moduleRefs = regexp.MustCompile(`(?m)^import\s[^;]*?from\s+"\./([^"]+)"`)
	// What a strict script-src and style-src would refuse: inline scripts, <style>, style=
	// and event handler attributes.
	inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>`)
	inlineStyle  = regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=`)
)

var wantPageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"X-Frame-Options":              "DENY",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Cache-Control":                "no-cache",
}

var wantTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

func checkHeaders(t *testing.T, what string, r resp, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := r.hdr.Get(k); got != v {
			t.Errorf("%s (%d): %s = %q, want %q", what, r.code, k, got, v)
		}
	}
}

// TestWebPage: the page and every file it loads, followed through its module imports, are
// served with the page's strict policy, their real content types and an ETag; the page has
// no inline script or style for that policy to refuse; the API keeps its own policy.
func TestWebPage(t *testing.T) {
	e := newEnv(t)
	page := e.do("GET", "/", "", nil)
	if page.code != http.StatusOK {
		t.Fatalf("GET /: %d %s", page.code, page.body)
	}
	checkHeaders(t, "GET /", page, wantPageHeaders)
	if ct := page.hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET /: Content-Type %q", ct)
	}
	html := string(page.body)
	for _, tag := range inlineScript.FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="/assets/`) {
			t.Errorf("the page has an inline script: %s", tag)
		}
	}
	if m := inlineStyle.FindString(html); m != "" {
		t.Errorf("the page has inline style or an event handler attribute: %q", m)
	}

	seen := map[string]bool{}
	var todo []string
	for _, m := range pageRefs.FindAllStringSubmatch(html, -1) {
		todo = append(todo, m[1])
	}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		r := e.do("GET", p, "", nil)
		if r.code != http.StatusOK {
			t.Errorf("GET %s: %d", p, r.code)
			continue
		}
		checkHeaders(t, "GET "+p, r, wantPageHeaders)
		if want := wantTypes[path.Ext(p)]; r.hdr.Get("Content-Type") != want {
			t.Errorf("GET %s: Content-Type %q, want %q", p, r.hdr.Get("Content-Type"), want)
		}
		etag := r.hdr.Get("ETag")
		if len(etag) < 10 || !strings.HasPrefix(etag, `"`) {
			t.Errorf("GET %s: ETag %q", p, etag)
		}
		if r304 := e.do("GET", p, "", nil, "If-None-Match", etag); r304.code != http.StatusNotModified || len(r304.body) != 0 {
			t.Errorf("GET %s with its ETag: %d, %d bytes; want 304", p, r304.code, len(r304.body))
		}
		if path.Ext(p) == ".js" {
			for _, m := range moduleRefs.FindAllStringSubmatch(string(r.body), -1) {
				todo = append(todo, "/assets/"+m[1])
			}
		}
	}
	for _, want := range []string{"/assets/app.js", "/assets/api.js", "/assets/upload.js", "/assets/events.js", "/assets/app.css"} {
		if !seen[want] {
			t.Errorf("%s is not reached from the page", want)
		}
	}
	// Everything the page is made of is reached from it: no stray files.
	site, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range site.Paths() {
		if p != "/" && !seen[p] {
			t.Errorf("%s is served but the page does not use it", p)
		}
	}

	// A changed file gets a new ETag: a stale one is answered in full.
	if r := e.do("GET", "/", "", nil, "If-None-Match", `"stale"`); r.code != http.StatusOK || len(r.body) != len(page.body) {
		t.Errorf("GET / with a stale ETag: %d, %d bytes", r.code, len(r.body))
	}
	if r := e.do("HEAD", "/", "", nil); r.code != http.StatusOK || len(r.body) != 0 || r.hdr.Get("Content-Security-Policy") != web.Policy {
		t.Errorf("HEAD /: %d, %d bytes, CSP %q", r.code, len(r.body), r.hdr.Get("Content-Security-Policy"))
	}

	// An unknown asset is the API's 404, with the API's headers.
	apiHeaders := map[string]string{
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
	for _, p := range []string{"/assets/nope.js", "/assets/", "/assets/../index.html", "/index.html"} {
		r := e.do("GET", p, "", nil)
		if r.code != http.StatusNotFound || r.errCode() != "not_found" {
			t.Errorf("GET %s: %d %s, want the API's 404", p, r.code, r.body)
		}
		checkHeaders(t, "GET "+p, r, apiHeaders)
	}
	if r := e.do("POST", "/", "", nil); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", r.code)
	}
	// The API's answers keep the API's policy.
	tok := e.user("ann@example.com")
	for _, p := range []string{"/v1/me", "/v1/jobs", "/healthz"} {
		r := e.do("GET", p, tok, nil)
		if r.code != http.StatusOK {
			t.Errorf("GET %s: %d", p, r.code)
		}
		checkHeaders(t, "GET "+p, r, apiHeaders)
	}
	e.noErrorLogs()
}

// TestNoWebPageWithoutJobs: a role that serves no jobs (the auth service) has no page.
func TestNoWebPageWithoutJobs(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Service = nil })
	for _, p := range []string{"/", "/assets/app.js"} {
		if r := e.do("GET", p, "", nil); r.code != http.StatusNotFound {
			t.Errorf("GET %s without a job service: %d, want 404", p, r.code)
		}
	}
}
