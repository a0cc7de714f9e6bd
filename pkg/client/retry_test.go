package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client"
)

// waits records the waits a RetryPolicy announces.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) add(d time.Duration, _ error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// TestUploadRidesOutUnavailable: while the server answers 503 with Retry-After to the
// upload's start, one of its parts and its completion, the client waits as told and sends
// again; the upload ends with one job and the whole video.
func TestUploadRidesOutUnavailable(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	var w waits
	c.Retry = client.RetryPolicy{For: time.Minute, Waiting: w.add}
	path, data := writeFile(t, 2500)
	s.Faults.Unavailable(createRoute, 1, 1)
	s.Faults.Unavailable("PUT /v1/uploads/{id}/parts/1", 1, 2)
	s.Faults.Unavailable(completeRoute, 1, 1)
	job, err := c.Upload(context.Background(), path, client.UploadOptions{Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.all(); len(got) != 4 || got[0] != time.Second {
		t.Fatalf("waits %v, want 4 of 1s (Retry-After)", got)
	}
	if n := len(s.Requests(completeRoute)); n != 2 {
		t.Fatalf("%d completes, want 2", n)
	}
	jobs, err := c.Jobs(context.Background())
	if err != nil || len(jobs) != 1 || jobs[0].ID != job.ID || !bytes.Equal(s.Video(t, job.ID), data) {
		t.Fatalf("jobs %+v %v", jobs, err)
	}
}

// TestRetryGivesUp: a server unavailable for longer than RetryPolicy.For gets the 503 back,
// with its Retry-After; without a policy a request is sent once; a registration is never
// sent twice (it is not idempotent).
func TestRetryGivesUp(t *testing.T) {
	s := testserver.New(t, testserver.Options{PartSize: 1000})
	c := newUser(t, s, "a@example.com")
	s.Faults.Unavailable("GET /v1/jobs", 1, 100)
	start := time.Now()
	_, err := c.Jobs(context.Background())
	if client.StatusOf(err) != http.StatusServiceUnavailable || len(s.Requests("GET /v1/jobs")) != 1 {
		t.Fatalf("no policy: %v after %d requests", err, len(s.Requests("GET /v1/jobs")))
	}
	c.Retry = client.RetryPolicy{For: 2500 * time.Millisecond}
	_, err = c.Jobs(context.Background())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RetryAfter != time.Second || ae.Code != "unavailable" {
		t.Fatalf("after giving up: %v", err)
	}
	if n := len(s.Requests("GET /v1/jobs")); n != 1+3 {
		t.Fatalf("%d requests, want 1 and then 3 (two waits of 1s fit in 2.5s)", n)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("gave up after %v", took)
	}
	before := len(s.Requests("POST /v1/users"))
	s.Faults.Unavailable("POST /v1/users", 1, 100)
	if _, err := c.Register(context.Background(), "b@example.com", "password1"); client.StatusOf(err) != 503 {
		t.Fatalf("register: %v", err)
	}
	if n := len(s.Requests("POST /v1/users")) - before; n != 1 {
		t.Fatalf("register sent %d times", n)
	}
}
