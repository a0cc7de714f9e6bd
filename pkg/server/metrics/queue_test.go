package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/metrics"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
	"github.com/v2m/v2m/pkg/server/sqlite"
)

// TestQueueEventsCountedOnce: in both modes, as the daemon wires them (the queue wrapped by
// CountQueue and used by the job service and the workers), one failed publish counts one
// publish failure and one retried delivery counts one redelivery.
func TestQueueEventsCountedOnce(t *testing.T) {
	for _, mode := range []struct {
		name string
		// open returns a working queue and a broken one (its backend closed).
		open func(t *testing.T) (ok, broken server.Queue)
	}{
		{"standalone", func(t *testing.T) (server.Queue, server.Queue) {
			dir := t.TempDir()
			db, err := sqlite.Open(t.Context(), filepath.Join(dir, "ok.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			gone, err := sqlite.Open(t.Context(), filepath.Join(dir, "gone.db"))
			if err != nil {
				t.Fatal(err)
			}
			gone.Close()
			fast := func(int) time.Duration { return time.Millisecond }
			return db.Queue(sqlite.QueueConfig{Backoff: fast, Poll: 10 * time.Millisecond}), gone.Queue(sqlite.QueueConfig{})
		}},
		{"distributed", func(t *testing.T) (server.Queue, server.Queue) {
			url := testenv.Get(t, testenv.AMQPURL)
			dial := func() *rabbitmq.Queue {
				q, err := rabbitmq.Dial(t.Context(), rabbitmq.Config{URL: url, Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
				if err != nil {
					t.Fatal(err)
				}
				return q
			}
			ok, gone := dial(), dial()
			t.Cleanup(func() { ok.Close() })
			gone.Close()
			return ok, gone
		}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ok, broken := mode.open(t)
			m := metrics.New()
			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "jobs.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			now := time.Now()
			j := &server.Job{ID: server.NewID(), Owner: "ann@example.com", State: server.JobQueued, VideoFID: server.NewID(),
				MP3FID: server.NewID(), CreatedAt: now, UpdatedAt: now}
			if err := db.Jobs().CreateJob(t.Context(), j); err != nil {
				t.Fatal(err)
			}
			svc := &jobs.Service{Jobs: db.Jobs(), Queue: m.CountQueue(broken), Metrics: m}
			if _, err := svc.Republish(t.Context(), j); err == nil {
				t.Fatal("Republish on a closed queue succeeded")
			}
			if got := scrape(t, m, `v2m_publish_failures_total{topic="video"}`); got != "1" {
				t.Errorf("one failed publish counted %s times", got)
			}

			// One message, failed once, then delivered again and acknowledged.
			topic := "metrics-test-" + server.NewID()
			cq := m.CountQueue(ok)
			if err := cq.Publish(t.Context(), topic, []byte("x")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				done <- cq.Consume(ctx, topic, 1, func(_ context.Context, d server.Delivery) error {
					if d.Attempt == 1 {
						return errors.New("transient")
					}
					cancel()
					return nil
				})
			}()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := scrape(t, m, `v2m_redeliveries_total{topic="`+topic+`"}`); got != "1" {
				t.Errorf("one redelivery counted %s times", got)
			}
		})
	}
}

func scrape(t *testing.T, m *metrics.Metrics, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return "0"
}
