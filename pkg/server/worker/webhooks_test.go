package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/mail"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/wire"
)

// hookReceiver is a webhook receiver on loopback: it answers the n-th request (from 1) with
// answer(n) and records every request.
type hookReceiver struct {
	srv    *httptest.Server
	answer func(n int) int
	mu     sync.Mutex
	got    []http.Header
	bodies [][]byte
}

func newHookReceiver(t *testing.T, answer func(n int) int) *hookReceiver {
	t.Helper()
	h := &hookReceiver{answer: answer}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, r.Header.Clone())
		h.bodies = append(h.bodies, body)
		n := len(h.got)
		h.mu.Unlock()
		w.WriteHeader(h.answer(n))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// hookEnv is a notifier with webhooks on SQLite, mailing into an outbox.
type hookEnv struct {
	t    *testing.T
	db   *sqlite.DB
	mail *flakyMailer
	n    *Notifier
}

// newHookEnv delivers with private addresses allowed (the receivers are on loopback), as
// v2md does with --webhook-allow-private, unless private is false.
func newHookEnv(t *testing.T, private bool) *hookEnv {
	dir := t.TempDir()
	db := openSQLite(t, filepath.Join(dir, "v2m.db"))
	m := &flakyMailer{next: &mail.Outbox{Dir: filepath.Join(dir, "outbox"), From: "v2m@localhost"}}
	n := &Notifier{Mailer: m, Sent: db.SentLog(), Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
		Webhooks: db.Webhooks(), Jobs: db.Jobs(), Deliverer: &webhook.Deliverer{AllowPrivate: private}}
	return &hookEnv{t: t, db: db, mail: m, n: n}
}

// doneJob stores a job of owner's that is done, and returns the event that announces it.
func (e *hookEnv) doneJob(owner string) (*server.Job, []byte) {
	e.t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	j := &server.Job{ID: server.NewID(), Owner: owner, State: server.JobDone, Progress: 100, Filename: "talk.mp4", Size: 1234,
		MP3FID: server.NewID(), Options: server.JobOptions{Bitrate: 128}, Attempts: 1,
		CreatedAt: now.Add(-time.Minute), UpdatedAt: now, FinishedAt: now}
	j.VideoFID = j.ID
	if err := e.db.Jobs().CreateJob(context.Background(), j); err != nil {
		e.t.Fatal(err)
	}
	ev, _ := json.Marshal(server.EventFor(j))
	return j, ev
}

// hook registers a webhook of owner's to url, created an hour ago.
func (e *hookEnv) hook(owner, url string, events ...string) *server.Webhook {
	e.t.Helper()
	if events == nil {
		events = server.WebhookEvents
	}
	w := &server.Webhook{ID: server.NewID(), Owner: owner, URL: url, Events: events, Secret: "whsec_" + server.NewID(),
		CreatedAt: time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)}
	if err := e.db.Webhooks().CreateWebhook(context.Background(), w, 10); err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *hookEnv) handle(body []byte, attempt int) error {
	return e.n.Handle(context.Background(), server.Delivery{Topic: server.TopicMP3, Body: body, Attempt: attempt, MaxAttempts: 20})
}

// consume runs the notifier on a real queue holding body, with no backoff, until it has
// handled n deliveries, and returns what each returned, once the queue has settled them.
func (e *hookEnv) consume(body []byte, maxAttempts, n int) ([]error, *sqlite.Queue) {
	e.t.Helper()
	q := e.db.Queue(sqlite.QueueConfig{MaxAttempts: maxAttempts, Backoff: func(int) time.Duration { return 0 }, Poll: 10 * time.Millisecond})
	if err := q.Publish(context.Background(), server.TopicMP3, body); err != nil {
		e.t.Fatal(err)
	}
	results := make(chan error, n+maxAttempts)
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() {
		consumed <- q.Consume(ctx, server.TopicMP3, 1, func(ctx context.Context, d server.Delivery) error {
			err := e.n.Handle(ctx, d)
			results <- err
			return err
		})
	}()
	var errs []error
	for range n {
		select {
		case err := <-results:
			errs = append(errs, err)
		case <-time.After(20 * time.Second):
			e.t.Fatalf("the queue delivered %d times, want %d", len(errs), n)
		}
	}
	cancel()
	if err := <-consumed; err != nil { // Consume returns once its handlers' outcomes are settled
		e.t.Fatal(err)
	}
	return errs, q
}

func (e *hookEnv) depth(q *sqlite.Queue) (live, dead int) {
	e.t.Helper()
	live, dead, err := q.Depth(context.Background(), server.TopicMP3)
	if err != nil {
		e.t.Fatal(err)
	}
	return live, dead
}

// TestWebhookDeliveredOnceAfterTheReceiverRecovers: a receiver that answers 503 at first gets
// the event on a later delivery of the message, signed, with one delivery id throughout, and
// never again once it has it, however often the message comes back.
func TestWebhookDeliveredOnceAfterTheReceiverRecovers(t *testing.T) {
	e := newHookEnv(t, true)
	rc := newHookReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	w := e.hook("ann@example.com", rc.srv.URL+"/hook")
	j, ev := e.doneJob("ann@example.com")

	errs, q := e.consume(ev, 5, 3)
	if errs[0] == nil || errs[1] == nil || errs[2] != nil || server.IsPermanent(errs[0]) {
		t.Fatalf("the three deliveries returned %v; want two retryable errors, then success", errs)
	}
	if live, dead := e.depth(q); live != 0 || dead != 0 {
		t.Fatalf("queue holds %d live and %d dead messages after the success, want none", live, dead)
	}
	if rc.count() != 3 {
		t.Fatalf("the receiver got %d requests, want 3", rc.count())
	}
	id := rc.got[0].Get(wire.HeaderDelivery)
	for i, r := range rc.got {
		if r.Get(wire.HeaderDelivery) != id || !bytes.Equal(rc.bodies[i], rc.bodies[0]) {
			t.Errorf("request %d: delivery id %q and body differ from the first's (%q)", i+1, r.Get(wire.HeaderDelivery), id)
		}
	}
	last := rc.got[2]
	if err := wire.VerifyWebhook(w.Secret, last.Get(wire.HeaderSignature), rc.bodies[2], time.Now(), 0); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if last.Get(wire.HeaderEvent) != wire.EventJobDone || last.Get("User-Agent") != webhook.UserAgent {
		t.Errorf("headers %v", last)
	}
	var got wire.WebhookEvent
	if err := json.Unmarshal(rc.bodies[2], &got); err != nil {
		t.Fatal(err)
	}
	stored, err := e.db.Jobs().Job(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantJob, _ := json.Marshal(jobs.WireJob(stored)) // the job as GET /v1/jobs/{id} shows it
	gotJob, _ := json.Marshal(got.Job)
	if got.Type != wire.EventJobDone || !server.ValidID(got.ID) || !got.CreatedAt.Equal(j.FinishedAt) || !bytes.Equal(gotJob, wantJob) {
		t.Errorf("event %s\nwant type job.done, created_at %v, job %s", rc.bodies[2], j.FinishedAt, wantJob)
	}

	// The broker delivers the message again (a lost ack): nothing more is sent.
	for attempt := 1; attempt <= 2; attempt++ {
		if err := e.handle(ev, attempt); err != nil {
			t.Fatal(err)
		}
	}
	if rc.count() != 3 || e.mail.sent.Load() != 1 {
		t.Fatalf("after redeliveries: %d requests and %d mails, want 3 and 1", rc.count(), e.mail.sent.Load())
	}
}

// TestWebhookAndMailRetryApart: the event comes back for whichever failed, and the one that
// went out is not sent again.
func TestWebhookAndMailRetryApart(t *testing.T) {
	e := newHookEnv(t, true)
	fine := newHookReceiver(t, func(int) int { return http.StatusOK })
	e.hook("ann@example.com", fine.srv.URL)
	_, ev := e.doneJob("ann@example.com")
	e.mail.fail.Store(true)
	if err := e.handle(ev, 1); err == nil {
		t.Fatal("a failed mail did not fail the event")
	}
	e.mail.fail.Store(false)
	if err := e.handle(ev, 2); err != nil {
		t.Fatal(err)
	}
	if fine.count() != 1 || e.mail.sent.Load() != 1 {
		t.Fatalf("%d webhook requests and %d mails, want 1 and 1", fine.count(), e.mail.sent.Load())
	}

	flaky := newHookReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	e.hook("bob@example.com", flaky.srv.URL)
	_, ev = e.doneJob("bob@example.com")
	if err := e.handle(ev, 1); err == nil {
		t.Fatal("a webhook answering 500 did not fail the event")
	}
	if err := e.handle(ev, 2); err != nil {
		t.Fatal(err)
	}
	if flaky.count() != 2 || e.mail.sent.Load() != 2 {
		t.Fatalf("%d webhook requests and %d mails in all, want 2 and 2 (bob's mail once)", flaky.count(), e.mail.sent.Load())
	}
}

// TestWebhookRefusalsAreNotRetried: a 4xx answer, and an address that is forbidden when
// delivering, settle the delivery at once: the event succeeds and never calls again.
func TestWebhookRefusalsAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name    string
		private bool
		code    int
		calls   int
	}{
		{"410", true, http.StatusGone, 1},
		{"404", true, http.StatusNotFound, 1},
		{"loopback refused", false, http.StatusOK, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHookEnv(t, tc.private)
			rc := newHookReceiver(t, func(int) int { return tc.code })
			w := e.hook("ann@example.com", rc.srv.URL)
			j, ev := e.doneJob("ann@example.com")
			for attempt := 1; attempt <= 3; attempt++ {
				if err := e.handle(ev, attempt); err != nil {
					t.Fatalf("attempt %d: %v, want the refusal settled", attempt, err)
				}
			}
			if rc.count() != tc.calls {
				t.Fatalf("the receiver got %d requests, want %d", rc.count(), tc.calls)
			}
			// Settled: the sent log has it, under the delivery's id.
			event, _ := webhook.Event(j)
			if sent, err := e.db.SentLog().Sent(context.Background(), "webhook:"+webhook.DeliveryID(w.ID, event.ID)); err != nil || !sent {
				t.Errorf("the refused delivery is not recorded as settled: %v %v", sent, err)
			}
		})
	}
}

// TestWebhookDeadLettered: a receiver that keeps failing gets one request per delivery of the
// message, and the message is dead-lettered after the queue's last attempt.
func TestWebhookDeadLettered(t *testing.T) {
	e := newHookEnv(t, true)
	rc := newHookReceiver(t, func(int) int { return http.StatusBadGateway })
	e.hook("ann@example.com", rc.srv.URL)
	_, ev := e.doneJob("ann@example.com")
	errs, q := e.consume(ev, 3, 3)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("delivery %d succeeded", i+1)
		}
	}
	if live, dead := e.depth(q); live != 0 || dead != 1 {
		t.Fatalf("queue holds %d live and %d dead messages, want the one dead-lettered", live, dead)
	}
	if rc.count() != 3 {
		t.Fatalf("the receiver got %d requests for 3 deliveries", rc.count())
	}
}

// TestWebhookSubscriptions: only the owner's webhooks that subscribe to the event, and that
// existed when the job finished, are called.
func TestWebhookSubscriptions(t *testing.T) {
	e := newHookEnv(t, true)
	all := newHookReceiver(t, func(int) int { return http.StatusOK })
	failedOnly := newHookReceiver(t, func(int) int { return http.StatusOK })
	bobs := newHookReceiver(t, func(int) int { return http.StatusOK })
	later := newHookReceiver(t, func(int) int { return http.StatusOK })
	e.hook("ann@example.com", all.srv.URL)
	e.hook("ann@example.com", failedOnly.srv.URL, server.EventJobFailed)
	e.hook("bob@example.com", bobs.srv.URL)
	j, ev := e.doneJob("ann@example.com")
	w := &server.Webhook{ID: server.NewID(), Owner: "ann@example.com", URL: later.srv.URL, Events: server.WebhookEvents,
		Secret: "whsec_x", CreatedAt: j.FinishedAt.Add(time.Second)}
	if err := e.db.Webhooks().CreateWebhook(context.Background(), w, 10); err != nil {
		t.Fatal(err)
	}
	if err := e.handle(ev, 1); err != nil {
		t.Fatal(err)
	}
	if all.count() != 1 || failedOnly.count() != 0 || bobs.count() != 0 || later.count() != 0 {
		t.Fatalf("requests: subscribed %d, job.failed only %d, another user's %d, created after %d; want 1, 0, 0, 0",
			all.count(), failedOnly.count(), bobs.count(), later.count())
	}
	// A failure goes to both of ann's older webhooks, with the reason.
	f := &server.Job{ID: server.NewID(), Owner: "ann@example.com", State: server.JobFailed, Error: "no audio", Filename: "x.mp4",
		MP3FID: server.NewID(), CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, FinishedAt: j.FinishedAt}
	if err := e.db.Jobs().CreateJob(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	fev, _ := json.Marshal(server.EventFor(f))
	if err := e.handle(fev, 1); err != nil {
		t.Fatal(err)
	}
	if all.count() != 2 || failedOnly.count() != 1 {
		t.Fatalf("after the failure: %d and %d requests, want 2 and 1", all.count(), failedOnly.count())
	}
	var got wire.WebhookEvent
	if err := json.Unmarshal(failedOnly.bodies[0], &got); err != nil || got.Type != wire.EventJobFailed || got.Job.Error != "no audio" ||
		failedOnly.got[0].Get(wire.HeaderEvent) != wire.EventJobFailed {
		t.Fatalf("failure event %s (%v)", failedOnly.bodies[0], err)
	}
}
