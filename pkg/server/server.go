// Package server is v2m's domain: the types every service shares and the small interfaces
// that storage, queue, mail and conversion adapters implement. It imports no adapter; the
// sub-packages implement these interfaces (sqlite, disk, mysql, mongo, rabbitmq, mail, ffmpeg)
// or use them (api, worker), and only pkg/server/daemon wires them together.
//
// Conventions for every interface here: a missing record returns an *Error with code
// ENOTFOUND, a duplicate or a wrong state ECONFLICT, and a backend that cannot be reached an
// error that is neither (treated as transient by workers).
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// User is an account. Email is the login and the JWT subject.
type User struct {
	ID           int64
	Email        string
	PasswordHash []byte
	CreatedAt    time.Time
	// Role is RoleUser or RoleAdmin; only an operator grants RoleAdmin (v2md admin grant).
	Role string
	// Disabled users cannot log in, and their tokens are refused.
	Disabled bool
}

// UserStore keeps users. Emails are compared case-insensitively everywhere.
type UserStore interface {
	// CreateUser stores a new user and returns it with a new ID (> 0) and CreatedAt set; the
	// email is kept as given. A user with the same email in any letter case gives ECONFLICT
	// and leaves that user unchanged; of concurrent creations of one email, exactly one
	// succeeds.
	CreateUser(ctx context.Context, email string, passwordHash []byte) (*User, error)
	// UserByEmail returns the user whose email matches in any letter case, or ENOTFOUND.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// SetRole sets the role (RoleUser or RoleAdmin, else EINVALID) of the user whose email
	// matches in any letter case and returns the user, or ENOTFOUND. A new user has RoleUser.
	SetRole(ctx context.Context, email, role string) (*User, error)
	// SetDisabled disables or enables the user whose email matches in any letter case and
	// returns the user, or ENOTFOUND. A new user is enabled.
	SetDisabled(ctx context.Context, email string, disabled bool) (*User, error)
	// ListUsers returns up to limit (> 0) users whose ID is above after (0 for the start),
	// ascending by ID, for paging through every user.
	ListUsers(ctx context.Context, after int64, limit int) ([]*User, error)
	// UserStates returns the email of every user who is disabled or an administrator, with
	// Role and Disabled set (no password hashes): what gateways must know about users.
	UserStates(ctx context.Context) ([]*User, error)
}

// JobState is where a job is in its life.
type JobState string

// The job states. queued → converting → done | failed; converting → queued on a graceful
// shutdown or a transient error.
const (
	JobQueued     JobState = "queued"
	JobConverting JobState = "converting"
	JobDone       JobState = "done"
	JobFailed     JobState = "failed"
)

// Final reports whether the state never changes again.
func (s JobState) Final() bool { return s == JobDone || s == JobFailed }

// Job is one conversion of one uploaded video.
type Job struct {
	ID       string
	Owner    string // the owner's email
	State    JobState
	Progress int    // 0-100
	Error    string // why it failed, for the user
	Filename string // the uploaded file's name
	Size     int64  // the video's size in bytes: what was uploaded
	// SourceSize is the size of the user's own file when the client uploaded only its audio
	// (a smaller file made from it); 0 when the upload was the whole file.
	SourceSize int64
	VideoFID   string // the video in bucket "videos"; the same as ID (a job takes its video's fid)
	// MP3FID is chosen when the job is created, so that a redelivered job overwrites the
	// same MP3 instead of adding another. It is shown to users only once the job is done.
	MP3FID  string
	Options JobOptions // what MP3 to make, as the upload asked
	// Files are the MP3s of a done job that was split by chapters, in order; the file MP3FID
	// is then a zip of them. nil for a job of one MP3.
	Files      []JobFile
	Attempts   int // conversions started, counting the current one
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time // zero until done or failed
	// MP3Size is the size in bytes of the stored MP3 (the zip of a split job) once done.
	MP3Size int64
	// VideoDeleted is set once the video was deleted (retention), Expired once the job's MP3s
	// were deleted at the end of their time to live: the job stays, to say so.
	VideoDeleted bool
	Expired      bool
	// ExpiresAt is when the MP3s of a done job are deleted, as the service computes it from its
	// time to live (not stored); zero when they are kept for ever or the job is not final.
	ExpiresAt time.Time
}

// JobResult is what a finished conversion stored: the MP3's size and, for a job split by
// chapters, its files.
type JobResult struct {
	Size  int64
	Files []JobFile // nil for a job of one MP3
}

// Retained selects the final jobs a retention pass looks at (JobStore.RetainedJobs).
type Retained int

const (
	// RetainedVideos are done jobs whose video is not deleted yet.
	RetainedVideos Retained = iota + 1
	// RetainedFiles are final (done or failed) jobs that have not expired yet.
	RetainedFiles
)

// Usage is what one user holds: jobs not final yet, and bytes stored for their jobs (videos not
// deleted, plus MP3s of done jobs that have not expired).
type Usage struct {
	ActiveJobs  int
	StoredBytes int64
}

// JobStore keeps jobs. Every state change is a compare-and-set on the current state, so that
// two workers, or a worker and a sweeper, cannot both move the same job: of concurrent
// changes that each require the state the job was in, exactly one succeeds.
//
// Every method that names a job by id gives ENOTFOUND when there is none, the writes too: a
// worker whose job was deleted learns so from its next heartbeat. A write that requires a
// state gives ECONFLICT when the job is in another, and changes nothing, where its doc says
// so; the others (SetProgress, RequeueJob, TouchJob) leave such a job alone and return nil.
// "Now" is the store's clock; times are kept in UTC to the millisecond.
type JobStore interface {
	// CreateJob stores j as given. An existing ID gives ECONFLICT and leaves that job unchanged.
	CreateJob(ctx context.Context, j *Job) error
	// Job returns a job by id, or ENOTFOUND.
	Job(ctx context.Context, id string) (*Job, error)
	// JobByMP3 returns the job whose MP3FID is fid, or ENOTFOUND.
	JobByMP3(ctx context.Context, fid string) (*Job, error)
	// ListJobs returns owner's jobs and no one else's, newest CreatedAt first, at most limit
	// (> 0) of them; an owner without jobs gets an empty list.
	ListJobs(ctx context.Context, owner string, limit int) ([]*Job, error)
	// ClaimJob moves a queued job, or a converting job whose UpdatedAt is before staleBefore
	// (its worker stopped sending heartbeats), to converting; it counts an attempt, sets
	// progress to 0, sets UpdatedAt to now and returns the job. A done or failed job, or a
	// converting job updated at or after staleBefore (a live worker has it), gives ECONFLICT
	// with no change. Of concurrent claims of one job, exactly one wins and the others get
	// ECONFLICT. This is what makes a redelivered message harmless.
	ClaimJob(ctx context.Context, id string, staleBefore time.Time) (*Job, error)
	// SetProgress records progress of a converting job, clamped to 0-100, and sets its
	// UpdatedAt to now, even when pct is unchanged: workers call it as a heartbeat. Other
	// states are left alone.
	SetProgress(ctx context.Context, id string, pct int) error
	// FinishJob moves a converting job to done, provided its Attempts is still attempt (the
	// caller's claim): a worker whose job was taken over cannot finish it. It sets progress to
	// 100, clears Error, records res (MP3Size, Files), sets UpdatedAt and FinishedAt to now and
	// returns the job. Any other state or claim gives ECONFLICT with no change.
	FinishJob(ctx context.Context, id string, attempt int, res JobResult) (*Job, error)
	// FailJob moves a queued or converting job to failed with the reason, sets UpdatedAt and
	// FinishedAt to now (progress is kept) and returns the job. A final job gives ECONFLICT
	// with no change.
	FailJob(ctx context.Context, id, reason string) (*Job, error)
	// RequeueJob moves a converting job whose Attempts is attempt back to queued, with
	// progress 0 and UpdatedAt now; other states, and a job claimed again since, are left
	// alone. With refund, the claim is given back (Attempts goes down by one): a worker that
	// hands a job back in order, on shutdown or for a retry that its queue counts, does not
	// use up the job's attempts; a job found abandoned by a dead worker is requeued without
	// refund.
	RequeueJob(ctx context.Context, id string, attempt int, refund bool) error
	// TouchJob sets UpdatedAt to now, and nothing else, when the job is in state; other
	// states are left alone. Sweepers call it on the jobs they publish again, so that a job
	// waiting in a long queue is not published again on every pass.
	TouchJob(ctx context.Context, id string, state JobState) error
	// StaleJobs returns up to limit (> 0) jobs in the given state whose UpdatedAt is before
	// before (strictly), oldest UpdatedAt first, for sweepers that republish or recover them.
	StaleJobs(ctx context.Context, state JobState, before time.Time, limit int) ([]*Job, error)
	// DeleteJob removes the job's record, whatever its state; ENOTFOUND when there is none. Its
	// files are the caller's to delete.
	DeleteJob(ctx context.Context, id string) error
	// MarkRetention records that a final job's video was deleted (video) and that its MP3s
	// expired (expired); a flag once set stays set, and false leaves it as it is. A job that is
	// not final gives ECONFLICT with no change.
	MarkRetention(ctx context.Context, id string, video, expired bool) error
	// RetainedJobs returns up to limit (> 0) jobs of the kind what whose FinishedAt is before
	// before (strictly), oldest FinishedAt first, for the janitor that applies retention.
	RetainedJobs(ctx context.Context, what Retained, before time.Time, limit int) ([]*Job, error)
	// Usage returns what owner holds: jobs queued or converting, and the bytes of their videos
	// not deleted (Size) plus the MP3s of done jobs not expired (MP3Size). An owner without jobs
	// has zero usage.
	Usage(ctx context.Context, owner string) (Usage, error)
	// FindJobs returns the jobs of every owner that match f, newest CreatedAt first, at most
	// f.Limit (> 0) of them, for administrators.
	FindJobs(ctx context.Context, f JobFilter) ([]*Job, error)
	// RetryJob moves a failed job back to queued, to run again from the start: it clears
	// Error and FinishedAt, sets Progress and Attempts to 0 and UpdatedAt to now, and returns
	// the job (Files and everything else are kept). Any other state gives ECONFLICT with no
	// change; of concurrent retries of one job exactly one wins.
	RetryJob(ctx context.Context, id string) (*Job, error)
}

// JobFilter selects jobs of every owner for JobStore.FindJobs. Its zero fields match all.
type JobFilter struct {
	State JobState // only jobs in this state
	Owner string   // only this owner's jobs; the email matches in any letter case
	Since time.Time
	Limit int // at most this many (> 0)
}

// Upload is a chunked upload in progress. Its parts all have PartSize bytes except the last.
// Its ID becomes the video's fid once the upload completes.
type Upload struct {
	ID       string
	Owner    string
	Filename string
	Size     int64
	PartSize int64
	SHA256   string // lowercase hex of the whole file, or "" when the client gave none
	// SourceSize is the size of the user's own file when the client uploads a smaller file
	// made from it (its audio); 0 when the upload is the whole file.
	SourceSize int64
	Options    JobOptions // the job's options, given when the upload starts
	CreatedAt  time.Time
}

// Parts returns how many parts the upload has. An empty file has one empty part.
func (u *Upload) Parts() int {
	if u.Size == 0 || u.PartSize <= 0 {
		return 1
	}
	return int((u.Size + u.PartSize - 1) / u.PartSize)
}

// PartLen returns the length in bytes of part n (0-based), or -1 when n is out of range.
func (u *Upload) PartLen(n int) int64 {
	if n < 0 || n >= u.Parts() {
		return -1
	}
	if n == u.Parts()-1 {
		return u.Size - int64(n)*u.PartSize
	}
	return u.PartSize
}

// UploadStore keeps the records of uploads in progress. Times are kept in UTC to the
// millisecond.
type UploadStore interface {
	// CreateUpload stores u as given. An existing ID gives ECONFLICT and leaves that upload
	// unchanged.
	CreateUpload(ctx context.Context, u *Upload) error
	// Upload returns an upload by id, or ENOTFOUND.
	Upload(ctx context.Context, id string) (*Upload, error)
	// DeleteUpload removes the record; a missing one, or one deleted already, is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// StaleUploads returns up to limit (> 0) uploads whose CreatedAt is before before
	// (strictly), oldest first, for the janitor that discards abandoned uploads.
	StaleUploads(ctx context.Context, before time.Time, limit int) ([]*Upload, error)
	// OpenUploads returns how many uploads owner has open and the sum of their sizes.
	OpenUploads(ctx context.Context, owner string) (count int, bytes int64, err error)
}

// Limits are one user's quotas. A nil field takes the server's default; a value of 0 (or less)
// means no limit.
type Limits struct {
	QuotaBytes     *int64         `json:"quota_bytes,omitempty"`      // videos + MP3s stored
	MaxOpenUploads *int           `json:"max_open_uploads,omitempty"` // uploads started, not completed
	MaxActiveJobs  *int           `json:"max_active_jobs,omitempty"`  // jobs queued or converting
	MaxDuration    *time.Duration `json:"max_duration,omitempty"`     // of the audio to convert
}

// LimitStore keeps the limits an administrator set for users, by owner (email, compared
// case-insensitively).
type LimitStore interface {
	// UserLimits returns owner's limits; a user with none set gets the zero Limits (all
	// defaults), not an error.
	UserLimits(ctx context.Context, owner string) (Limits, error)
	// SetUserLimits replaces owner's limits with l.
	SetUserLimits(ctx context.Context, owner string, l Limits) error
}

// Lease elects one holder at a time for a task across replicas, such as the janitor.
type Lease interface {
	// Acquire takes or renews the lease name for holder until now+ttl and reports whether
	// holder has it: false while another holder's lease has not expired.
	Acquire(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

// Buckets of the BlobStore.
const (
	BucketVideos = "videos"
	BucketMP3s   = "mp3s"
)

// Blob is a stored file opened for reading. Seek lets HTTP serve Range requests.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// BlobStore keeps files in buckets, and assembles uploads from parts written in any order
// and in parallel, so that a store like GridFS can write each part straight into place.
//
// What every implementation guarantees about parts:
//
//   - A part is counted (listed by Parts) only once a writer has stored all of its bytes and
//     r ended without an error. r may fail the read that yields the last bytes (the API does so
//     when the part's CRC-32C does not match): the part is then not counted.
//   - A counted part holds exactly the bytes of one WritePart call that succeeded, never a mix
//     of two writers, however many write the same part at once; which one is not specified.
//   - Writing a counted part again replaces it atomically: a rewrite that fails leaves the
//     earlier part counted and intact.
//   - A file becomes visible in a bucket (Open, ListBlobs) only whole: CompleteUpload and Put
//     publish it in one step at their end, and a Put whose reader fails leaves nothing behind.
type BlobStore interface {
	// WritePart stores part n of u from r, which must yield exactly u.PartLen(n) bytes
	// (otherwise EINVALID, and the part is not counted). Writing a part again replaces it;
	// writing a part of an upload that was completed gives ECONFLICT.
	WritePart(ctx context.Context, u *Upload, n int, r io.Reader) error
	// Parts returns the numbers of u's parts that are completely stored, ascending.
	Parts(ctx context.Context, u *Upload) ([]int, error)
	// CompleteUpload turns u's parts into the file u.ID in bucket "videos". Missing parts give
	// ECONFLICT. When u.SHA256 is set and does not match, EINVALID, and the parts are discarded.
	CompleteUpload(ctx context.Context, u *Upload) error
	// AbortUpload discards u's parts; no parts is not an error.
	AbortUpload(ctx context.Context, u *Upload) error
	// Put stores r as file fid in bucket, replacing a file of that fid, and returns its size.
	// The file appears only once r has reported io.EOF; when r fails, Put removes what it wrote
	// and returns an error that wraps r's.
	Put(ctx context.Context, bucket, fid, filename string, r io.Reader) (int64, error)
	// Open opens file fid in bucket, or ENOTFOUND.
	Open(ctx context.Context, bucket, fid string) (Blob, error)
	// Delete removes file fid from bucket; a missing file is not an error.
	Delete(ctx context.Context, bucket, fid string) error
}

// BlobInfo describes one stored file, as ListBlobs returns it.
type BlobInfo struct {
	FID     string
	Size    int64
	ModTime time.Time // when its bytes were last written
}

// BlobLister is an optional capability of a BlobStore: listing the files of a bucket, for the
// janitor that removes files no job or upload refers to. Both stores implement it; the janitor
// asserts it and does without when a store lacks it.
type BlobLister interface {
	// ListBlobs returns up to limit files of bucket whose fid sorts after after ("" for the
	// start), in ascending fid order. Only whole, visible files are listed: no parts of
	// uploads in progress, no temporary files of a Put under way. Paging with the last fid of
	// one batch as the next after visits every file that exists for the whole walk once.
	ListBlobs(ctx context.Context, bucket, after string, limit int) ([]BlobInfo, error)
}

// LocalFiler is an optional capability of a BlobStore that keeps files on local disk: the
// converter then reads a video in place instead of copying it.
type LocalFiler interface {
	// LocalPath returns the path of file fid in bucket, or ENOTFOUND. The file must only be read.
	LocalPath(ctx context.Context, bucket, fid string) (string, error)
}

// Queue topics.
const (
	TopicVideo = "video" // a job to convert: VideoMessage
	TopicMP3   = "mp3"   // a job's outcome to announce: JobEvent
)

// Delivery is one message handed to a Handler.
type Delivery struct {
	Topic string
	Body  []byte
	// Attempt counts deliveries of this message, from 1. MaxAttempts is the queue's limit:
	// a handler error on the last attempt sends the message to the dead-letter queue.
	Attempt     int
	MaxAttempts int
}

// LastAttempt reports whether a failure now dead-letters the message.
func (d Delivery) LastAttempt() bool { return d.MaxAttempts > 0 && d.Attempt >= d.MaxAttempts }

// Handler processes one delivery. nil acknowledges it. An error marked Permanent sends it to
// the dead-letter queue at once; any other error retries it later with backoff, until
// MaxAttempts, then dead-letters it.
type Handler func(ctx context.Context, d Delivery) error

// Queue is a durable message queue with at-least-once delivery.
type Queue interface {
	// Publish stores body on topic durably before it returns (publisher confirms, a commit).
	// A message published before anyone consumes the topic waits for its consumer.
	Publish(ctx context.Context, topic string, body []byte) error
	// Consume runs h on topic's messages, and only topic's, up to concurrency at once, until
	// ctx is done; then it stops taking new messages, waits for the running handlers, and
	// returns nil, also when it was idle. Each delivery carries its Attempt (1 at first, one
	// more on each retry) and the queue's MaxAttempts. A handler error retries the message
	// later; one on the last attempt, or one marked Permanent on any attempt, dead-letters it
	// at once. A handler that returns ctx's error after ctx ended hands its message back
	// without using up an attempt: it is delivered again later with the same Attempt.
	Consume(ctx context.Context, topic string, concurrency int, h Handler) error
}

// DeadLetter is a message that failed for good: it waits, out of its queue, for an
// administrator to replay or purge it.
type DeadLetter struct {
	ID       string // unique among the queue's dead letters
	Topic    string
	JobID    string // the job its body names; "" when the body names none
	Owner    string // the job's owner as the body names it
	Reason   string // the handler's last error
	Attempts int    // deliveries it had
	At       time.Time
	Body     []byte
}

// DeadLetters is an optional capability of a Queue: seeing and settling its dead letters.
// Both queues implement it; callers assert it.
type DeadLetters interface {
	// DeadLetters returns up to limit (> 0) dead letters of topic ("" for every topic),
	// oldest first within a topic. Listing removes nothing and changes no letter.
	DeadLetters(ctx context.Context, topic string, limit int) ([]DeadLetter, error)
	// Replay publishes dead letter id of topic on topic again, as a first attempt, and only
	// then removes it from the dead letters: a replay that fails half way leaves the letter
	// (possibly besides its copy), never neither. A letter that is not there gives ENOTFOUND.
	Replay(ctx context.Context, topic, id string) error
	// Purge removes the dead letters of topic named by ids, or every one of topic when ids is
	// empty, and returns how many it removed; ids that are not there are skipped.
	Purge(ctx context.Context, topic string, ids []string) (int, error)
}

// LetterOf fills in what a dead letter's body says about its job: the job id and owner of a
// VideoMessage or a JobEvent, which both carry them.
func LetterOf(l DeadLetter) DeadLetter {
	var m struct {
		JobID    string `json:"job_id"`
		Username string `json:"username"`
	}
	if json.Unmarshal(l.Body, &m) == nil && ValidID(m.JobID) {
		l.JobID, l.Owner = m.JobID, m.Username
	}
	return l
}

// VideoMessage asks for a job's conversion. The tutorial's field names are kept.
type VideoMessage struct {
	JobID    string `json:"job_id"`
	VideoFID string `json:"video_fid"`
	Username string `json:"username"`
}

// JobEvent announces a job's outcome on TopicMP3.
type JobEvent struct {
	JobID    string   `json:"job_id"`
	State    JobState `json:"state"`
	Username string   `json:"username"`
	Filename string   `json:"filename"`
	VideoFID string   `json:"video_fid"`
	MP3FID   string   `json:"mp3_fid,omitempty"`
	Error    string   `json:"error,omitempty"`
	// FinishedAt is when the job became final: the mail says until when its MP3 is kept.
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// EventFor returns the event that announces j's current (final) state.
func EventFor(j *Job) JobEvent {
	e := JobEvent{JobID: j.ID, State: j.State, Username: j.Owner, Filename: j.Filename, VideoFID: j.VideoFID, FinishedAt: j.FinishedAt}
	if j.State == JobDone {
		e.MP3FID = j.MP3FID
	}
	if j.State == JobFailed {
		e.Error = j.Error
	}
	return e
}

// DefaultQuality is the LAME VBR quality (-V) of a job that asks for none.
const DefaultQuality = 2

// JobOptions say what MP3 a job makes. The zero value is the default MP3: VBR at
// DefaultQuality, the source's default audio track, with its cover, as one file.
type JobOptions struct {
	Quality *int // LAME VBR -V, 0 (best) to 9; nil: DefaultQuality. Never set with Bitrate.
	Bitrate int  // constant bitrate in kbit/s, a valid MPEG-1 Layer III rate; 0: VBR
	// Start and End keep only that span of the audio; End 0 means to its end.
	Start, End time.Duration
	Loudness   float64 // EBU R128 target in LUFS (-30 to -5); 0: no normalisation
	Track      *int    // the audio stream to convert, counted among audio streams from 0; nil: the default one
	Language   string  // the audio stream in this ISO 639-2 language (e.g. "eng"); "": any
	Mono       bool    // downmix to one channel
	NoCover    bool    // no cover art in the MP3
	// SplitChapters makes one MP3 per chapter of the source.
	SplitChapters bool
}

// VBRQuality returns the LAME -V quality to use.
func (o JobOptions) VBRQuality() int {
	if o.Quality == nil {
		return DefaultQuality
	}
	return *o.Quality
}

// Equal reports whether o and p ask for the same MP3, comparing what Quality and Track point
// to (nil, the default, differs from a pointer to any value, also to the default's).
func (o JobOptions) Equal(p JobOptions) bool {
	same := func(a, b *int) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	if !same(o.Quality, p.Quality) || !same(o.Track, p.Track) {
		return false
	}
	o.Quality, o.Track, p.Quality, p.Track = nil, nil, nil, nil
	return o == p
}

// Conversion is what to make of one video: the job's options, and the title to give the MP3
// when the video has none (the uploaded file's name without its extension).
type Conversion struct {
	Options JobOptions
	Title   string
	// MaxDuration, when above 0, is the longest audio the converter accepts: a longer input
	// fails, Permanent with code ETOOLARGE, once probed and before any encoding.
	MaxDuration time.Duration
}

// Converter turns a video file into an MP3 file.
type Converter interface {
	// Convert reads the video at src (a seekable local file) and writes an MP3 to dst as conv
	// says, calling progress with 0-100 as it goes (progress is called on the goroutine that
	// reads ffmpeg's output, so it must return at once: no I/O in it). Input that is not a usable video (no
	// audio, not media, truncated, no such track) gives an error marked Permanent whose
	// message says why.
	Convert(ctx context.Context, src, dst string, conv Conversion, progress func(pct int)) error
}

// JobFile is one MP3 of a job split by chapters: the chapter's title and span in the video,
// and the MP3's size.
type JobFile struct {
	Title      string
	Start, End time.Duration
	Size       int64
}

// Splitter is an optional capability of a Converter: making one MP3 per chapter of a video.
type Splitter interface {
	// Split reads the video at src and writes to dst a zip (stored, not compressed) of one
	// MP3 per chapter, in chapter order, named by wire.TrackName, and returns them as JobFiles.
	// A video without chapters gives a Permanent EINVALID error that says so. Otherwise it
	// behaves as Converter.Convert.
	Split(ctx context.Context, src, dst string, conv Conversion, progress func(pct int)) ([]JobFile, error)
}

// FileFID is the fid of file n (0-based) of a split job whose MP3FID is mp3FID:
// "<mp3FID>-01" for the first.
func FileFID(mp3FID string, n int) string { return fmt.Sprintf("%s-%02d", mp3FID, n+1) }

// ParseFileFID splits a fid made by FileFID into the job's MP3FID and the file's number
// (0-based); ok is false for anything else.
func ParseFileFID(fid string) (mp3FID string, n int, ok bool) {
	id, num, found := strings.Cut(fid, "-")
	if !found || !ValidID(id) || len(num) < 2 || len(num) > 4 || strings.Trim(num, "0123456789") != "" {
		return "", 0, false
	}
	v, err := strconv.Atoi(num)
	if err != nil || v < 1 || FileFID(id, v-1) != fid {
		return "", 0, false
	}
	return id, v - 1, true
}

// Mail is one message to one recipient.
type Mail struct {
	To      string
	Subject string
	Body    string // plain text
}

// Mailer sends mail.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// SentLog remembers which notifications were sent, so that a redelivered event sends no
// second mail.
type SentLog interface {
	// Sent reports whether key itself was marked: false for a key never marked, whatever
	// other keys are.
	Sent(ctx context.Context, key string) (bool, error)
	// MarkSent records key; marking it again is not an error.
	MarkSent(ctx context.Context, key string) error
}

// Roles a user can have. Every user has RoleUser unless an operator granted RoleAdmin.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Claims are what a verified token says.
type Claims struct {
	ID        string    `json:"jti"` // unique per token: what a revocation names
	Subject   string    `json:"sub"`
	Issuer    string    `json:"iss"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
	// Role is RoleAdmin for an administrator; "" or RoleUser for everyone else.
	Role string `json:"role,omitempty"`
	// ReadOnly is set for a token that may only read (GET and HEAD).
	ReadOnly bool `json:"read_only,omitempty"`
	// Personal is set for a personal API token (PersonalTokenPrefix), whose ID is the token's.
	Personal bool `json:"personal,omitempty"`
}

// Admin reports whether the token belongs to an administrator.
func (c *Claims) Admin() bool { return c != nil && c.Role == RoleAdmin }

// Revocation is one revoked token: its jti and its expiry, after which the token is refused
// anyway and the revocation can be forgotten.
type Revocation struct {
	ID        string    `json:"jti"`
	ExpiresAt time.Time `json:"exp"`
}

// RevocationChecker tells whether a token was revoked.
type RevocationChecker interface {
	// Revoked reports whether the token with this jti was revoked. It may answer true or false
	// for a jti whose revocation has expired: such a token is refused for its expiry anyway.
	// An error means the answer is unknown; verifiers then refuse the token (fail closed).
	Revoked(ctx context.Context, jti string) (bool, error)
}

// RevocationStore keeps revoked tokens until they expire.
//
// Edge cases every implementation honours: revoking a jti twice is not an error (the later
// expiry is kept); revoking with an expiry already past stores nothing that Revocations lists;
// an empty jti gives EINVALID. Revoke also deletes the revocations that have expired, so the
// store holds no more than the tokens revoked within one token lifetime.
type RevocationStore interface {
	RevocationChecker
	// Revoke records jti as revoked until exp.
	Revoke(ctx context.Context, jti string, exp time.Time) error
	// Revocations returns the revocations whose expiry is after now, in no particular order.
	Revocations(ctx context.Context, now time.Time) ([]Revocation, error)
}

// TokenRevoker revokes the token a request was authenticated with: the raw token and what
// verifying it gave. Standalone and the auth service record it in their RevocationStore; the
// gateway forwards it to the auth service.
type TokenRevoker interface {
	RevokeToken(ctx context.Context, raw string, c *Claims) error
}

// TokenVerifier checks a bearer token: a bad, expired or forged one gives EUNAUTHORIZED.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*Claims, error)
}

// Accounts registers users and logs them in. The auth service implements it over a
// UserStore; the gateway implements it by calling the auth service.
type Accounts interface {
	// Register creates a user: EINVALID for a bad email or password, ECONFLICT for a taken email.
	Register(ctx context.Context, email, password string) (*User, error)
	// Login checks the password and returns a signed token: EUNAUTHORIZED on a mismatch.
	Login(ctx context.Context, email, password string) (token string, expires time.Time, err error)
}

type clientIPKey struct{}

// WithClientIP returns ctx carrying the IP address of the client a request came from, as the
// HTTP layer determined it (trusted proxies only). The gateway passes it on to the auth service.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the client IP address carried by ctx, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// UpdateKind says what a JobUpdate announces.
type UpdateKind string

// The kinds of JobUpdate.
const (
	UpdateState    UpdateKind = "state"    // the job moved to State (queued, converting, done, failed)
	UpdateProgress UpdateKind = "progress" // the converting job's progress is now Progress
)

// JobUpdate announces a change of a job, for live event streams. It is a hint, not the
// record: a state update is followed by reading the job from its JobStore.
type JobUpdate struct {
	Kind     UpdateKind `json:"kind"`
	JobID    string     `json:"job_id"`
	Owner    string     `json:"owner"`
	State    JobState   `json:"state"`
	Progress int        `json:"progress"`
	At       time.Time  `json:"at"` // when the publisher saw the change
}

// JobUpdates carries JobUpdates from the processes that change jobs (converters, the upload
// workflow, sweepers) to the processes that serve event streams. Delivery is best effort and
// transient: nothing is stored, an update published while no one subscribes is gone, and a
// subscriber that falls behind loses updates rather than slowing publishers down. Subscribers
// that must not miss a state change read the JobStore as well (on a tick, say).
type JobUpdates interface {
	// Publish hands u to every current subscriber. It does not wait for them; it fails only
	// when the bus cannot take the update at all (a broker that is down), and callers log
	// such errors and go on.
	Publish(ctx context.Context, u JobUpdate) error
	// Subscribe returns a channel of the updates published from now on, in the order each
	// publisher published them, until ctx ends; the channel is then closed. Every subscriber
	// receives every update it keeps up with.
	Subscribe(ctx context.Context) (<-chan JobUpdate, error)
}
