package webhook_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/wire"
)

// receiver is a webhook receiver on loopback that records what it gets and answers each
// request with the status answer gives it (n counts requests from 1).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Header.Clone(), body})
		n := len(rc.got)
		rc.mu.Unlock()
		rc.answer(n, w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// status answers every request with code.
func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func hookTo(url string) *server.Webhook {
	return &server.Webhook{ID: server.NewID(), Owner: "ann@example.com", URL: url, Events: server.WebhookEvents,
		Secret: "whsec_" + server.NewID(), CreatedAt: time.Now().UTC()}
}

var sample = webhook.Delivery{ID: "0123456789abcdef01234567", Event: wire.EventJobDone, Body: []byte(`{"id":"e","type":"job.done"}`)}

func TestDeliverSigned(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	w := hookTo(rc.srv.URL + "/hook?k=v")
	code, err := (&webhook.Deliverer{AllowPrivate: true}).Deliver(t.Context(), w, sample)
	if err != nil || code != http.StatusNoContent {
		t.Fatalf("Deliver = %d, %v; want 204", code, err)
	}
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("the receiver got %d requests, want 1", len(got))
	}
	h, body := got[0].header, got[0].body
	for k, want := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "v2m-webhook/1",
		"X-V2M-Event": wire.EventJobDone, "X-V2M-Delivery": sample.ID,
	} {
		if h.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), want)
		}
	}
	if !bytes.Equal(body, sample.Body) {
		t.Errorf("body %q, want %q", body, sample.Body)
	}
	// What a receiver does: check the signature against the raw body and the secret.
	if err := wire.VerifyWebhook(w.Secret, h.Get("X-V2M-Signature"), body, time.Now(), 0); err != nil {
		t.Errorf("the delivery's signature %q does not verify: %v", h.Get("X-V2M-Signature"), err)
	}
	if err := wire.VerifyWebhook("whsec_wrong", h.Get("X-V2M-Signature"), body, time.Now(), 0); !errors.Is(err, wire.ErrBadSignature) {
		t.Errorf("the signature verifies with another secret: %v", err)
	}
}

func TestDeliverClassifiesAnswers(t *testing.T) {
	elsewhere := newReceiver(t, status(http.StatusOK))
	d := &webhook.Deliverer{AllowPrivate: true}
	for _, tc := range []struct {
		code      int
		ok, retry bool
	}{
		{200, true, false}, {201, true, false}, {202, true, false}, {204, true, false},
		{408, false, true}, {429, false, true}, {500, false, true}, {502, false, true}, {503, false, true}, {504, false, true},
		{400, false, false}, {401, false, false}, {403, false, false}, {404, false, false}, {410, false, false}, {422, false, false},
		{301, false, false}, {302, false, false}, {307, false, false}, {308, false, false},
	} {
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.srv.URL, tc.code) // a Location for the 3xx; the others ignore it
		})
		code, err := d.Deliver(t.Context(), hookTo(rc.srv.URL), sample)
		switch {
		case code != tc.code:
			t.Errorf("answer %d: Deliver gave status %d", tc.code, code)
		case tc.ok && err != nil:
			t.Errorf("answer %d: Deliver = %v, want success", tc.code, err)
		case !tc.ok && err == nil:
			t.Errorf("answer %d: Deliver succeeded", tc.code)
		case !tc.ok && server.IsPermanent(err) == tc.retry:
			t.Errorf("answer %d: Deliver = %v, permanent %v; want permanent %v", tc.code, err, server.IsPermanent(err), !tc.retry)
		}
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Errorf("a redirect was followed: its target got %d requests", n)
	}
}

func TestDeliverNetworkErrorsRetry(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK))
	url := rc.srv.URL
	rc.srv.Close() // the receiver is down: connections are refused
	_, err := (&webhook.Deliverer{AllowPrivate: true}).Deliver(t.Context(), hookTo(url+"/hook?token=s3cret"), sample)
	if err == nil || server.IsPermanent(err) {
		t.Fatalf("Deliver to a closed port = %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error %q quotes the URL, and its query's secret", err)
	}
}

func TestDeliverTimesOutAndBoundsTheAnswer(t *testing.T) {
	silent := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	d := &webhook.Deliverer{AllowPrivate: true, Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err := d.Deliver(t.Context(), hookTo(silent.srv.URL), sample)
	if err == nil || server.IsPermanent(err) {
		t.Fatalf("Deliver to a receiver that never answers = %v, want a retryable error", err)
	}
	if e := time.Since(start); e > 5*time.Second {
		t.Errorf("Deliver took %v with a 300 ms timeout", e)
	}
	// An answer that never ends is read no further than a few KiB.
	endless := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	code, err := (&webhook.Deliverer{AllowPrivate: true}).Deliver(t.Context(), hookTo(endless.srv.URL), sample)
	if err != nil || code != http.StatusOK {
		t.Fatalf("Deliver to an endless answer = %d, %v; want 200", code, err)
	}
}

// TestDeliverRefusesRebinding: a name that resolved to a public address when the webhook was
// created, and resolves to loopback when it is delivered, reaches nothing; the check is made
// on the address dialled.
func TestDeliverRefusesRebinding(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK))
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":")+1:]
	dns := newDNS("hooks.example.com", "93.184.215.14")
	w, err := newService(t, dns).Create(t.Context(), "ann@example.com", wire.NewWebhook{URL: "http://hooks.example.com:" + port + "/hook"})
	wantCode(t, "Create while the name is public", err, "")

	dns.set("hooks.example.com", "127.0.0.1") // the attacker's DNS answers otherwise now
	code, err := (&webhook.Deliverer{Resolver: dns}).Deliver(t.Context(), w, sample)
	if !errors.Is(err, webhook.ErrForbiddenAddress) || !server.IsPermanent(err) || code != 0 {
		t.Fatalf("Deliver after the name turned to loopback = %d, %v; want a permanent %v", code, err, webhook.ErrForbiddenAddress)
	}
	// So is an address that was accepted while private addresses were allowed.
	_, err = (&webhook.Deliverer{Resolver: dns}).Deliver(t.Context(), hookTo(rc.srv.URL), sample)
	if !errors.Is(err, webhook.ErrForbiddenAddress) {
		t.Fatalf("Deliver to %s = %v, want %v", rc.srv.URL, err, webhook.ErrForbiddenAddress)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
	// The same delivery with private addresses allowed reaches it through the same resolver:
	// what refused it above is the address check, not a lookup that failed.
	if _, err := (&webhook.Deliverer{Resolver: dns, AllowPrivate: true}).Deliver(t.Context(), w, sample); err != nil {
		t.Fatalf("Deliver with private addresses allowed: %v", err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("the receiver got %d requests, want 1", n)
	}
}

func TestDeliverIgnoresProxySettings(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	rc := newReceiver(t, status(http.StatusOK))
	if _, err := (&webhook.Deliverer{AllowPrivate: true}).Deliver(t.Context(), hookTo(rc.srv.URL), sample); err != nil {
		t.Fatalf("Deliver with HTTP_PROXY set: %v (a proxy would be dialled instead of the checked address)", err)
	}
}

func TestEventIDs(t *testing.T) {
	fin := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	j := &server.Job{ID: server.NewID(), Owner: "ann@example.com", State: server.JobDone, Filename: "talk.mp4",
		MP3FID: server.NewID(), CreatedAt: fin.Add(-time.Minute), UpdatedAt: fin, FinishedAt: fin}
	e, err := webhook.Event(j)
	if err != nil {
		t.Fatal(err)
	}
	if !server.ValidID(e.ID) || e.Type != wire.EventJobDone || !e.CreatedAt.Equal(fin) || e.Job.ID != j.ID || e.Job.MP3FID != j.MP3FID {
		t.Fatalf("Event = %+v", e)
	}
	again, _ := webhook.Event(j)
	if again.ID != e.ID {
		t.Error("the event's id changes between calls: retries would not carry the same one")
	}
	failed := *j
	failed.State, failed.Error = server.JobFailed, "no audio"
	f, err := webhook.Event(&failed)
	if err != nil || f.ID == e.ID || f.Type != wire.EventJobFailed || f.Job.Error != "no audio" || f.Job.MP3FID != "" {
		t.Fatalf("Event of the failure = %+v, %v", f, err)
	}
	a, b := webhook.DeliveryID("hook-a", e.ID), webhook.DeliveryID("hook-b", e.ID)
	if a == b || a != webhook.DeliveryID("hook-a", e.ID) || !server.ValidID(a) {
		t.Errorf("delivery ids %q and %q: want one per webhook, stable", a, b)
	}
	queued := *j
	queued.State = server.JobQueued
	if _, err := webhook.Event(&queued); err == nil {
		t.Error("Event of a queued job succeeded")
	}
}
