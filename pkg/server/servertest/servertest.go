// Package servertest holds contract suites for the interfaces of package server. Every
// adapter's tests run the suites of the interfaces it implements against its real backend,
// so that the adapters agree on every edge case that server's interface docs promise.
//
// A suite takes a constructor that returns a fresh, empty store for each subtest. The suites
// import only testing and server, never an adapter.
package servertest

import (
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Clock is a manual clock for stores whose times the suites control: it stands still until
// Advance moves it. Its times are UTC with millisecond precision, as every store keeps them.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to a fixed instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d, rounded down to a millisecond.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d).Truncate(time.Millisecond)
}

// race runs f(0) to f(n-1) on goroutines of their own, released at once, and returns how many
// returned nil; an error other than ECONFLICT (what losing the race gives) fails the test.
func race(t *testing.T, what string, n int, f func(i int) error) (won int) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !server.IsCode(err, server.ECONFLICT):
			t.Errorf("%s in the race: %v, want nil or %s", what, err, server.ECONFLICT)
		}
	}
	return won
}

// wantCode fails the test unless err carries code ("" means no error).
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !server.IsCode(err, code) {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, server.ErrorCode(err), code)
	}
}
