package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Webhook events: a job's outcome.
const (
	EventJobDone   = "job.done"
	EventJobFailed = "job.failed"
)

// WebhookEvents are every event, in the order webhooks list them: what a webhook created
// without "events" subscribes to.
var WebhookEvents = []string{EventJobDone, EventJobFailed}

// MaxWebhookURL is the longest webhook URL accepted, in bytes.
const MaxWebhookURL = 2048

// The headers of a webhook delivery.
const (
	HeaderEvent     = "X-V2M-Event"     // the event's type: job.done or job.failed
	HeaderDelivery  = "X-V2M-Delivery"  // the delivery's id: the same on every retry of it
	HeaderSignature = "X-V2M-Signature" // t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
)

// NewWebhook is the body of POST /v1/webhooks. Events nil (absent or null) subscribes to
// every event.
type NewWebhook struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
}

// Webhook is a webhook: the answer of the /v1/webhooks routes. Secret, the key of the
// deliveries' signatures, is there only in the answer of POST /v1/webhooks.
type Webhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// WebhookList is the answer of GET /v1/webhooks, oldest first. Webhooks is never null.
type WebhookList struct {
	Webhooks []Webhook `json:"webhooks"`
}

// WebhookEvent is the body of a delivery. ID names the event (a job's outcome) and is the same
// for every webhook that gets it; Job is the job as GET /v1/jobs/{id} shows it; CreatedAt is
// when the job finished.
type WebhookEvent struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Job       Job       `json:"job"`
}

// Check reports whether the webhook's URL and events are acceptable, as the server checks
// them before it looks the host up: nil, or an error whose message names the field.
func (w *NewWebhook) Check() error {
	if _, err := CheckWebhookURL(w.URL); err != nil {
		return err
	}
	_, err := CleanEvents(w.Events)
	return err
}

// CheckWebhookURL parses a webhook URL and checks its shape: http or https, a host that is an
// IP address or a DNS name, no credentials, no fragment, no white space or control
// characters, at most MaxWebhookURL bytes. Whether the host may be reached is the server's
// to check.
func CheckWebhookURL(raw string) (*url.URL, error) {
	bad := func(format string, args ...any) (*url.URL, error) {
		return nil, fmt.Errorf(`field "url" `+format, args...)
	}
	switch {
	case raw == "":
		return bad("is required")
	case len(raw) > MaxWebhookURL:
		return bad("must be at most %d bytes, not %d", MaxWebhookURL, len(raw))
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }):
		return bad("must not contain white space, control characters or backslashes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("must be an http or https URL")
	case u.Opaque != "" || u.Host == "":
		return bad("must be an absolute URL with a host, like https://example.com/hook")
	case u.User != nil:
		return bad("must not contain credentials (user:password@); the signature authenticates deliveries")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("must not have a fragment (#...)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("has a bad port %q", p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("has an empty port")
	}
	if err := checkHost(u.Hostname()); err != nil {
		return bad("%v", err)
	}
	return u, nil
}

// checkHost accepts an IP address without zone, or a DNS name of letters, digits and hyphens
// whose last label is not a number: resolvers read "2130706433" or "0x7f000001" as IPv4
// addresses.
func checkHost(h string) error {
	if h == "" {
		return errors.New("has no host")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return errors.New("must not name an IPv6 zone")
		}
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return errors.New("has a host that is not a DNS name")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !dnsLabel(l) {
			return errors.New("has a host that is neither an IP address nor a DNS name (write international names in punycode, xn--...)")
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if strings.Trim(last, "0123456789") == "" ||
		strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == "" {
		return errors.New("has a host that is neither an IP address nor a DNS name")
	}
	return nil
}

func dnsLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// CleanEvents checks a webhook's events and returns them in the order of WebhookEvents,
// without duplicates. Nil means every event; an empty list is refused (it would receive
// nothing).
func CleanEvents(events []string) ([]string, error) {
	if events == nil {
		return slices.Clone(WebhookEvents), nil
	}
	if len(events) == 0 {
		return nil, fmt.Errorf(`field "events" must name at least one of %s (or be left out for both)`, strings.Join(WebhookEvents, ", "))
	}
	for _, e := range events {
		if !slices.Contains(WebhookEvents, e) {
			return nil, fmt.Errorf(`field "events": unknown event %q; the events are %s`, truncate(e, 40), strings.Join(WebhookEvents, ", "))
		}
	}
	var out []string
	for _, e := range WebhookEvents {
		if slices.Contains(events, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// SignatureTolerance is how far from now the timestamp of a signature may be for
// VerifyWebhook to accept it, when it is given no other.
const SignatureTolerance = 5 * time.Minute

// Errors of VerifyWebhook.
var (
	ErrNoSignature    = errors.New("webhook: no valid X-V2M-Signature header (t=...,v1=...)")
	ErrBadSignature   = errors.New("webhook: the signature does not match the body")
	ErrStaleSignature = errors.New("webhook: the signature's timestamp is too old (or in the future): a replay?")
)

// SignWebhook returns the X-V2M-Signature of body sent at t with the webhook's secret:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>" keyed with the secret's bytes>".
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyWebhook checks the X-V2M-Signature header of a delivery: one of its v1 values must be
// the HMAC of "<t>.<body>" with secret, compared in constant time, and t must be within
// tolerance of now (SignatureTolerance when tolerance is 0), which refuses a delivery replayed
// later. body must be the request body exactly as received, before any JSON decoding.
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = SignatureTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return ErrNoSignature
		case k == "t":
			if ts != "" {
				return ErrNoSignature
			}
			ts = v
		case k == "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	want := mac(secret, ts, body)
	if !slices.ContainsFunc(sigs, func(s []byte) bool { return hmac.Equal(s, want) }) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStaleSignature
	}
	return nil
}
