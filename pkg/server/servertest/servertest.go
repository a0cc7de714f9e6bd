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
