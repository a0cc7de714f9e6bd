package mongo

import (
	"context"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// TestJobDefaults covers what the mongo store adds to the JobStore contract: a job without an
// id is refused, zero times and state are filled in, and times are stored in UTC with
// millisecond precision.
func TestJobDefaults(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, 0).Jobs()
	wantCode(t, s.CreateJob(ctx, &server.Job{}), server.EINVALID)
	j := &server.Job{ID: server.NewID(), Owner: "a@example.com", Filename: "clip.mp4", VideoFID: server.NewID(), MP3FID: server.NewID()}
	if err := s.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j.State != server.JobQueued || j.CreatedAt.IsZero() || !j.UpdatedAt.Equal(j.CreatedAt) {
		t.Fatalf("CreateJob left %+v", j)
	}
	got, err := s.Job(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *j {
		t.Fatalf("Job = %+v, want %+v", got, j)
	}
	if got.CreatedAt.Location() != time.UTC || got.CreatedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("CreatedAt %v: want UTC with millisecond precision", got.CreatedAt)
	}
	_, err = s.JobByMP3(ctx, "")
	wantCode(t, err, server.ENOTFOUND)
}
