package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// DefaultMP3TTL is how long MP3s are kept after their job is done when Retention.MP3TTL is 0.
const DefaultMP3TTL = 7 * 24 * time.Hour

// Retention says how long files are kept. The zero value keeps MP3s for DefaultMP3TTL and
// deletes videos once their job is done.
type Retention struct {
	// KeepVideo keeps a done job's video until the job expires, instead of deleting it once the
	// MP3 is stored. A failed job's video is always kept until the job expires, so that an
	// administrator can replay it.
	KeepVideo bool
	// MP3TTL is how long after a job is final (done or failed) its files are deleted: the MP3s
	// of a done job, and the video if still kept. The job's record stays, marked expired, so
	// that a download says the file is gone (410) rather than unknown. Negative keeps files
	// for ever; 0 takes DefaultMP3TTL.
	MP3TTL time.Duration
}

// ttl returns the time to live of final jobs' files, or 0 for ever.
func (r Retention) ttl() time.Duration {
	switch {
	case r.MP3TTL < 0:
		return 0
	case r.MP3TTL == 0:
		return DefaultMP3TTL
	}
	return r.MP3TTL
}

// ExpiryOf returns when the files of a job that became final at finished expire, or the zero
// time when they are kept for ever.
func (r Retention) ExpiryOf(finished time.Time) time.Time {
	if finished.IsZero() || r.ttl() == 0 {
		return time.Time{}
	}
	return finished.Add(r.ttl())
}

// withExpiry sets j.ExpiresAt from the retention policy, and returns j.
func (s *Service) withExpiry(j *server.Job) *server.Job {
	if j != nil && j.State.Final() {
		j.ExpiresAt = s.Retention.ExpiryOf(j.FinishedAt)
	}
	return j
}

// Delete removes owner's job id with its video and MP3s, whatever its state; anyone else's,
// or none, is ENOTFOUND. The record goes first: a converter working on it learns so at its next
// heartbeat and stops, and a file whose deletion fails is left to the janitor, which removes
// files that no job refers to.
func (s *Service) Delete(ctx context.Context, owner, id string) error {
	j, err := s.Job(ctx, owner, id)
	if err != nil {
		return err
	}
	if err := s.Jobs.DeleteJob(ctx, j.ID); err != nil {
		return fmt.Errorf("delete job %s: %w", j.ID, err)
	}
	files, bytes := s.removeFiles(context.WithoutCancel(ctx), j, !j.VideoDeleted, !j.Expired)
	s.Metrics.Freed("deleted", files, bytes)
	s.log().Info("job deleted by its owner", "job_id", j.ID, "state", j.State, "files", files, "bytes", bytes)
	if s.Updates != nil {
		u := server.JobUpdate{Kind: server.UpdateState, JobID: j.ID, Owner: j.Owner, State: j.State, Progress: j.Progress, At: s.now()}
		if err := s.Updates.Publish(context.WithoutCancel(ctx), u); err != nil {
			s.log().Warn("announce a deleted job", "job_id", j.ID, "err", err)
		}
	}
	return nil
}

// removeFiles deletes j's video (when video) and MP3 (when mp3) and returns how many files
// and bytes it removed. Failures are logged: the janitor removes what nothing refers to.
func (s *Service) removeFiles(ctx context.Context, j *server.Job, video, mp3 bool) (int, int64) {
	files, bytes := 0, int64(0)
	del := func(bucket, fid string, size int64) {
		if fid == "" {
			return
		}
		if err := s.Blobs.Delete(ctx, bucket, fid); err != nil {
			s.log().Warn("delete a job's file", "job_id", j.ID, "bucket", bucket, "fid", fid, "err", err)
			return
		}
		files++
		bytes += size
	}
	if video {
		del(server.BucketVideos, j.VideoFID, j.Size)
	}
	if mp3 && j.State == server.JobDone {
		del(server.BucketMP3s, j.MP3FID, j.MP3Size)
	}
	return files, bytes
}

// Freed is what one retention pass deleted.
type Freed struct {
	Videos  int   // videos of done jobs
	Expired int   // jobs whose files expired
	Bytes   int64 // bytes of all the files deleted
}

// retentionBatch bounds the jobs one pass of each kind looks at.
const retentionBatch = 200

// ApplyRetention runs one retention pass: it deletes the videos of done jobs (unless
// KeepVideo) and the files of final jobs older than the MP3 time to live, marking each job
// first, so that a file whose deletion fails is no longer referred to and goes with the
// janitor's orphans. Every job it could not settle is in the error; the others are done.
func (s *Service) ApplyRetention(ctx context.Context) (Freed, error) {
	var f Freed
	var errs []error
	now := s.now()
	if !s.Retention.KeepVideo {
		done, err := s.Jobs.RetainedJobs(ctx, server.RetainedVideos, now.Add(24*time.Hour), retentionBatch) // every done job, whatever the clocks
		if err != nil {
			return f, fmt.Errorf("list done jobs with videos: %w", err)
		}
		n, _, b := s.release(ctx, done, false, "video_done", &errs)
		f.Videos, f.Bytes = n, b
	}
	if ttl := s.Retention.ttl(); ttl > 0 {
		old, err := s.Jobs.RetainedJobs(ctx, server.RetainedFiles, now.Add(-ttl), retentionBatch)
		if err != nil {
			return f, errors.Join(append(errs, fmt.Errorf("list expired jobs: %w", err))...)
		}
		_, jobs, b := s.release(ctx, old, true, "expired", &errs)
		f.Expired, f.Bytes = jobs, f.Bytes+b
	}
	return f, errors.Join(errs...)
}

// release marks each of list as having lost its video (and, with expire, its MP3s) and then
// deletes those files, counting them in the metrics under reason. It returns the files and the
// jobs it settled and the bytes freed; what it could not settle is added to errs (a job gone
// meanwhile is not an error).
func (s *Service) release(ctx context.Context, list []*server.Job, expire bool, reason string, errs *[]error) (files, jobs int, bytes int64) {
	for _, j := range list {
		if err := s.Jobs.MarkRetention(ctx, j.ID, true, expire); err != nil {
			if !server.IsCode(err, server.ENOTFOUND) {
				*errs = append(*errs, fmt.Errorf("job %s: %w", j.ID, err))
			}
			continue
		}
		n, b := s.removeFiles(ctx, j, !j.VideoDeleted, expire)
		s.Metrics.Freed(reason, n, b)
		files, jobs, bytes = files+n, jobs+1, bytes+b
	}
	return files, jobs, bytes
}

// expiredError is the answer for a file of an expired job.
func expiredError(j *server.Job, expiry time.Time) error {
	when := "its time to live ended"
	if !expiry.IsZero() {
		when = "it expired on " + expiry.UTC().Format("2006-01-02 15:04 UTC")
	}
	return server.Errorf(server.EGONE, "the MP3 of job %s was deleted: %s; upload the video again to convert it", j.ID, when)
}
