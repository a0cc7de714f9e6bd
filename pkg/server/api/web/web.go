// Package web is v2m's web page: plain HTML, CSS and JavaScript modules, embedded in the
// binary, with no build step and nothing loaded from elsewhere. The API handler serves it at
// "/" and its files under "/assets/" (standalone and the gateway; the auth service has no page).
//
// The page talks to the API like any other client: it keeps its token in sessionStorage and
// sends it in the Authorization header, never in a cookie, so the API needs no CSRF defence.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// files holds index.html and assets/: what the page is made of.
//
//go:embed index.html assets
var files embed.FS

// Policy is the Content-Security-Policy of the page and its assets: scripts, styles and
// images only from the server itself (no inline script or style), images also from the blob:
// and data: URLs the page makes, requests only to the API, no plugins, frames or base URL.
const Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// types are the content types of the files the page has, by extension; a file of another
// kind is refused when the Site is made, so that nothing goes out with a guessed type.
var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

type file struct {
	body  []byte
	ctype string
	etag  string // a strong validator: a hash of the body
}

// Site serves the page's files from memory.
type Site struct {
	files map[string]file // by URL path: "/" and "/assets/..."
}

// New reads the embedded files.
func New() (*Site, error) {
	s := &Site{files: map[string]file{}}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		ctype, ok := types[path.Ext(name)]
		if !ok {
			return fmt.Errorf("web: %s has no known content type", name)
		}
		sum := sha256.Sum256(body)
		urlPath := "/" + name
		if name == "index.html" {
			urlPath = "/"
		}
		s.files[urlPath] = file{body: body, ctype: ctype, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if _, ok := s.files["/"]; !ok {
		return nil, fmt.Errorf("web: index.html is missing")
	}
	return s, nil
}

// Paths lists the URL paths the Site serves.
func (s *Site) Paths() []string {
	out := make([]string, 0, len(s.files))
	for p := range s.files {
		out = append(out, p)
	}
	return out
}

// Serve answers a GET or HEAD of urlPath ("/" or "/assets/..."), and reports false, having
// written nothing, when the Site has no such file. Every answer carries the page's security
// headers; the files are revalidated on each use (Cache-Control: no-cache) with their ETag,
// so a new release shows at once and an unchanged file costs a 304.
func (s *Site) Serve(w http.ResponseWriter, r *http.Request, urlPath string) bool {
	f, ok := s.files[urlPath]
	if !ok {
		return false
	}
	h := w.Header()
	SetHeaders(h)
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	return true
}

// SetHeaders sets the security headers of the page and its assets.
func SetHeaders(h http.Header) {
	h.Set("Content-Security-Policy", Policy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}
