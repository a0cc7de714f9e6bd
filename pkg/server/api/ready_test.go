package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// TestReadyLogsChangesOnly: a dependency that is down makes every probe answer 503, but is
// logged once, when readiness is lost, and once more when it is back.
func TestReadyLogsChangesOnly(t *testing.T) {
	var logs syncBuffer
	var down atomic.Bool
	down.Store(true)
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.Ready = func(context.Context) error {
			if down.Load() {
				return errors.New("smtp server down")
			}
			return nil
		}
	})
	for range 5 {
		if r := e.do("GET", "/readyz", "", nil); r.code != 503 {
			t.Fatalf("readyz while down: %d", r.code)
		}
	}
	down.Store(false)
	for range 3 {
		if r := e.do("GET", "/readyz", "", nil); r.code != 200 {
			t.Fatalf("readyz when back: %d", r.code)
		}
	}
	out := logs.String()
	if n := strings.Count(out, `msg="not ready"`); n != 1 {
		t.Errorf("%d 'not ready' lines for 5 probes of one outage, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="ready again"`); n != 1 {
		t.Errorf("%d 'ready again' lines, want 1:\n%s", n, out)
	}
}
