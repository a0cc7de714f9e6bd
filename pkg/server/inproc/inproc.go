// Package inproc implements server.JobUpdates inside one process: standalone's converter
// feeds it, and a gateway relays the updates of its broker into one, so that each of its
// event streams subscribes here rather than on the broker.
package inproc

import (
	"context"
	"sync"

	"github.com/v2m/v2m/pkg/server"
)

// DefaultBuffer is how many updates a subscriber may fall behind before it loses some.
const DefaultBuffer = 256

// Bus is a server.JobUpdates in memory. The zero value is not usable; call New.
type Bus struct {
	buffer int

	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct{ ch chan server.JobUpdate }

var _ server.JobUpdates = (*Bus)(nil)

// New returns a Bus whose subscribers each buffer DefaultBuffer updates.
func New() *Bus { return &Bus{buffer: DefaultBuffer, subs: map[*subscriber]struct{}{}} }

// Publish hands u to every subscriber that has room for it; it never blocks.
func (b *Bus) Publish(_ context.Context, u server.JobUpdate) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- u:
		default: // behind: this one loses u, the others do not wait
		}
	}
	return nil
}

// Subscribe returns the updates published from now on until ctx ends.
func (b *Bus) Subscribe(ctx context.Context) (<-chan server.JobUpdate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &subscriber{ch: make(chan server.JobUpdate, b.buffer)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs, s)
		close(s.ch)
		b.mu.Unlock()
	})
	return s.ch, nil
}

// Relay publishes on to every update of from until ctx ends: a gateway's one subscription to
// its broker, shared by all its event streams.
func Relay(ctx context.Context, from server.JobUpdates, to server.JobUpdates) error {
	ch, err := from.Subscribe(ctx)
	if err != nil {
		return err
	}
	for u := range ch {
		_ = to.Publish(ctx, u)
	}
	return nil
}
