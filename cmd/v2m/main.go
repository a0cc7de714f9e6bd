// Command v2m is the command line client of v2m: it uploads videos, follows their conversion
// and downloads the MP3s. See package github.com/v2m/v2m/pkg/client/cli for the commands and
// exit codes.
package main

import (
	"os"

	"github.com/v2m/v2m/pkg/client/cli"
)

func main() { os.Exit(cli.Main()) }
