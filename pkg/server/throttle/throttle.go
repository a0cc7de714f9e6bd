// Package throttle limits how often a key (an email address, a client IP) may do something:
// one token bucket (golang.org/x/time/rate) per key, in a store of bounded size that forgets
// idle keys. The HTTP API uses it for logins and registrations.
package throttle

import (
	"container/list"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is how many keys a Store tracks at most when NewStore is given 0. At about
// 200 bytes a key, a full store takes some 10 MiB.
const DefaultMaxKeys = 50_000

// Limit is a token bucket: Burst attempts at once, refilled at Rate per second.
type Limit struct {
	Rate  rate.Limit
	Burst int
}

// Off reports whether the limit lets everything through.
func (l Limit) Off() bool { return l.Rate == rate.Inf || l.Burst <= 0 }

// String gives the limit in the notation of ParseRate for the rate, with the burst.
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return fmt.Sprintf("%s, burst %d", FormatRate(l.Rate), l.Burst)
}

// refill is how long an empty bucket takes to fill up again: after that long without use, a
// key's bucket is the same as a new one and can be forgotten.
func (l Limit) refill() time.Duration {
	if l.Rate <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(float64(l.Burst) / float64(l.Rate) * float64(time.Second))
}

// ParseRate reads a rate written as N/unit, where unit is s, m or h (or second, minute,
// hour): "10/m" is ten a minute. "0" or "off" turns the limit off (rate.Inf).
func ParseRate(s string) (rate.Limit, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "0" || s == "off" || s == "" {
		return rate.Inf, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("rate %q: want N/s, N/m or N/h (or off)", s)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || count <= 0 || math.IsInf(count, 0) || math.IsNaN(count) {
		return 0, fmt.Errorf("rate %q: %q is not a positive number", s, n)
	}
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	default:
		return 0, fmt.Errorf("rate %q: unit must be s, m or h", s)
	}
	return rate.Limit(count / per.Seconds()), nil
}

// FormatRate writes r the way ParseRate reads it, in the smallest unit that gives a whole count
// when there is one.
func FormatRate(r rate.Limit) string {
	if r == rate.Inf {
		return "off"
	}
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}} {
		n := float64(r) * u.d.Seconds()
		if n >= 1 && math.Abs(n-math.Round(n)) < 1e-9 {
			return fmt.Sprintf("%d/%s", int64(math.Round(n)), u.name)
		}
	}
	return fmt.Sprintf("%g/s", float64(r))
}

// Store holds one token bucket per key. Keys are kept in least-recently-used order: a key idle
// long enough for its bucket to be full again is dropped (it would behave as a new one), and
// when the store is full the least recently used key makes room. It is safe for concurrent use.
type Store struct {
	limit Limit
	max   int

	mu   sync.Mutex
	keys map[string]*list.Element
	lru  *list.List // of *entry, most recently used at the front
}

type entry struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// NewStore returns a Store applying limit to each key, tracking at most maxKeys keys
// (DefaultMaxKeys when maxKeys is 0 or less).
func NewStore(limit Limit, maxKeys int) *Store {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Store{limit: limit, max: maxKeys, keys: map[string]*list.Element{}, lru: list.New()}
}

// Limit returns the store's limit.
func (s *Store) Limit() Limit { return s.limit }

// Len returns how many keys the store tracks.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// reserve takes one token of key's bucket at now. A reservation that is not OK (or has a
// delay) must be cancelled by the caller if it does not go ahead.
func (s *Store) reserve(key string, now time.Time) *rate.Reservation {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetIdle(now)
	el, ok := s.keys[key]
	if ok {
		s.lru.MoveToFront(el)
	} else {
		if s.lru.Len() >= s.max {
			oldest := s.lru.Back()
			s.lru.Remove(oldest)
			delete(s.keys, oldest.Value.(*entry).key)
		}
		el = s.lru.PushFront(&entry{key: key, lim: rate.NewLimiter(s.limit.Rate, s.limit.Burst)})
		s.keys[key] = el
	}
	e := el.Value.(*entry)
	e.last = now
	return e.lim.ReserveN(now, 1)
}

// forgetIdle drops the keys, oldest first, whose buckets have had time to fill up again.
func (s *Store) forgetIdle(now time.Time) {
	idle := s.limit.refill()
	for el := s.lru.Back(); el != nil; el = s.lru.Back() {
		e := el.Value.(*entry)
		if now.Sub(e.last) < idle {
			return
		}
		s.lru.Remove(el)
		delete(s.keys, e.key)
	}
}

// Policy limits one kind of attempt by several keys at once (an email address and a client
// IP): an attempt goes ahead only when every key's bucket has a token, and then takes one from
// each. A refused attempt takes nothing, so that Retry-After is exact: retrying after it
// succeeds unless other attempts came in between.
type Policy struct {
	stores []*Store
	now    func() time.Time
}

// NewPolicy returns a Policy over one Store per kind of key, in the order Allow takes the
// keys. A nil Store, or one whose limit is off, does not limit its key.
func NewPolicy(stores ...*Store) *Policy {
	return &Policy{stores: stores, now: time.Now}
}

// Allow takes one attempt for keys (one per Store given to NewPolicy, in the same order). It
// returns 0 when the attempt may go ahead, or else how long to wait before retrying.
func (p *Policy) Allow(keys ...string) time.Duration {
	wait, _ := p.Take(keys...)
	return wait
}

// Take is Allow that also returns refund, which gives the attempt's tokens back: for an
// attempt that the server could not carry out (its database was down), so that a client
// retrying through an outage is not throttled for it. refund is a no-op when the attempt
// was refused.
func (p *Policy) Take(keys ...string) (wait time.Duration, refund func()) {
	refund = func() {}
	if p == nil {
		return 0, refund
	}
	now := p.now()
	var taken []*rate.Reservation
	for i, s := range p.stores {
		if s == nil || s.limit.Off() || i >= len(keys) {
			continue
		}
		r := s.reserve(keys[i], now)
		if !r.OK() {
			wait = max(wait, s.limit.refill())
			continue
		}
		taken = append(taken, r)
		if d := r.DelayFrom(now); d > 0 {
			wait = max(wait, d)
		}
	}
	if wait > 0 {
		for _, r := range taken {
			r.CancelAt(now)
		}
		return wait, refund
	}
	// Cancelled as of the attempt's own time: rate.Reservation gives nothing back for a time
	// after the one it was made for.
	return 0, func() {
		for _, r := range taken {
			r.CancelAt(now)
		}
	}
}
