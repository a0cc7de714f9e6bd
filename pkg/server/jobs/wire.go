package jobs

import (
	"math"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// WireJob is the job as the API shows it (GET /v1/jobs/{id}), and as webhooks deliver it: the
// MP3's fid and files only once done, the error only once failed, the finish time only once
// final.
func WireJob(j *server.Job) wire.Job {
	out := wire.Job{ID: j.ID, State: string(j.State), Progress: j.Progress, Filename: j.Filename, Size: j.Size,
		SourceSize: j.SourceSize, Options: WireOptions(j.Options), CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	switch j.State {
	case server.JobDone:
		out.MP3FID = j.MP3FID
		for i, f := range j.Files {
			out.Files = append(out.Files, wire.File{FID: server.FileFID(j.MP3FID, i), Title: f.Title,
				Start: f.Start.Seconds(), End: f.End.Seconds(), Size: f.Size})
		}
	case server.JobFailed:
		out.Error = j.Error
	}
	if !j.FinishedAt.IsZero() && j.State.Final() {
		f := j.FinishedAt
		out.FinishedAt = &f
	}
	if !j.ExpiresAt.IsZero() {
		e := j.ExpiresAt
		out.ExpiresAt = &e
	}
	out.Expired = j.Expired
	return out
}

// WireLimits is a user's own limits as the API shows them.
func WireLimits(l server.Limits) wire.Limits {
	out := wire.Limits{QuotaBytes: l.QuotaBytes, MaxOpenUploads: l.MaxOpenUploads, MaxActiveJobs: l.MaxActiveJobs}
	if l.MaxDuration != nil {
		v := l.MaxDuration.Seconds()
		out.MaxDuration = &v
	}
	return out
}

// ParseLimits checks limits as the API takes them: no negative values, durations within a
// year; anything else is EINVALID.
func ParseLimits(w wire.Limits) (server.Limits, error) {
	neg := func(name string) error {
		return server.Errorf(server.EINVALID, `field %q must be 0 (no limit) or more`, name)
	}
	if w.QuotaBytes != nil && *w.QuotaBytes < 0 {
		return server.Limits{}, neg("quota_bytes")
	}
	if w.MaxOpenUploads != nil && *w.MaxOpenUploads < 0 {
		return server.Limits{}, neg("max_open_uploads")
	}
	if w.MaxActiveJobs != nil && *w.MaxActiveJobs < 0 {
		return server.Limits{}, neg("max_active_jobs")
	}
	l := server.Limits{QuotaBytes: w.QuotaBytes, MaxOpenUploads: w.MaxOpenUploads, MaxActiveJobs: w.MaxActiveJobs}
	if w.MaxDuration != nil {
		v := *w.MaxDuration
		if math.IsNaN(v) || v < 0 || v > 366*24*3600 {
			return server.Limits{}, server.Errorf(server.EINVALID, `field "max_duration" must be seconds from 0 (no limit) to a year`)
		}
		d := time.Duration(v * float64(time.Second))
		l.MaxDuration = &d
	}
	return l, nil
}
