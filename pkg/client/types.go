package client

import "github.com/v2m/v2m/pkg/wire"

// The API's JSON bodies, as the server sends them (package wire holds the one definition).
type (
	// User is an account, as returned by POST /v1/users.
	User = wire.User
	// Token is a bearer token, as returned by POST /v1/tokens.
	Token = wire.Token
	// Me describes the caller's token, as returned by GET /v1/me.
	Me = wire.Me
	// Job is one conversion, as returned by the /v1/jobs routes and
	// POST /v1/uploads/{id}/complete; its Final method reports whether it is done or failed.
	Job = wire.Job
	// UploadInfo is a chunked upload in progress, as returned by the /v1/uploads routes; its
	// PartLen method gives the length of one part.
	UploadInfo = wire.Upload
	// JobOptions are a job's MP3 options, given to Upload and shown in Job.Options; their
	// Check method validates them as the server does.
	JobOptions = wire.Options
	// Usage is what the caller stores and holds, with its limits, in Me.
	Usage = wire.Usage
	// Limits are a user's own limits, as administrators read and set them.
	Limits = wire.Limits
)

// Job states.
const (
	JobQueued     = wire.JobQueued
	JobConverting = wire.JobConverting
	JobDone       = wire.JobDone
	JobFailed     = wire.JobFailed
)
