package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
)

// exitCodeError is a command's own failure: benchtool exits with the same code.
type exitCodeError struct {
	cmd  string
	code int
}

func (e *exitCodeError) Error() string { return fmt.Sprintf("%s exited with code %d", e.cmd, e.code) }

// maxRSS runs args with the given stdio, then prints the peak resident set size of the
// command in KiB as maxrss_kib=N on res. The figure is the kernel's ru_maxrss of the
// waited-for child: the largest of the command and of the descendants it waited for, not
// their sum. It has a floor of about 10 MiB: at the exec, Linux records the peak of the
// memory the child then shared with benchtool (os/exec starts it with CLONE_VM), so a command
// that stays below benchtool's own RSS shows benchtool's. A command that fails still gets its
// figure printed; its exit code comes back as an *exitCodeError. SIGTERM or SIGINT to
// benchtool (ctx) is passed on to the command as SIGTERM.
func maxRSS(ctx context.Context, stdin io.Reader, stdout, stderr, res io.Writer, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: benchtool maxrss [-o FILE] -- CMD [ARGS...]")
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	err := cmd.Run()
	if cmd.ProcessState == nil {
		return fmt.Errorf("maxrss: %w", err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return errors.New("maxrss: no rusage on this system")
	}
	if _, werr := fmt.Fprintf(res, "maxrss_kib=%d\n", ru.Maxrss); werr != nil {
		return fmt.Errorf("maxrss: %w", werr)
	}
	if err != nil {
		if code := cmd.ProcessState.ExitCode(); code > 0 {
			return &exitCodeError{cmd: args[0], code: code}
		}
		return fmt.Errorf("maxrss: %s: %w", args[0], err)
	}
	return nil
}
