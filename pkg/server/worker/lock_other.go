//go:build !unix

package worker

import (
	"errors"
	"os"
)

// lockDir has no lock to take here: a new directory is simply opened, and clean-up at start
// never judges an existing one a leftover.
func lockDir(dir string, create bool) (*os.File, error) {
	if !create {
		return nil, errors.New("work dir locks need a Unix system")
	}
	return os.Open(dir)
}
