package jobs

import (
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
