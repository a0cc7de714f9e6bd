package daemon

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/auth"
	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/inproc"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/token"
	"github.com/v2m/v2m/pkg/server/worker"
)

// TestGatewaysStreamUpdatesFromRabbitMQ wires two gateways and a converter as the distributed
// services are, on a real RabbitMQ: each gateway relays the broker's job updates into its own
// bus, and both stream a job converted elsewhere, its progress included. The gateways read the
// store only once an hour here, so everything after the first event comes through the broker.
func TestGatewaysStreamUpdatesFromRabbitMQ(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	exchange := "test-updates-" + server.NewID()
	peer := func(name string) *rabbitmq.Updates {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		q, err := rabbitmq.Dial(dctx, rabbitmq.Config{URL: url, Name: name, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q.Updates(exchange)
	}

	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := token.GenerateEd25519PEM()
	key, _ := token.ParseKey(token.EdDSA, pem)
	q := db.Queue(sqlite.QueueConfig{Poll: 20 * time.Millisecond, Logger: log})
	accounts := &auth.Service{Users: db.Users(), Tokens: &token.Issuer{Key: key, Issuer: "v2m"}, Cost: bcrypt.MinCost}

	var urls []string
	for range 2 {
		updates, local := peer("gateway"), inproc.New()
		go relayUpdates(ctx, log, updates, local)
		relayed(t, updates, local)
		h := api.New(api.Config{Accounts: accounts, Verifier: &token.Verifier{Alg: token.EdDSA, Issuer: "v2m", Keys: token.StaticKeys{key}},
			Service: &jobs.Service{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: blobs, Queue: q, Updates: updates},
			Updates: local, EventsPoll: time.Hour, Logger: log})
		srv := httptest.NewServer(h)
		t.Cleanup(func() { h.Drain(); srv.Close() })
		urls = append(urls, srv.URL)
	}

	anon, _ := client.New(urls[0])
	if _, err := anon.Register(ctx, "ann@example.com", "password1"); err != nil {
		t.Fatal(err)
	}
	tok, err := anon.Login(ctx, "ann@example.com", "password1")
	if err != nil {
		t.Fatal(err)
	}
	video := filepath.Join(dir, "talk.mp4")
	if err := os.WriteFile(video, []byte("a video"), 0o600); err != nil {
		t.Fatal(err)
	}
	c0, _ := client.New(urls[0], client.WithToken(tok.Token))
	job, err := c0.Upload(ctx, video, client.UploadOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}

	type watcher struct {
		seen   chan client.Job
		result chan error
	}
	var watchers []watcher
	for _, u := range urls {
		c, _ := client.New(u, client.WithToken(tok.Token))
		w := watcher{seen: make(chan client.Job, 100), result: make(chan error, 1)}
		go func() {
			j, err := c.Watch(ctx, job.ID, func(j *client.Job) { w.seen <- *j })
			if err == nil && j.State != client.JobDone {
				err = context.DeadlineExceeded
			}
			w.result <- err
		}()
		see(t, w.seen, client.JobQueued, 0) // the first event, from the store
		watchers = append(watchers, w)
	}

	steps := make(chan int)
	conv := &worker.Converter{Jobs: db.Jobs(), Blobs: blobs, Queue: q, Converter: testserver.Converter(testserver.Stepped(steps)), TmpDir: t.TempDir(),
		Updates: peer("convert"), Logger: log}
	cctx, stop := context.WithCancel(context.Background())
	consumed := make(chan struct{})
	go func() { defer close(consumed); _ = q.Consume(cctx, server.TopicVideo, 1, conv.Handle) }()
	t.Cleanup(func() { stop(); <-consumed })

	for _, w := range watchers {
		see(t, w.seen, client.JobConverting, 0)
	}
	for _, p := range []int{25, 75} {
		steps <- p
		for _, w := range watchers {
			see(t, w.seen, client.JobConverting, p)
		}
	}
	close(steps)
	for i, w := range watchers {
		select {
		case err := <-w.result:
			if err != nil {
				t.Fatalf("gateway %d: Watch: %v", i, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("gateway %d never streamed the job done", i)
		}
	}
}

// relayed waits until updates published on from reach to: the relay is bound to the broker.
func relayed(t *testing.T, from server.JobUpdates, to server.JobUpdates) {
	t.Helper()
	ch, err := to.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	probe := server.JobUpdate{Kind: server.UpdateState, JobID: "probe-" + server.NewID()}
	deadline := time.After(60 * time.Second)
	for {
		if err := from.Publish(t.Context(), probe); err != nil {
			t.Fatal(err)
		}
		retry := time.After(50 * time.Millisecond)
	wait:
		for {
			select {
			case u := <-ch:
				if u.JobID == probe.JobID {
					return
				}
			case <-retry:
				break wait // the relay was not bound yet: the probe went nowhere
			case <-deadline:
				t.Fatal("the relay never delivered an update")
			}
		}
	}
}

// see waits for the job in state with at least progress pct.
func see(t *testing.T, seen <-chan client.Job, state string, pct int) {
	t.Helper()
	for {
		select {
		case j := <-seen:
			if j.State == state && j.Progress >= pct {
				return
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("gave up waiting for the job %s at %d%%", state, pct)
		}
	}
}
