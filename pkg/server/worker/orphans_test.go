package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server/disk"
	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/server/worker/workertest"
)

func TestOrphanedFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	workertest.RunOrphans(t, workertest.Stores{Jobs: db.Jobs(), Uploads: db.Uploads(), Blobs: blobs,
		Backdate: func(t *testing.T, bucket, fid string, age time.Duration) {
			at := time.Now().Add(-age)
			if err := os.Chtimes(filepath.Join(dir, "blobs", bucket, fid), at, at); err != nil {
				t.Fatal(err)
			}
		}})
}
