package api

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/wire"
)

// testDNS resolves a few names without the network; others do not exist.
type testDNS map[string]string

func (d testDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := d[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// withWebhooks serves the webhook routes over a SQLite store of their own, private addresses
// refused unless allowPrivate, at most limit webhooks per user.
func withWebhooks(t *testing.T, allowPrivate bool, limit int) func(*Config) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "webhooks.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dns := testDNS{"hooks.example.com": "93.184.215.14", "internal.example.com": "10.0.0.7"}
	// A clock a second further on each time, so that webhooks list in the order they were made.
	var mu sync.Mutex
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		at = at.Add(time.Second)
		return at
	}
	return func(c *Config) {
		c.Webhooks = &webhook.Service{Store: db.Webhooks(), Resolver: dns, AllowPrivate: allowPrivate, MaxPerUser: limit,
			Logger: c.Logger, Now: now}
	}
}

func TestWebhookRoutes(t *testing.T) {
	e := newEnv(t, withWebhooks(t, false, 3))
	ann, bob := e.user("ann@example.com"), e.user("bob@example.com")

	r := e.do("POST", "/v1/webhooks", ann, jsonBody(map[string]any{"url": "https://hooks.example.com/v2m?k=1"}))
	var first wire.Webhook
	if r.code != 201 || r.json(&first) != nil || !strings.HasPrefix(first.Secret, "whsec_") || first.URL != "https://hooks.example.com/v2m?k=1" ||
		strings.Join(first.Events, ",") != "job.done,job.failed" || first.CreatedAt.IsZero() || len(first.ID) != 24 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	if r.hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("the answer that carries the secret may be cached: Cache-Control %q", r.hdr.Get("Cache-Control"))
	}
	if !strings.HasPrefix(string(r.body), `{"id":"`) || !strings.Contains(string(r.body), `","url":"`) {
		t.Errorf("keys out of the documented order: %s", r.body)
	}
	r = e.do("POST", "/v1/webhooks", ann, jsonBody(map[string]any{"url": "https://93.184.215.14/hook", "events": []string{"job.failed", "job.failed"}}))
	var second wire.Webhook
	if r.code != 201 || r.json(&second) != nil || strings.Join(second.Events, ",") != "job.failed" || second.Secret == first.Secret {
		t.Fatalf("create with events: %d %s", r.code, r.body)
	}

	r = e.do("GET", "/v1/webhooks", ann, nil)
	var list wire.WebhookList
	if r.code != 200 || r.json(&list) != nil || len(list.Webhooks) != 2 || list.Webhooks[0].ID != first.ID || list.Webhooks[1].ID != second.ID {
		t.Fatalf("list: %d %s", r.code, r.body)
	}
	if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), first.Secret) {
		t.Errorf("the list shows the secret: %s", r.body)
	}
	r = e.do("GET", "/v1/webhooks/"+first.ID, ann, nil)
	var got wire.Webhook
	if r.code != 200 || r.json(&got) != nil || got.ID != first.ID || got.URL != first.URL || !got.CreatedAt.Equal(first.CreatedAt) ||
		strings.Contains(string(r.body), "secret") {
		t.Fatalf("get: %d %s", r.code, r.body)
	}

	// Someone else's webhook does not exist for bob.
	if r := e.do("GET", "/v1/webhooks", bob, nil); r.code != 200 || string(r.body) != `{"webhooks":[]}` {
		t.Errorf("bob's list: %d %s", r.code, r.body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if r := e.do(m, "/v1/webhooks/"+first.ID, bob, nil); r.code != 404 || r.errCode() != "not_found" {
			t.Errorf("%s of ann's webhook by bob: %d %s", m, r.code, r.body)
		}
	}
	if r := e.do("GET", "/v1/webhooks/"+first.ID, ann, nil); r.code != 200 {
		t.Fatalf("ann's webhook after bob's delete: %d %s", r.code, r.body)
	}
	for _, id := range []string{"nope", strings.Repeat("0", 24), "..%2f..%2fetc"} {
		if r := e.do("GET", "/v1/webhooks/"+id, ann, nil); r.code != 404 {
			t.Errorf("GET webhook %q: %d %s", id, r.code, r.body)
		}
	}
	if r := e.do("GET", "/v1/webhooks", "", nil); r.code != 401 {
		t.Errorf("list without a token: %d", r.code)
	}
	if r := e.do("POST", "/v1/webhooks", "", jsonBody(map[string]any{"url": "https://hooks.example.com/"})); r.code != 401 {
		t.Errorf("create without a token: %d", r.code)
	}

	// The limit: a third is fine, a fourth is refused until one goes.
	if r := e.do("POST", "/v1/webhooks", ann, jsonBody(map[string]any{"url": "https://hooks.example.com/3"})); r.code != 201 {
		t.Fatalf("third: %d %s", r.code, r.body)
	}
	r = e.do("POST", "/v1/webhooks", ann, jsonBody(map[string]any{"url": "https://hooks.example.com/4"}))
	if r.code != 409 || r.errCode() != "conflict" || !strings.Contains(string(r.body), "3 webhooks") {
		t.Fatalf("over the limit: %d %s", r.code, r.body)
	}
	if r := e.do("POST", "/v1/webhooks", bob, jsonBody(map[string]any{"url": "https://hooks.example.com/"})); r.code != 201 {
		t.Fatalf("bob's first, with ann at her limit: %d %s", r.code, r.body)
	}
	if r := e.do("DELETE", "/v1/webhooks/"+first.ID, ann, nil); r.code != 204 || len(r.body) != 0 {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/v1/webhooks/"+first.ID, ann, nil); r.code != 404 {
		t.Fatalf("get after delete: %d", r.code)
	}
	if r := e.do("DELETE", "/v1/webhooks/"+first.ID, ann, nil); r.code != 404 {
		t.Fatalf("delete again: %d", r.code)
	}
	if r := e.do("POST", "/v1/webhooks", ann, jsonBody(map[string]any{"url": "https://hooks.example.com/4"})); r.code != 201 {
		t.Fatalf("create after a delete made room: %d %s", r.code, r.body)
	}
	if strings.Contains(e.logs.String(), first.Secret) {
		t.Error("the server logged a webhook's secret")
	}
	e.noErrorLogs()
}

func TestWebhookValidation(t *testing.T) {
	e := newEnv(t, withWebhooks(t, false, 0))
	ann := e.user("ann@example.com")
	for _, tc := range []struct{ body, msg string }{
		{`{}`, `field "url" is required`},
		{`{"url":5}`, `field "url" must be a string`},
		{`{"url":"ftp://hooks.example.com/"}`, `field "url" must be an http or https URL`},
		{`{"url":"https://user:pw@hooks.example.com/"}`, `must not contain credentials`},
		{`{"url":"https://hooks.example.com/` + strings.Repeat("a", 3000) + `"}`, `at most 2048 bytes`},
		{`{"url":"https://hooks.example.com/x y"}`, `white space`},
		{`{"url":"https://hooks.example.com/","events":[]}`, `field "events" must name at least one`},
		{`{"url":"https://hooks.example.com/","events":["job.started"]}`, `unknown event "job.started"`},
		{`{"url":"https://hooks.example.com/","events":"job.done"}`, `field "events" must be an array`},
		{`{"url":"http://127.0.0.1:8080/"}`, `127.0.0.1 is a private, loopback or otherwise internal address`},
		{`{"url":"http://169.254.169.254/latest/meta-data/"}`, `is a private, loopback or otherwise internal address`},
		{`{"url":"http://[::ffff:10.0.0.1]/"}`, `is a private, loopback or otherwise internal address`},
		{`{"url":"https://internal.example.com/hook"}`, `does not resolve to a public internet address`},
		{`{"url":"http://localhost:8080/"}`, `does not resolve to a public internet address`},
		{`{"url":"https://nowhere.example.com/"}`, `does not resolve to a public internet address`},
		{`{"url":"https://2130706433/"}`, `neither an IP address nor a DNS name`},
		{`[]`, `must be a JSON object`},
		{`{"url":`, `malformed JSON`},
	} {
		r := e.do("POST", "/v1/webhooks", ann, strings.NewReader(tc.body))
		var eb wire.ErrorBody
		if r.code != 400 || r.json(&eb) != nil || eb.Error.Code != "invalid" || !strings.Contains(eb.Error.Message, tc.msg) {
			t.Errorf("POST %.80s: %d %s, want 400 saying %q", tc.body, r.code, r.body, tc.msg)
			continue
		}
		if m := eb.Error.Message; strings.Contains(m, "10.0.0.7") || strings.Contains(m, "json:") || strings.Contains(m, "net/") || strings.Contains(m, "*") {
			t.Errorf("POST %.80s: message %q leaks an internal address or a Go error", tc.body, m)
		}
	}
	if r := e.do("GET", "/v1/webhooks", ann, nil); r.code != 200 || string(r.body) != `{"webhooks":[]}` {
		t.Errorf("refused webhooks were stored: %s", r.body)
	}
	e.noErrorLogs()
}

// TestWebhookPrivateAllowed: with --webhook-allow-private, in-cluster and loopback receivers
// are accepted; the URL's shape is checked all the same.
func TestWebhookPrivateAllowed(t *testing.T) {
	e := newEnv(t, withWebhooks(t, true, 0))
	ann := e.user("ann@example.com")
	for _, u := range []string{"http://127.0.0.1:9000/hook", "http://receiver.default.svc.cluster.local:8080/", "https://internal.example.com/"} {
		if r := e.do("POST", "/v1/webhooks", ann, jsonBody(map[string]any{"url": u})); r.code != 201 {
			t.Errorf("create %s with private addresses allowed: %d %s", u, r.code, r.body)
		}
	}
	if r := e.do("POST", "/v1/webhooks", ann, jsonBody(map[string]any{"url": "http://u:p@127.0.0.1/"})); r.code != 400 {
		t.Errorf("credentials with private addresses allowed: %d %s", r.code, r.body)
	}
}
