package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestDatabaseFilesArePrivate: the database, its WAL and shared-memory files are readable by
// their owner only, whether the database is new or was created with a looser mode before.
func TestDatabaseFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "old.db")
	if err := os.WriteFile(loose, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "v2m.db"), loose} {
		d, err := Open(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Users().CreateUser(context.Background(), "ann@example.com", []byte("hash")); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{p, p + "-wal", p + "-shm", p + ".lock"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			if m := fi.Mode().Perm(); m&0o077 != 0 {
				t.Errorf("%s has mode %v; want no access for group and others", filepath.Base(f), m)
			}
		}
		d.Close()
	}
}
