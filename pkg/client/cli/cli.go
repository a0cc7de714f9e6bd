// Package cli is the v2m command line: cobra commands over the client SDK, configured by
// flags, environment variables and <config dir>/config.yaml (through viper).
//
// Commands: register, login, logout, whoami, upload, jobs, status, wait, download, convert.
// Global flags: --server (env V2M_SERVER, config key "server", default http://127.0.0.1:8080),
// --json (machine-readable output on stdout), --config-dir (env V2M_CONFIG_DIR, default
// os.UserConfigDir()/v2m). V2M_TOKEN, when set, is used as the token and login/logout refuse to
// change it.
//
// upload and convert take several files, sent --jobs at a time (one bar each on a terminal),
// and end in a summary (a table on a terminal, tab-separated lines otherwise) or, with --json,
// a resultsJSON. jobs prints a table on a terminal and tab-separated lines into a pipe. The
// commands that take a JOB (status, wait, download) complete the user's job ids in the shell.
//
// Each command lives in a file of its own, in the shape of the GitHub CLI's commands:
// newCmdX(f, runF) builds the cobra command, parses flags and arguments into an xOptions
// (with what it needs from the factory: IO streams, configuration, client and token store,
// each built only when first used) and validates them; xRun does the work. Tests pass a runF
// to see the parsed options without running anything.
//
// Exit codes:
//
//	0  success
//	1  any other error
//	2  usage error (bad flags or arguments, missing credentials without a terminal)
//	3  not logged in, or the server answered 401 (token missing, expired or wrong password)
//	4  not found (job, file or upload; also someone else's)
//	5  the job failed (the reason is printed)
//	6  timed out while waiting for a job
//	7  the server could not be reached
//	130 interrupted (Ctrl-C or SIGTERM)
//
// Errors are printed as "v2m: <message>" on stderr; with --json a JSON document
// {"error":{"code":...,"exit":N,"message":...}} is also written to stdout (see errorJSON).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/v2m/v2m/pkg/client"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitAuth        = 3
	ExitNotFound    = 4
	ExitJobFailed   = 5
	ExitTimeout     = 6
	ExitUnreachable = 7
	ExitUnavailable = 8   // the server answered 503 or 429 for longer than --retry-for
	ExitInterrupted = 130 // Ctrl-C or SIGTERM, as shells report a SIGINT
)

// DefaultServer is used when neither --server, V2M_SERVER nor the config file name one.
const DefaultServer = "http://127.0.0.1:8080"

// Deps are everything the commands touch outside the process, so that tests can run them
// in-process.
type Deps struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads an environment variable.
	Getenv func(string) string
	// StdinIsTTY enables prompts; StderrIsTTY enables progress bars; StdoutIsTTY prints tables
	// for people (padded) rather than for scripts (tab-separated).
	StdinIsTTY, StdoutIsTTY, StderrIsTTY bool
	// ReadPassword reads a line from the terminal without echo. It returns when ctx ends,
	// leaving the terminal as it found it.
	ReadPassword func(ctx context.Context) ([]byte, error)
	// NewClient makes the API client; nil means client.New with the token.
	NewClient func(server, token string) (*client.Client, error)
	// TokenStore returns the token store of server; nil means client.NewTokenStore (keyring
	// with a file fallback, V2M_TOKEN overriding).
	TokenStore func(server, configDir string) client.TokenStore
}

// Main runs the command line of the process and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A second Ctrl-C, while the first one is being handled, ends the process at once.
	context.AfterFunc(ctx, stop)
	return Run(ctx, os.Args[1:], Deps{
		Stdin:        os.Stdin,
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
		Getenv:       os.Getenv,
		StdinIsTTY:   term.IsTerminal(int(os.Stdin.Fd())),
		StdoutIsTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		StderrIsTTY:  term.IsTerminal(int(os.Stderr.Fd())),
		ReadPassword: terminalPassword(int(os.Stdin.Fd()), os.Stdin),
	})
}

// terminalPassword reads a password from the terminal fd (in) without echo. The terminal is
// in raw mode meanwhile, so that Ctrl-C is read as a key and interrupts at once (a read of a
// line in cooked mode would wait for Enter); it is restored before this returns, also when
// ctx ends first.
func terminalPassword(fd int, in io.Reader) func(ctx context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		saved, err := term.MakeRaw(fd)
		if err != nil {
			return nil, fmt.Errorf("read the terminal: %w", err)
		}
		defer func() { _ = term.Restore(fd, saved) }()
		return interruptible(ctx, func() ([]byte, error) { return readSecret(in) })
	}
}

// readSecret reads a line typed on a terminal in raw mode: Enter ends it, Backspace takes
// back a character and Ctrl-U the whole line, Ctrl-C interrupts (an error with exit code
// 130) and Ctrl-D on an empty line is the end of input.
func readSecret(r io.Reader) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 0 {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return line, nil
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		switch c := b[0]; c {
		case '\r', '\n':
			return line, nil
		case 0x03: // Ctrl-C
			return nil, &exitError{code: ExitInterrupted, err: errors.New("interrupted")}
		case 0x04: // Ctrl-D
			if len(line) == 0 {
				return nil, io.EOF
			}
		case 0x7f, 0x08: // Backspace
			if len(line) > 0 {
				_, size := utf8.DecodeLastRune(line)
				line = line[:len(line)-size]
			}
		case 0x15: // Ctrl-U
			line = line[:0]
		default:
			line = append(line, c)
		}
	}
}

// interruptible runs read, which may block on the terminal, and returns when it does or when
// ctx ends, whichever comes first; in the second case the read goes on in the background and
// what it returns is dropped.
func interruptible[T any](ctx context.Context, read func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := read()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// Run runs the command line args (without the program name) and returns the exit code.
func Run(ctx context.Context, args []string, d Deps) int {
	f := newFactory(d)
	return execute(ctx, f, newCmdRoot(f), args)
}

// execute runs root with args and returns the exit code. An error cobra returns before any
// command ran (a bad flag or argument, an unknown command) is a usage error.
func execute(ctx context.Context, f *factory, root *cobra.Command, args []string) int {
	started := false
	pre := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		started = true
		if pre == nil {
			return nil
		}
		return pre(cmd, args)
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if !started {
		err = &exitError{code: ExitUsage, err: err}
	}
	if ctx.Err() != nil {
		err = interrupted(err)
	}
	return f.report(err)
}

// interrupted is the error of a command that failed because it was interrupted: whatever it
// was doing failed because of it, and its error (a request cut off, a prompt abandoned) says
// nothing the user does not know, but what is left to do does: the hint of a *stoppedError,
// or the message of an error with exit code 130 that the command made itself.
func interrupted(err error) error {
	printed := false
	if ee := (*exitError)(nil); errors.As(err, &ee) {
		printed = ee.printed
	}
	var se *stoppedError
	var ee *exitError
	switch {
	case errors.As(err, &se):
		return &exitError{code: ExitInterrupted, err: errors.New("interrupted; " + se.hint), printed: printed}
	case errors.As(err, &ee) && ee.code == ExitInterrupted:
		return err
	}
	return &exitError{code: ExitInterrupted, err: errors.New("interrupted"), printed: printed}
}

// stoppedError is a command that stopped before the end with something left that a rerun
// takes up: hint says what and how ("run `v2m upload talk.mp4` to resume it").
type stoppedError struct {
	err  error
	hint string
}

func (e *stoppedError) Error() string { return e.err.Error() + "; " + e.hint }
func (e *stoppedError) Unwrap() error { return e.err }
