package servertest

import (
	"testing"

	"github.com/v2m/v2m/pkg/server"
)

// NewSentLog returns a fresh, empty SentLog.
type NewSentLog func(t *testing.T) server.SentLog

// TestSentLog checks a SentLog against the contract of server.SentLog.
func TestSentLog(t *testing.T, newLog NewSentLog) {
	sent := func(t *testing.T, s server.SentLog, key string, want bool) {
		t.Helper()
		got, err := s.Sent(t.Context(), key)
		if err != nil || got != want {
			t.Fatalf("Sent(%q) = %v, %v; want %v", key, got, err, want)
		}
	}
	t.Run("UnmarkedNotSent", func(t *testing.T) {
		sent(t, newLog(t), "job-1:done", false)
	})
	t.Run("MarkSent", func(t *testing.T) {
		s := newLog(t)
		wantCode(t, "MarkSent", s.MarkSent(t.Context(), "job-1:done"), "")
		sent(t, s, "job-1:done", true)
		sent(t, s, "job-1:failed", false)
		sent(t, s, "job-2:done", false)
	})
	t.Run("MarkSentAgain", func(t *testing.T) {
		s := newLog(t)
		for range 3 {
			wantCode(t, "MarkSent of a marked key", s.MarkSent(t.Context(), "job-1:done"), "")
		}
		sent(t, s, "job-1:done", true)
	})
}
