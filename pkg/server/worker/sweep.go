package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
)

// Defaults of Sweeper.
const (
	DefaultSweepInterval   = 30 * time.Second
	DefaultQueuedAfter     = 2 * time.Minute
	DefaultSweepStaleAfter = time.Minute // MinHeartbeats of DefaultHeartbeat, with room
	DefaultUploadTTL       = 7 * 24 * time.Hour
	DefaultOrphanGrace     = time.Hour
	DefaultOrphanBatch     = 200
)

// Sweeper publishes again the jobs whose message may be lost: queued jobs older than
// QueuedAfter (the publish at upload failed, or the broker lost it), and converting jobs with no
// heartbeat for StaleAfter (their worker died and its delivery went elsewhere). A duplicate
// message is harmless: claims are compare-and-set.
type Sweeper struct {
	// Service republishes jobs. Its Uploads and Blobs, when set, let the sweeper discard
	// uploads abandoned for UploadTTL and, when Blobs is also a server.BlobLister, remove files
	// nothing refers to (RemoveOrphans).
	Service   *jobs.Service
	UploadTTL time.Duration // DefaultUploadTTL when zero
	// OrphanGrace is how old a file must be before RemoveOrphans may remove it (DefaultOrphanGrace when zero).
	// It covers the moment between a file's appearance and the record that refers to it: the
	// tutorial's upload stores its video just before it creates the job.
	OrphanGrace time.Duration
	// OrphanBatch bounds the files of each bucket that one RemoveOrphans call looks at
	// (DefaultOrphanBatch when zero).
	OrphanBatch int
	Interval    time.Duration // DefaultSweepInterval when zero
	QueuedAfter time.Duration // DefaultQueuedAfter when zero
	StaleAfter  time.Duration // DefaultSweepStaleAfter when zero
	Logger      *slog.Logger
	// Lease, when set, elects one sweeper among replicas to delete files (abandoned uploads,
	// orphans, retention): a pass that does not hold the lease "janitor" as Holder deletes
	// nothing. Publishing again is harmless, and every replica does it.
	Lease  server.Lease
	Holder string // this replica's name in the lease; a random one when empty

	mu      sync.Mutex
	cursors map[string]string // bucket → the last fid RemoveOrphans looked at
	wake    chan struct{}     // holds a token when Reconnected was called
	since   time.Time         // the earliest lost connection Reconnected was told of
}

// reconnectMargin widens the window of jobs that Reconnected publishes again: a job recorded
// queued shortly before the connection dropped may have had its publish cut off too.
const reconnectMargin = time.Minute

// reconnectRetry is how long afterReconnect waits after a failure before it tries again.
const reconnectRetry = 2 * time.Second

// Reconnected tells the sweeper that the connection to the broker, lost at lostAt, is back.
// Run then publishes again at once the jobs still queued that were queued (or published
// again) since a minute before lostAt: their publish may have failed during the outage, and
// they need not wait QueuedAfter. Older queued jobs were published before the outage, and the
// broker keeps their messages. It never blocks; calls before Run starts are kept.
func (s *Sweeper) Reconnected(lostAt time.Time) {
	s.mu.Lock()
	if s.since.IsZero() || lostAt.Before(s.since) {
		s.since = lostAt
	}
	wake := s.wakeLocked()
	s.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

func (s *Sweeper) wakeLocked() chan struct{} {
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	return s.wake
}

// RepublishQueuedSince publishes again the queued jobs last updated at or after since (among
// the 500 oldest queued jobs) and returns how many it published.
func (s *Sweeper) RepublishQueuedSince(ctx context.Context, since time.Time) (int, error) {
	// Up to a moment from now: the stores keep milliseconds, and a job queued in this one counts.
	queued, err := s.Service.Jobs.StaleJobs(ctx, server.JobQueued, time.Now().Add(time.Millisecond), 500)
	if err != nil {
		return 0, fmt.Errorf("list queued jobs: %w", err)
	}
	recent := queued[:0]
	for _, j := range queued {
		if !j.UpdatedAt.Before(since) {
			recent = append(recent, j)
		}
	}
	return s.republish(ctx, recent)
}

// republish publishes the jobs again and returns how many it published.
func (s *Sweeper) republish(ctx context.Context, jobs []*server.Job) (int, error) {
	published := 0
	for _, j := range jobs {
		ok, err := s.Service.Republish(ctx, j)
		if err != nil {
			return published, err
		}
		if ok {
			published++
		}
	}
	return published, nil
}

// afterReconnect runs RepublishQueuedSince for the outage Reconnected was told of; after a
// failure (the broker dropped again, the store is busy) it tries again in reconnectRetry.
func (s *Sweeper) afterReconnect(ctx context.Context) {
	s.mu.Lock()
	lostAt := s.since
	s.since = time.Time{}
	s.mu.Unlock()
	n, err := s.RepublishQueuedSince(ctx, lostAt.Add(-reconnectMargin))
	if err != nil && ctx.Err() == nil {
		s.log().Warn("publishing queued jobs again after the broker came back failed; trying again", "err", err, "retry_in", reconnectRetry)
		time.AfterFunc(reconnectRetry, func() { s.Reconnected(lostAt) })
	}
	if n > 0 {
		s.log().Info("queued jobs published again after the broker came back", "count", n)
	}
}

// Run sweeps every Interval until ctx is done.
func (s *Sweeper) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	s.mu.Lock()
	wake := s.wakeLocked()
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			s.afterReconnect(ctx)
		case <-t.C:
			if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log().Warn("sweep failed", "err", err)
			} else if n > 0 {
				s.log().Info("jobs published again", "count", n)
			}
			if !s.janitor(ctx, 3*interval) {
				continue
			}
			if f, err := s.Service.ApplyRetention(ctx); err != nil && ctx.Err() == nil {
				s.log().Warn("retention failed", "err", err)
			} else if f.Videos > 0 || f.Expired > 0 {
				s.log().Info("retention freed files", "videos", f.Videos, "expired_jobs", f.Expired, "bytes", f.Bytes)
			}
			if n, err := s.DiscardAbandoned(ctx); err != nil && ctx.Err() == nil {
				s.log().Warn("discarding abandoned uploads failed", "err", err)
			} else if n > 0 {
				s.log().Info("abandoned uploads discarded", "count", n)
			}
			if n, err := s.RemoveOrphans(ctx); err != nil && ctx.Err() == nil {
				s.log().Warn("removing orphaned files failed", "err", err)
			} else if n > 0 {
				s.log().Info("orphaned files removed", "count", n)
			}
		}
	}
}

// janitor reports whether this sweeper may delete files now: it holds the lease, or there is
// none to hold. A lease that cannot be read means no.
func (s *Sweeper) janitor(ctx context.Context, ttl time.Duration) bool {
	if s.Lease == nil {
		return true
	}
	s.mu.Lock()
	if s.Holder == "" {
		s.Holder = server.NewID()
	}
	holder := s.Holder
	s.mu.Unlock()
	ok, err := s.Lease.Acquire(ctx, "janitor", holder, ttl)
	if err != nil {
		if ctx.Err() == nil {
			s.log().Warn("janitor lease", "err", err)
		}
		return false
	}
	return ok
}

// Sweep runs one pass and returns how many jobs it published.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	queuedAfter, staleAfter := s.QueuedAfter, s.StaleAfter
	if queuedAfter <= 0 {
		queuedAfter = DefaultQueuedAfter
	}
	if staleAfter <= 0 {
		staleAfter = DefaultSweepStaleAfter
	}
	now := time.Now()
	published := 0
	for _, c := range []struct {
		state  server.JobState
		before time.Time
	}{{server.JobQueued, now.Add(-queuedAfter)}, {server.JobConverting, now.Add(-staleAfter)}} {
		stale, err := s.Service.Jobs.StaleJobs(ctx, c.state, c.before, 500)
		if err != nil {
			return published, fmt.Errorf("list %s jobs: %w", c.state, err)
		}
		n, err := s.republish(ctx, stale)
		published += n
		if err != nil {
			return published, err
		}
	}
	return published, nil
}

func (s *Sweeper) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Recover gives back every converting job to the queue. Standalone calls it at start, when it
// knows that no worker of an earlier run is alive, so those jobs resume at once.
func Recover(ctx context.Context, jobs server.JobStore, log *slog.Logger) error {
	stuck, err := jobs.StaleJobs(ctx, server.JobConverting, time.Now().Add(time.Hour), 10000)
	if err != nil {
		return fmt.Errorf("list converting jobs: %w", err)
	}
	for _, j := range stuck {
		// No refund: the process that held it died, and a job that keeps killing its
		// process must run out of attempts.
		if err := jobs.RequeueJob(ctx, j.ID, j.Attempts, false); err != nil {
			return fmt.Errorf("requeue job %s: %w", j.ID, err)
		}
		log.Info("job interrupted by a restart is queued again", "job_id", j.ID)
	}
	return nil
}

// DiscardAbandoned removes uploads started more than UploadTTL ago and never completed, with
// their parts, and returns how many it removed.
func (s *Sweeper) DiscardAbandoned(ctx context.Context) (int, error) {
	if s.Service.Uploads == nil || s.Service.Blobs == nil {
		return 0, nil
	}
	ttl := s.UploadTTL
	if ttl <= 0 {
		ttl = DefaultUploadTTL
	}
	stale, err := s.Service.Uploads.StaleUploads(ctx, time.Now().Add(-ttl), 100)
	if err != nil {
		return 0, fmt.Errorf("list abandoned uploads: %w", err)
	}
	// One upload that cannot be discarded does not hold up the others.
	n := 0
	var errs []error
	for _, u := range stale {
		if err := s.Service.Blobs.AbortUpload(ctx, u); err != nil {
			errs = append(errs, fmt.Errorf("discard upload %s: %w", u.ID, err))
			continue
		}
		if err := s.Service.Uploads.DeleteUpload(ctx, u.ID); err != nil {
			errs = append(errs, fmt.Errorf("delete upload %s: %w", u.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// RemoveOrphans removes files that no job and no open upload refers to and that are older than
// OrphanGrace: a video whose fid is neither an upload's id nor a job's VideoFID, an MP3 whose
// fid is no job's MP3FID. Such files are left by a request or a process that died between
// storing a file and recording it. Each call looks at one batch of each bucket, going on where
// the last call stopped and starting over after the end, so a pass costs a bounded amount of
// work however large the buckets are. It returns how many files it removed. A store that is
// not a server.BlobLister is left alone.
func (s *Sweeper) RemoveOrphans(ctx context.Context) (int, error) {
	lister, ok := s.Service.Blobs.(server.BlobLister)
	if !ok || s.Service.Uploads == nil || s.Service.Jobs == nil {
		return 0, nil
	}
	grace := s.OrphanGrace
	if grace <= 0 {
		grace = DefaultOrphanGrace
	}
	limit := s.OrphanBatch
	if limit <= 0 {
		limit = DefaultOrphanBatch
	}
	cutoff := time.Now().Add(-grace)
	removed := 0
	var errs []error
	for _, bucket := range []string{server.BucketVideos, server.BucketMP3s} {
		s.mu.Lock()
		after := s.cursors[bucket]
		s.mu.Unlock()
		batch, err := lister.ListBlobs(ctx, bucket, after, limit)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", bucket, err))
			continue
		}
		next := ""
		if len(batch) == limit {
			next = batch[len(batch)-1].FID
		}
		s.mu.Lock()
		if s.cursors == nil {
			s.cursors = map[string]string{}
		}
		s.cursors[bucket] = next
		s.mu.Unlock()
		for _, b := range batch {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			if !b.ModTime.Before(cutoff) {
				continue
			}
			used, err := s.referenced(ctx, bucket, b.FID)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", bucket, b.FID, err))
				continue
			}
			if used {
				continue
			}
			if err := s.Service.Blobs.Delete(ctx, bucket, b.FID); err != nil {
				errs = append(errs, fmt.Errorf("remove %s/%s: %w", bucket, b.FID, err))
				continue
			}
			s.log().Info("orphaned file removed", "bucket", bucket, "fid", b.FID, "size", b.Size, "stored", b.ModTime)
			s.Service.Metrics.Freed("orphan", 1, b.Size)
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// referenced reports whether a record refers to file fid of bucket.
func (s *Sweeper) referenced(ctx context.Context, bucket, fid string) (bool, error) {
	found := func(err error) (bool, error) {
		if err == nil {
			return true, nil
		}
		if server.IsCode(err, server.ENOTFOUND) {
			return false, nil
		}
		return false, err
	}
	if bucket == server.BucketMP3s {
		j, err := s.Service.Jobs.JobByMP3(ctx, fid)
		if used, err := found(err); !used || err != nil {
			return used, err
		}
		return !j.Expired, nil
	}
	// The upload first, then the job: a completed upload's video appears while its upload
	// record exists, and its job is created before that record is deleted, so a video whose
	// upload is gone already has its job. The other order could miss both.
	if used, err := found(func() error { _, err := s.Service.Uploads.Upload(ctx, fid); return err }()); used || err != nil {
		return used, err
	}
	j, err := s.Service.Jobs.Job(ctx, fid) // a job takes its video's fid
	if used, err := found(err); !used || err != nil {
		return used, err
	}
	return j.VideoFID == fid && !j.VideoDeleted, nil
}
