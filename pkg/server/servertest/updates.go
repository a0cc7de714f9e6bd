package servertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// NewJobUpdates returns, for one subtest, a function that opens peers on one fresh bus: each
// call is one process's connection to it (the same value is fine for a bus in memory).
// Updates published by any peer reach the subscribers of every peer. A subscriber must keep
// at least 100 updates it has not read yet.
type NewJobUpdates func(t *testing.T) (peer func() server.JobUpdates)

// keptBehind is how many updates a subscriber that does not read keeps at least.
const keptBehind = 100

// TestJobUpdates checks a JobUpdates against the contract of server.JobUpdates.
func TestJobUpdates(t *testing.T, newBus NewJobUpdates) {
	t.Run("EverySubscriberGetsEveryUpdateInOrder", func(t *testing.T) {
		peer := newBus(t)
		a, b := subscribe(t, peer()), subscribe(t, peer())
		pub := peer()
		want := updates("job1", 20)
		for _, u := range want {
			publishUpdate(t, pub, u)
		}
		for name, ch := range map[string]<-chan server.JobUpdate{"first": a, "second": b} {
			for i, w := range want {
				got := receiveUpdate(t, ch, fmt.Sprintf("update %d at the %s subscriber", i, name))
				if !sameUpdate(got, w) {
					t.Fatalf("%s subscriber: update %d is %+v, want %+v", name, i, got, w)
				}
			}
		}
	})
	t.Run("NothingIsKeptForLaterSubscribers", func(t *testing.T) {
		peer := newBus(t)
		pub := peer()
		publishUpdate(t, pub, updates("nobody", 1)[0]) // no one listens: not an error
		// A witness sees "before" go by, so that it is not on its way any more when ch
		// subscribes: ch must not get it.
		witness := subscribe(t, peer())
		before := updates("before", 1)[0]
		publishUpdate(t, pub, before)
		receivePast(t, witness, before, "nobody")
		ch := subscribe(t, peer())
		marker := updates("marker", 1)[0]
		publishUpdate(t, pub, marker)
		if got := receiveUpdate(t, ch, "the marker"); !sameUpdate(got, marker) {
			t.Fatalf("first update after subscribing is %+v, want the marker %+v", got, marker)
		}
	})
	t.Run("SubscriptionEndsWithItsContext", func(t *testing.T) {
		peer := newBus(t)
		ctx, cancel := context.WithCancel(t.Context())
		ch, err := peer().Subscribe(ctx)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		cancel()
		deadline := time.After(patience)
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-deadline:
				t.Fatal("the channel was not closed after the subscription's context ended")
			}
		}
	})
	t.Run("SlowSubscriberHoldsNoOneUp", func(t *testing.T) {
		peer := newBus(t)
		slow := subscribe(t, peer()) // never read until the end
		pub := peer()
		all := updates("busy", 3000)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, u := range all {
				if err := pub.Publish(t.Context(), u); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(patience):
			t.Fatal("Publish blocked on a subscriber that does not read")
		}
		fresh := subscribe(t, peer())
		marker := updates("marker", 1)[0]
		publishUpdate(t, pub, marker)
		// Updates on their way through a broker when it subscribed may reach it first.
		receivePast(t, fresh, marker, "busy")
		// The slow one kept what it had room for (at least keptBehind), in order.
		last := -1
		for range keptBehind {
			u := receiveUpdate(t, slow, "the slow subscriber's updates")
			if u.JobID != "busy" || u.Progress <= last {
				t.Fatalf("the slow subscriber got %+v after progress %d: out of order", u, last)
			}
			last = u.Progress
		}
	})
}

// updates returns n updates of job id: a state change, then rising progress (Progress = i).
func updates(id string, n int) []server.JobUpdate {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	out := make([]server.JobUpdate, n)
	for i := range out {
		out[i] = server.JobUpdate{Kind: server.UpdateProgress, JobID: id, Owner: "ann@example.com",
			State: server.JobConverting, Progress: i, At: at.Add(time.Duration(i) * time.Millisecond)}
	}
	if n > 0 {
		out[0].Kind = server.UpdateState
	}
	return out
}

func sameUpdate(a, b server.JobUpdate) bool {
	return a.Kind == b.Kind && a.JobID == b.JobID && a.Owner == b.Owner && a.State == b.State &&
		a.Progress == b.Progress && a.At.Equal(b.At)
}

func subscribe(t *testing.T, u server.JobUpdates) <-chan server.JobUpdate {
	t.Helper()
	ch, err := u.Subscribe(t.Context())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return ch
}

func publishUpdate(t *testing.T, u server.JobUpdates, up server.JobUpdate) {
	t.Helper()
	if err := u.Publish(t.Context(), up); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// receivePast receives from ch until want, failing on any update but those of job
// inFlight (published before, and possibly still on their way).
func receivePast(t *testing.T, ch <-chan server.JobUpdate, want server.JobUpdate, inFlight string) {
	t.Helper()
	for {
		got := receiveUpdate(t, ch, want.JobID)
		if sameUpdate(got, want) {
			return
		}
		if got.JobID != inFlight {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
}

func receiveUpdate(t *testing.T, ch <-chan server.JobUpdate, what string) server.JobUpdate {
	t.Helper()
	select {
	case u, ok := <-ch:
		if !ok {
			t.Fatalf("waiting for %s: the subscription ended", what)
		}
		return u
	case <-time.After(patience):
		t.Fatalf("gave up waiting for %s", what)
	}
	return server.JobUpdate{}
}
