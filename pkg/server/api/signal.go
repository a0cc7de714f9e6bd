package api

import "sync"

// Signal tells long-polls in this process that a job may have changed, so that they answer
// at once instead of at their next look at the store. Standalone's converter notifies it; a
// gateway, whose converters run elsewhere, has none and relies on polling.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewSignal returns a Signal.
func NewSignal() *Signal { return &Signal{ch: make(chan struct{})} }

// Notify wakes everything waiting on the channel Wait returned before.
func (s *Signal) Notify() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// Wait returns a channel that is closed by the next Notify.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}
