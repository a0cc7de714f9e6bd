package disk

import (
	"context"
	"sync"
)

// locks hands out one-slot locks by key that a waiter can give up on; an entry lives only
// while someone holds or waits for it.
type locks struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	refs int
	slot chan struct{}
}

func newLocks() *locks { return &locks{m: map[string]*lockEntry{}} }

func (l *locks) ref(key string) *lockEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[key]
	if e == nil {
		e = &lockEntry{slot: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	return e
}

func (l *locks) unref(key string, e *lockEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, key)
	}
}

// lock waits for key's lock until ctx ends, and returns the function that releases it.
func (l *locks) lock(ctx context.Context, key string) (unlock func(), err error) {
	e := l.ref(key)
	select {
	case e.slot <- struct{}{}:
		return func() { <-e.slot; l.unref(key, e) }, nil
	case <-ctx.Done():
		l.unref(key, e)
		return nil, ctx.Err()
	}
}

// tryLock takes key's lock when it is free.
func (l *locks) tryLock(key string) (unlock func(), ok bool) {
	e := l.ref(key)
	select {
	case e.slot <- struct{}{}:
		return func() { <-e.slot; l.unref(key, e) }, true
	default:
		l.unref(key, e)
		return nil, false
	}
}
