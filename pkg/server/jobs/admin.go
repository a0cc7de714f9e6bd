package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// Limits of the administrators' listings.
const (
	DefaultAdminLimit = 100
	MaxAdminLimit     = 1000
	// MaxLetters is how many dead letters one listing, replay or purge looks at.
	MaxLetters = 10000
)

// Topics are the queue topics that have dead letters.
var Topics = []string{server.TopicVideo, server.TopicMP3}

// Admin is what administrators do with everyone's jobs and with the dead letters: the same
// policy whether the API or v2md admin asks. It may run in a process of its own beside the
// servers, on the same stores and queue.
type Admin struct {
	Jobs server.JobStore
	// Letters are the queue's dead letters; nil when the queue has none (every dead-letter
	// operation then gives EUNAVAILABLE).
	Letters server.DeadLetters
	// Limits are the users' own limits.
	Limits server.LimitStore
	Logger *slog.Logger
}

func (a *Admin) log() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// CheckJobFilter validates an administrator's job filter and fills in the default limit: a
// state that is none of the four, an owner that cannot be an email, or a limit out of 1 to
// MaxAdminLimit give EINVALID.
func CheckJobFilter(f server.JobFilter) (server.JobFilter, error) {
	switch f.State {
	case "", server.JobQueued, server.JobConverting, server.JobDone, server.JobFailed:
	default:
		return f, server.Errorf(server.EINVALID, "state must be queued, converting, done or failed")
	}
	if len(f.Owner) > 320 || strings.IndexFunc(f.Owner, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return f, server.Errorf(server.EINVALID, "owner must be a user's email")
	}
	if f.Limit == 0 {
		f.Limit = DefaultAdminLimit
	}
	if f.Limit < 1 || f.Limit > MaxAdminLimit {
		return f, server.Errorf(server.EINVALID, "limit must be 1 to %d", MaxAdminLimit)
	}
	return f, nil
}

// FindJobs lists everyone's jobs that match f, newest first.
func (a *Admin) FindJobs(ctx context.Context, f server.JobFilter) ([]wire.AdminJob, error) {
	f, err := CheckJobFilter(f)
	if err != nil {
		return nil, err
	}
	js, err := a.Jobs.FindJobs(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]wire.AdminJob, 0, len(js))
	for _, j := range js {
		out = append(out, wire.AdminJob{Job: WireJob(j), Owner: j.Owner, Attempts: j.Attempts})
	}
	return out, nil
}

// ParseSince reads a since filter: an RFC 3339 time, or a duration before now ("24h"); ""
// is no filter.
func ParseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, server.Errorf(server.EINVALID, "since must be a time like 2026-01-02T15:04:05Z or a duration like 24h")
}

// CheckTopic validates a topic filter: "" (every topic), video or mp3.
func CheckTopic(topic string) error {
	if topic != "" && !slices.Contains(Topics, topic) {
		return server.Errorf(server.EINVALID, "topic must be video or mp3")
	}
	return nil
}

func (a *Admin) letters() (server.DeadLetters, error) {
	if a.Letters == nil {
		return nil, server.Errorf(server.EUNAVAILABLE, "this server's queue keeps no dead letters")
	}
	return a.Letters, nil
}

// list returns the raw letters of topic ("" for all topics).
func (a *Admin) list(ctx context.Context, topic string) ([]server.DeadLetter, error) {
	if err := CheckTopic(topic); err != nil {
		return nil, err
	}
	dl, err := a.letters()
	if err != nil {
		return nil, err
	}
	var out []server.DeadLetter
	for _, t := range Topics {
		if topic != "" && t != topic {
			continue
		}
		ls, err := dl.DeadLetters(ctx, t, MaxLetters)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

// DeadLetters lists the dead letters of topic ("" for every topic), each with its job's state
// and error as they are now.
func (a *Admin) DeadLetters(ctx context.Context, topic string) ([]wire.DeadLetter, error) {
	ls, err := a.list(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make([]wire.DeadLetter, 0, len(ls))
	for _, l := range ls {
		w := wire.DeadLetter{ID: l.ID, Topic: l.Topic, JobID: l.JobID, Owner: l.Owner, Reason: l.Reason, Attempts: l.Attempts, DeadAt: l.At}
		if l.JobID != "" {
			j, err := a.Jobs.Job(ctx, l.JobID)
			switch {
			case err == nil:
				w.JobState, w.JobError = string(j.State), j.Error
			case !server.IsCode(err, server.ENOTFOUND):
				return nil, err
			}
		}
		out = append(out, w)
	}
	return out, nil
}

// pick returns the letters named by ids (all of them when all is set); an id that is not a
// dead letter gives ENOTFOUND, and nothing is done. More than MaxAdminLimit ids give EINVALID.
func (a *Admin) pick(ctx context.Context, topic string, ids []string, all bool) ([]server.DeadLetter, error) {
	if all == (len(ids) > 0) {
		return nil, server.Errorf(server.EINVALID, `give either "ids" or "all": true`)
	}
	if len(ids) > MaxAdminLimit {
		return nil, server.Errorf(server.EINVALID, "at most %d ids at once", MaxAdminLimit)
	}
	ls, err := a.list(ctx, topic)
	if err != nil || all {
		return ls, err
	}
	var out []server.DeadLetter
	var missing []string
	for _, id := range ids {
		i := slices.IndexFunc(ls, func(l server.DeadLetter) bool { return l.ID == id })
		if i < 0 {
			missing = append(missing, id)
			continue
		}
		if !slices.ContainsFunc(out, func(l server.DeadLetter) bool { return l.ID == id }) {
			out = append(out, ls[i])
		}
	}
	if len(missing) > 0 {
		return nil, server.Errorf(server.ENOTFOUND, "no dead letter %s", quoteList(missing))
	}
	return out, nil
}

func quoteList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	return strings.Join(q, ", ")
}

// Replay replays the dead letters named by ids, or every one (of topic, "" for all) with all.
// An id that is not a dead letter gives ENOTFOUND before anything is replayed. A video letter
// first moves its failed job back to queued (JobStore.RetryJob), then its message is published
// again; a notification letter is published again. A letter that cannot be replayed stays a
// dead letter and is reported in Failed, and the others go on.
func (a *Admin) Replay(ctx context.Context, topic string, ids []string, all bool) (wire.ReplayResult, error) {
	res := wire.ReplayResult{Replayed: []string{}, Failed: []wire.ReplayFailure{}}
	ls, err := a.pick(ctx, topic, ids, all)
	if err != nil {
		return res, err
	}
	for _, l := range ls {
		if err := a.replay(ctx, l); err != nil {
			a.log().WarnContext(ctx, "dead letter not replayed", "letter", l.ID, "topic", l.Topic, "job_id", l.JobID, "err", err)
			res.Failed = append(res.Failed, wire.ReplayFailure{ID: l.ID, Error: server.ErrorMessage(err)})
			continue
		}
		a.log().InfoContext(ctx, "dead letter replayed", "letter", l.ID, "topic", l.Topic, "job_id", l.JobID)
		res.Replayed = append(res.Replayed, l.ID)
	}
	return res, nil
}

func (a *Admin) replay(ctx context.Context, l server.DeadLetter) error {
	if l.Topic == server.TopicVideo {
		if l.JobID == "" {
			return server.Errorf(server.EINVALID, "the letter names no job; purge it")
		}
		_, err := a.Jobs.RetryJob(ctx, l.JobID)
		switch {
		case server.IsCode(err, server.ENOTFOUND):
			return server.Errorf(server.ECONFLICT, "job %s no longer exists; purge the letter", l.JobID)
		case server.IsCode(err, server.ECONFLICT):
			j, gerr := a.Jobs.Job(ctx, l.JobID)
			if gerr != nil {
				return gerr
			}
			// Queued: an earlier replay moved it and then could not publish; publish now.
			if j.State != server.JobQueued {
				return server.Errorf(server.ECONFLICT, "job %s is %s, not failed; purge the letter", l.JobID, j.State)
			}
		case err != nil:
			return err
		}
	}
	err := a.Letters.Replay(ctx, l.Topic, l.ID)
	if err != nil && server.ErrorCode(err) == server.EINTERNAL {
		a.log().ErrorContext(ctx, "replay dead letter", "letter", l.ID, "err", err)
		return server.Errorf(server.EUNAVAILABLE, "the queue could not take the letter again; try again")
	}
	return err
}

// Purge removes the dead letters named by ids, or every one (of topic, "" for all) with all,
// and returns how many it removed. An id that is not a dead letter gives ENOTFOUND and nothing
// is removed.
func (a *Admin) Purge(ctx context.Context, topic string, ids []string, all bool) (int, error) {
	if all && len(ids) == 0 {
		if err := CheckTopic(topic); err != nil {
			return 0, err
		}
		dl, err := a.letters()
		if err != nil {
			return 0, err
		}
		n := 0
		for _, t := range Topics {
			if topic == "" || t == topic {
				k, err := dl.Purge(ctx, t, nil)
				n += k
				if err != nil {
					return n, err
				}
			}
		}
		a.log().InfoContext(ctx, "dead letters purged", "topic", topic, "count", n)
		return n, nil
	}
	ls, err := a.pick(ctx, topic, ids, false)
	if err != nil {
		return 0, err
	}
	byTopic := map[string][]string{}
	for _, l := range ls {
		byTopic[l.Topic] = append(byTopic[l.Topic], l.ID)
	}
	n := 0
	for _, t := range Topics {
		if len(byTopic[t]) == 0 {
			continue
		}
		k, err := a.Letters.Purge(ctx, t, byTopic[t])
		n += k
		if err != nil {
			return n, err
		}
	}
	a.log().InfoContext(ctx, "dead letters purged", "count", n)
	return n, nil
}
