package mongo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/v2m/v2m/pkg/server"
)

// JobStore keeps jobs in the collection "jobs". Every state change is one FindOneAndUpdate
// whose filter names the states the change may start from.
type JobStore struct {
	c   *mongo.Collection
	now func() time.Time // the DB's clock
}

// clock returns the current time as stored: UTC, millisecond precision.
func (s *JobStore) clock() time.Time { return msUTC(s.now()) }

type jobDoc struct {
	ID         string      `bson:"_id"`
	Owner      string      `bson:"owner"`
	State      string      `bson:"state"`
	Progress   int         `bson:"progress"`
	Error      string      `bson:"error"`
	Filename   string      `bson:"filename"`
	Size       int64       `bson:"size"`
	SourceSize int64       `bson:"source_size,omitempty"`
	VideoFID   string      `bson:"video_fid"`
	MP3FID     string      `bson:"mp3_fid"`
	Options    *optionsDoc `bson:"options,omitempty"`
	Files      []fileDoc   `bson:"files,omitempty"`
	Attempts   int         `bson:"attempts"`
	CreatedAt  time.Time   `bson:"created_at"`
	UpdatedAt  time.Time   `bson:"updated_at"`
	FinishedAt *time.Time  `bson:"finished_at,omitempty"`
	MP3Size    int64       `bson:"mp3_size,omitempty"`
	// Retention: set once the video was deleted, once the MP3s expired.
	VideoDeleted bool `bson:"video_deleted,omitempty"`
	Expired      bool `bson:"expired,omitempty"`
}

func (d *jobDoc) job() *server.Job {
	j := &server.Job{
		ID:         d.ID,
		Owner:      d.Owner,
		State:      server.JobState(d.State),
		Progress:   d.Progress,
		Error:      d.Error,
		Filename:   d.Filename,
		Size:       d.Size,
		SourceSize: d.SourceSize,
		VideoFID:   d.VideoFID,
		MP3FID:     d.MP3FID,
		Options:    d.Options.jobOptions(),
		Files:      jobFiles(d.Files),
		Attempts:   d.Attempts,
		CreatedAt:  d.CreatedAt.UTC(),
		UpdatedAt:  d.UpdatedAt.UTC(),
		MP3Size:    d.MP3Size,

		VideoDeleted: d.VideoDeleted,
		Expired:      d.Expired,
	}
	if d.FinishedAt != nil {
		j.FinishedAt = d.FinishedAt.UTC()
	}
	return j
}

// fileDoc is a server.JobFile; times in milliseconds.
type fileDoc struct {
	Title   string `bson:"title"`
	StartMS int64  `bson:"start_ms"`
	EndMS   int64  `bson:"end_ms"`
	Size    int64  `bson:"size"`
}

// toFileDocs gives the files as stored; none is an empty array.
func toFileDocs(files []server.JobFile) []fileDoc {
	docs := make([]fileDoc, len(files))
	for i, f := range files {
		docs[i] = fileDoc{Title: f.Title, StartMS: f.Start.Milliseconds(), EndMS: f.End.Milliseconds(), Size: f.Size}
	}
	return docs
}

func jobFiles(docs []fileDoc) []server.JobFile {
	if len(docs) == 0 {
		return nil
	}
	files := make([]server.JobFile, len(docs))
	for i, d := range docs {
		files[i] = server.JobFile{Title: d.Title, Start: time.Duration(d.StartMS) * time.Millisecond,
			End: time.Duration(d.EndMS) * time.Millisecond, Size: d.Size}
	}
	return files
}

// CreateJob stores a new job. Zero CreatedAt and UpdatedAt are set to now, and j is updated
// with the times as stored. An existing ID gives ECONFLICT.
func (s *JobStore) CreateJob(ctx context.Context, j *server.Job) error {
	if j.ID == "" {
		return server.Errorf(server.EINVALID, "job has no id")
	}
	t := s.clock()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = t
	}
	if j.UpdatedAt.IsZero() {
		j.UpdatedAt = j.CreatedAt
	}
	if j.State == "" {
		j.State = server.JobQueued
	}
	j.CreatedAt, j.UpdatedAt = msUTC(j.CreatedAt), msUTC(j.UpdatedAt)
	d := jobDoc{
		ID: j.ID, Owner: j.Owner, State: string(j.State), Progress: j.Progress, Error: j.Error,
		Filename: j.Filename, Size: j.Size, SourceSize: j.SourceSize, VideoFID: j.VideoFID, MP3FID: j.MP3FID,
		Options: toOptionsDoc(j.Options), Files: toFileDocs(j.Files), Attempts: j.Attempts, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
		MP3Size: j.MP3Size, VideoDeleted: j.VideoDeleted, Expired: j.Expired,
	}
	if !j.FinishedAt.IsZero() {
		j.FinishedAt = msUTC(j.FinishedAt)
		d.FinishedAt = &j.FinishedAt
	}
	if _, err := s.c.InsertOne(ctx, d); err != nil {
		if isDup(err) {
			return server.Errorf(server.ECONFLICT, "job %s already exists", j.ID)
		}
		return wrap(fmt.Sprintf("create job %s", j.ID), err)
	}
	return nil
}

// Job returns a job by id, or ENOTFOUND.
func (s *JobStore) Job(ctx context.Context, id string) (*server.Job, error) {
	return s.findOne(ctx, bson.D{{Key: "_id", Value: id}}, "job "+id)
}

// JobByMP3 returns the job whose MP3FID is fid, or ENOTFOUND.
func (s *JobStore) JobByMP3(ctx context.Context, fid string) (*server.Job, error) {
	if fid == "" {
		return nil, server.Errorf(server.ENOTFOUND, "mp3 not found")
	}
	return s.findOne(ctx, bson.D{{Key: "mp3_fid", Value: fid}}, "job of mp3 "+fid)
}

func (s *JobStore) findOne(ctx context.Context, filter bson.D, what string) (*server.Job, error) {
	var d jobDoc
	if err := s.c.FindOne(ctx, filter).Decode(&d); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, server.Errorf(server.ENOTFOUND, "%s not found", what)
		}
		return nil, wrap("find "+what, err)
	}
	return d.job(), nil
}

// ListJobs returns owner's jobs, newest first, at most limit of them (all when limit <= 0).
func (s *JobStore) ListJobs(ctx context.Context, owner string, limit int) ([]*server.Job, error) {
	opts := options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	return s.find(ctx, bson.D{{Key: "owner", Value: owner}}, opts, "list jobs of "+owner)
}

// StaleJobs returns up to limit jobs in state not updated since before, oldest first.
func (s *JobStore) StaleJobs(ctx context.Context, state server.JobState, before time.Time, limit int) ([]*server.Job, error) {
	filter := bson.D{
		{Key: "state", Value: string(state)},
		{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before.UTC()}}},
	}
	opts := options.Find().SetSort(bson.D{{Key: "updated_at", Value: 1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	return s.find(ctx, filter, opts, fmt.Sprintf("stale %s jobs", state))
}

func (s *JobStore) find(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder, what string) ([]*server.Job, error) {
	cur, err := s.c.Find(ctx, filter, opts)
	if err != nil {
		return nil, wrap(what, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	jobs := []*server.Job{}
	for cur.Next(ctx) {
		var d jobDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", what, err)
		}
		jobs = append(jobs, d.job())
	}
	if err := cur.Err(); err != nil {
		return nil, wrap(what, err)
	}
	return jobs, nil
}

// ClaimJob moves a queued job, or a converting job not updated since staleBefore (its
// worker stopped sending heartbeats), to converting; it counts an attempt, resets the
// progress and sets UpdatedAt to now. A done or failed job, or a converting job updated at or
// after staleBefore, gives ECONFLICT; a missing one ENOTFOUND.
func (s *JobStore) ClaimJob(ctx context.Context, id string, staleBefore time.Time) (*server.Job, error) {
	update := bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "state", Value: string(server.JobConverting)},
			{Key: "progress", Value: 0},
			{Key: "updated_at", Value: s.clock()},
		}},
		{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}},
	}
	cond := bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "state", Value: string(server.JobQueued)}},
		bson.D{
			{Key: "state", Value: string(server.JobConverting)},
			{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: staleBefore.UTC()}}},
		},
	}}
	return s.change(ctx, id, "claim", cond, update)
}

// FinishJob moves a converting job whose attempts is attempt (the caller's claim) to done.
// Anything else gives ECONFLICT.
func (s *JobStore) FinishJob(ctx context.Context, id string, attempt int, res server.JobResult) (*server.Job, error) {
	t := s.clock()
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: string(server.JobDone)},
		{Key: "progress", Value: 100},
		{Key: "error", Value: ""},
		{Key: "files", Value: toFileDocs(res.Files)},
		{Key: "mp3_size", Value: res.Size},
		{Key: "updated_at", Value: t},
		{Key: "finished_at", Value: t},
	}}}
	cond := bson.E{Key: "$and", Value: bson.A{
		bson.D{inStates(server.JobConverting)},
		bson.D{{Key: "attempts", Value: attempt}},
	}}
	return s.change(ctx, id, "finish", cond, update)
}

// FailJob moves a queued or converting job to failed with the reason. A final job gives
// ECONFLICT.
func (s *JobStore) FailJob(ctx context.Context, id, reason string) (*server.Job, error) {
	t := s.clock()
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: string(server.JobFailed)},
		{Key: "error", Value: reason},
		{Key: "updated_at", Value: t},
		{Key: "finished_at", Value: t},
	}}}
	return s.change(ctx, id, "fail", inStates(server.JobQueued, server.JobConverting), update)
}

// inStates is the condition that a job is in one of the states.
func inStates(states ...server.JobState) bson.E {
	a := make(bson.A, len(states))
	for i, st := range states {
		a[i] = string(st)
	}
	return bson.E{Key: "state", Value: bson.D{{Key: "$in", Value: a}}}
}

// change applies update to job id if it meets cond, and returns the job as updated. When the
// filter misses, a lookup tells ENOTFOUND from ECONFLICT.
func (s *JobStore) change(ctx context.Context, id, verb string, cond bson.E, update bson.D) (*server.Job, error) {
	filter := bson.D{{Key: "_id", Value: id}, cond}
	opts := options.FindOneAndUpdate().SetReturnDocument(options.After)
	var d jobDoc
	err := s.c.FindOneAndUpdate(ctx, filter, update, opts).Decode(&d)
	if err == nil {
		return d.job(), nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, wrap(fmt.Sprintf("%s job %s", verb, id), err)
	}
	j, err := s.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	return nil, server.Errorf(server.ECONFLICT, "cannot %s job %s: it is %s", verb, id, j.State)
}

// SetProgress records progress (clamped to 0-100) of a converting job; other states are left
// alone. A missing job gives ENOTFOUND.
func (s *JobStore) SetProgress(ctx context.Context, id string, pct int) error {
	pct = min(max(pct, 0), 100)
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "progress", Value: pct},
		{Key: "updated_at", Value: s.clock()},
	}}}
	return s.update(ctx, id, "set progress of", server.JobConverting, update)
}

// RequeueJob moves a converting job whose attempts is attempt back to queued, giving the
// claim back with refund; other states and later claims are left alone. A missing
// job gives ENOTFOUND.
func (s *JobStore) RequeueJob(ctx context.Context, id string, attempt int, refund bool) error {
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: string(server.JobQueued)},
		{Key: "progress", Value: 0},
		{Key: "updated_at", Value: s.clock()},
	}}}
	if refund {
		update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: "attempts", Value: -1}}})
	}
	return s.updateWhere(ctx, id, "requeue", bson.D{{Key: "state", Value: string(server.JobConverting)}, {Key: "attempts", Value: attempt}}, update)
}

// TouchJob sets updated_at to now when the job is in state; other states are left alone. A
// missing job gives ENOTFOUND.
func (s *JobStore) TouchJob(ctx context.Context, id string, state server.JobState) error {
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "updated_at", Value: s.clock()}}}}
	return s.update(ctx, id, "touch", state, update)
}

func (s *JobStore) update(ctx context.Context, id, verb string, from server.JobState, update bson.D) error {
	return s.updateWhere(ctx, id, verb, bson.D{{Key: "state", Value: string(from)}}, update)
}

// updateWhere applies update to job id when it also matches cond; a miss is not an error
// unless the job does not exist.
func (s *JobStore) updateWhere(ctx context.Context, id, verb string, cond bson.D, update bson.D) error {
	filter := append(bson.D{{Key: "_id", Value: id}}, cond...)
	res, err := s.c.UpdateOne(ctx, filter, update)
	if err != nil {
		return wrap(fmt.Sprintf("%s job %s", verb, id), err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	_, err = s.Job(ctx, id)
	return err
}

// DeleteJob removes job id's record; a missing one gives ENOTFOUND.
func (s *JobStore) DeleteJob(ctx context.Context, id string) error {
	res, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return wrap("delete job "+id, err)
	}
	if res.DeletedCount == 0 {
		return server.Errorf(server.ENOTFOUND, "job %s not found", id)
	}
	return nil
}

// MarkRetention sets the retention flags of a final job that are true; a job that is not
// final gives ECONFLICT.
func (s *JobStore) MarkRetention(ctx context.Context, id string, video, expired bool) error {
	set := bson.D{}
	if video {
		set = append(set, bson.E{Key: "video_deleted", Value: true})
	}
	if expired {
		set = append(set, bson.E{Key: "expired", Value: true})
	}
	if len(set) == 0 {
		j, err := s.Job(ctx, id)
		if err != nil {
			return err
		}
		if !j.State.Final() {
			return server.Errorf(server.ECONFLICT, "job %s is %s", id, j.State)
		}
		return nil
	}
	_, err := s.change(ctx, id, "mark retention of", inStates(server.JobDone, server.JobFailed), bson.D{{Key: "$set", Value: set}})
	return err
}

// RetainedJobs returns up to limit jobs of the kind what finished before before, oldest first.
func (s *JobStore) RetainedJobs(ctx context.Context, what server.Retained, before time.Time, limit int) ([]*server.Job, error) {
	filter := bson.D{{Key: "finished_at", Value: bson.D{{Key: "$lt", Value: before.UTC()}}}}
	switch what {
	case server.RetainedVideos:
		filter = append(filter, bson.E{Key: "state", Value: string(server.JobDone)},
			bson.E{Key: "video_deleted", Value: bson.D{{Key: "$ne", Value: true}}})
	case server.RetainedFiles:
		filter = append(filter, inStates(server.JobDone, server.JobFailed),
			bson.E{Key: "expired", Value: bson.D{{Key: "$ne", Value: true}}})
	default:
		return nil, server.Errorf(server.EINVALID, "unknown retention kind %d", what)
	}
	opts := options.Find().SetSort(bson.D{{Key: "finished_at", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit))
	return s.find(ctx, filter, opts, "retained jobs")
}

// Usage sums owner's jobs. It reads the few fields it needs of each of owner's jobs, which the
// owner index serves.
func (s *JobStore) Usage(ctx context.Context, owner string) (server.Usage, error) {
	opts := options.Find().SetProjection(bson.D{{Key: "state", Value: 1}, {Key: "size", Value: 1},
		{Key: "mp3_size", Value: 1}, {Key: "video_deleted", Value: 1}, {Key: "expired", Value: 1}})
	cur, err := s.c.Find(ctx, bson.D{{Key: "owner", Value: owner}}, opts)
	if err != nil {
		return server.Usage{}, wrap("usage of "+owner, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var u server.Usage
	for cur.Next(ctx) {
		var d jobDoc
		if err := cur.Decode(&d); err != nil {
			return server.Usage{}, fmt.Errorf("usage of %s: decode: %w", owner, err)
		}
		st := server.JobState(d.State)
		if !st.Final() {
			u.ActiveJobs++
		}
		if !d.VideoDeleted {
			u.StoredBytes += d.Size
		}
		if st == server.JobDone && !d.Expired {
			u.StoredBytes += d.MP3Size
		}
	}
	if err := cur.Err(); err != nil {
		return server.Usage{}, wrap("usage of "+owner, err)
	}
	return u, nil
}

// FindJobs returns the jobs of every owner that match f, newest first, at most f.Limit.
// The owner matches in any letter case: an anchored, case-insensitive regular expression of
// the quoted email (FerretDB has no collations).
func (s *JobStore) FindJobs(ctx context.Context, f server.JobFilter) ([]*server.Job, error) {
	filter := bson.D{}
	if f.State != "" {
		filter = append(filter, bson.E{Key: "state", Value: string(f.State)})
	}
	if f.Owner != "" {
		filter = append(filter, bson.E{Key: "owner", Value: bson.Regex{Pattern: "^" + regexp.QuoteMeta(f.Owner) + "$", Options: "i"}})
	}
	if !f.Since.IsZero() {
		filter = append(filter, bson.E{Key: "created_at", Value: bson.D{{Key: "$gte", Value: f.Since.UTC()}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}})
	if f.Limit > 0 {
		opts.SetLimit(int64(f.Limit))
	}
	return s.find(ctx, filter, opts, "find jobs")
}

// RetryJob moves a failed job back to queued with its error, progress, attempts and finish
// time reset. Any other state gives ECONFLICT.
func (s *JobStore) RetryJob(ctx context.Context, id string) (*server.Job, error) {
	update := bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "state", Value: string(server.JobQueued)},
			{Key: "error", Value: ""},
			{Key: "progress", Value: 0},
			{Key: "attempts", Value: 0},
			{Key: "updated_at", Value: s.clock()},
		}},
		{Key: "$unset", Value: bson.D{{Key: "finished_at", Value: ""}}},
	}
	return s.change(ctx, id, "retry", inStates(server.JobFailed), update)
}
