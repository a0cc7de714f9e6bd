package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/mail"
	"github.com/v2m/v2m/pkg/server/mongo"
	"github.com/v2m/v2m/pkg/server/sqlite"
)

// mediaDir caches generated media for all tests of the package.
var mediaDir = filepath.Join(os.TempDir(), "v2m-test-media")

// stores are the stores a worker uses, from one stack.
type stores struct {
	jobs    server.JobStore
	uploads server.UploadStore
	blobs   server.BlobStore
	sent    server.SentLog
}

// stacks are the two ways v2md runs: standalone on SQLite and local disk, distributed on
// MongoDB with GridFS. Both announce outcomes on the SQLite queue of the fixture (see
// newFixture).
var stacks = []struct {
	name string
	open func(t *testing.T, dir string) stores
}{
	{"sqlite", func(t *testing.T, dir string) stores {
		db := openSQLite(t, filepath.Join(dir, "v2m.db"))
		blobs, err := disk.New(filepath.Join(dir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		return stores{jobs: db.Jobs(), uploads: db.Uploads(), blobs: blobs, sent: db.SentLog()}
	}},
	{"mongo", func(t *testing.T, _ string) stores {
		uri := testenv.Get(t, testenv.MongoURI)
		ctx := context.Background()
		name := "worker_" + server.NewID()[:16]
		db, err := mongo.Open(ctx, mongo.Config{URI: uri, Database: name})
		if err != nil {
			t.Fatalf("mongo: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Database().Drop(ctx); err != nil {
				t.Errorf("drop %s: %v", name, err)
			}
			db.Close(ctx)
		})
		return stores{jobs: db.Jobs(), uploads: db.Uploads(), blobs: db.Blobs(), sent: db.SentLog()}
	}},
}

// forEachStack runs test once per stack, each with a fixture of its own.
func forEachStack(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) {
			dir := t.TempDir()
			test(t, newFixture(t, dir, st.open(t, dir)))
		})
	}
}

func openSQLite(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type fixture struct {
	t *testing.T
	stores
	q    *sqlite.Queue
	conv *countingConverter
	w    *Converter
}

// countingConverter runs the real converter and counts the runs.
type countingConverter struct {
	server.Converter
	runs atomic.Int32
}

func (c *countingConverter) Convert(ctx context.Context, src, dst string, conv server.Conversion, p func(int)) error {
	c.runs.Add(1)
	return c.Converter.Convert(ctx, src, dst, conv, p)
}

// newFixture sets up a worker on st. Its outcomes go to a SQLite queue on both stacks: the
// worker only publishes to it, the Queue contract is checked per adapter elsewhere, and the
// topics are fixed names that parallel tests on one broker would share.
func newFixture(t *testing.T, dir string, st stores) *fixture {
	t.Helper()
	ff, err := ffmpeg.New(ffmpeg.Config{Timeout: time.Minute})
	if err != nil {
		testmediaMissing(t, err)
	}
	conv := &countingConverter{Converter: ff}
	q := openSQLite(t, filepath.Join(dir, "queue.db")).Queue(sqlite.QueueConfig{})
	return &fixture{t: t, stores: st, q: q, conv: conv,
		w: &Converter{Jobs: st.jobs, Blobs: st.blobs, Queue: q, Converter: conv, TmpDir: dir, Heartbeat: 50 * time.Millisecond}}
}

func testmediaMissing(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
}

// job stores the sample as a queued job and returns it.
func (f *fixture) job(s testmedia.Sample) *server.Job { return f.jobT(f.t, s, nil) }

// jobT stores the sample as a job, changed by edit when it is set, and returns it.
func (f *fixture) jobT(t *testing.T, s testmedia.Sample, edit func(*server.Job)) *server.Job {
	t.Helper()
	if err := os.MkdirAll(mediaDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := testmedia.MustGenerate(t, mediaDir, s)
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	now := time.Now()
	j := &server.Job{ID: server.NewID(), Owner: "ann@example.com", State: server.JobQueued, Filename: s.File(),
		MP3FID: server.NewID(), CreatedAt: now, UpdatedAt: now}
	j.VideoFID = j.ID
	if j.Size, err = f.blobs.Put(context.Background(), server.BucketVideos, j.VideoFID, s.File(), src); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(j)
	}
	if err := f.jobs.CreateJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	return j
}

// abandoned makes a job converting under claim attempts, last heard of age ago.
func abandoned(attempts int, age time.Duration) func(*server.Job) {
	return func(j *server.Job) {
		// Milliseconds, as the stores keep times.
		j.State, j.Attempts, j.UpdatedAt = server.JobConverting, attempts, time.Now().Add(-age).Truncate(time.Millisecond)
	}
}

func delivery(j *server.Job, attempt int) server.Delivery {
	b, _ := json.Marshal(server.VideoMessage{JobID: j.ID, VideoFID: j.VideoFID, Username: j.Owner})
	return server.Delivery{Topic: server.TopicVideo, Body: b, Attempt: attempt, MaxAttempts: 3}
}

// events takes the n messages of the mp3 topic, and checks that there are no more.
func (f *fixture) events(n int) []server.JobEvent {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan server.JobEvent, n)
	consumed := make(chan error, 1)
	var extra atomic.Int32
	go func() {
		consumed <- f.q.Consume(ctx, server.TopicMP3, 1, func(_ context.Context, d server.Delivery) error {
			var ev server.JobEvent
			if err := json.Unmarshal(d.Body, &ev); err != nil {
				return server.Permanent(err)
			}
			select {
			case got <- ev:
			default:
				extra.Add(1)
			}
			return nil
		})
	}()
	var out []server.JobEvent
	for len(out) < n {
		select {
		case ev := <-got:
			out = append(out, ev)
		case <-time.After(10 * time.Second):
			f.t.Fatalf("%d of %d events announced: %+v", len(out), n, out)
		}
	}
	cancel()
	if err := <-consumed; err != nil {
		f.t.Fatal(err)
	}
	live, dead, err := f.q.Depth(context.Background(), server.TopicMP3)
	if err != nil || live+dead+int(extra.Load()) != 0 {
		f.t.Fatalf("more than %d events: %d extra, %d live, %d dead, %v", n, extra.Load(), live, dead, err)
	}
	return out
}

func TestConvertGoodVideoOnceEvenWhenRedelivered(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		j := f.job(testmedia.Good[0]) // MP4 with its index at the end
		if err := f.w.Handle(ctx, delivery(j, 1)); err != nil {
			t.Fatal(err)
		}
		got, _ := f.jobs.Job(ctx, j.ID)
		if got.State != server.JobDone || got.Progress != 100 || got.Attempts != 1 {
			t.Fatalf("job = %+v", got)
		}
		b, err := f.blobs.Open(ctx, server.BucketMP3s, j.MP3FID)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 3)
		io.ReadFull(b, head)
		b.Close()
		if b.Size() < 10000 || !(string(head) == "ID3" || head[0] == 0xFF) {
			t.Fatalf("mp3 of %d bytes starting %q", b.Size(), head)
		}
		// A redelivery neither converts again nor changes the MP3; it announces the outcome again.
		if err := f.w.Handle(ctx, delivery(j, 2)); err != nil {
			t.Fatal(err)
		}
		if n := f.conv.runs.Load(); n != 1 {
			t.Fatalf("converted %d times", n)
		}
		evs := f.events(2)
		if evs[0].State != server.JobDone || evs[0].MP3FID != j.MP3FID || evs[0].Username != "ann@example.com" {
			t.Fatalf("events = %+v", evs)
		}
	})
}

func TestBadVideosFailWithReason(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		for _, s := range testmedia.Bad {
			t.Run(s.File(), func(t *testing.T) {
				j := f.jobT(t, s, nil)
				// The job is settled, and its message goes to the dead letters with the reason.
				err := f.w.Handle(ctx, delivery(j, 1))
				got, _ := f.jobs.Job(ctx, j.ID)
				if !server.IsPermanent(err) || err.Error() != got.Error {
					t.Fatalf("handler error %v: a bad video must dead-letter its delivery with the job's error %q", err, got.Error)
				}
				if got.State != server.JobFailed || !strings.Contains(got.Error, s.WantErr) {
					t.Fatalf("job = %s %q, want failed with %q", got.State, got.Error, s.WantErr)
				}
			})
		}
		evs := f.events(len(testmedia.Bad))
		if evs[0].State != server.JobFailed || evs[0].Error == "" {
			t.Fatalf("events = %+v", evs)
		}
	})
}

func TestLiveJobIsLeftToItsWorker(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		// Another worker claimed the job and was last heard of ten minutes ago.
		j := f.jobT(t, testmedia.Good[1], abandoned(1, 10*time.Minute))
		f.w.StaleAfter = time.Hour // within that, the worker counts as alive
		if err := f.w.Handle(ctx, delivery(j, 2)); err != nil {
			t.Fatal(err)
		}
		if f.conv.runs.Load() != 0 {
			t.Fatal("converted a job that a live worker holds")
		}
		if got, _ := f.jobs.Job(ctx, j.ID); got.State != server.JobConverting || got.Attempts != 1 || !got.UpdatedAt.Equal(j.UpdatedAt) {
			t.Fatalf("a live worker's job changed: %+v", got)
		}
		// Once that worker has been silent for StaleAfter, the job is taken over.
		f.w.StaleAfter = time.Minute
		if err := f.w.Handle(ctx, delivery(j, 3)); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.jobs.Job(ctx, j.ID); got.State != server.JobDone || got.Attempts != 2 {
			t.Fatalf("after take-over: %+v", got)
		}
	})
}

// brokenBlobs fails to store MP3s, like a database that is down.
type brokenBlobs struct{ server.BlobStore }

func (brokenBlobs) Put(context.Context, string, string, string, io.Reader) (int64, error) {
	return 0, errors.New("connection refused")
}

func TestTransientErrorsRetryThenFail(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.w.Blobs = brokenBlobs{f.blobs}
		f.w.KeepResultFor = -1 // no waiting for the store: see TestDatabaseOutageLongerThanKeepResultFor
		j := f.job(testmedia.Good[1])
		if err := f.w.Handle(ctx, delivery(j, 1)); err == nil || server.IsPermanent(err) {
			t.Fatalf("transient error = %v, want a retryable error", err)
		}
		if got, _ := f.jobs.Job(ctx, j.ID); got.State != server.JobQueued {
			t.Fatalf("after a transient error the job is %s, want queued", got.State)
		}
		if err := f.w.Handle(ctx, delivery(j, 3)); err == nil {
			t.Fatal("last attempt returned nil; the message must be dead-lettered")
		}
		got, _ := f.jobs.Job(ctx, j.ID)
		if got.State != server.JobFailed || !strings.Contains(got.Error, "after 3 attempts") {
			t.Fatalf("after the last attempt: %s %q", got.State, got.Error)
		}
		if evs := f.events(1); evs[0].State != server.JobFailed {
			t.Fatalf("events = %+v", evs)
		}
	})
}

func TestShutdownRequeues(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		j := f.job(testmedia.Good[1])
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := f.w.Handle(ctx, delivery(j, 1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if got, _ := f.jobs.Job(context.Background(), j.ID); got.State != server.JobQueued {
			t.Fatalf("interrupted job is %s, want queued", got.State)
		}
	})
}

func TestMalformedMessagesArePermanent(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		for _, body := range []string{"", "{", `{"job_id":"../x"}`} {
			if err := f.w.Handle(context.Background(), server.Delivery{Body: []byte(body), Attempt: 1}); !server.IsPermanent(err) {
				t.Errorf("%q: %v", body, err)
			}
		}
		if err := f.w.Handle(context.Background(), delivery(&server.Job{ID: server.NewID()}, 1)); !server.IsPermanent(err) {
			t.Errorf("unknown job: %v", err)
		}
	})
}

type flakyMailer struct {
	fail atomic.Bool
	sent atomic.Int32
	next server.Mailer
}

func (m *flakyMailer) Send(ctx context.Context, msg server.Mail) error {
	if m.fail.Load() {
		return errors.New("smtp: connection refused")
	}
	m.sent.Add(1)
	return m.next.Send(ctx, msg)
}

func TestNotifierSendsOneMailPerOutcome(t *testing.T) {
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) { testNotifier(t, st.open(t, t.TempDir()).sent) })
	}
}

func testNotifier(t *testing.T, sent server.SentLog) {
	dir := t.TempDir()
	m := &flakyMailer{next: &mail.Outbox{Dir: filepath.Join(dir, "outbox"), From: "v2m@localhost"}}
	n := &Notifier{Mailer: m, Sent: sent, PublicURL: "http://v2m.example.com"}
	done, _ := json.Marshal(server.JobEvent{JobID: server.NewID(), State: server.JobDone, Username: "ann@example.com",
		Filename: "talk.mp4", MP3FID: "65a1b2c3d4e5f60718293a4b"})
	ctx := context.Background()
	m.fail.Store(true)
	if err := n.Handle(ctx, server.Delivery{Body: done, Attempt: 1}); err == nil || server.IsPermanent(err) {
		t.Fatalf("send failure: %v, want retryable", err)
	}
	m.fail.Store(false)
	for attempt := 2; attempt <= 4; attempt++ {
		if err := n.Handle(ctx, server.Delivery{Body: done, Attempt: attempt}); err != nil {
			t.Fatal(err)
		}
	}
	if m.sent.Load() != 1 {
		t.Fatalf("sent %d mails for one outcome", m.sent.Load())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "outbox", "*.eml"))
	if len(files) != 1 {
		t.Fatalf("outbox has %d files", len(files))
	}
	eml, _ := os.ReadFile(files[0])
	for _, want := range []string{"ann@example.com", "65a1b2c3d4e5f60718293a4b", "v2m --server http://v2m.example.com download 65a1b2c3d4e5f60718293a4b", "talk.mp3"} {
		if !bytes.Contains(eml, []byte(want)) && !strings.Contains(decodeQP(eml), want) {
			t.Errorf("mail lacks %q:\n%s", want, eml)
		}
	}
	failed, _ := json.Marshal(server.JobEvent{JobID: server.NewID(), State: server.JobFailed, Username: "ann@example.com",
		Filename: "x.txt", Error: "not a video or audio file"})
	if err := n.Handle(ctx, server.Delivery{Body: failed, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if msg := n.Compose(server.JobEvent{State: server.JobFailed, Filename: "x.txt", Error: "no audio"}); !strings.Contains(msg.Body, "no audio") {
		t.Errorf("failure mail lacks the reason: %q", msg.Body)
	}
	if err := n.Handle(ctx, server.Delivery{Body: []byte(`{"job_id":"x"}`), Attempt: 1}); !server.IsPermanent(err) {
		t.Errorf("malformed event: %v", err)
	}
}

func decodeQP(b []byte) string {
	return strings.NewReplacer("=\r\n", "", "=\n", "", "=3D", "=").Replace(string(b))
}

func TestSweeperRepublishesLostJobs(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		old := time.Now().Add(-time.Hour)
		lost := &server.Job{ID: server.NewID(), Owner: "a@x.io", State: server.JobQueued, Filename: "a.mp4", MP3FID: server.NewID(), CreatedAt: old, UpdatedAt: old}
		fresh := &server.Job{ID: server.NewID(), Owner: "a@x.io", State: server.JobQueued, Filename: "b.mp4", MP3FID: server.NewID(), CreatedAt: time.Now(), UpdatedAt: time.Now()}
		for _, j := range []*server.Job{lost, fresh} {
			if err := f.jobs.CreateJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		s := &Sweeper{Service: &jobs.Service{Jobs: f.jobs, Queue: f.q}}
		n, err := s.Sweep(ctx)
		if err != nil || n != 1 {
			t.Fatalf("swept %d, %v", n, err)
		}
		// The next pass leaves it alone: it may just be waiting its turn.
		if n, err := s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("second pass published %d again, %v", n, err)
		}
		if live, _, _ := f.q.Depth(ctx, server.TopicVideo); live != 1 {
			t.Fatalf("video queue holds %d", live)
		}
		// A converting job whose worker went quiet is handed back, then published once.
		// Its worker claimed it an hour ago and has been silent since.
		stale := &server.Job{ID: server.NewID(), Owner: "a@x.io", State: server.JobConverting, Attempts: 1, Filename: "c.mp4", MP3FID: server.NewID(), CreatedAt: old, UpdatedAt: old}
		if err := f.jobs.CreateJob(ctx, stale); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("stale converting job: swept %d, %v", n, err)
		}
		if g, _ := f.jobs.Job(ctx, stale.ID); g.State != server.JobQueued || g.Attempts != 1 {
			t.Fatalf("stale job after the sweep: %s with %d attempts, want queued with 1 (no refund)", g.State, g.Attempts)
		}
		if n, _ := s.Sweep(ctx); n != 0 {
			t.Fatalf("the stale job was published again on the next pass")
		}
		// Recover hands back converting jobs at start.
		if _, err := f.jobs.ClaimJob(ctx, fresh.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := Recover(ctx, f.jobs, discard()); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.jobs.Job(ctx, fresh.ID); got.State != server.JobQueued {
			t.Fatalf("recovered job is %s", got.State)
		}
	})
}

func TestJobClaimedTooOftenFails(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		j := f.jobT(t, testmedia.Good[1], abandoned(3, 10*time.Minute))       // three workers died holding it
		if err := f.w.Handle(ctx, delivery(j, 1)); !server.IsPermanent(err) { // MaxAttempts is 3
			t.Fatalf("handler error %v, want a permanent one: the message goes to the dead letters", err)
		}
		got, _ := f.jobs.Job(ctx, j.ID)
		if got.State != server.JobFailed || !strings.Contains(got.Error, "gave up after 3 attempts") || f.conv.runs.Load() != 0 {
			t.Fatalf("job = %s %q after %d runs", got.State, got.Error, f.conv.runs.Load())
		}
	})
}

func TestAbandonedUploadsDiscarded(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		old := &server.Upload{ID: server.NewID(), Owner: "a@x.io", Filename: "a.mp4", Size: 4, PartSize: 128 << 10, CreatedAt: time.Now().Add(-8 * 24 * time.Hour)}
		fresh := &server.Upload{ID: server.NewID(), Owner: "a@x.io", Filename: "b.mp4", Size: 4, PartSize: 128 << 10, CreatedAt: time.Now()}
		for _, u := range []*server.Upload{old, fresh} {
			if err := f.uploads.CreateUpload(ctx, u); err != nil {
				t.Fatal(err)
			}
			if err := f.blobs.WritePart(ctx, u, 0, strings.NewReader("data")); err != nil {
				t.Fatal(err)
			}
		}
		s := &Sweeper{Service: &jobs.Service{Jobs: f.jobs, Queue: f.q, Uploads: f.uploads, Blobs: f.blobs}}
		if n, err := s.DiscardAbandoned(ctx); err != nil || n != 1 {
			t.Fatalf("discarded %d, %v", n, err)
		}
		if _, err := f.uploads.Upload(ctx, old.ID); !server.IsCode(err, server.ENOTFOUND) {
			t.Fatalf("old upload kept: %v", err)
		}
		if parts, _ := f.blobs.Parts(ctx, old); len(parts) != 0 {
			t.Fatalf("old upload's parts kept: %v", parts)
		}
		if parts, _ := f.blobs.Parts(ctx, fresh); len(parts) != 1 {
			t.Fatalf("fresh upload touched: %v", parts)
		}
	})
}

// takeoverConverter lets another worker take the job over while it converts.
type takeoverConverter struct {
	server.Converter
	jobs server.JobStore
	id   string
}

func (c *takeoverConverter) Convert(ctx context.Context, src, dst string, conv server.Conversion, p func(int)) error {
	if _, err := c.jobs.ClaimJob(ctx, c.id, time.Now().Add(time.Hour)); err != nil {
		return err
	}
	return c.Converter.Convert(ctx, src, dst, conv, p)
}

func TestWorkerTakenOverLeavesTheJob(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		j := f.job(testmedia.Good[1])
		f.w.Converter = &takeoverConverter{Converter: f.conv, jobs: f.jobs, id: j.ID}
		if err := f.w.Handle(ctx, delivery(j, 1)); err != nil {
			t.Fatal(err)
		}
		got, _ := f.jobs.Job(ctx, j.ID)
		if got.State != server.JobConverting || got.Attempts != 2 {
			t.Fatalf("job = %s after %d claims; the new holder must keep it", got.State, got.Attempts)
		}
		if _, err := f.blobs.Open(ctx, server.BucketMP3s, j.MP3FID); !server.IsCode(err, server.ENOTFOUND) {
			t.Fatalf("the worker that lost the job stored its MP3: %v", err)
		}
	})
}

// interruptedConverter is a conversion cut short by shutdown.
type interruptedConverter struct{ cancel context.CancelFunc }

func (c interruptedConverter) Convert(ctx context.Context, _, _ string, _ server.Conversion, _ func(int)) error {
	c.cancel()
	<-ctx.Done()
	return ctx.Err()
}

func TestShutdownGivesTheClaimBack(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		j := f.job(testmedia.Good[1])
		for range 3 {
			ctx, cancel := context.WithCancel(context.Background())
			f.w.Converter = interruptedConverter{cancel}
			if err := f.w.Handle(ctx, delivery(j, 1)); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted conversion: %v", err)
			}
		}
		got, _ := f.jobs.Job(context.Background(), j.ID)
		if got.State != server.JobQueued || got.Attempts != 0 {
			t.Fatalf("after three shutdowns: %s with %d attempts, want queued with 0", got.State, got.Attempts)
		}
	})
}

// TestSplitJobStoresItsFiles: a job split by chapters stores the zip of its MP3s as its
// MP3FID and records them as its Files; a converter that cannot split fails such a job with
// a reason instead of making one MP3.
func TestSplitJobStoresItsFiles(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.w.Converter = f.conv.Converter // the ffmpeg converter itself, which can split
		split := func(j *server.Job) { j.Options.SplitChapters = true }
		j := f.jobT(t, testmedia.Chapters, split)
		if err := f.w.Handle(ctx, delivery(j, 1)); err != nil {
			t.Fatal(err)
		}
		got, err := f.jobs.Job(ctx, j.ID)
		if err != nil || got.State != server.JobDone {
			t.Fatalf("job = %+v, %v", got, err)
		}
		var titles []string
		var total int64
		for _, file := range got.Files {
			titles = append(titles, file.Title)
			total += file.Size
		}
		if !slices.Equal(titles, []string{"Opening", "Middle", "End"}) || got.Files[1].Start != 2*time.Second || got.Files[1].End != 4500*time.Millisecond {
			t.Fatalf("files = %+v", got.Files)
		}
		b, err := f.blobs.Open(ctx, server.BucketMP3s, j.MP3FID)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 4)
		io.ReadFull(b, head)
		b.Close()
		if string(head) != "PK\x03\x04" || b.Size() < total {
			t.Errorf("stored file of %d bytes starting %q, want a zip of %d bytes of MP3s", b.Size(), head, total)
		}

		f.w.Converter = f.conv // a Converter only
		j = f.jobT(t, testmedia.Chapters, split)
		if err := f.w.Handle(ctx, delivery(j, 1)); !server.IsPermanent(err) {
			t.Fatalf("handler error %v, want a permanent one", err)
		}
		if got, _ := f.jobs.Job(ctx, j.ID); got.State != server.JobFailed || got.Error != "this server cannot split by chapters" {
			t.Errorf("split job on a converter that cannot split: %+v", got)
		}
	})
}
