// Package worker holds the queue handlers that do v2m's work, whatever the queue and stores
// behind them: Converter consumes TopicVideo, Notifier consumes TopicMP3, and Sweeper finds jobs
// whose message was lost and publishes them again.
//
// Retry policy. A handler returns nil when the delivery is settled (done, or announced again);
// an error marked server.Permanent when retrying cannot help (a job that failed for good is
// failed and announced first, so its message waits among the dead letters for an operator); any other error when a
// later attempt may succeed (a store or broker that is down). The queue retries those with
// backoff and dead-letters them after its MaxAttempts; on that last attempt the handler itself
// fails the job and announces it, so that no job waits forever.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/metrics"
	"github.com/v2m/v2m/pkg/server/tracing"
	"github.com/v2m/v2m/pkg/wire"
)

// Converter converts the videos of queued jobs into MP3s.
type Converter struct {
	Jobs      server.JobStore
	Blobs     server.BlobStore
	Queue     server.Queue // where outcomes are announced (TopicMP3)
	Converter server.Converter
	TmpDir    string        // where videos are copied for ffmpeg; os.TempDir() when empty
	Heartbeat time.Duration // how often a running job shows it is alive; DefaultHeartbeat when zero
	// StaleAfter is how long a converting job may go without a heartbeat before another worker
	// takes it over; DefaultStaleAfter when zero. It must be MinHeartbeats Heartbeats or more.
	StaleAfter time.Duration
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
	// Changed, when set, is called after each change of a job's state or progress (standalone
	// uses it to answer long-polls at once).
	Changed func()
	// Updates, when set, receives every change of a job's state and progress, for live event
	// streams; a failed publish is logged and the work goes on.
	Updates server.JobUpdates
	// IOTimeout bounds copying a video in and storing its MP3, so that a hung store cannot
	// hold a job forever while its heartbeat goes on; DefaultIOTimeout when zero.
	IOTimeout time.Duration
	// TracerProvider, when set, records a consumer span per delivery ("convert video", in the
	// trace of the message's publisher), with child spans for fetching the video and storing
	// the MP3; the converter's own spans (probe, encode) come from its own provider.
	TracerProvider trace.TracerProvider
	// MaxDuration is the longest audio converted, checked when the video is probed; 0 means no
	// limit. Limits, when set, holds per-user limits that replace it.
	MaxDuration time.Duration
	Limits      server.LimitStore
	// KeepResultFor is how long a converted MP3 is kept while storing it or finishing its job
	// fails (the database is down): the worker tries again with backoff, holding its claim
	// and its delivery, instead of converting the video again later. DefaultKeepResultFor
	// when zero; negative: no second try.
	KeepResultFor time.Duration
}

// maxDuration returns the longest audio j's owner may convert: their own limit when an
// administrator set one, else MaxDuration. A store that cannot answer falls back to
// MaxDuration: the limit is a quota, not a reason to hold a job up.
func (w *Converter) maxDuration(ctx context.Context, j *server.Job) time.Duration {
	if w.Limits != nil {
		l, err := w.Limits.UserLimits(ctx, j.Owner)
		if err != nil {
			w.log().Warn("read the owner's limits", "job_id", j.ID, "err", err)
		} else if l.MaxDuration != nil {
			return max(*l.MaxDuration, 0)
		}
	}
	return w.MaxDuration
}

// Defaults of Converter.
const (
	DefaultHeartbeat  = 5 * time.Second
	DefaultStaleAfter = 30 * time.Second // several heartbeats: see MinHeartbeats
	DefaultIOTimeout  = time.Hour
	// MinHeartbeats is how many heartbeats a stale-after limit must span at least, so that
	// one late heartbeat does not make a live worker look dead.
	MinHeartbeats = 3
	// DefaultKeepResultFor stays well below RabbitMQ's consumer_timeout (30 minutes), which
	// would take the delivery away from a worker that waits for its store.
	DefaultKeepResultFor = 10 * time.Minute
)

// errLostClaim says that another worker took the job over while this one worked on it.
var errLostClaim = errors.New("the job was taken over by another worker")

func (w *Converter) ioTimeout() time.Duration {
	if w.IOTimeout <= 0 {
		return DefaultIOTimeout
	}
	return w.IOTimeout
}

// holds reports whether this worker's claim on j still stands (an error reading the job
// counts as yes: the stores' own compare-and-set still guards the outcome).
func (w *Converter) holds(ctx context.Context, j *server.Job) bool {
	cur, err := w.Jobs.Job(ctx, j.ID)
	if err != nil {
		return true
	}
	return cur.State == server.JobConverting && cur.Attempts == j.Attempts
}

func (w *Converter) changed() {
	if w.Changed != nil {
		w.Changed()
	}
}

// updateTimeout bounds one publish of a job update: a bus in trouble must not hold up work.
const updateTimeout = 2 * time.Second

// update publishes a change of job id of owner's on Updates, when set.
func (w *Converter) update(ctx context.Context, kind server.UpdateKind, id, owner string, state server.JobState, pct int) {
	if w.Updates == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), updateTimeout)
	defer cancel()
	u := server.JobUpdate{Kind: kind, JobID: id, Owner: owner, State: state, Progress: pct, At: time.Now().UTC()}
	if err := w.Updates.Publish(ctx, u); err != nil {
		w.log().DebugContext(ctx, "job update not published", "job_id", id, "kind", kind, "err", err)
	}
}

// stateChanged publishes j's current state.
func (w *Converter) stateChanged(ctx context.Context, j *server.Job) {
	w.update(ctx, server.UpdateState, j.ID, j.Owner, j.State, j.Progress)
}

// requeue gives the job back to the queue (see JobStore.RequeueJob) and announces it.
func (w *Converter) requeue(ctx context.Context, log *slog.Logger, j *server.Job) {
	if err := w.Jobs.RequeueJob(ctx, j.ID, j.Attempts, true); err != nil {
		log.ErrorContext(ctx, "requeue job", "err", err)
		return
	}
	w.changed()
	w.update(ctx, server.UpdateState, j.ID, j.Owner, server.JobQueued, 0)
}

func (w *Converter) log() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}

func (w *Converter) heartbeat() time.Duration {
	if w.Heartbeat <= 0 {
		return DefaultHeartbeat
	}
	return w.Heartbeat
}

// StaleAge returns how long a converting job may go without a heartbeat.
func (w *Converter) StaleAge() time.Duration {
	if w.StaleAfter <= 0 {
		return DefaultStaleAfter
	}
	return w.StaleAfter
}

// Handle is the server.Handler for TopicVideo.
func (w *Converter) Handle(ctx context.Context, d server.Delivery) (err error) {
	ctx, span := tracing.StartConsume(ctx, w.TracerProvider, "convert video", d.Topic, d.Attempt)
	defer func() { tracing.Fail(span, err); span.End() }()
	var msg server.VideoMessage
	if err := json.Unmarshal(d.Body, &msg); err != nil || !server.ValidID(msg.JobID) {
		return server.Permanent(fmt.Errorf("malformed video message %q", truncate(d.Body, 200)))
	}
	span.SetAttributes(tracing.JobID.String(msg.JobID))
	log := w.log().With("job_id", msg.JobID, "attempt", d.Attempt)
	j, err := w.Jobs.ClaimJob(ctx, msg.JobID, time.Now().Add(-w.StaleAge()))
	switch {
	case server.IsCode(err, server.ENOTFOUND):
		return server.Permanent(fmt.Errorf("job %s: %w", msg.JobID, err))
	case server.IsCode(err, server.ECONFLICT):
		return w.alreadyClaimed(ctx, log, msg.JobID)
	case err != nil:
		return fmt.Errorf("claim job %s: %w", msg.JobID, err)
	}
	w.Metrics.Job(string(server.JobConverting))
	w.changed()
	w.stateChanged(ctx, j)
	if limit := d.MaxAttempts; limit > 0 && j.Attempts > limit {
		// The job's messages keep coming back (a crash on every try, republished by a sweeper).
		log.ErrorContext(ctx, "job claimed too many times; giving up", "claims", j.Attempts)
		return w.failForGood(context.WithoutCancel(ctx), log, j.ID, fmt.Sprintf("conversion gave up after %d attempts", j.Attempts-1))
	}
	log.InfoContext(ctx, "conversion started", "size", j.Size)
	start := time.Now()
	// The heartbeat runs from the claim until the outcome is recorded, fetch and store included,
	// so that no other worker takes over a job that is alive.
	hb := w.startHeartbeat(ctx, j)
	res, err := w.convert(ctx, j, hb.progress)
	hb.stop()
	w.Metrics.Conversion(time.Since(start))
	if err == nil {
		// The work is done: record it even if shutdown began meanwhile.
		return w.finish(context.WithoutCancel(ctx), log, j, res)
	}
	// Past here the conversion failed; record why before returning.
	bg := context.WithoutCancel(ctx)
	if errors.Is(err, errLostClaim) {
		log.WarnContext(ctx, "job was taken over by another worker; leaving it to that one")
		return nil
	}
	if (server.IsPermanent(err) || d.LastAttempt()) && ctx.Err() == nil && !w.holds(bg, j) {
		return w.alreadyClaimed(bg, log, j.ID) // not this worker's to fail any more
	}
	switch {
	case ctx.Err() != nil:
		// Shutting down: give the job back, and the queue hands the message back too.
		log.InfoContext(ctx, "conversion interrupted; job requeued")
		w.requeue(bg, log, j)
		return fmt.Errorf("job %s interrupted: %w", j.ID, ctx.Err())
	case server.IsPermanent(err):
		log.InfoContext(ctx, "conversion failed", "reason", reason(err))
		return w.failForGood(bg, log, j.ID, reason(err))
	case d.LastAttempt():
		log.ErrorContext(ctx, "conversion failed on the last attempt", "err", err)
		if ferr := w.fail(bg, log, j.ID, fmt.Sprintf("conversion failed after %d attempts: %s", d.Attempt, reason(err))); ferr != nil {
			return ferr
		}
		return err // dead-letter the message; the job is settled
	default:
		log.WarnContext(ctx, "conversion failed; will retry", "err", err)
		w.requeue(bg, log, j)
		return err
	}
}

// alreadyClaimed settles a delivery for a job this worker may not claim: a final job's outcome
// is announced again (the notifier sends one mail per outcome whatever it receives); a job that
// a live worker converts is left to it.
func (w *Converter) alreadyClaimed(ctx context.Context, log *slog.Logger, id string) error {
	j, err := w.Jobs.Job(ctx, id)
	if err != nil {
		return fmt.Errorf("look up job %s: %w", id, err)
	}
	if !j.State.Final() {
		log.InfoContext(ctx, "job is being converted by another worker; delivery dropped")
		return nil
	}
	log.InfoContext(ctx, "job already finished; announcing its outcome again", "state", j.State)
	return w.announce(ctx, j)
}

// convert makes the job's MP3, or for a job split by chapters the zip of its MP3s, and stores
// it as the job's MP3FID; it returns what it stored.
func (w *Converter) convert(ctx context.Context, j *server.Job, progress func(int)) (server.JobResult, error) {
	files, size, err := w.make(ctx, j, progress)
	return server.JobResult{Size: size, Files: files}, err
}

func (w *Converter) make(ctx context.Context, j *server.Job, progress func(int)) ([]server.JobFile, int64, error) {
	wd, err := newWorkDir(w.TmpDir)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if err := wd.remove(); err != nil {
			w.log().WarnContext(ctx, "remove work dir", "dir", wd.path, "err", err)
		}
	}()
	dir := wd.path
	// No extension from the user: ffmpeg recognises formats by their content, and a name like
	// x.m3u8 must not select a playlist reader.
	src := filepath.Join(dir, "video")
	dst := filepath.Join(dir, "audio.mp3")
	fctx, cancel := context.WithTimeout(ctx, w.ioTimeout())
	fctx, span := tracing.Tracer(w.TracerProvider).Start(fctx, "fetch video")
	src, err = w.fetch(fctx, j, src)
	tracing.Fail(span, err)
	span.End()
	cancel()
	if err != nil {
		return nil, 0, err
	}

	conv := server.Conversion{Options: j.Options, Title: wire.AlbumName(j.Filename), MaxDuration: w.maxDuration(ctx, j)}
	var files []server.JobFile
	if j.Options.SplitChapters {
		sp, ok := w.Converter.(server.Splitter)
		if !ok {
			return nil, 0, server.Permanent(server.Errorf(server.EINVALID, "this server cannot split by chapters"))
		}
		if files, err = sp.Split(ctx, src, dst, conv, progress); err != nil {
			return nil, 0, err
		}
	} else if err := w.Converter.Convert(ctx, src, dst, conv, progress); err != nil {
		return nil, 0, err
	}

	name := wire.MP3Name(j.Filename)
	if files != nil {
		name = wire.AlbumName(j.Filename) + ".zip"
	}
	// The MP3 is made: a store that is down now is waited for (see KeepResultFor), not a
	// reason to convert the video again.
	log := w.log().With("job_id", j.ID)
	var n int64
	err = w.persist(ctx, log, "store mp3", func(ctx context.Context) error {
		var err error
		n, err = w.store(ctx, j, dst, name)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return files, n, nil
}

// store stores the MP3 (or zip) at dst as j's MP3FID under name and returns its size.
func (w *Converter) store(ctx context.Context, j *server.Job, dst, name string) (int64, error) {
	f, err := os.Open(dst)
	if err != nil {
		return 0, fmt.Errorf("open mp3: %w", err)
	}
	defer f.Close()
	// The MP3's fid was fixed when the job was created: a second conversion of the same job
	// replaces the file instead of adding one. A worker that was taken over (it looked dead)
	// must not replace the file under the worker that holds the job now.
	if !w.holds(ctx, j) {
		again := w.reclaim(ctx, w.log().With("job_id", j.ID), j.ID)
		if again == nil {
			return 0, errLostClaim
		}
		j.Attempts = again.Attempts
	}
	sctx, cancel := context.WithTimeout(ctx, w.ioTimeout())
	defer cancel()
	sctx, span := tracing.Tracer(w.TracerProvider).Start(sctx, "store mp3")
	defer span.End()
	n, err := w.Blobs.Put(sctx, server.BucketMP3s, j.MP3FID, name, f)
	if err != nil {
		err = fmt.Errorf("store mp3: %w", err)
		tracing.Fail(span, err)
		return 0, err
	}
	span.SetAttributes(attribute.Int64("v2m.mp3.bytes", n))
	w.Metrics.BytesOut(n)
	return n, nil
}

// Bounds of persist's waits between tries.
const (
	persistFirstWait = 250 * time.Millisecond
	persistMaxWait   = 10 * time.Second
)

func (w *Converter) keepResultFor() time.Duration {
	if w.KeepResultFor == 0 {
		return DefaultKeepResultFor
	}
	return max(w.KeepResultFor, 0)
}

// persist runs op, which records the result of a finished conversion, until it succeeds, fails
// for good (a permanent error, a lost claim, a conflict), ctx ends, or KeepResultFor has passed
// since the first try; it waits 250 ms, 500 ms, … up to 10 s between tries, and returns op's
// last error.
func (w *Converter) persist(ctx context.Context, log *slog.Logger, what string, op func(context.Context) error) error {
	deadline := time.Now().Add(w.keepResultFor())
	wait := persistFirstWait
	for try := 1; ; try++ {
		err := op(ctx)
		if err == nil {
			if try > 1 {
				log.Info("result recorded after the store came back", "step", what, "tries", try)
			}
			return nil
		}
		if server.IsPermanent(err) || errors.Is(err, errLostClaim) || server.IsCode(err, server.ECONFLICT) ||
			ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		log.Warn("cannot record the converted result yet; keeping it and trying again", "step", what, "try", try, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, persistMaxWait)
	}
}

// fetch returns the path of the video as a local, seekable file (ffmpeg cannot read an MP4
// whose index is at its end from a pipe): the store's own file when it keeps files on local
// disk, else a copy at dst.
func (w *Converter) fetch(ctx context.Context, j *server.Job, dst string) (string, error) {
	missing := server.Permanent(server.Errorf(server.EINVALID, "the uploaded video is missing"))
	if lf, ok := w.Blobs.(server.LocalFiler); ok {
		p, err := lf.LocalPath(ctx, server.BucketVideos, j.VideoFID)
		if server.IsCode(err, server.ENOTFOUND) {
			return "", missing
		}
		if err != nil {
			return "", fmt.Errorf("find video: %w", err)
		}
		return p, nil
	}
	b, err := w.Blobs.Open(ctx, server.BucketVideos, j.VideoFID)
	if server.IsCode(err, server.ENOTFOUND) {
		return "", missing
	}
	if err != nil {
		return "", fmt.Errorf("open video: %w", err)
	}
	defer b.Close()
	f, err := os.Create(dst)
	if err != nil {
		return "", fmt.Errorf("create temp video: %w", err)
	}
	if _, err := io.Copy(f, b); err != nil {
		f.Close()
		return "", fmt.Errorf("copy video: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write temp video: %w", err)
	}
	return dst, nil
}

func (w *Converter) finish(ctx context.Context, log *slog.Logger, j *server.Job, res server.JobResult) error {
	var done *server.Job
	tries := 0
	err := w.persist(ctx, log, "finish job", func(ctx context.Context) error {
		if tries++; tries > 1 {
			// The heartbeat has stopped: while the store was away this claim went stale, so
			// show it is alive before finishing, lest a sweeper hand the job to another worker.
			if err := w.Jobs.SetProgress(ctx, j.ID, 100); err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
		}
		var err error
		done, err = w.Jobs.FinishJob(ctx, j.ID, j.Attempts, res)
		return err
	})
	if server.IsCode(err, server.ECONFLICT) {
		if again := w.reclaim(ctx, log, j.ID); again != nil {
			done, err = w.Jobs.FinishJob(ctx, again.ID, again.Attempts, res)
		}
	}
	if server.IsCode(err, server.ECONFLICT) {
		// Another worker took the job over (this one looked dead); whatever stands is its to
		// settle, or already settled and announced again here.
		return w.alreadyClaimed(ctx, log, j.ID)
	}
	if err != nil {
		return fmt.Errorf("finish job %s: %w", j.ID, err)
	}
	w.Metrics.Job(string(server.JobDone))
	w.changed()
	w.stateChanged(ctx, done)
	log.InfoContext(ctx, "conversion done", "mp3_fid", done.MP3FID)
	return w.announce(ctx, done)
}

// reclaim claims job id again when it is back in the queue: a sweeper took this worker's claim
// for dead while the database was away, but no other worker has taken the job yet, and this
// one has its MP3 made already. It returns the new claim, or nil.
func (w *Converter) reclaim(ctx context.Context, log *slog.Logger, id string) *server.Job {
	if cur, err := w.Jobs.Job(ctx, id); err != nil || cur.State != server.JobQueued {
		return nil
	}
	j, err := w.Jobs.ClaimJob(ctx, id, time.Now().Add(-w.StaleAge()))
	if err != nil {
		return nil
	}
	log.Info("job was handed back to the queue while the database was away; claimed again to finish it with its MP3", "claims", j.Attempts)
	return j
}

func (w *Converter) fail(ctx context.Context, log *slog.Logger, id, why string) error {
	j, err := w.Jobs.FailJob(ctx, id, why)
	if server.IsCode(err, server.ECONFLICT) {
		return w.alreadyClaimed(ctx, log, id)
	}
	if err != nil {
		return fmt.Errorf("fail job %s: %w", id, err)
	}
	w.Metrics.Job(string(server.JobFailed))
	w.changed()
	w.stateChanged(ctx, j)
	return w.announce(ctx, j)
}

// failForGood fails the job and announces it; then the message goes to the dead letters with
// the reason, where an administrator sees it and can replay it once the cause is gone.
func (w *Converter) failForGood(ctx context.Context, log *slog.Logger, id, why string) error {
	if err := w.fail(ctx, log, id, why); err != nil {
		return err
	}
	return server.Permanent(errors.New(why))
}

func (w *Converter) announce(ctx context.Context, j *server.Job) error {
	body, err := json.Marshal(server.EventFor(j))
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if err := w.Queue.Publish(ctx, server.TopicMP3, body); err != nil {
		// The job is settled; a redelivery of the video message announces it again.
		return fmt.Errorf("announce job %s: %w", j.ID, err)
	}
	return nil
}

// reason is the text a user reads for err: the message of a domain error, which is written
// for users. Any other error is the server's own trouble, whose text may name hosts, paths
// or files of the server; it is logged, and users read only that it was internal.
func reason(err error) string {
	var e *server.Error
	if errors.As(err, &e) && e.Code != server.EINTERNAL {
		return e.Message
	}
	return "an internal error on the server"
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// heartbeat keeps a claimed job's UpdatedAt fresh and records its progress. The conversion
// only hands it the latest percentage (progress never blocks: ffmpeg's output is read on the
// goroutine that reports it, and a store that hangs must not stall ffmpeg); one writer
// goroutine stores and announces what is latest when it gets to it, dropping the values it
// missed meanwhile, and refreshes UpdatedAt every Heartbeat.
type heartbeat struct {
	pct    atomic.Int32
	kick   chan struct{} // holds one token while a new percentage waits for the writer
	cancel context.CancelFunc
	halt   chan struct{} // closed by stop: no heartbeat after the one under way
	done   chan struct{}
	set    func(pct int)
	// announce publishes a new percentage as a job update, after set has stored it.
	announce func(pct int)
}

func (w *Converter) startHeartbeat(ctx context.Context, j *server.Job) *heartbeat {
	hbCtx, cancel := context.WithCancel(ctx)
	h := &heartbeat{cancel: cancel, kick: make(chan struct{}, 1), halt: make(chan struct{}), done: make(chan struct{})}
	id := j.ID
	h.set = func(p int) {
		// With the job's context, not the heartbeat's: stop must not cut off a write under
		// way. The client would return at once, but a store without atomic updates (FerretDB)
		// may still apply it after the job's final state, and undo that.
		if err := w.Jobs.SetProgress(ctx, id, p); err != nil && ctx.Err() == nil {
			w.log().WarnContext(ctx, "heartbeat failed", "job_id", id, "err", err)
		}
		w.changed()
	}
	h.announce = func(p int) { w.update(hbCtx, server.UpdateProgress, id, j.Owner, server.JobConverting, p) }
	go func() {
		defer close(h.done)
		t := time.NewTicker(w.heartbeat())
		defer t.Stop()
		announced := int32(0)
		for {
			select {
			case <-h.halt:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				h.set(int(h.pct.Load()))
			case <-h.kick:
				p := h.pct.Load()
				if p == announced {
					continue
				}
				announced = p
				h.set(int(p))
				h.announce(int(p))
				t.Reset(w.heartbeat()) // that write was a heartbeat too
			}
		}
	}()
	return h
}

// progress hands a new percentage to the writer; it never waits.
func (h *heartbeat) progress(p int) {
	if int32(p) != h.pct.Swap(int32(p)) {
		select {
		case h.kick <- struct{}{}:
		default: // the writer has one waiting already, and reads the latest
		}
	}
}

// stop ends the heartbeat and waits for it, the write under way included: a heartbeat still
// writing while the job is finished could, on a store without atomic updates, overwrite the
// final state.
func (h *heartbeat) stop() {
	close(h.halt)
	<-h.done
	h.cancel()
}
