// Command v2md runs v2m's services; see `v2md --help`.
package main

import (
	"os"

	"github.com/v2m/v2m/pkg/server/daemon"
)

func main() { os.Exit(daemon.Main()) }
