// Package wire defines the JSON bodies of v2m's HTTP API (docs/api.md), the one definition
// that both the server (pkg/server/api) and the Go SDK (pkg/client) encode and decode. It
// imports only the standard library, so that the client can use it without pulling in
// anything of the server's.
//
// Field names, order and shapes are the documented contract: users' scripts read them from
// `v2m --json`. Change them only together with docs/api.md.
package wire

import "time"

// User is an account: the answer of POST /v1/users.
type User struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// Credentials is the body of POST /v1/users.
type Credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Token is a bearer token: the answer of POST /v1/tokens.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Me describes the caller's token: the answer of GET /v1/me.
type Me struct {
	Email     string    `json:"email"`
	Issuer    string    `json:"issuer"`
	ExpiresAt time.Time `json:"expires_at"`
	// Role is "user" or "admin", as the token says (a grant shows after the next login).
	Role string `json:"role,omitempty"`
	// ReadOnly and Personal describe a personal API token.
	ReadOnly bool `json:"read_only,omitempty"`
	Personal bool `json:"personal,omitempty"`
	// Usage is what the user holds and may hold; absent from servers that keep no jobs (auth).
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is a user's storage and counts, each with its limit (0: no limit).
type Usage struct {
	StoredBytes    int64 `json:"stored_bytes"` // videos and MP3s kept for the user's jobs
	UploadBytes    int64 `json:"upload_bytes"` // declared sizes of open uploads, which count against the quota
	QuotaBytes     int64 `json:"quota_bytes"`
	OpenUploads    int   `json:"open_uploads"`
	MaxOpenUploads int   `json:"max_open_uploads"`
	ActiveJobs     int   `json:"active_jobs"` // queued or converting
	MaxActiveJobs  int   `json:"max_active_jobs"`
	// MaxDuration is the longest audio of one job in seconds; 0: no limit.
	MaxDuration float64 `json:"max_duration"`
}

// Limits is the body of PUT /v1/admin/users/{email}/limits and the answer of GET: a user's
// own limits. An absent (null) field takes the server's default; 0 means no limit.
type Limits struct {
	QuotaBytes     *int64   `json:"quota_bytes"`
	MaxOpenUploads *int     `json:"max_open_uploads"`
	MaxActiveJobs  *int     `json:"max_active_jobs"`
	MaxDuration    *float64 `json:"max_duration"` // seconds
}

// NewUpload is the body of POST /v1/uploads. SHA256, when set, is the whole file's SHA-256
// in hex, checked when the upload completes.
type NewUpload struct {
	Filename string   `json:"filename"`
	Size     int64    `json:"size"`
	SHA256   string   `json:"sha256,omitempty"`
	Options  *Options `json:"options,omitempty"`
	// SourceSize is the size of the user's own file when the file uploaded is a smaller one
	// made from it (its audio only); it must then be larger than Size.
	SourceSize int64 `json:"source_size,omitempty"`
}

// Options are a job's MP3 options, in POST /v1/uploads and GET /v1/jobs/{id}. Every field is
// optional; an absent one takes the default (VBR quality 2, the whole audio of the default
// track, with its cover, in one file).
type Options struct {
	Quality       *int     `json:"quality,omitempty"`   // LAME VBR -V, 0-9 (default 2)
	Bitrate       string   `json:"bitrate,omitempty"`   // constant bitrate, "32k".."320k"; not with quality
	Start         string   `json:"start,omitempty"`     // keep the audio from here: "90s", "1m30s" or "00:01:30.000"
	End           string   `json:"end,omitempty"`       // ... to here
	Normalize     bool     `json:"normalize,omitempty"` // EBU R128 loudness normalisation to -16 LUFS
	Loudness      *float64 `json:"loudness,omitempty"`  // ... to this target instead, -30..-5 LUFS
	Track         *int     `json:"track,omitempty"`     // the audio track, from 0 among audio tracks
	Language      string   `json:"language,omitempty"`  // the audio track in this language, e.g. "eng"
	Mono          bool     `json:"mono,omitempty"`      // downmix to mono
	Cover         *bool    `json:"cover,omitempty"`     // cover art (default true)
	SplitChapters bool     `json:"split_chapters,omitempty"`
}

// Upload is a chunked upload in progress: the answer of POST /v1/uploads and
// GET /v1/uploads/{id}. Received lists the stored part numbers, ascending; it is never null.
type Upload struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	// SourceSize is NewUpload's, when it gave one.
	SourceSize int64 `json:"source_size,omitempty"`
	PartSize   int64 `json:"part_size"`
	Parts      int   `json:"parts"`
	Received   []int `json:"received"`
}

// PartLen returns the length of part n, or -1 when n is out of range.
func (u *Upload) PartLen(n int) int64 {
	if n < 0 || n >= u.Parts {
		return -1
	}
	if n == u.Parts-1 {
		return u.Size - int64(n)*u.PartSize
	}
	return u.PartSize
}

// Job states.
const (
	JobQueued     = "queued"
	JobConverting = "converting"
	JobDone       = "done"
	JobFailed     = "failed"
)

// Job is one conversion: the answer of the /v1/jobs routes and of
// POST /v1/uploads/{id}/complete. A job created from an upload has the upload's id. MP3FID is
// set only when State is done, Error only when failed, FinishedAt only when final.
type Job struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Progress int    `json:"progress"`
	Error    string `json:"error"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"` // the bytes uploaded
	// SourceSize is the size of the user's file when the client uploaded only its audio (a
	// smaller file made from it); absent when the whole file was uploaded.
	SourceSize int64    `json:"source_size,omitempty"`
	MP3FID     string   `json:"mp3_fid"`           // a split job's: a zip of its Files
	Options    *Options `json:"options,omitempty"` // the options the upload gave; absent: the defaults
	// Files are the MP3s of a done job split by chapters, in order; absent otherwise.
	Files      []File     `json:"files,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// ExpiresAt is when the job's files are deleted (its MP3s, and its video if still kept);
	// absent before the job is final and when the server keeps files for ever. Expired says
	// they were: downloads then answer 410.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Expired   bool       `json:"expired,omitempty"`
}

// File is one MP3 of a job split by chapters. Start and End are the chapter's span in the
// video, in seconds.
type File struct {
	FID   string  `json:"fid"` // GET /v1/files/{fid} downloads it
	Title string  `json:"title"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Size  int64   `json:"size"`
}

// Final reports whether the job's state never changes again (done or failed).
func (j *Job) Final() bool { return j.State == JobDone || j.State == JobFailed }

// JobList is the answer of GET /v1/jobs: the caller's newest jobs, newest first. Jobs is
// never null.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// Error is the error of an error answer.
type Error struct {
	Code    string `json:"code"`    // "invalid", "not_found", ... (docs/api.md lists them)
	Message string `json:"message"` // for people
}

// ErrorBody is every error answer: {"error":{"code":"not_found","message":"job not found"}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// The events of GET /v1/jobs/{id}/events and GET /v1/events (text/event-stream).
const (
	// EventState carries a Job: the job as GET /v1/jobs/{id} returns it, sent when its state
	// changes (and first on connecting).
	EventState = "state"
	// EventProgress carries a Progress: a converting job's progress rose.
	EventProgress = "progress"
)

// Progress is the data of a progress event.
type Progress struct {
	ID       string `json:"id"` // the job's id
	Progress int    `json:"progress"`
}
