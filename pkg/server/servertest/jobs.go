package servertest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// NewJobStore returns a fresh, empty JobStore that takes the current time from now.
type NewJobStore func(t *testing.T, now func() time.Time) server.JobStore

// claimRacers is how many goroutines race for one job.
const claimRacers = 8

// JobStoreOptions says what the suite may expect of an adapter's backend.
type JobStoreOptions struct {
	// NoAtomicClaims, when set, says why the backend cannot make concurrent claims exclusive
	// (a test stand-in for the production server that lacks its atomic compare-and-set). The
	// claim races still run; when more than one claim wins, the subtest is skipped with this
	// reason and the count, instead of failing.
	NoAtomicClaims string
}

// TestJobStore checks a JobStore against the contract of server.JobStore.
func TestJobStore(t *testing.T, newStore NewJobStore, opts JobStoreOptions) {
	setup := func(t *testing.T) (context.Context, server.JobStore, *Clock) {
		c := NewClock()
		return t.Context(), newStore(t, c.Now), c
	}
	// put stores a job in state st, last updated age before the clock's time.
	put := func(t *testing.T, s server.JobStore, c *Clock, st server.JobState, attempts int, age time.Duration) *server.Job {
		t.Helper()
		j := newJob("ann@example.com", c.Now().Add(-2*time.Hour))
		j.State, j.Attempts, j.UpdatedAt = st, attempts, c.Now().Add(-age)
		opts := SampleOptions()
		j.Options = opts[(attempts+int(st[0]))%len(opts)] // every change must keep them
		if st == server.JobConverting {
			j.Progress = 30
		}
		if st.Final() {
			j.FinishedAt = j.UpdatedAt
			if st == server.JobFailed {
				j.Error = "no audio"
			} else {
				j.Progress = 100
			}
		}
		if err := s.CreateJob(t.Context(), j); err != nil {
			t.Fatalf("CreateJob: %v", err)
		}
		return j
	}

	t.Run("CreateAndGet", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := newJob("ann@example.com", c.Now())
		j.Progress, j.Attempts = 0, 0
		if err := s.CreateJob(ctx, j); err != nil {
			t.Fatalf("CreateJob: %v", err)
		}
		wantJob(t, s, j)
		got, err := s.Job(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt.Location() != time.UTC || !got.FinishedAt.IsZero() {
			t.Errorf("times: created %v (want UTC), finished %v (want zero)", got.CreatedAt, got.FinishedAt)
		}
	})
	t.Run("OptionsRoundTrip", func(t *testing.T) {
		ctx, s, c := setup(t)
		var all []*server.Job
		for i, o := range SampleOptions() {
			j := newJob("ann@example.com", c.Now().Add(time.Duration(i)*time.Second))
			j.Options = o
			if err := s.CreateJob(ctx, j); err != nil {
				t.Fatalf("CreateJob with options %s: %v", FormatOptions(o), err)
			}
			wantJob(t, s, j)
			byMP3, err := s.JobByMP3(ctx, j.MP3FID)
			if err != nil {
				t.Fatal(err)
			}
			sameJob(t, "JobByMP3", byMP3, j)
			all = append([]*server.Job{j}, all...)
		}
		listed, err := s.ListJobs(ctx, "ann@example.com", len(all))
		if err != nil || len(listed) != len(all) {
			t.Fatalf("ListJobs = %d jobs, %v; want %d", len(listed), err, len(all))
		}
		for i := range all {
			sameJob(t, "listed job", listed[i], all[i])
		}
		stale, err := s.StaleJobs(ctx, server.JobQueued, c.Now().Add(time.Hour), len(all))
		if err != nil || len(stale) != len(all) {
			t.Fatalf("StaleJobs = %d jobs, %v; want %d", len(stale), err, len(all))
		}
		for i := range all {
			sameJob(t, "stale job", stale[i], all[len(all)-1-i])
		}
	})
	t.Run("CreateDuplicateID", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := newJob("ann@example.com", c.Now())
		if err := s.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		dup := *j
		dup.Owner, dup.Filename = "bob@example.com", "other.mp4"
		wantCode(t, "CreateJob of an existing id", s.CreateJob(ctx, &dup), server.ECONFLICT)
		wantJob(t, s, j)
	})
	t.Run("JobMissing", func(t *testing.T) {
		ctx, s, _ := setup(t)
		_, err := s.Job(ctx, server.NewID())
		wantCode(t, "Job of a missing id", err, server.ENOTFOUND)
	})
	t.Run("JobByMP3", func(t *testing.T) {
		ctx, s, c := setup(t)
		a, b := newJob("ann@example.com", c.Now()), newJob("ann@example.com", c.Now())
		for _, j := range []*server.Job{a, b} {
			if err := s.CreateJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.JobByMP3(ctx, b.MP3FID)
		if err != nil || got.ID != b.ID {
			t.Fatalf("JobByMP3 = %v, %v; want job %s", got, err, b.ID)
		}
		_, err = s.JobByMP3(ctx, server.NewID())
		wantCode(t, "JobByMP3 of an unknown fid", err, server.ENOTFOUND)
		_, err = s.JobByMP3(ctx, b.ID) // a job id is not an MP3 fid
		wantCode(t, "JobByMP3 of a job id", err, server.ENOTFOUND)
	})
	t.Run("ListJobsNewestFirstOwnersOnly", func(t *testing.T) {
		ctx, s, c := setup(t)
		var want []string // ann's, newest first
		for i := range 5 {
			j := newJob("ann@example.com", c.Now().Add(time.Duration(i)*time.Minute))
			if err := s.CreateJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			want = append([]string{j.ID}, want...)
			o := newJob("bob@example.com", j.CreatedAt.Add(time.Second))
			if err := s.CreateJob(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.ListJobs(ctx, "ann@example.com", 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(all); !slices.Equal(got, want) {
			t.Errorf("ListJobs = %v, want %v", got, want)
		}
		two, err := s.ListJobs(ctx, "ann@example.com", 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(two); !slices.Equal(got, want[:2]) {
			t.Errorf("ListJobs limit 2 = %v, want %v", got, want[:2])
		}
		none, err := s.ListJobs(ctx, "carol@example.com", 10)
		if err != nil || len(none) != 0 {
			t.Errorf("ListJobs of a user without jobs = %v, %v; want none", ids(none), err)
		}
	})
	t.Run("StaleJobsOldestFirst", func(t *testing.T) {
		ctx, s, c := setup(t)
		old := put(t, s, c, server.JobQueued, 0, 30*time.Minute)
		oldest := put(t, s, c, server.JobQueued, 0, 90*time.Minute)
		older := put(t, s, c, server.JobQueued, 0, time.Hour)
		put(t, s, c, server.JobQueued, 0, 10*time.Minute) // updated exactly at before: not stale
		put(t, s, c, server.JobQueued, 0, time.Minute)    // fresh
		conv := put(t, s, c, server.JobConverting, 1, 50*time.Minute)
		before := c.Now().Add(-10 * time.Minute)
		got, err := s.StaleJobs(ctx, server.JobQueued, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(got), []string{oldest.ID, older.ID, old.ID}; !slices.Equal(got, want) {
			t.Errorf("StaleJobs(queued) = %v, want %v", got, want)
		}
		got, err = s.StaleJobs(ctx, server.JobQueued, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(got), []string{oldest.ID, older.ID}; !slices.Equal(got, want) {
			t.Errorf("StaleJobs(queued) limit 2 = %v, want %v", got, want)
		}
		got, err = s.StaleJobs(ctx, server.JobConverting, before, 10)
		if err != nil || !slices.Equal(ids(got), []string{conv.ID}) {
			t.Errorf("StaleJobs(converting) = %v, %v; want [%s]", ids(got), err, conv.ID)
		}
		got, err = s.StaleJobs(ctx, server.JobDone, c.Now(), 10)
		if err != nil || len(got) != 0 {
			t.Errorf("StaleJobs(done) = %v, %v; want none", ids(got), err)
		}
	})

	t.Run("ClaimQueued", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobQueued, 0, time.Hour)
		c.Advance(time.Second)
		got, err := s.ClaimJob(ctx, j.ID, c.Now().Add(-time.Minute))
		if err != nil {
			t.Fatalf("ClaimJob of a queued job: %v", err)
		}
		want := *j
		want.State, want.Attempts, want.Progress, want.UpdatedAt = server.JobConverting, 1, 0, c.Now()
		sameJob(t, "claimed job", got, &want)
		wantJob(t, s, &want)
	})
	t.Run("ClaimLiveConvertingRefused", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 1, time.Minute)
		_, err := s.ClaimJob(ctx, j.ID, c.Now().Add(-2*time.Minute))
		wantCode(t, "ClaimJob of a live converting job", err, server.ECONFLICT)
		// Updated exactly at staleBefore is still live.
		_, err = s.ClaimJob(ctx, j.ID, j.UpdatedAt)
		wantCode(t, "ClaimJob of a job updated at staleBefore", err, server.ECONFLICT)
		wantJob(t, s, j)
	})
	t.Run("ClaimStaleConvertingTakenOver", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 1, 10*time.Minute)
		got, err := s.ClaimJob(ctx, j.ID, c.Now().Add(-time.Minute))
		if err != nil {
			t.Fatalf("ClaimJob of a stale converting job: %v", err)
		}
		want := *j
		want.Attempts, want.Progress, want.UpdatedAt = 2, 0, c.Now()
		sameJob(t, "taken-over job", got, &want)
		wantJob(t, s, &want)
		// The new holder is live now: a second claim with the same limit is refused.
		_, err = s.ClaimJob(ctx, j.ID, c.Now().Add(-time.Minute))
		wantCode(t, "ClaimJob right after a take-over", err, server.ECONFLICT)
	})
	t.Run("ClaimFinalRefused", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobDone, server.JobFailed} {
			j := put(t, s, c, st, 1, time.Hour)
			_, err := s.ClaimJob(ctx, j.ID, c.Now().Add(time.Hour))
			wantCode(t, "ClaimJob of a "+string(st)+" job", err, server.ECONFLICT)
			wantJob(t, s, j)
		}
	})
	t.Run("ClaimMissing", func(t *testing.T) {
		ctx, s, c := setup(t)
		_, err := s.ClaimJob(ctx, server.NewID(), c.Now())
		wantCode(t, "ClaimJob of a missing job", err, server.ENOTFOUND)
	})
	t.Run("ClaimRaceQueued", func(t *testing.T) {
		_, s, c := setup(t)
		j := put(t, s, c, server.JobQueued, 0, time.Hour)
		claimRace(t, s, j.ID, c.Now(), opts.NoAtomicClaims) // nothing claimed now is stale: one claim wins
	})
	t.Run("ClaimRaceStale", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 1, time.Hour)
		// The job is stale before the race; the winner's claim makes it live for the others.
		claimRace(t, s, j.ID, c.Now(), opts.NoAtomicClaims)
		if g, err := s.Job(ctx, j.ID); err != nil || g.Attempts != 2 {
			t.Fatalf("after the race: %+v, %v; want 2 attempts", g, err)
		}
	})

	t.Run("SetProgressHeartbeat", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 1, time.Minute)
		want := *j
		for _, p := range []struct{ set, want int }{{40, 40}, {40, 40}, {150, 100}, {-5, 0}} {
			c.Advance(time.Second)
			wantCode(t, fmt.Sprintf("SetProgress(%d)", p.set), s.SetProgress(ctx, j.ID, p.set), "")
			want.Progress, want.UpdatedAt = p.want, c.Now()
			wantJob(t, s, &want) // UpdatedAt moves even when the progress does not
		}
	})
	t.Run("SetProgressOtherStatesLeftAlone", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobQueued, server.JobDone, server.JobFailed} {
			j := put(t, s, c, st, 1, time.Hour)
			wantCode(t, "SetProgress of a "+string(st)+" job", s.SetProgress(ctx, j.ID, 50), "")
			wantJob(t, s, j)
		}
	})
	t.Run("SetProgressMissing", func(t *testing.T) {
		ctx, s, _ := setup(t)
		wantCode(t, "SetProgress of a missing job", s.SetProgress(ctx, server.NewID(), 50), server.ENOTFOUND)
	})

	t.Run("FinishUnderClaim", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 2, time.Minute)
		c.Advance(time.Second)
		got, err := s.FinishJob(ctx, j.ID, 2, server.JobResult{})
		if err != nil {
			t.Fatalf("FinishJob under its claim: %v", err)
		}
		want := *j
		want.State, want.Progress, want.UpdatedAt, want.FinishedAt = server.JobDone, 100, c.Now(), c.Now()
		sameJob(t, "finished job", got, &want)
		wantJob(t, s, &want)
		_, err = s.FinishJob(ctx, j.ID, 2, server.JobResult{})
		wantCode(t, "FinishJob of a done job", err, server.ECONFLICT)
		wantJob(t, s, &want)
	})
	t.Run("FinishWithFiles", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 1, time.Minute)
		files := []server.JobFile{
			{Title: "Intro", Start: 0, End: 61500 * time.Millisecond, Size: 123456},
			{Title: "Ünïcode / \"quoted\"", Start: 61500 * time.Millisecond, End: 2*time.Hour + 3*time.Millisecond, Size: 1},
		}
		got, err := s.FinishJob(ctx, j.ID, 1, server.JobResult{Files: files})
		if err != nil {
			t.Fatalf("FinishJob with files: %v", err)
		}
		want := *j
		want.State, want.Progress, want.UpdatedAt, want.FinishedAt, want.Files = server.JobDone, 100, c.Now(), c.Now(), files
		sameJob(t, "finished job with files", got, &want)
		wantJob(t, s, &want)
		list, err := s.ListJobs(ctx, j.Owner, 10)
		if err != nil || len(list) != 1 {
			t.Fatalf("ListJobs: %d jobs, %v", len(list), err)
		}
		sameJob(t, "listed job with files", list[0], &want)
	})
	t.Run("FinishUnderSupersededClaimRefused", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 2, time.Minute)
		for _, a := range []int{1, 3} {
			_, err := s.FinishJob(ctx, j.ID, a, server.JobResult{})
			wantCode(t, fmt.Sprintf("FinishJob under claim %d of a job claimed twice", a), err, server.ECONFLICT)
		}
		wantJob(t, s, j)
	})
	t.Run("FinishOtherStatesRefused", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobQueued, server.JobFailed} {
			j := put(t, s, c, st, 1, time.Hour)
			_, err := s.FinishJob(ctx, j.ID, 1, server.JobResult{})
			wantCode(t, "FinishJob of a "+string(st)+" job", err, server.ECONFLICT)
			wantJob(t, s, j)
		}
	})
	t.Run("FinishMissing", func(t *testing.T) {
		ctx, s, _ := setup(t)
		_, err := s.FinishJob(ctx, server.NewID(), 1, server.JobResult{})
		wantCode(t, "FinishJob of a missing job", err, server.ENOTFOUND)
	})

	t.Run("FailNotFinal", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobQueued, server.JobConverting} {
			j := put(t, s, c, st, 1, time.Minute)
			c.Advance(time.Second)
			got, err := s.FailJob(ctx, j.ID, "the video has no audio track")
			if err != nil {
				t.Fatalf("FailJob of a %s job: %v", st, err)
			}
			want := *j
			want.State, want.Error, want.UpdatedAt, want.FinishedAt = server.JobFailed, "the video has no audio track", c.Now(), c.Now()
			sameJob(t, "failed job", got, &want)
			wantJob(t, s, &want)
		}
	})
	t.Run("FailFinalRefused", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobDone, server.JobFailed} {
			j := put(t, s, c, st, 1, time.Hour)
			_, err := s.FailJob(ctx, j.ID, "late")
			wantCode(t, "FailJob of a "+string(st)+" job", err, server.ECONFLICT)
			wantJob(t, s, j)
		}
	})
	t.Run("FailMissing", func(t *testing.T) {
		ctx, s, _ := setup(t)
		_, err := s.FailJob(ctx, server.NewID(), "x")
		wantCode(t, "FailJob of a missing job", err, server.ENOTFOUND)
	})

	t.Run("RequeueWithoutRefund", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 2, time.Minute)
		c.Advance(time.Second)
		wantCode(t, "RequeueJob", s.RequeueJob(ctx, j.ID, 2, false), "")
		want := *j
		want.State, want.Progress, want.UpdatedAt = server.JobQueued, 0, c.Now()
		wantJob(t, s, &want)
	})
	t.Run("RequeueWithRefund", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 2, time.Minute)
		c.Advance(time.Second)
		wantCode(t, "RequeueJob with refund", s.RequeueJob(ctx, j.ID, 2, true), "")
		want := *j
		want.State, want.Attempts, want.Progress, want.UpdatedAt = server.JobQueued, 1, 0, c.Now()
		wantJob(t, s, &want)
	})
	t.Run("RequeueUnderSupersededClaimLeftAlone", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 2, time.Minute)
		for _, refund := range []bool{false, true} {
			wantCode(t, "RequeueJob under an old claim", s.RequeueJob(ctx, j.ID, 1, refund), "")
		}
		wantJob(t, s, j)
	})
	t.Run("RequeueOtherStatesLeftAlone", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobQueued, server.JobDone, server.JobFailed} {
			j := put(t, s, c, st, 1, time.Hour)
			wantCode(t, "RequeueJob of a "+string(st)+" job", s.RequeueJob(ctx, j.ID, 1, true), "")
			wantJob(t, s, j)
		}
	})
	t.Run("RequeueMissing", func(t *testing.T) {
		ctx, s, _ := setup(t)
		wantCode(t, "RequeueJob of a missing job", s.RequeueJob(ctx, server.NewID(), 1, false), server.ENOTFOUND)
	})

	t.Run("TouchInState", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobQueued, server.JobConverting} {
			j := put(t, s, c, st, 1, time.Hour)
			c.Advance(time.Second)
			wantCode(t, "TouchJob of a "+string(st)+" job", s.TouchJob(ctx, j.ID, st), "")
			want := *j
			want.UpdatedAt = c.Now()
			wantJob(t, s, &want)
		}
	})
	t.Run("TouchOtherStateLeftAlone", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 1, time.Hour)
		for _, st := range []server.JobState{server.JobQueued, server.JobDone} {
			wantCode(t, "TouchJob(state "+string(st)+") of a converting job", s.TouchJob(ctx, j.ID, st), "")
		}
		wantJob(t, s, j)
	})
	t.Run("TouchMissing", func(t *testing.T) {
		ctx, s, _ := setup(t)
		wantCode(t, "TouchJob of a missing job", s.TouchJob(ctx, server.NewID(), server.JobQueued), server.ENOTFOUND)
	})
	t.Run("FinishRecordsSize", func(t *testing.T) {
		ctx, s, c := setup(t)
		j := put(t, s, c, server.JobConverting, 1, time.Minute)
		got, err := s.FinishJob(ctx, j.ID, 1, server.JobResult{Size: 5 << 30})
		if err != nil {
			t.Fatal(err)
		}
		if got.MP3Size != 5<<30 {
			t.Fatalf("MP3Size = %d, want %d", got.MP3Size, int64(5<<30))
		}
		stored, err := s.Job(ctx, j.ID)
		if err != nil || stored.MP3Size != 5<<30 {
			t.Fatalf("stored MP3Size = %v, %v", stored, err)
		}
	})
	t.Run("DeleteJob", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobQueued, server.JobConverting, server.JobDone, server.JobFailed} {
			j, keep := put(t, s, c, st, 1, time.Minute), put(t, s, c, st, 1, time.Minute)
			if err := s.DeleteJob(ctx, j.ID); err != nil {
				t.Fatalf("DeleteJob of a %s job: %v", st, err)
			}
			_, err := s.Job(ctx, j.ID)
			wantCode(t, "Job after DeleteJob", err, server.ENOTFOUND)
			_, err = s.JobByMP3(ctx, j.MP3FID)
			wantCode(t, "JobByMP3 after DeleteJob", err, server.ENOTFOUND)
			wantCode(t, "DeleteJob again", s.DeleteJob(ctx, j.ID), server.ENOTFOUND)
			wantCode(t, "SetProgress of a deleted job", s.SetProgress(ctx, j.ID, 50), server.ENOTFOUND)
			wantJob(t, s, keep)
		}
	})
	t.Run("MarkRetention", func(t *testing.T) {
		ctx, s, c := setup(t)
		for _, st := range []server.JobState{server.JobDone, server.JobFailed} {
			j := put(t, s, c, st, 1, time.Minute)
			if err := s.MarkRetention(ctx, j.ID, true, false); err != nil {
				t.Fatalf("MarkRetention(video) of a %s job: %v", st, err)
			}
			want := *j
			want.VideoDeleted = true
			wantJob(t, s, &want)
			if err := s.MarkRetention(ctx, j.ID, false, true); err != nil {
				t.Fatalf("MarkRetention(expired): %v", err)
			}
			want.Expired = true // the video flag stays set
			wantJob(t, s, &want)
			if err := s.MarkRetention(ctx, j.ID, false, false); err != nil {
				t.Fatalf("MarkRetention(nothing): %v", err)
			}
			wantJob(t, s, &want)
		}
		for _, st := range []server.JobState{server.JobQueued, server.JobConverting} {
			j := put(t, s, c, st, 1, time.Minute)
			wantCode(t, "MarkRetention of a "+string(st)+" job", s.MarkRetention(ctx, j.ID, true, true), server.ECONFLICT)
			wantJob(t, s, j)
		}
		wantCode(t, "MarkRetention of a missing job", s.MarkRetention(ctx, server.NewID(), true, false), server.ENOTFOUND)
	})
	t.Run("RetainedJobs", func(t *testing.T) {
		ctx, s, c := setup(t)
		doneOld, doneNew := put(t, s, c, server.JobDone, 1, 3*time.Hour), put(t, s, c, server.JobDone, 1, time.Hour)
		failed := put(t, s, c, server.JobFailed, 1, 2*time.Hour)
		atLimit := put(t, s, c, server.JobDone, 1, 30*time.Minute)
		put(t, s, c, server.JobQueued, 0, 5*time.Hour)
		put(t, s, c, server.JobConverting, 1, 5*time.Hour)
		gone := put(t, s, c, server.JobDone, 1, 4*time.Hour)
		if err := s.MarkRetention(ctx, gone.ID, true, true); err != nil {
			t.Fatal(err)
		}
		noVideo := put(t, s, c, server.JobDone, 1, 4*time.Hour)
		if err := s.MarkRetention(ctx, noVideo.ID, true, false); err != nil {
			t.Fatal(err)
		}
		before := c.Now().Add(-30 * time.Minute) // atLimit finished exactly then: not before
		got, err := s.RetainedJobs(ctx, server.RetainedVideos, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(got), []string{doneOld.ID, doneNew.ID}; !slices.Equal(got, want) {
			t.Errorf("RetainedVideos = %v, want %v (done jobs with their video, oldest first)", got, want)
		}
		got, err = s.RetainedJobs(ctx, server.RetainedFiles, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(got), []string{noVideo.ID, doneOld.ID, failed.ID, doneNew.ID}; !slices.Equal(got, want) {
			t.Errorf("RetainedFiles = %v, want %v (final jobs not expired, oldest first)", got, want)
		}
		got, err = s.RetainedJobs(ctx, server.RetainedFiles, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(got), []string{noVideo.ID, doneOld.ID}; !slices.Equal(got, want) {
			t.Errorf("RetainedFiles limit 2 = %v, want %v", got, want)
		}
		_ = atLimit
	})
	t.Run("Usage", func(t *testing.T) {
		ctx, s, c := setup(t)
		if u, err := s.Usage(ctx, "ann@example.com"); err != nil || u != (server.Usage{}) {
			t.Fatalf("Usage with no jobs = %+v, %v", u, err)
		}
		queued := put(t, s, c, server.JobQueued, 0, time.Minute)
		conv := put(t, s, c, server.JobConverting, 1, time.Minute)
		failed := put(t, s, c, server.JobFailed, 1, time.Minute)
		done := put(t, s, c, server.JobConverting, 1, time.Minute)
		if _, err := s.FinishJob(ctx, done.ID, 1, server.JobResult{Size: 700}); err != nil {
			t.Fatal(err)
		}
		expired := put(t, s, c, server.JobConverting, 1, time.Minute)
		if _, err := s.FinishJob(ctx, expired.ID, 1, server.JobResult{Size: 900}); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkRetention(ctx, expired.ID, true, true); err != nil {
			t.Fatal(err)
		}
		bob := newJob("bob@example.com", c.Now())
		if err := s.CreateJob(ctx, bob); err != nil {
			t.Fatal(err)
		}
		// Videos not deleted: queued, converting, failed and done (1234 each); MP3: done's.
		want := server.Usage{ActiveJobs: 2, StoredBytes: queued.Size + conv.Size + failed.Size + done.Size + 700}
		if u, err := s.Usage(ctx, "ann@example.com"); err != nil || u != want {
			t.Fatalf("Usage = %+v, %v; want %+v", u, err, want)
		}
		if err := s.MarkRetention(ctx, done.ID, true, false); err != nil {
			t.Fatal(err)
		}
		want.StoredBytes -= done.Size
		if u, err := s.Usage(ctx, "ann@example.com"); err != nil || u != want {
			t.Fatalf("Usage after the done job's video went = %+v, %v; want %+v", u, err, want)
		}
	})
	adminJobCases(t, setup, put, opts)
}

// claimRace has claimRacers goroutines claim job id at once; exactly one must win, unless
// noAtomic says why the backend cannot promise that.
func claimRace(t *testing.T, s server.JobStore, id string, staleBefore time.Time, noAtomic string) {
	t.Helper()
	won := race(t, "ClaimJob", claimRacers, func(int) error {
		_, err := s.ClaimJob(context.Background(), id, staleBefore)
		return err
	})
	if won > 1 && noAtomic != "" && !t.Failed() {
		t.Skipf("%d of %d concurrent claims won: %s", won, claimRacers, noAtomic)
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent claims won, want exactly 1", won, claimRacers)
	}
}

func newJob(owner string, created time.Time) *server.Job {
	return &server.Job{
		ID: server.NewID(), Owner: owner, State: server.JobQueued, Filename: "talk.mp4", Size: 1234,
		VideoFID: server.NewID(), MP3FID: server.NewID(), CreatedAt: created, UpdatedAt: created,
	}
}

// wantJob fails the test unless the store holds want.
func wantJob(t *testing.T, s server.JobStore, want *server.Job) {
	t.Helper()
	got, err := s.Job(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Job(%s): %v", want.ID, err)
	}
	sameJob(t, "stored job", got, want)
}

func sameJob(t *testing.T, what string, got, want *server.Job) {
	t.Helper()
	g, w := *got, *want
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) || !g.FinishedAt.Equal(w.FinishedAt) {
		t.Fatalf("%s times: created %v updated %v finished %v; want %v, %v, %v", what,
			g.CreatedAt, g.UpdatedAt, g.FinishedAt, w.CreatedAt, w.UpdatedAt, w.FinishedAt)
	}
	if !g.Options.Equal(w.Options) {
		t.Fatalf("%s options = %s\nwant %s", what, FormatOptions(g.Options), FormatOptions(w.Options))
	}
	if !slices.Equal(g.Files, w.Files) {
		t.Fatalf("%s files = %+v\nwant %+v", what, g.Files, w.Files)
	}
	g.CreatedAt, g.UpdatedAt, g.FinishedAt, g.Options, g.Files = w.CreatedAt, w.UpdatedAt, w.FinishedAt, w.Options, w.Files
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %+v\nwant %+v", what, g, w)
	}
}

func ids(js []*server.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}
