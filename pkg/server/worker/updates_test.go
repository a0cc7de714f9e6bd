package worker

import (
	"context"
	"testing"

	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/inproc"
)

// TestUpdatesFollowTheJob: the converter announces each change of state and of progress as
// it happens, a retry's return to the queue included.
func TestUpdatesFollowTheJob(t *testing.T) {
	forEachStack(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		bus := inproc.New()
		updates, err := bus.Subscribe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		f.w.Updates = bus
		j := f.job(testmedia.Good[1])
		// Publishing on the bus in memory is done before Publish returns: once Handle has,
		// every update it made is waiting in the channel.
		taken := func() []server.JobUpdate {
			var out []server.JobUpdate
			for {
				select {
				case u := <-updates:
					if u.JobID != j.ID || u.Owner != j.Owner {
						t.Fatalf("update %+v, want job %s of %s", u, j.ID, j.Owner)
					}
					out = append(out, u)
				default:
					return out
				}
			}
		}
		check := func(got []server.JobUpdate, last server.JobState) {
			t.Helper()
			if len(got) < 2 || got[0].Kind != server.UpdateState || got[0].State != server.JobConverting {
				t.Fatalf("updates %+v: want the claim first", got)
			}
			end := got[len(got)-1]
			if end.Kind != server.UpdateState || end.State != last {
				t.Fatalf("updates %+v: want %s last", got, last)
			}
			prev := -1
			for _, u := range got[1 : len(got)-1] {
				if u.Kind != server.UpdateProgress || u.State != server.JobConverting || u.Progress == prev {
					t.Fatalf("update %+v between the claim and the end, after progress %d", u, prev)
				}
				prev = u.Progress
			}
		}

		f.w.Blobs = brokenBlobs{f.blobs} // the MP3 cannot be stored: the job goes back to the queue
		f.w.KeepResultFor = -1
		if err := f.w.Handle(ctx, delivery(j, 1)); err == nil {
			t.Fatal("a broken store did not fail the attempt")
		}
		check(taken(), server.JobQueued)
		f.w.Blobs = f.blobs
		if err := f.w.Handle(ctx, delivery(j, 2)); err != nil {
			t.Fatal(err)
		}
		got := taken()
		check(got, server.JobDone)
		if end := got[len(got)-1]; end.Progress != 100 {
			t.Fatalf("done with progress %d", end.Progress)
		}
	})
}
