package sqlite

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/servertest"
)

func open(t *testing.T) *DB {
	t.Helper()
	d, err := Open(context.Background(), filepath.Join(t.TempDir(), "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestSecondProcessRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v2m.db")
	d, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), p); err == nil {
		t.Fatal("second Open of the same database succeeded")
	}
	d.Close()
	d2, err := Open(context.Background(), p) // and migrations are not applied twice
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	d2.Close()
}

func TestQueueSurvivesCrashAndShutdown(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v2m.db")
	d, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	q := d.Queue(QueueConfig{Poll: 20 * time.Millisecond})
	if err := q.Publish(context.Background(), "t", []byte("m")); err != nil {
		t.Fatal(err)
	}
	// A "crash": the message is leased and the process goes away without settling it.
	m, err := q.lease(context.Background(), "t")
	if err != nil || m == nil {
		t.Fatalf("lease: %v %v", m, err)
	}
	d.Close()

	d, err = Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	q = d.Queue(QueueConfig{Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan server.Delivery, 1)
	var returned atomic.Bool
	consumed := make(chan error, 1)
	go func() {
		consumed <- q.Consume(ctx, "t", 1, func(hctx context.Context, dv server.Delivery) error {
			started <- dv
			<-hctx.Done() // a long conversion interrupted by shutdown
			returned.Store(true)
			return hctx.Err()
		})
	}()
	var dv server.Delivery
	select {
	case dv = <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("message not redelivered after the crash")
	}
	if dv.Attempt != 2 {
		t.Errorf("attempt after crash = %d, want 2", dv.Attempt)
	}
	cancel()
	if err := <-consumed; err != nil || !returned.Load() {
		t.Fatalf("Consume returned %v before its handler finished (%v)", err, returned.Load())
	}
	live, dead, _ := q.Depth(context.Background(), "t")
	if live != 1 || dead != 0 {
		t.Fatalf("after shutdown live=%d dead=%d, want the message kept", live, dead)
	}
}

func TestQueuesOfOneDatabaseShareTopics(t *testing.T) {
	d := open(t)
	pub := d.Queue(QueueConfig{Poll: time.Hour}) // only a wake-up can deliver in time
	sub := d.Queue(QueueConfig{Poll: time.Hour, MaxAttempts: 20})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan server.Delivery, 1)
	go sub.Consume(ctx, "mp3", 1, func(_ context.Context, dv server.Delivery) error { got <- dv; return nil })
	// The consumer leases before it waits, so whether a message is published before or
	// after it starts waiting, it is delivered without a poll.
	for _, body := range []string{"first", "second"} {
		if err := pub.Publish(ctx, "mp3", []byte(body)); err != nil {
			t.Fatal(err)
		}
		select {
		case dv := <-got:
			if dv.MaxAttempts != 20 || string(dv.Body) != body {
				t.Fatalf("delivered %q with MaxAttempts %d, want %q with the consuming queue's 20", dv.Body, dv.MaxAttempts, body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a publish through another Queue of the database did not wake the consumer")
		}
	}
	if err := pub.Consume(ctx, "mp3", 1, func(context.Context, server.Delivery) error { return nil }); err == nil {
		t.Fatal("a second consumer of the topic was accepted")
	}
}

func TestContractRevocationStore(t *testing.T) {
	servertest.TestRevocationStore(t, func(t *testing.T) server.RevocationStore { return open(t).Revocations() })
}

// TestRowsWithoutOptionsReadAsDefaults: rows written before the options column existed (the
// migration gives them an empty string) read as jobs and uploads with the default options.
func TestRowsWithoutOptionsReadAsDefaults(t *testing.T) {
	d := open(t)
	ctx := t.Context()
	id, mp3 := server.NewID(), server.NewID()
	if _, err := d.db.ExecContext(ctx, `INSERT INTO jobs (id, owner, state, filename, size, video_fid, mp3_fid, created_at, updated_at)
		VALUES (?, 'ann@example.com', 'queued', 'a.mp4', 1, ?, ?, 0, 0)`, id, id, mp3); err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO uploads (id, owner, filename, size, part_size, created_at)
		VALUES (?, 'ann@example.com', 'a.mp4', 1, 1, 0)`, id); err != nil {
		t.Fatal(err)
	}
	j, err := d.Jobs().Job(ctx, id)
	if err != nil || !j.Options.Equal(server.JobOptions{}) {
		t.Errorf("old job = %+v, %v; want the default options", j, err)
	}
	u, err := d.Uploads().Upload(ctx, id)
	if err != nil || !u.Options.Equal(server.JobOptions{}) {
		t.Errorf("old upload = %+v, %v; want the default options", u, err)
	}
}
