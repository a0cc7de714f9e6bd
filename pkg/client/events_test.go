package client_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client"
)

const eventsRoute = "GET /v1/jobs/{id}/events"

// watchJob runs Watch in the background; seen receives a copy of every job fn is called with.
func watchJob(c *client.Client, id string) (seen <-chan client.Job, result <-chan watchResult) {
	ch := make(chan client.Job, 100)
	res := make(chan watchResult, 1)
	go func() {
		j, err := c.Watch(context.Background(), id, func(j *client.Job) { ch <- *j })
		res <- watchResult{j, err}
	}()
	return ch, res
}

type watchResult struct {
	job *client.Job
	err error
}

// see waits for a job in state with at least progress pct, failing on anything going back.
func see(t *testing.T, seen <-chan client.Job, state string, pct int) client.Job {
	t.Helper()
	for {
		select {
		case j := <-seen:
			if j.State == state && j.Progress >= pct {
				return j
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("gave up waiting for the job %s at %d%%", state, pct)
		}
	}
}

func done(t *testing.T, result <-chan watchResult) *client.Job {
	t.Helper()
	select {
	case r := <-result:
		if r.err != nil || r.job == nil || r.job.State != client.JobDone || r.job.MP3FID == "" {
			t.Fatalf("Watch returned %+v, %v; want the done job", r.job, r.err)
		}
		return r.job
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not return once the job was done")
	}
	return nil
}

func TestWatchFollowsStatesAndProgress(t *testing.T) {
	steps := make(chan int)
	s := testserver.New(t, testserver.Options{Convert: testserver.Stepped(steps)})
	c := newUser(t, s, "a@example.com")
	j := upload(t, c, "talk.mp4", []byte("a video"))
	seen, result := watchJob(c, j.ID)
	see(t, seen, client.JobConverting, 0)
	last := 0
	for _, p := range []int{20, 50, 80} {
		steps <- p
		got := see(t, seen, client.JobConverting, p)
		if got.Progress < last || got.ID != j.ID {
			t.Fatalf("progress went from %d to %d", last, got.Progress)
		}
		last = got.Progress
	}
	close(steps)
	if got := done(t, result); got.Progress != 100 || got.FinishedAt == nil {
		t.Fatalf("done job %+v", got)
	}
	if n := len(s.Requests(eventsRoute)); n != 1 {
		t.Errorf("%d event streams opened, want 1", n)
	}
	for _, r := range s.Requests(jobRoute) {
		if r.Path == "/v1/jobs/"+j.ID && r.Query != "" {
			t.Errorf("Watch long-polled (%s?%s) a server that has event streams", r.Path, r.Query)
		}
	}
}

// cutProxy forwards to target, cutting the first event stream after its first event, and
// records the Last-Event-ID of every stream request.
type cutProxy struct {
	target string
	mu     sync.Mutex
	lastID []string
}

func (p *cutProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.lastID = append(p.lastID, r.Header.Get("Last-Event-ID"))
	first := len(p.lastID) == 1
	p.mu.Unlock()
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), nil)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	rd := bufio.NewReader(resp.Body)
	inEvent := false
	for {
		line, err := rd.ReadString('\n')
		if _, werr := io.WriteString(w, line); werr != nil || err != nil {
			return
		}
		http.NewResponseController(w).Flush()
		if strings.HasPrefix(line, "data:") {
			inEvent = true
		}
		if line == "\n" && inEvent && first {
			return // the connection breaks right after the first event
		}
	}
}

func TestWatchReconnectsWithLastEventID(t *testing.T) {
	release := make(chan struct{})
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(release)})
	c := newUser(t, s, "a@example.com")
	j := upload(t, c, "talk.mp4", []byte("hold: a video"))
	proxy := &cutProxy{target: s.URL}
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	pc, err := client.New(ps.URL, client.WithToken(c.Token))
	if err != nil {
		t.Fatal(err)
	}
	seen, result := watchJob(pc, j.ID)
	first := <-seen // then the stream breaks, and Watch must reconnect to see the job done
	close(release)
	done(t, result)
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if len(proxy.lastID) < 2 || proxy.lastID[0] != "" || proxy.lastID[1] == "" {
		t.Fatalf("Last-Event-ID of the streams: %q; want none, then the first event's", proxy.lastID)
	}
	if first.ID != j.ID {
		t.Fatalf("first job seen %+v", first)
	}
}

// oldServer forwards to target, except that it has no event streams: they are 404, as an
// older v2md answers them.
func oldServer(t *testing.T, target string) string {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no route GET `+r.URL.Path+`"}}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestWatchLongPollsAnOlderServer(t *testing.T) {
	release := make(chan struct{})
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(release)})
	c := newUser(t, s, "a@example.com")
	j := upload(t, c, "talk.mp4", []byte("hold: a video"))
	theirs := upload(t, newUser(t, s, "b@example.com"), "theirs.mp4", []byte("theirs"))
	oc, err := client.New(oldServer(t, s.URL), client.WithToken(c.Token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Watch(context.Background(), theirs.ID, nil); !client.IsNotFound(err) {
		t.Fatalf("Watch of someone else's job on an older server: %v, want not found", err)
	}
	poll := s.Next(jobRoute)
	go func() { <-poll; close(release) }()
	seen, result := watchJob(oc, j.ID)
	done(t, result)
	if len(seen) == 0 {
		t.Error("fn was never called")
	}
	var polled bool
	for _, r := range s.Requests(jobRoute) {
		polled = polled || r.Path == "/v1/jobs/"+j.ID && r.Query == "wait=30s"
	}
	if !polled {
		t.Error("Watch did not long-poll the older server")
	}
}

func TestWatchErrors(t *testing.T) {
	s := testserver.New(t, testserver.Options{Convert: gatedConvert(nil)}) // held until the end
	c := newUser(t, s, "a@example.com")
	theirs := upload(t, newUser(t, s, "b@example.com"), "theirs.mp4", []byte("hold"))
	ctx := context.Background()
	for _, id := range []string{theirs.ID, "nope"} {
		if _, err := c.Watch(ctx, id, nil); !client.IsNotFound(err) {
			t.Errorf("Watch(%s): %v, want not found", id, err)
		}
	}
	job := upload(t, c, "x.mp4", []byte("hold"))
	ctx, cancel := context.WithCancel(ctx)
	seen := make(chan struct{}, 10)
	go func() { <-seen; cancel() }()
	j, err := c.Watch(ctx, job.ID, func(*client.Job) { seen <- struct{}{} })
	if !errors.Is(err, context.Canceled) || j == nil || j.Final() {
		t.Fatalf("Watch after its context ended: %+v, %v", j, err)
	}
}
