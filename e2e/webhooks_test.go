package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/wire"
)

type delivery struct {
	header http.Header
	body   []byte
}

// newReceiver starts a webhook receiver on loopback that hands each request it gets to the
// returned channel and answers 204.
func newReceiver(t *testing.T) (string, <-chan delivery) {
	got := make(chan delivery, 16)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc.URL, got
}

// TestStandaloneWebhooks: see checkWebhooks; and a server without --webhook-allow-private
// refuses a loopback receiver.
func TestStandaloneWebhooks(t *testing.T) {
	url, got := newReceiver(t)
	srv := startStandalone(t, t.TempDir(), "--webhook-allow-private")
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	checkWebhooks(t, u, url, got)

	// Without --webhook-allow-private, the loopback receiver is refused when it is added.
	strict := startStandalone(t, t.TempDir())
	v := newUser(t, strict.url(), "bob@example.com")
	v.signup()
	if r := v.run("", "webhook", "add", url+"/v2m"); r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1 is a private, loopback or otherwise internal address") {
		t.Fatalf("webhook add of a loopback receiver: %s", r)
	}
}

// TestDistributedWebhooks: see checkWebhooks; the gateway keeps the webhook in MongoDB and
// notify delivers it.
func TestDistributedWebhooks(t *testing.T) {
	t.Setenv("V2MD_WEBHOOK_ALLOW_PRIVATE", "true") // for the gateway and notify
	url, got := newReceiver(t)
	c := startCluster(t, 1)
	checkWebhooks(t, c.user("ann"), url, got)
}

// checkWebhooks: a webhook added with the CLI gets a signed delivery of each outcome of the
// user's jobs, carrying the job as the API shows it, once.
func checkWebhooks(t *testing.T, u *user, url string, got <-chan delivery) {
	t.Helper()
	var hook struct{ ID, Secret string }
	r := u.must("", "webhook", "add", url+"/v2m?source=e2e", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &hook); err != nil || hook.Secret == "" {
		t.Fatalf("webhook add --json: %v\n%s", err, r.stdout)
	}

	next := func(what string) (wire.WebhookEvent, http.Header) {
		t.Helper()
		var d delivery
		select {
		case d = <-got:
		case <-time.After(90 * time.Second):
			t.Fatalf("no delivery for %s", what)
		}
		if err := wire.VerifyWebhook(hook.Secret, d.header.Get(wire.HeaderSignature), d.body, time.Now(), 0); err != nil {
			t.Fatalf("%s: the signature does not verify: %v", what, err)
		}
		var ev wire.WebhookEvent
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, d.body)
		}
		return ev, d.header
	}

	var done wire.Job
	r = u.must("", "upload", media(t, testmedia.Good[0]), "--wait", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &done); err != nil || done.State != wire.JobDone {
		t.Fatalf("upload --wait: %v\n%s", err, r.stdout)
	}
	ev, h := next("the done job")
	if ev.Type != wire.EventJobDone || h.Get(wire.HeaderEvent) != wire.EventJobDone || ev.Job.ID != done.ID ||
		ev.Job.MP3FID != done.MP3FID || ev.Job.State != wire.JobDone || h.Get(wire.HeaderDelivery) == "" {
		t.Fatalf("done event %+v, headers %v; want job %s", ev, h, done.ID)
	}

	bad := testmedia.Bad[0]
	r = u.run("", "upload", media(t, bad), "--wait")
	if r.code != 5 {
		t.Fatalf("upload of %s: %s", bad.File(), r)
	}
	ev, h = next("the failed job")
	if ev.Type != wire.EventJobFailed || h.Get(wire.HeaderEvent) != wire.EventJobFailed || !strings.Contains(ev.Job.Error, bad.WantErr) {
		t.Fatalf("failed event %+v", ev)
	}
	select {
	case d := <-got:
		t.Fatalf("an extra delivery: %s", d.body)
	default:
	}
}
