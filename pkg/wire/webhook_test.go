package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckWebhookURL(t *testing.T) {
	for _, ok := range []string{
		"https://hooks.example.com/v2m",
		"http://hooks.example.com:8080/v2m?token=abc&x=1",
		"HTTPS://Hooks.Example.COM./path",
		"https://93.184.215.14/hook",
		"https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/hook",
		"https://xn--bcher-kva.example/",
		"https://a-b.c-d.example/" + strings.Repeat("p", MaxWebhookURL-len("https://a-b.c-d.example/")),
	} {
		if _, err := CheckWebhookURL(ok); err != nil {
			t.Errorf("CheckWebhookURL(%q) = %v, want it accepted", ok, err)
		}
	}
	for _, tc := range []struct{ url, msg string }{
		{"", "is required"},
		{"https://a.example/" + strings.Repeat("p", MaxWebhookURL), "at most 2048 bytes"},
		{"ftp://hooks.example.com/", "http or https"},
		{"javascript:alert(1)", "http or https"},
		{"file:///etc/passwd", "http or https"},
		{"hooks.example.com/v2m", "http or https"},
		{"//hooks.example.com/v2m", "http or https"},
		{"http:hooks.example.com", "absolute URL with a host"},
		{"https:///path", "absolute URL with a host"},
		{"https://user:pass@hooks.example.com/", "credentials"},
		{"https://user@hooks.example.com/", "credentials"},
		{"https://hooks.example.com/#frag", "fragment"},
		{"https://hooks.example.com/#", "fragment"},
		{"https://hooks.example.com /", "white space"},
		{"https://hooks.example.com/\n", "white space"},
		{"https://hooks.example.com\\@evil.example/", "backslashes"},
		{"https://hooks.example.com:0/", "bad port"},
		{"https://hooks.example.com:99999/", "bad port"},
		{"https://hooks.example.com:/", "empty port"},
		{"https://:8080/", "no host"},
		{"https://[fe80::1%25eth0]/", "zone"},
		{"https://2130706433/", "neither an IP address nor a DNS name"},
		{"https://0x7f000001/", "neither an IP address nor a DNS name"},
		{"https://127.1/", "neither an IP address nor a DNS name"},
		{"https://under_score.example/", "neither an IP address nor a DNS name"},
		{"https://-bad.example/", "neither an IP address nor a DNS name"},
		{"https://bücher.example/", "punycode"},
		{"https://a..b.example/", "neither an IP address nor a DNS name"},
		{"https://%31%32%37.0.0.1/", "not a URL"},
	} {
		_, err := CheckWebhookURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), `field "url" `) {
			t.Errorf("CheckWebhookURL(%q) = %v, want an error about the url that says %q", tc.url, err, tc.msg)
		}
	}
}

func TestCleanEvents(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{nil, []string{EventJobDone, EventJobFailed}},
		{[]string{EventJobFailed}, []string{EventJobFailed}},
		{[]string{EventJobFailed, EventJobDone, EventJobFailed}, []string{EventJobDone, EventJobFailed}},
	} {
		got, err := CleanEvents(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("CleanEvents(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range [][]string{{}, {"job.started"}, {EventJobDone, "JOB.DONE"}, {""}} {
		if _, err := CleanEvents(in); err == nil || !strings.HasPrefix(err.Error(), `field "events"`) {
			t.Errorf("CleanEvents(%q) = %v, want an error about the events", in, err)
		}
	}
	// The default list is a copy: changing it does not change what the next webhook gets.
	all, _ := CleanEvents(nil)
	all[0] = "changed"
	if WebhookEvents[0] != EventJobDone {
		t.Fatal("CleanEvents(nil) returned WebhookEvents itself")
	}
}

func TestSignAndVerifyWebhook(t *testing.T) {
	secret := "whsec_0123456789abcdef"
	body := []byte(`{"id":"e1","type":"job.done","job":{"id":"j1"}}`)
	sent := time.Unix(1_900_000_000, 0)
	sig := SignWebhook(secret, sent, body)
	// The documented computation, as a receiver does it: hex HMAC-SHA256, keyed with the
	// secret's bytes, over "<t>.<body>".
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("1900000000." + string(body)))
	if want := "t=1900000000,v1=" + hex.EncodeToString(m.Sum(nil)); sig != want {
		t.Fatalf("signature %q, want %q", sig, want)
	}
	if err := VerifyWebhook(secret, sig, body, sent.Add(time.Minute), 0); err != nil {
		t.Fatalf("VerifyWebhook of a fresh signature: %v", err)
	}
	for _, tc := range []struct {
		name, secret, header string
		body                 []byte
		now                  time.Time
		want                 error
	}{
		{"another body", secret, sig, []byte(`{"id":"e1","type":"job.failed","job":{"id":"j1"}}`), sent, ErrBadSignature},
		{"another secret", "whsec_other", sig, body, sent, ErrBadSignature},
		{"replayed later", secret, sig, body, sent.Add(SignatureTolerance + time.Second), ErrStaleSignature},
		{"from the future", secret, sig, body, sent.Add(-SignatureTolerance - time.Second), ErrStaleSignature},
		{"a timestamp moved", secret, strings.Replace(sig, "t=1900000000", "t=1900000001", 1), body, sent, ErrBadSignature},
		{"empty", secret, "", body, sent, ErrNoSignature},
		{"no timestamp", secret, sig[strings.Index(sig, "v1="):], body, sent, ErrNoSignature},
		{"no v1", secret, "t=1900000000", body, sent, ErrNoSignature},
		{"two timestamps", secret, "t=1,t=1900000000," + sig[strings.Index(sig, "v1="):], body, sent, ErrNoSignature},
		{"garbage", secret, "t=abc,v1=zz", body, sent, ErrNoSignature},
	} {
		if err := VerifyWebhook(tc.secret, tc.header, tc.body, tc.now, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: VerifyWebhook = %v, want %v", tc.name, err, tc.want)
		}
	}
	// During a secret rotation a header may carry several v1 values: one match is enough.
	other := SignWebhook("whsec_old", sent, body)
	rotated := other + "," + sig[strings.Index(sig, "v1="):]
	if err := VerifyWebhook(secret, rotated, body, sent, 0); err != nil {
		t.Errorf("VerifyWebhook with two v1 values, one right: %v", err)
	}
	// A tighter tolerance of the receiver's own.
	if err := VerifyWebhook(secret, sig, body, sent.Add(time.Minute), 30*time.Second); !errors.Is(err, ErrStaleSignature) {
		t.Errorf("VerifyWebhook with a 30 s tolerance, a minute later: %v", err)
	}
}

// TestWebhookShapes pins the JSON of the webhook routes and of a delivery.
func TestWebhookShapes(t *testing.T) {
	at := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    any
		want string
	}{
		{NewWebhook{URL: "https://h.example/x"}, `{"url":"https://h.example/x"}`},
		{NewWebhook{URL: "https://h.example/x", Events: []string{EventJobDone}}, `{"url":"https://h.example/x","events":["job.done"]}`},
		{Webhook{ID: "65a1", URL: "https://h.example/x", Events: []string{EventJobDone, EventJobFailed}, Secret: "whsec_1", CreatedAt: at},
			`{"id":"65a1","url":"https://h.example/x","events":["job.done","job.failed"],"secret":"whsec_1","created_at":"2026-11-27T15:00:00Z"}`},
		{Webhook{ID: "65a1", URL: "https://h.example/x", Events: []string{EventJobFailed}, CreatedAt: at},
			`{"id":"65a1","url":"https://h.example/x","events":["job.failed"],"created_at":"2026-11-27T15:00:00Z"}`},
		{WebhookList{Webhooks: []Webhook{}}, `{"webhooks":[]}`},
		{WebhookEvent{ID: "e1", Type: EventJobFailed, CreatedAt: at, Job: Job{ID: "65a1", State: JobFailed, Error: "no audio",
			Filename: "x.mp4", Size: 9, CreatedAt: at, UpdatedAt: at, FinishedAt: &at}},
			`{"id":"e1","type":"job.failed","created_at":"2026-11-27T15:00:00Z","job":{"id":"65a1","state":"failed","progress":0,` +
				`"error":"no audio","filename":"x.mp4","size":9,"mp3_fid":"","created_at":"2026-11-27T15:00:00Z",` +
				`"updated_at":"2026-11-27T15:00:00Z","finished_at":"2026-11-27T15:00:00Z"}}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.v, b, tc.want)
		}
	}
}
