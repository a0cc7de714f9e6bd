package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/inproc"
	"github.com/v2m/v2m/pkg/server/worker"
)

// patience bounds every wait for an event; it only turns a hang into a failure.
const patience = 30 * time.Second

// sseEvent is one event as a client reads it; comments come as type ":".
type sseEvent struct {
	id, typ, data string
}

// sseStream reads one event stream in the background.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// stream opens path with tok (and Last-Event-ID lastID when not "") and checks that it is an
// event stream.
func (e *env) stream(path, tok, lastID string) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		e.t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sseStream{t: e.t, resp: res, events: make(chan sseEvent, 1000), cancel: cancel}
	e.t.Cleanup(s.close)
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.typ != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				s.events <- sseEvent{typ: ":", data: strings.TrimSpace(line[1:])}
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "id":
					ev.id = v
				case "event":
					ev.typ = v
				case "data":
					ev.data = v
				}
			}
		}
	}()
	return s
}

func (s *sseStream) close() { s.cancel(); s.resp.Body.Close() }

// next returns the next event that is not a comment.
func (s *sseStream) next(what string) sseEvent {
	s.t.Helper()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("waiting for %s: the stream ended", what)
			}
			if ev.typ != ":" {
				return ev
			}
		case <-time.After(patience):
			s.t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// ends checks that the stream ends after its comments, with no other event.
func (s *sseStream) ends() {
	s.t.Helper()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if ev.typ != ":" {
				s.t.Fatalf("event %+v where the stream should end", ev)
			}
		case <-time.After(patience):
			s.t.Fatal("the stream did not end")
		}
	}
}

// state decodes a state event, failing the test for anything else, and returns the job and
// the event's id.
func (s *sseStream) state(what, want string) (jobResp, string) {
	s.t.Helper()
	ev := s.next(what)
	var j jobResp
	if ev.typ != "state" || json.Unmarshal([]byte(ev.data), &j) != nil || j.State != want {
		s.t.Fatalf("%s: got %+v, want a state event of a %s job", what, ev, want)
	}
	return j, ev.id
}

// until reads state events until every job of want has been seen in its state there, and
// fails on anything but state and progress events.
func (s *sseStream) until(want map[string]string) {
	s.t.Helper()
	for len(want) > 0 {
		ev := s.next("the states " + fmtStates(want))
		if ev.typ == "progress" {
			continue
		}
		var j jobResp
		if ev.typ != "state" || json.Unmarshal([]byte(ev.data), &j) != nil {
			s.t.Fatalf("event %+v, want a state", ev)
		}
		if want[j.ID] == j.State {
			delete(want, j.ID)
		}
	}
}

func fmtStates(m map[string]string) string {
	var b strings.Builder
	for id, st := range m {
		b.WriteString(id + "=" + st + " ")
	}
	return b.String()
}

// driven is a converter whose progress the test drives: each value sent on steps is
// reported, and closing steps ends the conversion.
type driven struct{ steps chan int }

func (d driven) Convert(ctx context.Context, _, dst string, _ server.Conversion, progress func(int)) error {
	for {
		select {
		case p, ok := <-d.steps:
			if !ok {
				return os.WriteFile(dst, []byte("ID3 mp3"), 0o600)
			}
			progress(p)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// eventsEnv is an API with a bus and a real converter on the queue, started by convert.
type eventsEnv struct {
	*env
	bus   *inproc.Bus
	steps chan int
}

func newEventsEnv(t *testing.T, publish bool, edit ...func(*Config)) *eventsEnv {
	bus := inproc.New()
	e := newEnv(t, append([]func(*Config){func(c *Config) {
		c.Updates = bus
		if publish {
			c.Service.Updates = bus
		}
	}}, edit...)...)
	return &eventsEnv{env: e, bus: bus, steps: make(chan int)}
}

// convert starts the converter; with publish it announces its changes on the bus.
func (e *eventsEnv) convert(publish bool) {
	w := &worker.Converter{Jobs: e.db.Jobs(), Blobs: e.blobs, Queue: e.q, Converter: driven{e.steps}, TmpDir: e.t.TempDir()}
	if publish {
		w.Updates = e.bus
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.q.Consume(ctx, server.TopicVideo, 1, w.Handle) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

func (e *eventsEnv) job(tok string) jobResp {
	e.t.Helper()
	var j jobResp
	if r := e.tutorialUpload(tok, "a.mp4", []byte("video")); r.code != 200 || r.json(&j) != nil {
		e.t.Fatalf("upload: %d %s", r.code, r.body)
	}
	return j
}

// waitDone long-polls job id until it is done.
func (e *eventsEnv) waitDone(tok, id string) {
	e.t.Helper()
	if r := e.do("GET", "/v1/jobs/"+id+"?wait=30s", tok, nil); !strings.Contains(string(r.body), `"state":"done"`) {
		e.t.Fatalf("job %s not done: %s", id, r.body)
	}
}

func TestEventsStatesAndRisingProgressInOrder(t *testing.T) {
	// An hour between reads of the store: after the first event, all comes from the bus.
	e := newEventsEnv(t, true, func(c *Config) { c.EventsPoll = time.Hour })
	tok := e.user("ann@example.com")
	j := e.job(tok)
	s := e.stream("/v1/jobs/"+j.ID+"/events", tok, "")
	s.state("the first event", "queued")
	e.convert(true)
	s.state("the claim", "converting")
	start := time.Now()
	for p := 1; p <= 60; p++ {
		e.steps <- p
	}
	last, progressEvents := 0, 0
	for last < 60 {
		ev := s.next("progress up to 60")
		var p struct {
			ID       string
			Progress int
		}
		if ev.typ != "progress" || json.Unmarshal([]byte(ev.data), &p) != nil || p.ID != j.ID || p.Progress <= last {
			t.Fatalf("after progress %d: %+v, want a rising progress event of job %s", last, ev, j.ID)
		}
		last, progressEvents = p.Progress, progressEvents+1
	}
	if limit := 2 + int(time.Since(start)/(200*time.Millisecond)); progressEvents > limit {
		t.Errorf("%d progress events in %v: more than about 4 a second", progressEvents, time.Since(start))
	}
	close(e.steps)
	ev := s.next("the done state")
	var got, want map[string]any
	r := e.do("GET", "/v1/jobs/"+j.ID, tok, nil)
	if ev.typ != "state" || json.Unmarshal([]byte(ev.data), &got) != nil || r.json(&want) != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("last event %+v, want the job as GET returns it: %s", ev, r.body)
	}
	if got["state"] != "done" {
		t.Fatalf("last state %v, want done", got["state"])
	}
	updated, _ := time.Parse(time.RFC3339Nano, want["updated_at"].(string))
	if ev.id != strconv.FormatInt(updated.UnixMilli(), 10) {
		t.Errorf("event id %q, want the job's updated_at in ms (%d)", ev.id, updated.UnixMilli())
	}
	s.ends() // a final job's stream ends
}

func TestEventsReconnectMissesNoState(t *testing.T) {
	e := newEventsEnv(t, true)
	tok := e.user("ann@example.com")
	a := e.job(tok)
	one := e.stream("/v1/jobs/"+a.ID+"/events", tok, "")
	all := e.stream("/v1/events", tok, "")
	_, oneID := one.state("a queued", "queued")
	_, allID := all.state("a queued, on all", "queued")
	one.close()
	all.close()
	// Both clients are away while a is converted and b is created and converted.
	e.convert(true)
	close(e.steps)
	e.waitDone(tok, a.ID)
	b := e.job(tok)
	e.waitDone(tok, b.ID)

	one = e.stream("/v1/jobs/"+a.ID+"/events", tok, oneID)
	one.state("a done, after reconnecting", "done")
	one.ends()
	all = e.stream("/v1/events", tok, allID)
	all.until(map[string]string{a.ID: "done", b.ID: "done"})
}

func TestEventsWithoutTheBusComeFromTheStore(t *testing.T) {
	// The bus brings nothing: neither the service nor the converter publish on it.
	e := newEventsEnv(t, false, func(c *Config) { c.EventsPoll = 50 * time.Millisecond })
	tok := e.user("ann@example.com")
	j := e.job(tok)
	s := e.stream("/v1/jobs/"+j.ID+"/events", tok, "")
	s.state("queued", "queued")
	e.convert(false)
	s.state("converting, from the store", "converting")
	e.steps <- 42
	ev := s.next("progress 42")
	if ev.typ != "progress" || ev.data != `{"id":"`+j.ID+`","progress":42}` {
		t.Fatalf("event %+v, want progress 42", ev)
	}
	close(e.steps)
	s.state("done, from the store", "done")
	s.ends()
}

func TestEventsOnlyTheOwners(t *testing.T) {
	e := newEventsEnv(t, true)
	ann, bob := e.user("ann@example.com"), e.user("bob@example.com")
	j := e.job(ann)
	for _, path := range []string{"/v1/jobs/" + j.ID + "/events", "/v1/jobs/nosuchjob/events", "/v1/jobs/" + server.NewID() + "/events"} {
		if r := e.do("GET", path, bob, nil); r.code != 404 || r.errCode() != "not_found" {
			t.Errorf("bob GET %s: %d %s, want 404 not_found", path, r.code, r.body)
		}
	}
	if r := e.do("GET", "/v1/events", "", nil); r.code != 401 {
		t.Errorf("GET /v1/events without a token: %d", r.code)
	}
	bobs := e.stream("/v1/events", bob, "")
	e.convert(true)
	close(e.steps)
	e.waitDone(ann, j.ID)
	mine := e.job(bob) // after all of ann's changes
	// Bob's job may be converted already when its first event goes out: only its id counts.
	ev := bobs.next("bob's own job first")
	var got jobResp
	if ev.typ != "state" || json.Unmarshal([]byte(ev.data), &got) != nil || got.ID != mine.ID {
		t.Fatalf("bob's stream showed %+v, want only his own job %s", ev, mine.ID)
	}
	e.noErrorLogs()
}

func TestEventsOfAFinalJobEnd(t *testing.T) {
	e := newEventsEnv(t, true)
	tok := e.user("ann@example.com")
	j := e.job(tok)
	e.finish(j.ID, []byte("mp3"))
	s := e.stream("/v1/jobs/"+j.ID+"/events", tok, "")
	if h := s.resp.Header; h.Get("Cache-Control") != "no-cache" {
		t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
	}
	s.state("the final state", "done")
	s.ends()

	failed := e.job(tok)
	if _, err := e.db.Jobs().FailJob(context.Background(), failed.ID, "no audio stream"); err != nil {
		t.Fatal(err)
	}
	s = e.stream("/v1/jobs/"+failed.ID+"/events", tok, "")
	if j, _ := s.state("the failed state", "failed"); j.Error != "no audio stream" {
		t.Fatalf("failed job's error %q", j.Error)
	}
	s.ends()
}

func TestDrainEndsEventStreams(t *testing.T) {
	e := newEventsEnv(t, true)
	srv := e.srv.Config.Handler.(*Server)
	tok := e.user("ann@example.com")
	j := e.job(tok)
	one := e.stream("/v1/jobs/"+j.ID+"/events", tok, "")
	all := e.stream("/v1/events", tok, "")
	one.state("queued", "queued")
	all.state("queued, on all", "queued")
	srv.Drain()
	one.ends()
	all.ends()
}

func TestIdleEventStreamOutlivesTheWriteTimeout(t *testing.T) {
	e := newEventsEnv(t, true, func(c *Config) {
		c.Limits = Limits{WriteTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond}
		c.KeepAlive = 50 * time.Millisecond
	})
	tok := e.user("ann@example.com")
	j := e.job(tok)
	s := e.stream("/v1/jobs/"+j.ID+"/events", tok, "")
	s.state("queued", "queued")
	// 20 keep-alives are a second of idle stream: three times the write timeout.
	for n := 0; n < 20; {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the idle stream ended after %d keep-alives", n)
			}
			if ev.typ != ":" || ev.data != "keep-alive" {
				t.Fatalf("event %+v on an idle stream", ev)
			}
			n++
		case <-time.After(patience):
			t.Fatal("no keep-alive")
		}
	}
	e.finish(j.ID, []byte("mp3"))
	s.state("done, after the idle time", "done")
}
