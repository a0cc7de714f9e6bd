//go:build unix

package ffmpeg

import (
	"context"
	"os/exec"
	"syscall"
	"time"
)

// command returns a command that runs in its own process group, so that canceling ctx
// kills ffmpeg together with anything it started.
func command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
