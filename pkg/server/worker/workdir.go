package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// workDirPrefix starts the names of the directories in which conversions run; the rest of
// a name is random, so that it tells nothing about the job.
const workDirPrefix = "v2m-work-"

// workDir is one conversion's private directory. It is locked while in use, so that the
// clean-up at start can tell a directory left by a process that died from one that another
// process on the same machine uses right now.
type workDir struct {
	path string
	lock *os.File
}

func newWorkDir(parent string) (*workDir, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	p, err := os.MkdirTemp(parent, workDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	lock, err := lockDir(p, true)
	if err != nil {
		_ = os.RemoveAll(p)
		return nil, fmt.Errorf("lock work dir: %w", err)
	}
	return &workDir{path: p, lock: lock}, nil
}

// remove deletes the directory with everything in it, then lets go of its lock.
func (d *workDir) remove() error {
	err := os.RemoveAll(d.path)
	if d.lock != nil {
		_ = d.lock.Close()
	}
	return err
}

// CleanWorkDirs removes the work directories under TmpDir that no running process holds:
// those left by a process that was killed (kill -9, a crash, a power cut) with users' audio
// in them. v2md calls it at start; it returns how many it removed.
func (w *Converter) CleanWorkDirs(ctx context.Context) (int, error) {
	parent := w.TmpDir
	if parent == "" {
		parent = os.TempDir()
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", parent, err)
	}
	n := 0
	for _, e := range entries {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if !e.IsDir() || !strings.HasPrefix(e.Name(), workDirPrefix) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		lock, err := lockDir(p, false)
		if err != nil {
			continue // in use by a live process, or not ours to judge
		}
		err = os.RemoveAll(p)
		_ = lock.Close()
		if err != nil {
			w.log().Warn("remove leftover work dir", "dir", p, "err", err)
			continue
		}
		n++
	}
	if n > 0 {
		w.log().Info("removed work dirs left by a process that died", "count", n, "dir", parent)
	}
	return n, nil
}
