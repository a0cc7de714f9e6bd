package api

import (
	"context"
	"encoding/base64"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// downAccounts is an account store whose database cannot be reached.
type downAccounts struct{ err error }

func (d downAccounts) Register(context.Context, string, string) (*server.User, error) {
	return nil, d.err
}

func (d downAccounts) Login(context.Context, string, string) (string, time.Time, error) {
	return "", time.Time{}, d.err
}

// slowQueue is a broker that takes far longer than any request should wait to confirm.
type slowQueue struct{ failingQueue }

func (slowQueue) Publish(ctx context.Context, _ string, _ []byte) error {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return errors.New("broker down")
}

func TestEveryUnavailableAnswerCarriesRetryAfter(t *testing.T) {
	unavailable := server.Errorf(server.EUNAVAILABLE, "the account database is unavailable; try again shortly")
	e := newEnv(t, func(c *Config) {
		c.Accounts = downAccounts{err: unavailable}
		c.Ready = func(context.Context) error { return errors.New("db down") }
	})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("ann@example.com:password123"))
	for _, r := range []resp{
		e.do("POST", "/v1/tokens", "", nil, "Authorization", basic),
		e.do("POST", "/v1/users", "", jsonBody(map[string]string{"email": "ann@example.com", "password": "password123"})),
		e.do("GET", "/readyz", "", nil),
	} {
		if r.code != 503 || r.hdr.Get("Retry-After") != "2" {
			t.Errorf("answer %d, Retry-After %q, %s; want 503 with Retry-After 2", r.code, r.hdr.Get("Retry-After"), r.body)
		}
	}
	// A wait of its own is kept, rounded up to whole seconds.
	e2 := newEnv(t, func(c *Config) {
		c.Accounts = downAccounts{err: &server.Error{Code: server.ERATELIMITED, Message: "slow down", RetryAfter: 2500 * time.Millisecond}}
	})
	if r := e2.do("POST", "/v1/tokens", "", nil, "Authorization", basic); r.code != 429 || r.hdr.Get("Retry-After") != "3" {
		t.Errorf("rate limited: %d, Retry-After %q", r.code, r.hdr.Get("Retry-After"))
	}
}

func TestCompletionDoesNotWaitOnADeadBroker(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Service.Queue = slowQueue{}
		c.Service.PublishWait = 200 * time.Millisecond
	})
	tok := e.user("ann@example.com")
	start := time.Now()
	r := e.tutorialUpload(tok, "v.mp4", []byte("x"))
	if took := time.Since(start); r.code != 200 || took > 5*time.Second {
		t.Fatalf("upload with a broker that does not confirm: %d after %v %s", r.code, took, r.body)
	}
	var j jobResp
	if err := r.json(&j); err != nil || j.State != string(server.JobQueued) {
		t.Fatalf("job %+v %v", j, err)
	}
}

// flakyAccounts is an account store that is down while down is set.
type flakyAccounts struct {
	down *atomic.Bool
	server.Accounts
}

func (f flakyAccounts) Login(ctx context.Context, email, password string) (string, time.Time, error) {
	if f.down.Load() {
		return "", time.Time{}, server.Errorf(server.EUNAVAILABLE, "the account database is unavailable; try again shortly")
	}
	return f.Accounts.Login(ctx, email, password)
}

// TestOutageLoginsAreNotThrottled: logins answered 503 (the password was not checked) give
// their attempt back, so a client retrying through an outage can still log in after it;
// logins that were checked still count.
func TestOutageLoginsAreNotThrottled(t *testing.T) {
	var down atomic.Bool
	e := newEnv(t, limits(3, 100), func(c *Config) { c.Accounts = flakyAccounts{down: &down, Accounts: c.Accounts} })
	e.user("ann@example.com") // one login of the three
	down.Store(true)
	for i := range 10 {
		if r := e.do("POST", "/v1/tokens", "", nil, "Authorization", basicAuth("ann@example.com", "password123")); r.code != 503 {
			t.Fatalf("login %d during the outage: %d %s", i, r.code, r.body)
		}
	}
	down.Store(false)
	if got := e.attempts(3, "ann@example.com"); got[0] != 401 || got[1] != 401 || got[2] != 429 {
		t.Fatalf("after the outage: %v, want 401 401 429 (the outage used up nothing)", got)
	}
}
