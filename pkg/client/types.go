package client

import "time"

// User is an account, as returned by POST /v1/users.
type User struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is a bearer token, as returned by POST /v1/tokens.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Me describes the caller's token, as returned by GET /v1/me.
type Me struct {
	Email     string    `json:"email"`
	Issuer    string    `json:"issuer"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Job states.
const (
	JobQueued     = "queued"
	JobConverting = "converting"
	JobDone       = "done"
	JobFailed     = "failed"
)

// Job is one conversion, as returned by the /v1/jobs routes and POST /v1/uploads/{id}/complete.
type Job struct {
	ID         string     `json:"id"`
	State      string     `json:"state"`
	Progress   int        `json:"progress"`
	Error      string     `json:"error"`
	Filename   string     `json:"filename"`
	Size       int64      `json:"size"`
	MP3FID     string     `json:"mp3_fid"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Final reports whether the job's state never changes again (done or failed).
func (j *Job) Final() bool { return j.State == JobDone || j.State == JobFailed }

// UploadInfo is a chunked upload in progress, as returned by the /v1/uploads routes.
type UploadInfo struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	PartSize int64  `json:"part_size"`
	Parts    int    `json:"parts"`
	Received []int  `json:"received"`
}

// PartLen returns the length of part n, or -1 when n is out of range.
func (u *UploadInfo) PartLen(n int) int64 {
	if n < 0 || n >= u.Parts {
		return -1
	}
	if n == u.Parts-1 {
		return u.Size - int64(n)*u.PartSize
	}
	return u.PartSize
}
