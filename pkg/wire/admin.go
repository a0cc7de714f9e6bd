package wire

import "time"

// AdminJob is one job as administrators see it: a Job with its owner and the conversions it
// started.
type AdminJob struct {
	Job
	Owner    string `json:"owner"`
	Attempts int    `json:"attempts"`
}

// AdminJobList is the answer of GET /v1/admin/jobs: everyone's jobs, newest first. Jobs is
// never null.
type AdminJobList struct {
	Jobs []AdminJob `json:"jobs"`
}

// DeadLetter is a message that failed for good, as GET /v1/admin/dead-letters lists it.
// Reason is the handler's last error; JobState and JobError are the job's now (absent when
// the letter names no job, or its job is gone).
type DeadLetter struct {
	ID       string    `json:"id"`
	Topic    string    `json:"topic"` // "video" (a conversion) or "mp3" (a notification)
	JobID    string    `json:"job_id"`
	Owner    string    `json:"owner"`
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	DeadAt   time.Time `json:"dead_at"`
	JobState string    `json:"job_state,omitempty"`
	JobError string    `json:"job_error,omitempty"`
}

// DeadLetterList is the answer of GET /v1/admin/dead-letters, oldest first per topic.
// Letters is never null.
type DeadLetterList struct {
	Letters []DeadLetter `json:"letters"`
}

// LetterIDs is the body of POST /v1/admin/dead-letters/replay and of
// DELETE /v1/admin/dead-letters: some letters by id, or all of them.
type LetterIDs struct {
	IDs []string `json:"ids,omitempty"`
	All bool     `json:"all,omitempty"`
}

// ReplayResult is the answer of POST /v1/admin/dead-letters/replay. Replayed and Failed are
// never null.
type ReplayResult struct {
	Replayed []string        `json:"replayed"`
	Failed   []ReplayFailure `json:"failed"`
}

// ReplayFailure is a letter that could not be replayed, and why. It stays a dead letter.
type ReplayFailure struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// PurgeResult is the answer of DELETE /v1/admin/dead-letters.
type PurgeResult struct {
	Purged int `json:"purged"`
}
