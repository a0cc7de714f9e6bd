package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
)

// dbOutage is a database that goes away once a job is claimed, until back is closed: writes of
// progress hang until it returns or their timeout (as a driver waits for its server), then
// fail; storing a file and finishing a job fail at once. The stores behind it are real.
type dbOutage struct {
	began       atomic.Bool
	down        atomic.Bool
	back        chan struct{}
	hung        atomic.Int32  // SetProgress calls waiting for the database
	timeout     time.Duration // how long they wait at most (as a driver does); 0: until back
	putFails    atomic.Int32
	finishFails atomic.Int32
}

var errDBDown = errors.New("server selection error: connection refused")

func (o *dbOutage) end() {
	o.down.Store(false)
	close(o.back)
}

type outageJobs struct {
	server.JobStore
	o *dbOutage
}

func (s outageJobs) ClaimJob(ctx context.Context, id string, staleBefore time.Time) (*server.Job, error) {
	j, err := s.JobStore.ClaimJob(ctx, id, staleBefore)
	if err == nil && s.o.began.CompareAndSwap(false, true) { // the first claim only
		s.o.down.Store(true)
	}
	return j, err
}

func (s outageJobs) SetProgress(ctx context.Context, id string, pct int) error {
	if s.o.down.Load() {
		s.o.hung.Add(1)
		defer s.o.hung.Add(-1)
		var timeout <-chan time.Time
		if s.o.timeout > 0 {
			t := time.NewTimer(s.o.timeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-s.o.back:
		case <-ctx.Done():
		case <-timeout:
		}
		return errDBDown
	}
	return s.JobStore.SetProgress(ctx, id, pct)
}

func (s outageJobs) FinishJob(ctx context.Context, id string, attempts int, res server.JobResult) (*server.Job, error) {
	if s.o.down.Load() {
		s.o.finishFails.Add(1)
		return nil, errDBDown
	}
	return s.JobStore.FinishJob(ctx, id, attempts, res)
}

type outageBlobs struct {
	server.BlobStore
	o *dbOutage
}

func (s outageBlobs) Put(ctx context.Context, bucket, fid, name string, r io.Reader) (int64, error) {
	if s.o.down.Load() {
		s.o.putFails.Add(1)
		return 0, errDBDown
	}
	return s.BlobStore.Put(ctx, bucket, fid, name, r)
}

// reportingConverter tells when the conversion itself has returned, and with what.
type reportingConverter struct {
	server.Converter
	done chan error
}

func (c reportingConverter) Convert(ctx context.Context, src, dst string, conv server.Conversion, p func(int)) error {
	err := c.Converter.Convert(ctx, src, dst, conv, p)
	c.done <- err
	return err
}

// A database outage while ffmpeg runs neither stalls the conversion (progress is handed off,
// never written on ffmpeg's output reader) nor throws the MP3 away: it is stored, and the job
// finished, once the database is back, and the video is converted once.
func TestDatabaseOutageDuringConversionKeepsTheResult(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) { outageDuringConversion(t, f, false) })
}

// The same when a sweeper takes the silent claim for dead and hands the job back to the queue
// before this worker can finish it: the worker claims it again and finishes it with its MP3.
func TestDatabaseOutageDuringConversionJobRequeued(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) { outageDuringConversion(t, f, true) })
}

func outageDuringConversion(t *testing.T, f *fixture, requeued bool) {
	{
		ctx := context.Background()
		o := &dbOutage{back: make(chan struct{})}
		rc := reportingConverter{Converter: f.conv, done: make(chan error, 1)}
		f.w.Converter, f.w.Jobs, f.w.Blobs = rc, outageJobs{f.jobs, o}, outageBlobs{f.blobs, o}
		j := f.job(testmedia.Good[1])
		handled := make(chan error, 1)
		go func() { handled <- f.w.Handle(ctx, delivery(j, 1)) }()

		select {
		case err := <-rc.done:
			if err != nil {
				t.Fatalf("conversion failed while the database was down: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the conversion hangs while the database is down")
		}
		eventually(t, "storing the MP3 to be tried again", func() bool { return o.putFails.Load() >= 2 })
		if requeued {
			if err := f.jobs.RequeueJob(ctx, j.ID, 1, false); err != nil { // as the sweeper does
				t.Fatal(err)
			}
		}
		select {
		case err := <-handled:
			t.Fatalf("Handle returned %v while the database was down; the MP3 must be kept", err)
		default:
		}
		o.end()
		select {
		case err := <-handled:
			if err != nil {
				t.Fatalf("Handle after the database came back: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the job is not finished after the database came back")
		}
		got, err := f.jobs.Job(ctx, j.ID)
		if wantClaims := map[bool]int{false: 1, true: 2}[requeued]; err != nil || got.State != server.JobDone || got.Attempts != wantClaims {
			t.Fatalf("job = %+v, %v", got, err)
		}
		if n := f.conv.runs.Load(); n != 1 {
			t.Fatalf("converted %d times, want once", n)
		}
		if b, err := f.blobs.Open(ctx, server.BucketMP3s, j.MP3FID); err != nil {
			t.Fatalf("mp3: %v", err)
		} else {
			b.Close()
		}
		if evs := f.events(1); evs[0].State != server.JobDone {
			t.Fatalf("events = %+v", evs)
		}
	}
}

// A database that stays away longer than KeepResultFor gives a retryable error: the queue's
// retries and the sweeper take over.
func TestDatabaseOutageLongerThanKeepResultFor(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		o := &dbOutage{back: make(chan struct{}), timeout: 2 * time.Second} // MongoDB's driver: 10 s
		defer close(o.back)
		f.w.Jobs, f.w.Blobs, f.w.KeepResultFor = outageJobs{f.jobs, o}, outageBlobs{f.blobs, o}, 600*time.Millisecond
		j := f.job(testmedia.Good[1])
		err := f.w.Handle(ctx, delivery(j, 1))
		if err == nil || server.IsPermanent(err) {
			t.Fatalf("Handle = %v, want a retryable error", err)
		}
		if n := o.putFails.Load(); n < 2 {
			t.Fatalf("the MP3 was tried %d times, want a retry", n)
		}
	})
}

// eventually waits up to a minute for cond, polling.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// After the broker comes back, the jobs queued meanwhile are published again at once, not
// after QueuedAfter; jobs queued long before the outage (their messages are in the broker)
// are left alone.
func TestSweeperRepublishesOnReconnect(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lostAt := time.Now()
		before := lostAt.Add(-time.Hour)
		older := &server.Job{ID: server.NewID(), Owner: "a@x.io", State: server.JobQueued, Filename: "a.mp4", MP3FID: server.NewID(), CreatedAt: before, UpdatedAt: before}
		during := &server.Job{ID: server.NewID(), Owner: "a@x.io", State: server.JobQueued, Filename: "b.mp4", MP3FID: server.NewID(), CreatedAt: lostAt, UpdatedAt: lostAt}
		for _, j := range []*server.Job{older, during} {
			if err := f.jobs.CreateJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		log := slog.New(slog.NewTextHandler(t.Output(), nil))
		s := &Sweeper{Service: &jobs.Service{Jobs: f.jobs, Queue: f.q, Logger: log}, Interval: time.Hour, QueuedAfter: time.Hour, Logger: log}
		s.Reconnected(lostAt) // before Run: kept
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		eventually(t, "the job queued during the outage to be published", func() bool {
			live, _, _ := f.q.Depth(ctx, server.TopicVideo)
			return live == 1
		})
		var got server.VideoMessage
		err := f.q.Consume(ctx, server.TopicVideo, 1, func(_ context.Context, d server.Delivery) error {
			defer cancel()
			return json.Unmarshal(d.Body, &got)
		})
		<-done
		if err != nil || got.JobID != during.ID {
			t.Fatalf("published %+v (%v), want job %s", got, err, during.ID)
		}
	})
}
