//go:build unix

package worker

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on the directory dir without waiting; the lock lasts as long
// as the returned file is open, and the kernel drops it when the process dies.
func lockDir(dir string, _ bool) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
