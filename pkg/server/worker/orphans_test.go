package worker

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/sqlite"
)

// TestOrphanedFilesRemoved: the janitor removes videos and MP3s that nothing refers to once
// they are older than the grace period, and keeps everything a job or an open upload refers
// to, and every file younger than the grace (a tutorial upload between its video and its job).
func TestOrphanedFilesRemoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(bucket string) string {
		t.Helper()
		fid := server.NewID()
		if _, err := blobs.Put(ctx, bucket, fid, "f", bytes.NewReader([]byte("bytes"))); err != nil {
			t.Fatal(err)
		}
		return fid
	}
	// A job with its video and MP3.
	now := time.Now()
	j := &server.Job{ID: put(server.BucketVideos), Owner: "a@x.io", State: server.JobDone, Filename: "a.mp4",
		MP3FID: put(server.BucketMP3s), CreatedAt: now, UpdatedAt: now}
	j.VideoFID = j.ID
	if err := db.Jobs().CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	// An open upload whose video is complete but whose job is not created yet.
	u := &server.Upload{ID: server.NewID(), Owner: "a@x.io", Filename: "b.mp4", Size: 4, PartSize: 4, CreatedAt: now}
	if err := db.Uploads().CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := blobs.WritePart(ctx, u, 0, strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	if err := blobs.CompleteUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	// Files nothing refers to, more than a batch of them.
	var orphans []string
	for i := range orphanBatch + 5 {
		b := server.BucketVideos
		if i%2 == 1 {
			b = server.BucketMP3s
		}
		orphans = append(orphans, put(b))
	}

	s := &Sweeper{Jobs: db.Jobs(), Queue: db.Queue(sqlite.QueueConfig{}), Uploads: db.Uploads(), Blobs: blobs, Logger: discard()}
	// Everything was stored just now: nothing is old enough.
	if n, err := s.RemoveOrphans(ctx); err != nil || n != 0 {
		t.Fatalf("fresh files: removed %d, %v", n, err)
	}
	// Two hours later, batch by batch, every orphan goes and nothing else.
	s.now = func() time.Time { return now.Add(2 * time.Hour) }
	total := 0
	for range 4 {
		n, err := s.RemoveOrphans(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n > 2*orphanBatch {
			t.Fatalf("one pass removed %d files, more than its batches", n)
		}
		total += n
	}
	if total != len(orphans) {
		t.Fatalf("removed %d files, want the %d orphans", total, len(orphans))
	}
	for _, fid := range orphans {
		for _, b := range []string{server.BucketVideos, server.BucketMP3s} {
			if _, err := blobs.Open(ctx, b, fid); !server.IsCode(err, server.ENOTFOUND) {
				t.Fatalf("orphan %s/%s kept: %v", b, fid, err)
			}
		}
	}
	for _, f := range []struct{ bucket, fid string }{
		{server.BucketVideos, j.VideoFID}, {server.BucketMP3s, j.MP3FID}, {server.BucketVideos, u.ID},
	} {
		b, err := blobs.Open(ctx, f.bucket, f.fid)
		if err != nil {
			t.Fatalf("referenced file %s/%s removed: %v", f.bucket, f.fid, err)
		}
		b.Close()
	}
	// A video stored just now with no job yet is kept, however late the pass.
	fresh := put(server.BucketVideos)
	s.now = time.Now
	for range 2 {
		if _, err := s.RemoveOrphans(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := blobs.Open(ctx, server.BucketVideos, fresh); err != nil {
		t.Fatalf("a video stored just now was removed: %v", err)
	}
	// A store that cannot list is left alone.
	s.Blobs = noLister{blobs}
	if n, err := s.RemoveOrphans(ctx); err != nil || n != 0 {
		t.Fatalf("store without a lister: %d, %v", n, err)
	}
}

type noLister struct{ server.BlobStore }
