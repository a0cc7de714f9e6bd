// Package jobs is v2m's upload and job workflow: how a user's upload becomes a queued job, how
// a job's message is published and published again, and who may see what. It is the one place
// that decides it. The HTTP handlers (the /v1 routes and the tutorial's) and the sweeper call a
// Service; they only translate between it and their callers.
//
// Policy, in one place:
//   - Ownership: a user sees only their own uploads, jobs and MP3s; anything else is
//     ENOTFOUND, the same answer as for something that does not exist.
//   - A job takes its video's id, so completing an upload twice (an answer lost on the way)
//     gives the same job.
//   - A job is recorded as queued before its message is published. A failed publish is
//     logged, not returned: the job stays queued and the sweeper publishes it again. Nothing
//     accepted is lost while the queue is down.
package jobs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/metrics"
	"github.com/v2m/v2m/pkg/server/tracing"
	"github.com/v2m/v2m/pkg/wire"
)

// Defaults of Service's limits.
const (
	DefaultPartSize      = 8 << 20 // 8 MiB
	DefaultMaxUploadSize = 4 << 30 // 4 GiB
	// DefaultPublishWait is how long completing an upload waits for its job's publish: a
	// broker that is up confirms in milliseconds, and one that is down must not hold the
	// answer (the job is stored as queued already).
	DefaultPublishWait = 2 * time.Second
)

// backgroundPublish bounds a publish that goes on after its request was answered.
const backgroundPublish = 30 * time.Second

// Service runs the workflow over the stores and the queue. Its zero limits take the defaults.
type Service struct {
	Jobs    server.JobStore
	Uploads server.UploadStore
	Blobs   server.BlobStore
	Queue   server.Queue
	// Updates, when set, hears of the jobs this service queues (and queues again), for live
	// event streams.
	Updates server.JobUpdates

	PartSize      int64 // DefaultPartSize when zero
	MaxUploadSize int64 // DefaultMaxUploadSize when zero
	// PublishWait bounds how long queueing a job waits for its message's publish
	// (DefaultPublishWait when zero). A publish still under way then goes on in the
	// background, up to the queue's own timeout; if it fails the sweeper publishes the job.
	PublishWait time.Duration

	// Quotas are the per-user limits of users for whom Limits holds none; Limits, when set,
	// holds what an administrator set per user.
	Quotas Quotas
	Limits server.LimitStore
	// Retention says how long videos and MP3s are kept.
	Retention Retention

	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Now     func() time.Time // time.Now when nil
	// TracerProvider, when set, records the spans of republished jobs (a trace of their own,
	// named by v2m.job_id). Uploads and new jobs are named on the request's span.
	TracerProvider trace.TracerProvider

	admission sync.Mutex // serialises quota checks with what they admit
}

// PartLimit returns the part size of new uploads.
func (s *Service) PartLimit() int64 {
	if s.PartSize <= 0 {
		return DefaultPartSize
	}
	return s.PartSize
}

// SizeLimit returns the largest video accepted.
func (s *Service) SizeLimit() int64 {
	if s.MaxUploadSize <= 0 {
		return DefaultMaxUploadSize
	}
	return s.MaxUploadSize
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// NewUpload is what a client says about a file it is about to upload.
type NewUpload struct {
	Filename string
	Size     int64
	SHA256   string // hex of the whole file, optional
	// Options are the MP3 options the client asked for; nil gives the defaults.
	Options *wire.Options
	// SourceSize is the size of the user's own file when the upload is a smaller file made
	// from it; 0 when the upload is the whole file.
	SourceSize int64
}

// StartUpload records a new chunked upload of owner's, with the options its job will have. A
// bad name, size, checksum or option gives EINVALID, a file over the limit ETOOLARGE: a job
// with bad options is refused here, before anything is stored, and never reaches the queue.
func (s *Service) StartUpload(ctx context.Context, owner string, nu NewUpload) (*server.Upload, error) {
	name, err := CleanFilename(nu.Filename)
	if err != nil {
		return nil, err
	}
	if nu.Size < 0 {
		return nil, server.Errorf(server.EINVALID, `field "size" must be a whole number of bytes`)
	}
	if nu.Size > s.SizeLimit() {
		return nil, server.Errorf(server.ETOOLARGE, "the file is %d bytes; the limit is %d", nu.Size, s.SizeLimit())
	}
	sum := strings.ToLower(nu.SHA256)
	if b, err := hex.DecodeString(sum); sum != "" && (err != nil || len(b) != 32) {
		return nil, server.Errorf(server.EINVALID, `field "sha256" must be 64 hex digits`)
	}
	if nu.SourceSize != 0 && nu.SourceSize <= nu.Size {
		return nil, server.Errorf(server.EINVALID, `field "source_size" must be larger than "size" (it is the size of the file the upload was made from)`)
	}
	opts, err := ParseOptions(nu.Options)
	if err != nil {
		return nil, err
	}
	u := &server.Upload{ID: server.NewID(), Owner: owner, Filename: name, Size: nu.Size, SourceSize: nu.SourceSize,
		PartSize: s.PartLimit(), SHA256: sum, Options: opts, CreatedAt: s.now()}
	s.admission.Lock()
	defer s.admission.Unlock()
	if err := s.admit(ctx, owner, nu.Size, true, false); err != nil {
		return nil, err
	}
	if err := s.Uploads.CreateUpload(ctx, u); err != nil {
		return nil, fmt.Errorf("create upload: %w", err)
	}
	// The upload's id becomes its job's: every request of the upload is found by v2m.job_id.
	trace.SpanFromContext(ctx).SetAttributes(tracing.JobID.String(u.ID))
	return u, nil
}

// Upload returns owner's upload id; anyone else's, or none, is ENOTFOUND.
func (s *Service) Upload(ctx context.Context, owner, id string) (*server.Upload, error) {
	notFound := server.Errorf(server.ENOTFOUND, "upload %s not found", id)
	if !server.ValidID(id) {
		return nil, notFound
	}
	u, err := s.Uploads.Upload(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.Owner != owner {
		return nil, notFound
	}
	return u, nil
}

// Received returns the numbers of u's parts that are stored, ascending.
func (s *Service) Received(ctx context.Context, u *server.Upload) ([]int, error) {
	return s.Blobs.Parts(ctx, u)
}

// CheckPart reports whether n is a part of u that may be length bytes long (length < 0: not
// known yet); anything else is EINVALID.
func CheckPart(u *server.Upload, n int, length int64) error {
	want := u.PartLen(n)
	if want < 0 {
		return server.Errorf(server.EINVALID, "part number must be 0 to %d", u.Parts()-1)
	}
	if length >= 0 && length != want {
		return server.Errorf(server.EINVALID, "part %d must be %d bytes, the request has %d", n, want, length)
	}
	return nil
}

// WritePart stores part n of u from r (which must yield exactly the part's length).
func (s *Service) WritePart(ctx context.Context, u *server.Upload, n int, r io.Reader) error {
	if err := CheckPart(u, n, -1); err != nil {
		return err
	}
	if err := s.Blobs.WritePart(ctx, u, n, r); err != nil {
		return err
	}
	s.Metrics.BytesIn(u.PartLen(n))
	return nil
}

// Complete turns owner's upload id into a queued job, with the upload's options, and returns
// it. Completing again, after
// the answer to the first completion was lost, returns the same job. Missing parts give
// ECONFLICT; a file that does not match its checksum gives EINVALID, and the upload is gone.
func (s *Service) Complete(ctx context.Context, owner, id string) (*server.Job, error) {
	if j, err := s.Job(ctx, owner, id); err == nil {
		return j, nil // completed before
	}
	u, err := s.Upload(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	s.admission.Lock()
	defer s.admission.Unlock()
	if err := s.admit(ctx, owner, 0, false, true); err != nil {
		return nil, err
	}
	if err := s.Blobs.CompleteUpload(ctx, u); err != nil {
		if server.IsCode(err, server.EINVALID) { // checksum mismatch: the parts are gone
			if derr := s.Uploads.DeleteUpload(context.WithoutCancel(ctx), u.ID); derr != nil {
				s.log().WarnContext(ctx, "delete upload with a bad checksum", "upload_id", u.ID, "err", derr)
			}
		}
		return nil, err
	}
	j, err := s.enqueue(ctx, &server.Job{ID: u.ID, Owner: u.Owner, Filename: u.Filename, Size: u.Size,
		SourceSize: u.SourceSize, Options: u.Options})
	if err != nil {
		return nil, err
	}
	// The job exists: the upload record has served. A failure here leaves it to the janitor.
	if err := s.Uploads.DeleteUpload(ctx, u.ID); err != nil {
		s.log().WarnContext(ctx, "delete completed upload", "upload_id", u.ID, "err", err)
	}
	return s.withExpiry(j), nil
}

// Abort discards owner's upload id and its parts.
func (s *Service) Abort(ctx context.Context, owner, id string) error {
	u, err := s.Upload(ctx, owner, id)
	if err != nil {
		return err
	}
	if err := s.Blobs.AbortUpload(ctx, u); err != nil {
		return fmt.Errorf("discard parts: %w", err)
	}
	if err := s.Uploads.DeleteUpload(ctx, u.ID); err != nil {
		return fmt.Errorf("delete upload: %w", err)
	}
	return nil
}

// Submit stores a whole video read from r, in one go, and queues its job: the tutorial's
// upload, which has no options: its job makes the default MP3. The store makes the video
// visible only once r has ended cleanly, so a reader that fails leaves nothing. A video over
// the limit gives ETOOLARGE.
func (s *Service) Submit(ctx context.Context, owner, filename string, r io.Reader) (*server.Job, error) {
	name, err := CleanFilename(filename)
	if err != nil {
		return nil, err
	}
	fid := server.NewID()
	room, err := s.room(ctx, owner)
	if err != nil {
		return nil, err
	}
	limit := s.SizeLimit()
	limited := &limitedReader{r: r, left: min(limit, room)}
	size, err := s.Blobs.Put(ctx, server.BucketVideos, fid, name, limited)
	if err != nil {
		if limited.over && room < limit {
			return nil, server.Errorf(server.ETOOLARGE, "the file is larger than the %s left of your storage quota: delete jobs you no longer need (v2m rm)", bytesText(room))
		}
		if limited.over {
			return nil, server.Errorf(server.ETOOLARGE, "the file is larger than the limit of %d bytes", limit)
		}
		return nil, err
	}
	s.Metrics.BytesIn(size)
	j, err := s.enqueue(ctx, &server.Job{ID: fid, Owner: owner, Filename: name, Size: size})
	if err != nil {
		// No job refers to the video: remove it now rather than leave it to the janitor.
		if derr := s.Blobs.Delete(context.WithoutCancel(ctx), server.BucketVideos, fid); derr != nil {
			s.log().WarnContext(ctx, "remove the video of a failed upload", "fid", fid, "err", derr)
		}
		return nil, err
	}
	return j, nil
}

// errTooLarge ends a limitedReader's input.
var errTooLarge = errors.New("the file is over the upload limit")

// limitedReader fails once more than left bytes came, so that the store discards the file.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.over {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		l.over = true
		return 0, errTooLarge
	}
	l.left -= int64(n)
	return n, err
}

// enqueue records j as a queued job of the video j.ID (the job takes the video's id), with
// a new MP3FID, and publishes its message. An existing job of that id is returned as it is.
// A failed publish is logged, not returned: the job stays queued, and the sweeper publishes
// it again.
func (s *Service) enqueue(ctx context.Context, j *server.Job) (*server.Job, error) {
	trace.SpanFromContext(ctx).SetAttributes(tracing.JobID.String(j.ID))
	now := s.now()
	j.State, j.VideoFID, j.MP3FID, j.CreatedAt, j.UpdatedAt = server.JobQueued, j.ID, server.NewID(), now, now
	size := j.Size
	if err := s.Jobs.CreateJob(ctx, j); err != nil {
		if !server.IsCode(err, server.ECONFLICT) {
			return nil, fmt.Errorf("create job: %w", err)
		}
		return s.Jobs.Job(ctx, j.ID)
	}
	s.Metrics.Job(string(server.JobQueued))
	s.queued(ctx, j)
	s.publishBounded(ctx, j)
	s.log().InfoContext(ctx, "job queued", "job_id", j.ID, "size", size)
	return j, nil
}

// publishBounded publishes j's message, waiting for it at most PublishWait; a failure is
// logged, and the sweeper publishes the job again.
func (s *Service) publishBounded(ctx context.Context, j *server.Job) {
	wait := s.PublishWait
	if wait <= 0 {
		wait = DefaultPublishWait
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundPublish)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- s.publish(ctx, j)
	}()
	logFailure := func(err error) {
		if err != nil {
			s.log().Warn("publish failed; the sweeper will publish the job again", "job_id", j.ID, "err", err)
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		logFailure(err)
	case <-t.C:
		s.log().Warn("the broker has not confirmed the job's message yet; answering with the job queued",
			"job_id", j.ID, "waited", wait)
		go func() { logFailure(<-done) }()
	}
}

// Republish hands a job whose message may be lost back to the queue: a queued job waiting
// too long, or a converting job whose worker stopped sending heartbeats (it is requeued under
// that worker's claim and without refund, so that a job that kills its workers runs out of
// attempts). Both changes come before the publish: once the message is out a worker may claim
// the job at any moment, and nothing may write the job under it. A job that changed meanwhile
// (claimed, finished, deleted) is left alone and reported as not republished.
func (s *Service) Republish(ctx context.Context, j *server.Job) (_ bool, err error) {
	ctx, span := tracing.Tracer(s.TracerProvider).Start(ctx, "republish job", trace.WithAttributes(tracing.JobID.String(j.ID),
		attribute.String("v2m.job.state", string(j.State))))
	defer func() { tracing.Fail(span, err); span.End() }()
	switch j.State {
	case server.JobConverting:
		err = s.Jobs.RequeueJob(ctx, j.ID, j.Attempts, false)
	case server.JobQueued:
		// Not again on the next pass: a queued job may just be waiting its turn.
		err = s.Jobs.TouchJob(ctx, j.ID, server.JobQueued)
	default:
		return false, nil
	}
	if server.IsCode(err, server.ENOTFOUND) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("update job %s: %w", j.ID, err)
	}
	if j.State == server.JobConverting {
		s.queued(ctx, j)
	}
	if err := s.publish(ctx, j); err != nil {
		return false, fmt.Errorf("publish job %s: %w", j.ID, err)
	}
	return true, nil
}

// queued announces on Updates that j is queued (anew); a failure is only logged.
func (s *Service) queued(ctx context.Context, j *server.Job) {
	if s.Updates == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	u := server.JobUpdate{Kind: server.UpdateState, JobID: j.ID, Owner: j.Owner, State: server.JobQueued, At: s.now()}
	if err := s.Updates.Publish(ctx, u); err != nil {
		s.log().DebugContext(ctx, "job update not published", "job_id", j.ID, "err", err)
	}
}

func (s *Service) publish(ctx context.Context, j *server.Job) error {
	body, err := json.Marshal(server.VideoMessage{JobID: j.ID, VideoFID: j.VideoFID, Username: j.Owner})
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	return s.Queue.Publish(ctx, server.TopicVideo, body)
}

// Job returns owner's job id; anyone else's, or none, is ENOTFOUND.
func (s *Service) Job(ctx context.Context, owner, id string) (*server.Job, error) {
	notFound := server.Errorf(server.ENOTFOUND, "job %s not found", id)
	if !server.ValidID(id) {
		return nil, notFound
	}
	j, err := s.Jobs.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Owner != owner {
		return nil, notFound
	}
	return s.withExpiry(j), nil
}

// ListJobs returns owner's newest jobs, at most limit of them.
func (s *Service) ListJobs(ctx context.Context, owner string, limit int) ([]*server.Job, error) {
	list, err := s.Jobs.ListJobs(ctx, owner, limit)
	for _, j := range list {
		s.withExpiry(j)
	}
	return list, err
}

// CleanFilename keeps the base name of what a client sent, as valid UTF-8 without control
// characters, at most 255 bytes; anything else is EINVALID.
func CleanFilename(name string) (string, error) {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(strings.TrimSpace(name))
	if name == "." || name == "/" || name == "" || name == ".." {
		return "", server.Errorf(server.EINVALID, "filename is required")
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", server.Errorf(server.EINVALID, "filename has invalid characters")
	}
	if len(name) > 255 {
		return "", server.Errorf(server.EINVALID, "filename longer than 255 bytes")
	}
	return name, nil
}
