// Package version says which build of v2m is running: the release version stamped by the
// build, the commit it was built from, and the Go toolchain.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release, stamped at build time with
// -ldflags "-X github.com/v2m/v2m/internal/version.Version=0.1.0"; "dev" otherwise.
var Version = "dev"

// commit is stamped where the build has no VCS information (a container build without .git):
// -ldflags "-X github.com/v2m/v2m/internal/version.commit=1a2b3c4d5e6f".
var commit = ""

// Commit returns the VCS revision the binary was built from, shortened, with "-dirty" when
// the tree had uncommitted changes; "unknown" when the build did not record it.
func Commit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}

// String is the one-line description that --version prints after the program's name, e.g.
// "0.1.0 (commit 1a2b3c4d5e6f, go1.26.8, linux/amd64)".
func String() string {
	return fmt.Sprintf("%s (commit %s, %s, %s/%s)", Version, Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
