//go:build !unix

package ffmpeg

import (
	"context"
	"os/exec"
	"time"
)

// command returns a command that is killed when ctx is done.
func command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
