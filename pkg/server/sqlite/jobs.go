package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Jobs returns the database as a server.JobStore.
func (d *DB) Jobs() server.JobStore { return (*jobStore)(d) }

type jobStore DB

const jobColumns = `id, owner, state, progress, error, filename, size, source_size, video_fid, mp3_fid, options, files, attempts, created_at, updated_at, finished_at, mp3_size, video_deleted, expired`

type scanner interface{ Scan(...any) error }

func scanJob(row scanner) (*server.Job, error) {
	var j server.Job
	var created, updated int64
	var finished sql.NullInt64
	var opts, files string
	if err := row.Scan(&j.ID, &j.Owner, &j.State, &j.Progress, &j.Error, &j.Filename, &j.Size, &j.SourceSize, &j.VideoFID, &j.MP3FID,
		&opts, &files, &j.Attempts, &created, &updated, &finished, &j.MP3Size, &j.VideoDeleted, &j.Expired); err != nil {
		return nil, err
	}
	var err error
	if j.Options, err = decodeOptions(opts); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	if j.Files, err = decodeFiles(files); err != nil {
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	j.CreatedAt, j.UpdatedAt = fromMS(created), fromMS(updated)
	if finished.Valid {
		j.FinishedAt = fromMS(finished.Int64)
	}
	return &j, nil
}

func (s *jobStore) CreateJob(ctx context.Context, j *server.Job) error {
	var finished sql.NullInt64
	if !j.FinishedAt.IsZero() {
		finished = sql.NullInt64{Int64: ms(j.FinishedAt), Valid: true}
	}
	opts, err := encodeOptions(j.Options)
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	files, err := encodeFiles(j.Files)
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Owner, j.State, j.Progress, j.Error, j.Filename, j.Size, j.SourceSize, j.VideoFID, j.MP3FID, opts, files, j.Attempts,
		ms(j.CreatedAt), ms(j.UpdatedAt), finished, j.MP3Size, j.VideoDeleted, j.Expired)
	if isUnique(err) {
		return server.Errorf(server.ECONFLICT, "job %s exists", j.ID)
	}
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	return nil
}

func (s *jobStore) get(ctx context.Context, where string, arg any) (*server.Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE `+where, arg))
	if isNoRows(err) {
		return nil, notFound("job", fmt.Sprint(arg))
	}
	if err != nil {
		return nil, fmt.Errorf("select job: %w", err)
	}
	return j, nil
}

func (s *jobStore) Job(ctx context.Context, id string) (*server.Job, error) {
	return s.get(ctx, `id = ?`, id)
}

func (s *jobStore) JobByMP3(ctx context.Context, fid string) (*server.Job, error) {
	return s.get(ctx, `mp3_fid = ?`, fid)
}

func (s *jobStore) ListJobs(ctx context.Context, owner string, limit int) ([]*server.Job, error) {
	return s.list(ctx, `SELECT `+jobColumns+` FROM jobs WHERE owner = ? ORDER BY created_at DESC, id DESC LIMIT ?`, owner, limit)
}

func (s *jobStore) StaleJobs(ctx context.Context, state server.JobState, before time.Time, limit int) ([]*server.Job, error) {
	return s.list(ctx, `SELECT `+jobColumns+` FROM jobs WHERE state = ? AND updated_at < ? ORDER BY updated_at LIMIT ?`,
		state, ms(before), limit)
}

func (s *jobStore) list(ctx context.Context, query string, args ...any) ([]*server.Job, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("select jobs: %w", err)
	}
	defer rows.Close()
	var out []*server.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("scan job: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select jobs: %w", err)
	}
	return out, nil
}

// update runs a conditional UPDATE ... RETURNING; when no row matches it tells not found from
// a state conflict.
func (s *jobStore) update(ctx context.Context, id, set, cond string, args ...any) (*server.Job, error) {
	q := `UPDATE jobs SET ` + set + ` WHERE id = ? AND (` + cond + `) RETURNING ` + jobColumns
	j, err := scanJob(s.db.QueryRowContext(ctx, q, args...))
	if isNoRows(err) {
		cur, gerr := s.Job(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		return nil, server.Errorf(server.ECONFLICT, "job %s is %s", id, cur.State)
	}
	if err != nil {
		return nil, fmt.Errorf("update job %s: %w", id, err)
	}
	return j, nil
}

func (s *jobStore) ClaimJob(ctx context.Context, id string, staleBefore time.Time) (*server.Job, error) {
	now := ms(s.now())
	return s.update(ctx, id, `state = 'converting', attempts = attempts + 1, progress = 0, updated_at = ?`,
		`state = 'queued' OR (state = 'converting' AND updated_at < ?)`, now, id, ms(staleBefore))
}

func (s *jobStore) SetProgress(ctx context.Context, id string, pct int) error {
	pct = max(0, min(100, pct))
	return s.exec(ctx, id, "set progress of", `UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ? AND state = 'converting'`,
		pct, ms(s.now()), id)
}

func (s *jobStore) FinishJob(ctx context.Context, id string, attempt int, res server.JobResult) (*server.Job, error) {
	enc, err := encodeFiles(res.Files)
	if err != nil {
		return nil, fmt.Errorf("finish job %s: %w", id, err)
	}
	now := ms(s.now())
	j, err := s.update(ctx, id, `state = 'done', progress = 100, error = '', files = ?, mp3_size = ?, updated_at = ?, finished_at = ?`,
		`state = 'converting' AND attempts = ?`, enc, res.Size, now, now, id, attempt)
	if server.IsCode(err, server.ECONFLICT) {
		return nil, server.Errorf(server.ECONFLICT, "job %s is not converting under claim %d", id, attempt)
	}
	return j, err
}

func (s *jobStore) FailJob(ctx context.Context, id, reason string) (*server.Job, error) {
	now := ms(s.now())
	return s.update(ctx, id, `state = 'failed', error = ?, updated_at = ?, finished_at = ?`,
		`state IN ('queued', 'converting')`, reason, now, now, id)
}

func (s *jobStore) TouchJob(ctx context.Context, id string, state server.JobState) error {
	return s.exec(ctx, id, "touch", `UPDATE jobs SET updated_at = ? WHERE id = ? AND state = ?`, ms(s.now()), id, state)
}

func (s *jobStore) RequeueJob(ctx context.Context, id string, attempt int, refund bool) error {
	back := 0
	if refund {
		back = 1
	}
	return s.exec(ctx, id, "requeue", `UPDATE jobs SET state = 'queued', progress = 0, updated_at = ?, attempts = attempts - ?
		WHERE id = ? AND state = 'converting' AND attempts = ?`, ms(s.now()), back, id, attempt)
}

// exec runs a conditional UPDATE of job id. A job in another state is left alone without an
// error; a missing job gives ENOTFOUND.
func (s *jobStore) exec(ctx context.Context, id, verb, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s job %s: %w", verb, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s job %s: %w", verb, id, err)
	}
	if n > 0 {
		return nil
	}
	_, err = s.Job(ctx, id)
	return err
}

func (s *jobStore) DeleteJob(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM jobs WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	} else if n == 0 {
		return notFound("job", id)
	}
	return nil
}

func (s *jobStore) MarkRetention(ctx context.Context, id string, video, expired bool) error {
	_, err := s.update(ctx, id, `video_deleted = video_deleted OR ?, expired = expired OR ?`,
		`state IN ('done', 'failed')`, video, expired, id)
	return err
}

func (s *jobStore) RetainedJobs(ctx context.Context, what server.Retained, before time.Time, limit int) ([]*server.Job, error) {
	cond := ""
	switch what {
	case server.RetainedVideos:
		cond = `state = 'done' AND video_deleted = 0`
	case server.RetainedFiles:
		cond = `state IN ('done', 'failed') AND expired = 0`
	default:
		return nil, server.Errorf(server.EINVALID, "unknown retention kind %d", what)
	}
	return s.list(ctx, `SELECT `+jobColumns+` FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? AND `+cond+
		` ORDER BY finished_at LIMIT ?`, ms(before), limit)
}

func (s *jobStore) Usage(ctx context.Context, owner string) (server.Usage, error) {
	var u server.Usage
	err := s.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(state IN ('queued', 'converting')), 0),
		COALESCE(SUM(CASE WHEN video_deleted = 0 THEN size ELSE 0 END) +
			SUM(CASE WHEN state = 'done' AND expired = 0 THEN mp3_size ELSE 0 END), 0)
		FROM jobs WHERE owner = ?`, owner).Scan(&u.ActiveJobs, &u.StoredBytes)
	if err != nil {
		return server.Usage{}, fmt.Errorf("usage of %s: %w", owner, err)
	}
	return u, nil
}

func (s *jobStore) FindJobs(ctx context.Context, f server.JobFilter) ([]*server.Job, error) {
	q := `SELECT ` + jobColumns + ` FROM jobs WHERE 1 = 1`
	var args []any
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	if f.Owner != "" {
		q += ` AND owner = ? COLLATE NOCASE`
		args = append(args, f.Owner)
	}
	if !f.Since.IsZero() {
		q += ` AND created_at >= ?`
		args = append(args, ms(f.Since))
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	return s.list(ctx, q, append(args, f.Limit)...)
}

func (s *jobStore) RetryJob(ctx context.Context, id string) (*server.Job, error) {
	return s.update(ctx, id, `state = 'queued', error = '', progress = 0, attempts = 0, updated_at = ?, finished_at = NULL`,
		`state = 'failed'`, ms(s.now()), id)
}
