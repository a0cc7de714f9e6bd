package servertest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// adminJobCases checks what administrators use of a JobStore: FindJobs across owners and
// RetryJob, the compare-and-set failed → queued of a replay.
func adminJobCases(t *testing.T,
	setup func(t *testing.T) (context.Context, server.JobStore, *Clock),
	put func(t *testing.T, s server.JobStore, c *Clock, st server.JobState, attempts int, age time.Duration) *server.Job,
	opts JobStoreOptions) {
	t.Run("FindJobsEveryOwnerNewestFirst", func(t *testing.T) {
		ctx, s, c := setup(t)
		base := c.Now().Add(-time.Hour)
		type made struct {
			id    string
			owner string
			state server.JobState
			at    time.Time
		}
		var all []made // newest first
		for i, o := range []struct {
			owner string
			state server.JobState
		}{
			{"ann@example.com", server.JobFailed}, {"Bob@Example.com", server.JobDone}, {"bob@example.com", server.JobFailed},
			{"carol@example.com", server.JobQueued}, {"ann@example.com", server.JobDone}, {"bob@example.com", server.JobFailed},
		} {
			j := newJob(o.owner, base.Add(time.Duration(i)*time.Minute))
			j.State = o.state
			if o.state.Final() {
				j.FinishedAt = j.CreatedAt
			}
			if err := s.CreateJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			all = append([]made{{j.ID, o.owner, o.state, j.CreatedAt}}, all...)
		}
		pick := func(keep func(m made) bool) []string {
			var out []string
			for _, m := range all {
				if keep(m) {
					out = append(out, m.id)
				}
			}
			return out
		}
		find := func(f server.JobFilter) []string {
			t.Helper()
			got, err := s.FindJobs(ctx, f)
			if err != nil {
				t.Fatalf("FindJobs(%+v): %v", f, err)
			}
			return ids(got)
		}
		cases := []struct {
			name string
			f    server.JobFilter
			want []string
		}{
			{"all", server.JobFilter{Limit: 100}, pick(func(made) bool { return true })},
			{"limit", server.JobFilter{Limit: 2}, pick(func(made) bool { return true })[:2]},
			{"state", server.JobFilter{State: server.JobFailed, Limit: 100}, pick(func(m made) bool { return m.state == server.JobFailed })},
			{"owner any case", server.JobFilter{Owner: "BOB@example.COM", Limit: 100},
				pick(func(m made) bool { return m.owner == "bob@example.com" || m.owner == "Bob@Example.com" })},
			{"owner and state", server.JobFilter{Owner: "bob@example.com", State: server.JobFailed, Limit: 1},
				pick(func(m made) bool { return m.owner == "bob@example.com" && m.state == server.JobFailed })[:1]},
			{"since", server.JobFilter{Since: base.Add(3 * time.Minute), Limit: 100},
				pick(func(m made) bool { return !m.at.Before(base.Add(3 * time.Minute)) })},
			{"owner is not a pattern", server.JobFilter{Owner: "ann@example.co.", Limit: 100}, nil},
			{"owner is not a prefix", server.JobFilter{Owner: "ann@example", Limit: 100}, nil},
			{"nobody", server.JobFilter{Owner: "dave@example.com", Limit: 100}, nil},
			{"no such state", server.JobFilter{State: server.JobConverting, Limit: 100}, nil},
		}
		for _, tc := range cases {
			if got := find(tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("FindJobs %s = %v, want %v", tc.name, got, tc.want)
			}
		}
	})
	t.Run("RetryFailed", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobFailed, 3, time.Hour)
		c.Advance(time.Second)
		got, err := s.RetryJob(ctx, j.ID)
		if err != nil {
			t.Fatalf("RetryJob: %v", err)
		}
		want := *j
		want.State, want.Error, want.Progress, want.Attempts = server.JobQueued, "", 0, 0
		want.UpdatedAt, want.FinishedAt = c.Now(), time.Time{}
		sameJob(t, "retried job", got, &want)
		wantJob(t, s, &want)
		// It is claimed as a fresh job: its first attempt again.
		claimed, err := s.ClaimJob(ctx, j.ID, c.Now().Add(-time.Minute))
		if err != nil || claimed.Attempts != 1 {
			t.Fatalf("ClaimJob after RetryJob = %+v, %v; want attempt 1", claimed, err)
		}
	})
	t.Run("RetryOtherStatesRefused", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobQueued, server.JobConverting, server.JobDone} {
			j := put(t, s, c, st, 1, time.Minute)
			_, err := s.RetryJob(ctx, j.ID)
			wantCode(t, "RetryJob of a "+string(st)+" job", err, server.ECONFLICT)
			wantJob(t, s, j)
		}
	})
	t.Run("RetryMissing", func(t *testing.T) {
		ctx, s, _ := setup(t)
		_, err := s.RetryJob(ctx, server.NewID())
		wantCode(t, "RetryJob of a missing job", err, server.ENOTFOUND)
	})
	t.Run("RetryRace", func(t *testing.T) {
		_, s, c := setup(t)
		j := put(t, s, c, server.JobFailed, 2, time.Hour)
		won := race(t, "RetryJob", claimRacers, func(int) error {
			_, err := s.RetryJob(context.Background(), j.ID)
			return err
		})
		if won > 1 && opts.NoAtomicClaims != "" && !t.Failed() {
			t.Skipf("%d of %d concurrent retries won: %s", won, claimRacers, opts.NoAtomicClaims)
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent retries won, want exactly 1", won, claimRacers)
		}
	})
}
