package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// DefaultRevocationsRefresh is how often a gateway fetches the revoked tokens by default.
const DefaultRevocationsRefresh = 3 * time.Second

// RemoteRevocations is the gateway's copy of the auth service's revoked tokens: a
// server.RevocationChecker answered from memory, refreshed from GET /v1/revocations every
// Interval by Run. A token revoked through any gateway is thus refused by every gateway within
// about Interval (at once by the gateway that forwarded the revocation, see Remote).
//
// A revocation is never undone, so each refresh adds to the set what it does not hold yet,
// and entries are dropped only once their token has expired. While the auth service cannot be
// reached the last known set keeps being used, and the failure is logged (once when it starts,
// then once a minute, and when it ends); revocations made meanwhile reach this gateway when
// the auth service is back. Until the first successful fetch, Revoked answers EUNAVAILABLE: a
// token is not accepted while it is not known whether it was revoked.
type RemoteRevocations struct {
	URL      string // e.g. http://auth:8081/v1/revocations
	Client   *http.Client
	Interval time.Duration // DefaultRevocationsRefresh when zero
	Logger   *slog.Logger

	fetch sync.Mutex // one fetch at a time

	mu        sync.RWMutex // guards the fields below; never held across the network
	set       map[string]time.Time
	states    map[string]UserState // by SubjectKey: the disabled users and the administrators
	loaded    bool
	fetchedAt time.Time // when the last successful fetch was sent
	failSince time.Time // zero while fetches succeed
	lastWarn  time.Time
}

var errRevocationsUnknown = &server.Error{Code: server.EUNAVAILABLE, RetryAfter: time.Second,
	Message: "the list of revoked tokens is not loaded yet; retry in a moment"}

// Revoked implements server.RevocationChecker.
func (r *RemoteRevocations) Revoked(ctx context.Context, jti string) (bool, error) {
	r.loadOnce(ctx)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.loaded {
		return false, errRevocationsUnknown
	}
	exp, ok := r.set[jti]
	return ok && time.Now().Before(exp), nil
}

// loadOnce fetches the set when it was never loaded, so that the first requests need not
// wait for Run's tick.
func (r *RemoteRevocations) loadOnce(ctx context.Context) {
	if !r.Loaded() && r.fetch.TryLock() {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = r.refreshLocked(fctx)
		cancel()
		r.fetch.Unlock()
	}
}

// UserState implements UserStates from the users' states the auth service lists with the
// revocations: a user disabled or enabled, or no longer an administrator, is known to this
// gateway within about Interval (at once when it went through this gateway, see
// SetDisabled). A token issued since the last fetch (to the second) may know better than the
// list: an administrator's token issued after a grant keeps its role.
func (r *RemoteRevocations) UserState(ctx context.Context, subject string, issuedAt time.Time) (bool, bool, error) {
	r.loadOnce(ctx)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.loaded {
		return false, false, errRevocationsUnknown
	}
	st := r.states[SubjectKey(subject)]
	return st.Disabled, st.Admin || !issuedAt.Before(r.fetchedAt.Truncate(time.Second)), nil
}

// SetDisabled records now that the user email was disabled or enabled, until the next refresh
// says so too.
func (r *RemoteRevocations) SetDisabled(email string, disabled bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.states == nil {
		r.states = map[string]UserState{}
	}
	k := SubjectKey(email)
	st := r.states[k]
	st.Subject, st.Disabled = k, disabled
	r.states[k] = st
}

// Loaded reports whether the set has been fetched once.
func (r *RemoteRevocations) Loaded() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loaded
}

// Len returns how many revocations the set holds.
func (r *RemoteRevocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.set)
}

// Add puts a revocation into the set now.
func (r *RemoteRevocations) Add(rev server.Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(rev)
}

func (r *RemoteRevocations) addLocked(rev server.Revocation) {
	if r.set == nil {
		r.set = map[string]time.Time{}
	}
	if rev.ID != "" && rev.ExpiresAt.After(r.set[rev.ID]) {
		r.set[rev.ID] = rev.ExpiresAt
	}
}

// Run refreshes the set every Interval until ctx ends.
func (r *RemoteRevocations) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultRevocationsRefresh
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fctx, cancel := context.WithTimeout(ctx, max(interval, 5*time.Second))
		_ = r.Refresh(fctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh fetches the revocations now and adds them to the set.
func (r *RemoteRevocations) Refresh(ctx context.Context) error {
	r.fetch.Lock()
	defer r.fetch.Unlock()
	return r.refreshLocked(ctx)
}

func (r *RemoteRevocations) refreshLocked(ctx context.Context) error {
	sent := time.Now()
	list, states, err := r.get(ctx)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err != nil {
		if r.failSince.IsZero() {
			r.failSince = now
		}
		if now.Sub(r.lastWarn) >= time.Minute {
			r.lastWarn = now
			log.Warn("cannot fetch the revoked tokens from auth; using the last known list",
				"err", err, "failing_since", r.failSince, "known", len(r.set), "loaded", r.loaded)
		}
		return err
	}
	if !r.failSince.IsZero() {
		log.Info("fetching the revoked tokens from auth works again", "failed_for", now.Sub(r.failSince).Round(time.Second).String())
		r.failSince, r.lastWarn = time.Time{}, time.Time{}
	}
	for _, rev := range list {
		r.addLocked(rev)
	}
	r.fetchedAt = sent
	r.states = make(map[string]UserState, len(states))
	for _, st := range states {
		r.states[st.Subject] = st
	}
	for id, exp := range r.set {
		if !now.Before(exp) {
			delete(r.set, id)
		}
	}
	if r.set == nil {
		r.set = map[string]time.Time{}
	}
	r.loaded = true
	return nil
}

func (r *RemoteRevocations) get(ctx context.Context) ([]server.Revocation, []UserState, error) {
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("revocations request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch revocations: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetch revocations: %s", resp.Status)
	}
	var body struct {
		Revocations []server.Revocation `json:"revocations"`
		Users       []UserState         `json:"users"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		return nil, nil, fmt.Errorf("decode revocations: %w", err)
	}
	return body.Revocations, body.Users, nil
}
