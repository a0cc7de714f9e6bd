package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/servertest"
)

// openClock opens a database of its own that takes the time from now.
func openClock(t *testing.T, now func() time.Time) *DB {
	t.Helper()
	d, err := Open(context.Background(), filepath.Join(t.TempDir(), "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if now != nil {
		d.now = now
	}
	return d
}

func TestContractUserStore(t *testing.T) {
	servertest.TestUserStore(t, func(t *testing.T) server.UserStore { return openClock(t, nil).Users() })
}

func TestContractJobStore(t *testing.T) {
	servertest.TestJobStore(t, func(t *testing.T, now func() time.Time) server.JobStore { return openClock(t, now).Jobs() }, servertest.JobStoreOptions{})
}

func TestContractUploadStore(t *testing.T) {
	servertest.TestUploadStore(t, func(t *testing.T) server.UploadStore { return openClock(t, nil).Uploads() })
}

func TestContractSentLog(t *testing.T) {
	servertest.TestSentLog(t, func(t *testing.T) server.SentLog { return openClock(t, nil).SentLog() })
}

func TestContractQueue(t *testing.T) {
	const maxAttempts = 3
	servertest.TestQueue(t, func(t *testing.T) server.Queue {
		// No backoff: a retry is due at once, so it is leased without waiting for a poll.
		return openClock(t, nil).Queue(QueueConfig{MaxAttempts: maxAttempts, Backoff: func(int) time.Duration { return 0 }})
	}, servertest.QueueOptions{
		MaxAttempts: maxAttempts,
		DeadLetters: func(t *testing.T, q server.Queue, topic string) int {
			_, dead, err := q.(*Queue).Depth(t.Context(), topic)
			if err != nil {
				t.Fatal(err)
			}
			return dead
		},
	})
}

func TestContractWebhookStore(t *testing.T) {
	servertest.TestWebhookStore(t, func(t *testing.T) server.WebhookStore { return openClock(t, nil).Webhooks() })
}

func TestContractLimitStore(t *testing.T) {
	servertest.TestLimitStore(t, func(t *testing.T) server.LimitStore { return openClock(t, nil).Limits() })
}

func TestContractLease(t *testing.T) {
	servertest.TestLease(t, func(t *testing.T, now func() time.Time) server.Lease { return openClock(t, now).Lease() })
}

func TestContractPersonalTokenStore(t *testing.T) {
	servertest.TestPersonalTokenStore(t, func(t *testing.T) server.PersonalTokenStore { return openClock(t, nil).PersonalTokens() })
}

func TestContractDeadLetters(t *testing.T) {
	const maxAttempts = 3
	servertest.TestDeadLetters(t, func(t *testing.T) server.Queue {
		return openClock(t, nil).Queue(QueueConfig{MaxAttempts: maxAttempts, Backoff: func(int) time.Duration { return 0 }, Poll: 10 * time.Millisecond})
	}, servertest.QueueOptions{MaxAttempts: maxAttempts})
}
