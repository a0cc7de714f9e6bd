// Command v2md runs v2m's services; see `v2md --help`.
package main

import (
	"os"

	"github.com/v2m/v2m/pkg/server/daemon"
	"github.com/v2m/v2m/pkg/server/sandbox"
)

func main() {
	sandbox.Main() // v2md is also the helper that starts ffmpeg confined
	os.Exit(daemon.Main())
}
