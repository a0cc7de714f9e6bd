// Package workertest holds tests of the workers that every stack of stores must pass, run by
// each stack's own tests against its real backends.
package workertest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/worker"
)

// Stores are a service's stores, for the janitor's tests.
type Stores struct {
	Jobs    server.JobStore
	Uploads server.UploadStore
	Blobs   server.BlobStore
	// Backdate makes file fid of bucket look stored age ago.
	Backdate func(t *testing.T, bucket, fid string, age time.Duration)
}

// RunOrphans checks the sweeper's RemoveOrphans on real stores: it removes videos and MP3s
// that nothing refers to once they are older than the grace period, in batches, and keeps
// every file a job or an open upload refers to, and every file younger than the grace (a
// tutorial upload between storing its video and creating its job).
func RunOrphans(t *testing.T, st Stores) {
	ctx := context.Background()
	old := 2 * time.Hour
	put := func(bucket string) string {
		t.Helper()
		fid := server.NewID()
		if _, err := st.Blobs.Put(ctx, bucket, fid, "f", bytes.NewReader([]byte("bytes"))); err != nil {
			t.Fatal(err)
		}
		return fid
	}
	// A job with its video and MP3.
	now := time.Now().UTC()
	j := &server.Job{ID: put(server.BucketVideos), Owner: "a@x.io", State: server.JobDone, Filename: "a.mp4",
		MP3FID: put(server.BucketMP3s), CreatedAt: now, UpdatedAt: now}
	j.VideoFID = j.ID
	if err := st.Jobs.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	// An open upload whose video is complete but whose job is not created yet.
	u := &server.Upload{ID: server.NewID(), Owner: "a@x.io", Filename: "b.mp4", Size: 4, PartSize: 1 << 20, CreatedAt: now}
	if err := st.Uploads.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.Blobs.WritePart(ctx, u, 0, strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	if err := st.Blobs.CompleteUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	kept := []struct{ bucket, fid string }{{server.BucketVideos, j.VideoFID}, {server.BucketMP3s, j.MP3FID}, {server.BucketVideos, u.ID}}
	// Files nothing refers to, more than a batch of them in each bucket.
	const batch = 10
	var orphans []struct{ bucket, fid string }
	for i := range 2*(batch+5) + 1 {
		b := server.BucketVideos
		if i%2 == 1 {
			b = server.BucketMP3s
		}
		orphans = append(orphans, struct{ bucket, fid string }{b, put(b)})
	}
	fresh := put(server.BucketVideos) // stored just now, no job yet
	for _, f := range append(kept, orphans...) {
		st.Backdate(t, f.bucket, f.fid, old)
	}

	s := &worker.Sweeper{Service: &jobs.Service{Jobs: st.Jobs, Uploads: st.Uploads, Blobs: st.Blobs}, OrphanBatch: batch,
		Logger: slog.New(slog.DiscardHandler)}
	total := 0
	for pass := range 4 {
		n, err := s.RemoveOrphans(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n > 2*batch {
			t.Fatalf("pass %d removed %d files, more than its batches", pass, n)
		}
		total += n
	}
	if total != len(orphans) {
		t.Fatalf("removed %d files, want the %d orphans", total, len(orphans))
	}
	for _, f := range orphans {
		if _, err := st.Blobs.Open(ctx, f.bucket, f.fid); !server.IsCode(err, server.ENOTFOUND) {
			t.Fatalf("orphan %s/%s kept: %v", f.bucket, f.fid, err)
		}
	}
	for _, f := range append(kept, struct{ bucket, fid string }{server.BucketVideos, fresh}) {
		b, err := st.Blobs.Open(ctx, f.bucket, f.fid)
		if err != nil {
			t.Fatalf("%s/%s removed: %v", f.bucket, f.fid, err)
		}
		b.Close()
	}
	// A store that cannot list is left alone.
	s.Service.Blobs = struct{ server.BlobStore }{st.Blobs}
	st.Backdate(t, server.BucketVideos, fresh, old)
	if n, err := s.RemoveOrphans(ctx); err != nil || n != 0 {
		t.Fatalf("store without a lister: %d, %v", n, err)
	}
}
