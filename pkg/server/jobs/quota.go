package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Quotas are the per-user limits that apply to a user for whom an administrator set none. A
// zero field means no limit.
type Quotas struct {
	Bytes       int64         // videos + MP3s stored, open uploads counted at their declared size
	OpenUploads int           // uploads started and not completed
	ActiveJobs  int           // jobs queued or converting
	Duration    time.Duration // of the audio of one job (the converter checks it)
}

// override returns q with l's fields that are set; a set field of 0 or less means no limit.
func (q Quotas) override(l server.Limits) Quotas {
	if l.QuotaBytes != nil {
		q.Bytes = max(*l.QuotaBytes, 0)
	}
	if l.MaxOpenUploads != nil {
		q.OpenUploads = max(*l.MaxOpenUploads, 0)
	}
	if l.MaxActiveJobs != nil {
		q.ActiveJobs = max(*l.MaxActiveJobs, 0)
	}
	if l.MaxDuration != nil {
		q.Duration = max(*l.MaxDuration, 0)
	}
	return q
}

// QuotasOf returns the limits that apply to owner: the server's, with what an administrator
// set for owner instead.
func (s *Service) QuotasOf(ctx context.Context, owner string) (Quotas, error) {
	q := s.Quotas
	if s.Limits == nil {
		return q, nil
	}
	l, err := s.Limits.UserLimits(ctx, owner)
	if err != nil {
		return q, fmt.Errorf("read limits: %w", err)
	}
	return q.override(l), nil
}

// Usage is what a user holds and may hold.
type Usage struct {
	StoredBytes int64 // videos and MP3s kept for their jobs
	UploadBytes int64 // declared sizes of open uploads
	OpenUploads int
	ActiveJobs  int
	Limits      Quotas
}

// UsageOf returns owner's usage and limits.
func (s *Service) UsageOf(ctx context.Context, owner string) (*Usage, error) {
	q, err := s.QuotasOf(ctx, owner)
	if err != nil {
		return nil, err
	}
	return s.usage(ctx, owner, q)
}

// usage returns owner's usage under the limits q.
func (s *Service) usage(ctx context.Context, owner string, q Quotas) (*Usage, error) {
	ju, err := s.Jobs.Usage(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	n, b, err := s.Uploads.OpenUploads(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	return &Usage{StoredBytes: ju.StoredBytes, UploadBytes: b, OpenUploads: n, ActiveJobs: ju.ActiveJobs, Limits: q}, nil
}

// admit checks that owner may start an upload of size bytes (newUpload) or queue one more job
// (newJob) within their limits. Over the storage quota is ETOOLARGE (413); at the number of
// open uploads or active jobs allowed, ELIMIT (429). The limits are checked, not reserved:
// concurrent requests of one user can each pass; Service serialises those it handles itself
// (admission), so only requests to different gateway replicas at the same moment can overshoot,
// by one each.
func (s *Service) admit(ctx context.Context, owner string, size int64, newUpload, newJob bool) error {
	_, err := s.admitted(ctx, owner, size, newUpload, newJob)
	return err
}

// admitted is admit, returning the usage it checked (nil when owner has no limit to check).
func (s *Service) admitted(ctx context.Context, owner string, size int64, newUpload, newJob bool) (*Usage, error) {
	q, err := s.QuotasOf(ctx, owner)
	if err != nil {
		return nil, err
	}
	if q == (Quotas{Duration: q.Duration}) {
		return nil, nil // no limit but the converter's
	}
	u, err := s.usage(ctx, owner, q)
	if err != nil {
		return nil, err
	}
	if newUpload && q.OpenUploads > 0 && u.OpenUploads >= q.OpenUploads {
		return nil, server.Errorf(server.ELIMIT, "you have %d uploads open, the most allowed: complete or cancel one first", u.OpenUploads)
	}
	if newJob && q.ActiveJobs > 0 && u.ActiveJobs >= q.ActiveJobs {
		return nil, server.Errorf(server.ELIMIT, "you have %d jobs queued or converting, the most allowed: wait for one to finish", u.ActiveJobs)
	}
	if q.Bytes > 0 {
		held := u.StoredBytes + u.UploadBytes
		if newUpload && held+size > q.Bytes || !newUpload && held > q.Bytes {
			return nil, server.Errorf(server.ETOOLARGE, "your storage quota is %s and you use %s; this file needs %s more: delete jobs you no longer need (v2m rm)",
				bytesText(q.Bytes), bytesText(held), bytesText(size))
		}
	}
	return u, nil
}

// bytesText writes n in binary units, as the CLI does: 1.5 GiB, 320 KiB, 12 B.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	s := fmt.Sprintf("%.1f", float64(n)/float64(div))
	return strings.TrimSuffix(s, ".0") + " " + string("KMGTP"[exp]) + "iB"
}

// room returns how many bytes owner may still store in one go, for an upload whose size is
// known only at its end (the tutorial's): the storage quota left, or no bound. At a quota of
// open uploads or active jobs it gives ELIMIT, over the storage quota ETOOLARGE.
func (s *Service) room(ctx context.Context, owner string) (int64, error) {
	s.admission.Lock()
	defer s.admission.Unlock()
	u, err := s.admitted(ctx, owner, 0, false, true)
	if err != nil {
		return 0, err
	}
	if u == nil || u.Limits.Bytes <= 0 {
		return 1<<63 - 1, nil
	}
	return max(u.Limits.Bytes-u.StoredBytes-u.UploadBytes, 0), nil
}
