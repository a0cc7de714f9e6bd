package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/storetest"
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

func TestUsers(t *testing.T) {
	ctx := context.Background()
	us := open(t).Users()
	u, err := us.CreateUser(ctx, "a@example.com", []byte("hash"))
	if err != nil || u.ID == 0 || u.CreatedAt.IsZero() {
		t.Fatalf("create: %+v %v", u, err)
	}
	if _, err := us.CreateUser(ctx, "A@Example.com", []byte("x")); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("duplicate (other case): %v", err)
	}
	got, err := us.UserByEmail(ctx, "a@example.com")
	if err != nil || string(got.PasswordHash) != "hash" || got.ID != u.ID {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := us.UserByEmail(ctx, "b@example.com"); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("missing: %v", err)
	}
}

func newJob(owner string, created time.Time) *server.Job {
	return &server.Job{ID: server.NewID(), Owner: owner, State: server.JobQueued, Filename: "v.mp4", Size: 10,
		VideoFID: server.NewID(), MP3FID: server.NewID(), CreatedAt: created, UpdatedAt: created}
}

func TestJobLifecycle(t *testing.T) {
	ctx := context.Background()
	js := open(t).Jobs()
	j := newJob("a@example.com", time.Now())
	if err := js.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := js.CreateJob(ctx, j); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("duplicate job: %v", err)
	}
	if _, err := js.FinishJob(ctx, j.ID, 0); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("finish of a queued job: %v", err)
	}
	c, err := js.ClaimJob(ctx, j.ID, time.Now().Add(-time.Minute))
	if err != nil || c.State != server.JobConverting || c.Attempts != 1 {
		t.Fatalf("claim: %+v %v", c, err)
	}
	// A live worker holds it: a second claim (a redelivery) is refused.
	if _, err := js.ClaimJob(ctx, j.ID, time.Now().Add(-time.Minute)); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("claim of a live job: %v", err)
	}
	// Its worker went quiet: the job can be taken over.
	if c, err = js.ClaimJob(ctx, j.ID, time.Now().Add(time.Second)); err != nil || c.Attempts != 2 {
		t.Fatalf("take-over: %+v %v", c, err)
	}
	if err := js.SetProgress(ctx, j.ID, 150); err != nil {
		t.Fatal(err)
	}
	if g, _ := js.Job(ctx, j.ID); g.Progress != 100 {
		t.Fatalf("progress clamped to %d", g.Progress)
	}
	// The first claim's worker lost the job: it can neither requeue nor finish it.
	if err := js.RequeueJob(ctx, j.ID, 1, false); err != nil {
		t.Fatal(err)
	}
	if _, err := js.FinishJob(ctx, j.ID, 1); !server.IsCode(err, server.ECONFLICT) {
		t.Fatalf("finish under a superseded claim: %v", err)
	}
	if g, _ := js.Job(ctx, j.ID); g.State != server.JobConverting {
		t.Fatalf("a superseded claim moved the job to %s", g.State)
	}
	d, err := js.FinishJob(ctx, j.ID, 2)
	if err != nil || d.State != server.JobDone || d.FinishedAt.IsZero() {
		t.Fatalf("finish: %+v %v", d, err)
	}
	for name, f := range map[string]func() error{
		"claim": func() error { _, err := js.ClaimJob(ctx, j.ID, time.Now().Add(time.Hour)); return err },
		"fail":  func() error { _, err := js.FailJob(ctx, j.ID, "x"); return err },
	} {
		if err := f(); !server.IsCode(err, server.ECONFLICT) {
			t.Errorf("%s of a done job: %v", name, err)
		}
	}
	if _, err := js.ClaimJob(ctx, server.NewID(), time.Now()); !server.IsCode(err, server.ENOTFOUND) {
		t.Fatalf("claim of a missing job: %v", err)
	}
	if g, err := js.JobByMP3(ctx, j.MP3FID); err != nil || g.ID != j.ID {
		t.Fatalf("by mp3: %v", err)
	}
}

func TestFailRequeueStaleList(t *testing.T) {
	ctx := context.Background()
	js := open(t).Jobs()
	t0 := time.Now().Add(-time.Hour)
	a, b, c := newJob("a@x.io", t0), newJob("a@x.io", t0.Add(time.Second)), newJob("b@x.io", t0.Add(2*time.Second))
	for _, j := range []*server.Job{a, b, c} {
		if err := js.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	list, err := js.ListJobs(ctx, "a@x.io", 10)
	if err != nil || len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Fatalf("list newest first, owner only: %v %v", list, err)
	}
	stale, err := js.StaleJobs(ctx, server.JobQueued, time.Now(), 10)
	if err != nil || len(stale) != 3 || stale[0].ID != a.ID {
		t.Fatalf("stale: %v %v", stale, err)
	}
	if _, err := js.ClaimJob(ctx, a.ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := js.RequeueJob(ctx, a.ID, 1, false); err != nil {
		t.Fatal(err)
	}
	if g, _ := js.Job(ctx, a.ID); g.State != server.JobQueued || g.Attempts != 1 {
		t.Fatalf("requeue without refund: %s, %d attempts", g.State, g.Attempts)
	}
	if _, err := js.ClaimJob(ctx, a.ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := js.RequeueJob(ctx, a.ID, 2, true); err != nil {
		t.Fatal(err)
	}
	if g, _ := js.Job(ctx, a.ID); g.State != server.JobQueued || g.Attempts != 1 {
		t.Fatalf("requeue with refund: %s, %d attempts, want 1", g.State, g.Attempts)
	}
	f, err := js.FailJob(ctx, a.ID, "the video has no audio track")
	if err != nil || f.State != server.JobFailed || f.Error != "the video has no audio track" {
		t.Fatalf("fail: %+v %v", f, err)
	}
}

func TestQueueDeliversAndRetries(t *testing.T) {
	d := open(t)
	q := d.Queue(QueueConfig{MaxAttempts: 3, Backoff: func(int) time.Duration { return 10 * time.Millisecond }, Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	attempts := map[string][]int{}
	done := make(chan string, 10)
	go q.Consume(ctx, "t", 2, func(ctx context.Context, dv server.Delivery) error {
		mu.Lock()
		attempts[string(dv.Body)] = append(attempts[string(dv.Body)], dv.Attempt)
		mu.Unlock()
		switch string(dv.Body) {
		case "ok":
			done <- "ok"
			return nil
		case "flaky":
			if dv.Attempt < 2 {
				return errors.New("backend down")
			}
			done <- "flaky"
			return nil
		case "poison":
			if dv.LastAttempt() {
				done <- "poison"
			}
			return errors.New("always fails")
		default: // "bad"
			done <- "bad"
			return server.Permanent(errors.New("corrupt"))
		}
	})
	for _, b := range []string{"ok", "flaky", "poison", "bad"} {
		if err := q.Publish(ctx, "t", []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for len(got) < 4 {
		select {
		case s := <-done:
			got[s] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v finished", got)
		}
	}
	waitFor(t, func() bool { live, dead, _ := q.Depth(ctx, "t"); return live == 0 && dead == 2 })
	mu.Lock()
	defer mu.Unlock()
	if a := attempts["flaky"]; len(a) != 2 || a[1] != 2 {
		t.Errorf("flaky attempts %v", a)
	}
	if a := attempts["poison"]; len(a) != 3 {
		t.Errorf("poison attempts %v, want 3 then dead", a)
	}
	if a := attempts["bad"]; len(a) != 1 {
		t.Errorf("permanent failure retried: %v", a)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 10s")
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
	time.Sleep(50 * time.Millisecond) // let the consumer reach its wait
	if err := pub.Publish(ctx, "mp3", []byte("m")); err != nil {
		t.Fatal(err)
	}
	select {
	case dv := <-got:
		if dv.MaxAttempts != 20 {
			t.Fatalf("delivered with MaxAttempts %d, want the consuming queue's 20", dv.MaxAttempts)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a publish through another Queue of the database did not wake the consumer")
	}
	if err := pub.Consume(ctx, "mp3", 1, func(context.Context, server.Delivery) error { return nil }); err == nil {
		t.Fatal("a second consumer of the topic was accepted")
	}
}

func TestRevocations(t *testing.T) {
	storetest.RevocationStore(t, open(t).Revocations())
}
