package mongo

import (
	"context"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

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
	if !reflect.DeepEqual(got, j) {
		t.Fatalf("Job = %+v, want %+v", got, j)
	}
	if got.CreatedAt.Location() != time.UTC || got.CreatedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("CreatedAt %v: want UTC with millisecond precision", got.CreatedAt)
	}
	_, err = s.JobByMP3(ctx, "")
	wantCode(t, err, server.ENOTFOUND)
}

// TestDocumentsWithoutOptionsReadAsDefaults: job and upload documents written before options
// existed have no "options" field, and read as the default options; so do documents of
// default options, which are written without the field.
func TestDocumentsWithoutOptionsReadAsDefaults(t *testing.T) {
	ctx := t.Context()
	db := openTest(t, 0)
	id := server.NewID()
	now := time.Now().UTC()
	if _, err := db.Database().Collection("jobs").InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: "a@example.com"},
		{Key: "state", Value: "queued"}, {Key: "filename", Value: "a.mp4"}, {Key: "video_fid", Value: id},
		{Key: "mp3_fid", Value: server.NewID()}, {Key: "created_at", Value: now}, {Key: "updated_at", Value: now}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Database().Collection("uploads").InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: "a@example.com"},
		{Key: "filename", Value: "a.mp4"}, {Key: "size", Value: 1}, {Key: "part_size", Value: 1}, {Key: "created_at", Value: now}}); err != nil {
		t.Fatal(err)
	}
	j, err := db.Jobs().Job(ctx, id)
	if err != nil || !j.Options.Equal(server.JobOptions{}) {
		t.Errorf("old job = %+v, %v; want the default options", j, err)
	}
	u, err := db.Uploads().Upload(ctx, id)
	if err != nil || !u.Options.Equal(server.JobOptions{}) {
		t.Errorf("old upload = %+v, %v; want the default options", u, err)
	}
	plain := &server.Job{ID: server.NewID(), Owner: "a@example.com", Filename: "b.mp4", VideoFID: server.NewID(), MP3FID: server.NewID()}
	if err := db.Jobs().CreateJob(ctx, plain); err != nil {
		t.Fatal(err)
	}
	n, err := db.Database().Collection("jobs").CountDocuments(ctx, bson.D{{Key: "_id", Value: plain.ID}, {Key: "options", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil || n != 0 {
		t.Errorf("a job of default options was stored with an options field: %d, %v", n, err)
	}
}
