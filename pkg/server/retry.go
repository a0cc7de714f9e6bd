package server

import (
	"math/rand/v2"
	"time"
)

// The retry policy of every queue, standalone's and RabbitMQ's alike, so that a setting means
// the same in both modes.
const (
	// DefaultMaxAttempts is how many deliveries a video message gets before it is
	// dead-lettered and its job fails: about 15 s of retries with DefaultBackoff.
	DefaultMaxAttempts = 5
	// DefaultMailAttempts is how many times a mail is tried before its event is
	// dead-lettered: about an hour with DefaultBackoff, so that a mail server that is down for
	// maintenance loses no mail.
	DefaultMailAttempts = 20
	// MaxBackoff caps DefaultBackoff.
	MaxBackoff = 5 * time.Minute
)

// DefaultBackoff returns how long a message waits after its attempt-th delivery failed: 1 s, 2 s,
// 4 s and so on, doubling up to MaxBackoff, less up to a quarter of random jitter so that
// messages that failed together do not come back together.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 20)
	d = min(d, MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d/4)))
}
