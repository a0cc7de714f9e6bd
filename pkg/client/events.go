package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/wire"
)

// event is one event of a job's event stream (GET /v1/jobs/{id}/events).
type event struct {
	ID   string // the event's id, sent back as Last-Event-ID on reconnecting
	Type string // wire.EventState or wire.EventProgress; other types may come and are passed on
	Data []byte // the event's data: a Job for state, a wire.Progress for progress
}

// StreamIdle is how long Watch waits for anything, an event or a keep-alive, before it takes
// the connection for dead and reconnects. The server sends a keep-alive every 15 s.
const StreamIdle = 45 * time.Second

// maxStreamFailures bounds the reconnections in a row that bring no event.
const maxStreamFailures = 8

// errNoStream says that the server has no event stream for jobs: Watch long-polls instead.
var errNoStream = errors.New("the server has no event streams")

// Watch follows job id until it is done or failed, or ctx ends (then it returns ctx's error,
// wrapped, with the last job seen), as Wait does. fn, when not nil, is called with the job
// each time its state or progress changes. A failed job is returned with a nil error: check
// Job.State.
//
// It reads the job's event stream, reconnecting after a network error or the end of the
// stream with the id of the last event it got (Last-Event-ID), so that it misses no state
// change. Network errors and 5xx answers are retried with backoff, up to a few in a row
// without any event between. A server without event streams (it answers the route 404 or
// 405, or not with text/event-stream) is long-polled with Wait instead.
func (c *Client) Watch(ctx context.Context, id string, fn func(*Job)) (*Job, error) {
	w := &watch{c: c, id: id, fn: fn}
	failures := 0
	var outage time.Time // when the server began to answer 503 or 429, and how often since
	putOff := 0
	for {
		start := time.Now()
		got, err := w.stream(ctx)
		if got {
			outage, putOff = time.Time{}, 0
		} else if IsPutOff(err) {
			if outage.IsZero() {
				outage = start
			}
			if c.retryLater(ctx, err, outage, putOff+1) {
				putOff++
				continue
			}
		}
		switch {
		case w.last != nil && w.last.Final():
			return w.last, nil
		case errors.Is(err, errNoStream):
			return c.Wait(ctx, id, func(j *Job) { w.show(j) })
		case ctx.Err() != nil:
			return w.last, fmt.Errorf("wait for job %s: %w", id, ctx.Err())
		case err != nil && !transient(ctx, err):
			return w.last, fmt.Errorf("wait for job %s: %w", id, err)
		}
		if got {
			failures = 0 // the stream worked: reconnect, after a pause if it was short
			if err := sleepCtx(ctx, minPoll-time.Since(start)); err != nil {
				return w.last, fmt.Errorf("wait for job %s: %w", id, err)
			}
		} else if failures++; failures > maxStreamFailures {
			if err == nil {
				err = errors.New("the event stream ended without any event")
			}
			return w.last, fmt.Errorf("wait for job %s: %w", id, err)
		}
		if failures > 0 {
			if err := sleepCtx(ctx, backoff(failures)); err != nil {
				return w.last, fmt.Errorf("wait for job %s: %w", id, err)
			}
		}
	}
}

// watch is one Watch's state across reconnections.
type watch struct {
	c      *Client
	id     string
	fn     func(*Job)
	last   *Job   // the job as last seen
	lastID string // the id of the last event
	shown  *Job   // what fn was last called with
}

// show calls fn with j when it differs from what fn saw last.
func (w *watch) show(j *Job) {
	w.last = j
	if w.fn == nil || w.shown != nil && w.shown.State == j.State && w.shown.Progress == j.Progress {
		return
	}
	cp := *j
	w.shown = &cp
	w.fn(j)
}

// stream reads one connection's events until it ends, the job is final or ctx ends. It
// reports whether any event came.
func (w *watch) stream(ctx context.Context) (got bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := w.c.newRequest(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(w.id)+"/events", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if w.lastID != "" {
		req.Header.Set("Last-Event-ID", w.lastID)
	}
	resp, err := w.c.send(req)
	if s := StatusOf(err); s == http.StatusNotFound || s == http.StatusMethodNotAllowed {
		return false, errNoStream
	}
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, errNoStream
	}
	idle := time.AfterFunc(StreamIdle, func() { cancel(errStreamIdle) })
	defer idle.Stop()
	err = readEvents(resp.Body, func() { idle.Reset(StreamIdle) }, func(e event) bool {
		got = true
		w.handle(e)
		return w.last == nil || !w.last.Final()
	})
	if cause := context.Cause(ctx); errors.Is(cause, errStreamIdle) {
		err = cause
	}
	return got, err
}

var errStreamIdle = fmt.Errorf("no event or keep-alive for %v", StreamIdle)

// handle takes one event in.
func (w *watch) handle(e event) {
	if e.ID != "" {
		w.lastID = e.ID
	}
	switch e.Type {
	case wire.EventState:
		var j Job
		if json.Unmarshal(e.Data, &j) == nil && j.ID != "" {
			w.show(&j)
		}
	case wire.EventProgress:
		var p wire.Progress
		if json.Unmarshal(e.Data, &p) == nil && w.last != nil && p.ID == w.last.ID && p.Progress > w.last.Progress {
			j := *w.last
			j.Progress = p.Progress
			w.show(&j)
		}
	}
}

// maxEventLine bounds one line of an event stream.
const maxEventLine = 1 << 20

// readEvents parses the text/event-stream r, calling alive on every line and each for every
// event, until r ends (nil) or fails, or each returns false.
func readEvents(r io.Reader, alive func(), each func(event) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	var e event
	var data []string
	for sc.Scan() {
		alive()
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if len(data) > 0 || e.Type != "" {
				if e.Type == "" {
					e.Type = "message"
				}
				e.Data = []byte(strings.Join(data, "\n"))
				if !each(e) {
					return nil
				}
			}
			e, data = event{ID: e.ID}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment: the keep-alive
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			e.Type = value
		case "data":
			data = append(data, value)
		case "id":
			e.ID = value
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the event stream: %w", err)
	}
	return nil
}
