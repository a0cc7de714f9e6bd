package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// Live job events: GET /v1/jobs/{id}/events and GET /v1/events stream text/event-stream.
//
// A stream sends the event "state" (the job object, as GET /v1/jobs/{id} returns it) when a
// job's state changes, and "progress" ({"id":...,"progress":N}) when a converting job's
// progress rises, at most every progressEvery per job. Updates come from Config.Updates when
// set, and the store is read every EventsPoll besides, so that an update the bus lost delays
// an event but never loses it.
//
// Every event has an id: the largest updated_at (Unix milliseconds) of the state events the
// stream has sent so far; progress events repeat it. A client that reconnects with
// Last-Event-ID: T gets the state of every job in the stream's scope that was updated after
// T minus replayMargin (the clocks of the processes that update jobs may differ), and the
// current progress of the others that are converting: it misses no state change, and may
// see a state twice.

const (
	progressEvery = 250 * time.Millisecond
	replayMargin  = 30 * time.Second
	// DefaultKeepAlive is how often an idle stream sends a comment, so that proxies keep it.
	DefaultKeepAlive = 15 * time.Second
	// DefaultEventsPoll is how often a stream reads the store when a bus brings updates.
	DefaultEventsPoll = 2 * time.Second
	// listLimit bounds the jobs GET /v1/events looks at, as GET /v1/jobs lists them.
	listLimit = 100
)

// seenJob is what a stream has told its client of one job.
type seenJob struct {
	state    server.JobState
	updated  time.Time // of the job in the last state event sent
	progress int       // the last progress sent (in a state or a progress event)
	pending  int       // progress waiting for the next tick; -1 for none
	lastTick time.Time // when the last progress event went out
}

// eventStream is one client's stream. Only the handler's goroutine uses it.
type eventStream struct {
	s      *Server
	c      *gin.Context
	rc     *http.ResponseController
	owner  string
	only   string // the job of GET /v1/jobs/{id}/events; "" for all of the owner's
	since  int64  // Last-Event-ID: state events of jobs updated after since-replayMargin are sent
	resume bool   // the client sent a Last-Event-ID
	cursor int64  // the id of the events sent
	seen   map[string]*seenJob
	ended  bool // the one job of the stream is final, and its state was sent
}

func (s *Server) jobEvents(c *gin.Context) { s.serveEvents(c, c.Param("id")) }

func (s *Server) allEvents(c *gin.Context) { s.serveEvents(c, "") }

func (s *Server) serveEvents(c *gin.Context, only string) {
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	var updates <-chan server.JobUpdate
	if s.cfg.Updates != nil {
		// Subscribed before the store is read: a change after the read comes on the channel.
		ch, err := s.cfg.Updates.Subscribe(ctx)
		if err != nil {
			s.fail(c, fmt.Errorf("subscribe to job updates: %w", err))
			return
		}
		updates = ch
	}
	st := &eventStream{s: s, c: c, rc: http.NewResponseController(c.Writer), owner: owner(c), only: only,
		seen: map[string]*seenJob{}}
	if v := strings.TrimSpace(c.GetHeader("Last-Event-ID")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			st.since, st.resume, st.cursor = n, true, n
		}
	}
	var first []*server.Job
	if only != "" {
		j, err := s.ownJob(c, only)
		if err != nil {
			s.fail(c, err) // someone else's or none: 404, before anything is streamed
			return
		}
		first = []*server.Job{j}
	} else {
		list, err := s.cfg.Service.ListJobs(ctx, st.owner, listLimit)
		if err != nil {
			s.fail(c, err)
			return
		}
		first = list
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	c.Status(http.StatusOK)
	// Nothing more is read from the client; a read deadline would cancel the request.
	_ = st.rc.SetReadDeadline(time.Time{})
	if err := st.write(": stream of job events\n\n"); err != nil {
		return
	}
	if err := st.snapshot(first, true); err != nil || st.ended {
		return
	}

	poll := s.cfg.EventsPoll
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	keepAlive := time.NewTicker(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	lastPoll := time.Now()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-s.draining:
			return // the client reconnects, to another replica or to this one restarted
		case u, ok := <-updates:
			if !ok {
				updates = nil // the bus is gone: the store's polls go on
				continue
			}
			err = st.update(ctx, u)
		case now := <-tick.C:
			if now.Sub(lastPoll) >= poll {
				lastPoll = now
				err = st.poll(ctx)
			}
			if err == nil && !st.ended {
				err = st.flushProgress(now)
			}
		case <-keepAlive.C:
			err = st.write(": keep-alive\n\n")
		}
		if err != nil {
			// The client left, or the store failed a read: the client reconnects.
			s.log.Info("event stream ended", "request_id", c.GetString(ctxRequestID), "err", err)
			return
		}
		if st.ended {
			return
		}
	}
}

// poll reads the stream's jobs from the store and sends what changed.
func (st *eventStream) poll(ctx context.Context) error {
	if st.only != "" {
		j, err := st.s.ownJob(st.c, st.only)
		if err != nil {
			return err // deleted, or the store is down: the client reconnects
		}
		return st.snapshot([]*server.Job{j}, false)
	}
	list, err := st.s.cfg.Service.ListJobs(ctx, st.owner, listLimit)
	if err != nil {
		return err
	}
	return st.snapshot(list, false)
}

// snapshot sends what jobs, read from the store, say that the client does not know yet. On
// the first, a job the client may know already gets its progress rather than its state.
func (st *eventStream) snapshot(jobs []*server.Job, first bool) error {
	for _, j := range jobs {
		seen := st.seen[j.ID]
		switch {
		case seen != nil:
			if seen.state != j.State || j.State != server.JobConverting && !seen.updated.Equal(j.UpdatedAt) {
				if err := st.sendState(j); err != nil {
					return err
				}
			} else if j.Progress > seen.progress {
				seen.pending = max(seen.pending, j.Progress)
			}
		case st.fresh(j, first):
			if err := st.sendState(j); err != nil {
				return err
			}
		default:
			// Known to the client already: remember it as it is, and send only its progress.
			st.seen[j.ID] = &seenJob{state: j.State, updated: j.UpdatedAt, progress: -1, pending: -1}
			if j.State == server.JobConverting {
				st.seen[j.ID].pending = j.Progress
			}
		}
	}
	return nil
}

// fresh reports whether the state of j, a job the stream has not sent yet, is news to the
// client. The one job of a job's stream always is, on its first read, and a final one ends
// the stream. Of all jobs, a new client gets those not final, and a client that reconnects
// those updated since its Last-Event-ID; a job that shows up later is new.
func (st *eventStream) fresh(j *server.Job, first bool) bool {
	if !first {
		return true
	}
	recent := j.UpdatedAt.UnixMilli() > st.since-replayMargin.Milliseconds()
	if st.only != "" {
		return !st.resume || j.State.Final() || recent
	}
	if st.resume {
		return recent
	}
	return !j.State.Final()
}

// update handles one update from the bus.
func (st *eventStream) update(ctx context.Context, u server.JobUpdate) error {
	if u.Owner != st.owner || st.only != "" && u.JobID != st.only {
		return nil
	}
	seen := st.seen[u.JobID]
	if u.Kind == server.UpdateProgress && seen != nil && seen.state == server.JobConverting {
		if u.Progress > seen.progress {
			seen.pending = max(seen.pending, u.Progress)
		}
		return nil
	}
	// A state change, or news of a job the stream does not know: the store says what it is.
	j, err := st.s.cfg.Service.Job(ctx, st.owner, u.JobID)
	if server.IsCode(err, server.ENOTFOUND) {
		return nil
	}
	if err != nil {
		return err
	}
	if seen != nil && seen.state == j.State && seen.updated.Equal(j.UpdatedAt) {
		return nil // sent already
	}
	if u.Kind == server.UpdateState || seen == nil || seen.state != j.State {
		return st.sendState(j)
	}
	return nil
}

// sendState sends j's state event.
func (st *eventStream) sendState(j *server.Job) error {
	st.cursor = max(st.cursor, j.UpdatedAt.UnixMilli())
	body, err := json.Marshal(toJobJSON(j))
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	if err := st.event(wire.EventState, body); err != nil {
		return err
	}
	st.seen[j.ID] = &seenJob{state: j.State, updated: j.UpdatedAt, progress: j.Progress, pending: -1}
	if st.only != "" && j.State.Final() {
		st.ended = true
	}
	return nil
}

// flushProgress sends the progress that rose since the last tick.
func (st *eventStream) flushProgress(now time.Time) error {
	for id, seen := range st.seen {
		if seen.pending <= seen.progress || now.Sub(seen.lastTick) < progressEvery-progressEvery/10 {
			continue
		}
		body, err := json.Marshal(wire.Progress{ID: id, Progress: seen.pending})
		if err != nil {
			return fmt.Errorf("encode progress: %w", err)
		}
		if err := st.event(wire.EventProgress, body); err != nil {
			return err
		}
		seen.progress, seen.pending, seen.lastTick = seen.pending, -1, now
	}
	return nil
}

func (st *eventStream) event(name string, data []byte) error {
	return st.write("id: " + strconv.FormatInt(st.cursor, 10) + "\nevent: " + name + "\ndata: " + string(data) + "\n\n")
}

// write sends text at once. Each write has the write timeout to go out; between two, the
// stream may idle until the next keep-alive is due.
func (st *eventStream) write(text string) error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(st.s.cfg.Limits.WriteTimeout))
	if _, err := st.c.Writer.WriteString(text); err != nil {
		return err
	}
	if err := st.rc.Flush(); err != nil {
		return err
	}
	_ = st.rc.SetWriteDeadline(time.Now().Add(st.s.cfg.KeepAlive + st.s.cfg.Limits.WriteTimeout))
	return nil
}
