package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCleanWorkDirs: at start, work dirs that no live process holds are removed with what
// they hold; a dir in use and anything that is not a work dir are kept.
func TestCleanWorkDirs(t *testing.T) {
	tmp := t.TempDir()
	w := &Converter{TmpDir: tmp}
	inUse, err := newWorkDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer inUse.remove()
	if !strings.HasPrefix(filepath.Base(inUse.path), workDirPrefix) || filepath.Dir(inUse.path) != tmp {
		t.Fatalf("work dir %s: want %s<random> in %s", inUse.path, workDirPrefix, tmp)
	}
	// A dir left by a process that died: nobody holds its lock.
	left, err := os.MkdirTemp(tmp, workDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "audio.mp3"), []byte("someone's audio"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(tmp, "v2m-other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := w.CleanWorkDirs(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("CleanWorkDirs = %d, %v; want 1, nil", n, err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("leftover work dir still there: %v", err)
	}
	for _, keep := range []string{inUse.path, other} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s removed: %v", keep, err)
		}
	}
	// Once its conversion ends, the dir in use goes too, and nothing is left to clean.
	if err := inUse.remove(); err != nil {
		t.Fatal(err)
	}
	if n, err := w.CleanWorkDirs(t.Context()); err != nil || n != 0 {
		t.Fatalf("second CleanWorkDirs = %d, %v; want 0, nil", n, err)
	}
}

// TestWorkDirNamesTellNothing: the name of a work dir holds no job id.
func TestWorkDirNamesTellNothing(t *testing.T) {
	a, err := newWorkDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.remove()
	if fi, err := os.Stat(a.path); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("work dir mode: %v, %v; want 0700", fi.Mode(), err)
	}
}
