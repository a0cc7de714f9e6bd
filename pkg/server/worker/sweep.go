package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/metrics"
)

// Sweeper publishes again the jobs whose message may be lost: queued jobs older than
// QueuedAfter (the publish at upload failed, or the broker lost it), and converting jobs with no
// heartbeat for StaleAfter (their worker died and its delivery went elsewhere). A duplicate
// message is harmless: claims are compare-and-set.
type Sweeper struct {
	Jobs  server.JobStore
	Queue server.Queue
	// Uploads and Blobs, when set, let the sweeper discard uploads abandoned for UploadTTL.
	Uploads     server.UploadStore
	Blobs       server.BlobStore
	UploadTTL   time.Duration // default 7 days
	Interval    time.Duration // default 30 s
	QueuedAfter time.Duration // default 2 min
	StaleAfter  time.Duration // default 1 min
	Logger      *slog.Logger
	Metrics     *metrics.Metrics
}

// Run sweeps every Interval until ctx is done.
func (s *Sweeper) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log().Warn("sweep failed", "err", err)
			} else if n > 0 {
				s.log().Info("jobs published again", "count", n)
			}
			if n, err := s.DiscardAbandoned(ctx); err != nil && ctx.Err() == nil {
				s.log().Warn("discarding abandoned uploads failed", "err", err)
			} else if n > 0 {
				s.log().Info("abandoned uploads discarded", "count", n)
			}
		}
	}
}

// Sweep runs one pass and returns how many jobs it published.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	queuedAfter, staleAfter := s.QueuedAfter, s.StaleAfter
	if queuedAfter <= 0 {
		queuedAfter = 2 * time.Minute
	}
	if staleAfter <= 0 {
		staleAfter = time.Minute
	}
	now := time.Now()
	published := 0
	for _, c := range []struct {
		state  server.JobState
		before time.Time
	}{{server.JobQueued, now.Add(-queuedAfter)}, {server.JobConverting, now.Add(-staleAfter)}} {
		jobs, err := s.Jobs.StaleJobs(ctx, c.state, c.before, 500)
		if err != nil {
			return published, fmt.Errorf("list %s jobs: %w", c.state, err)
		}
		for _, j := range jobs {
			// Both changes come before the publish: once the message is out, a worker may
			// claim the job at any moment, and nothing may write the job under it.
			var err error
			if c.state == server.JobConverting {
				// Its worker is gone: hand the job back (fenced by that worker's claim, and
				// without refund, so that a job that kills its workers runs out of attempts).
				err = s.Jobs.RequeueJob(ctx, j.ID, j.Attempts, false)
			} else {
				// Not again on the next pass: a queued job may just be waiting its turn.
				err = s.Jobs.TouchJob(ctx, j.ID, server.JobQueued)
			}
			if err != nil {
				return published, fmt.Errorf("update job %s: %w", j.ID, err)
			}
			body, _ := json.Marshal(server.VideoMessage{JobID: j.ID, VideoFID: j.VideoFID, Username: j.Owner})
			if err := s.Queue.Publish(ctx, server.TopicVideo, body); err != nil {
				s.Metrics.PublishFailure(server.TopicVideo)
				return published, fmt.Errorf("publish job %s: %w", j.ID, err)
			}
			published++
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
	if s.Uploads == nil || s.Blobs == nil {
		return 0, nil
	}
	ttl := s.UploadTTL
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	stale, err := s.Uploads.StaleUploads(ctx, time.Now().Add(-ttl), 100)
	if err != nil {
		return 0, fmt.Errorf("list abandoned uploads: %w", err)
	}
	// One upload that cannot be discarded does not hold up the others.
	n := 0
	var errs []error
	for _, u := range stale {
		if err := s.Blobs.AbortUpload(ctx, u); err != nil {
			errs = append(errs, fmt.Errorf("discard upload %s: %w", u.ID, err))
			continue
		}
		if err := s.Uploads.DeleteUpload(ctx, u.ID); err != nil {
			errs = append(errs, fmt.Errorf("delete upload %s: %w", u.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
