// Package cli is the v2m command line: cobra commands over the client SDK, configured by
// flags, environment variables and <config dir>/config.yaml (through viper).
//
// Commands: register, login, logout, whoami, upload, jobs, status, wait, download, convert.
// Global flags: --server (env V2M_SERVER, config key "server", default http://127.0.0.1:8080),
// --json (machine-readable output on stdout), --config-dir (env V2M_CONFIG_DIR, default
// os.UserConfigDir()/v2m). V2M_TOKEN, when set, is used as the token and login/logout refuse to
// change it.
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
//
// Errors are printed as "v2m: <message>" on stderr; with --json a JSON document
// {"error":{"code":...,"exit":N,"message":...}} is also written to stdout (see errorJSON).
package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

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
	// StdinIsTTY enables prompts; StderrIsTTY enables progress bars.
	StdinIsTTY, StderrIsTTY bool
	// ReadPassword reads a line from the terminal without echo.
	ReadPassword func() ([]byte, error)
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
	return Run(ctx, os.Args[1:], Deps{
		Stdin:        os.Stdin,
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
		Getenv:       os.Getenv,
		StdinIsTTY:   term.IsTerminal(int(os.Stdin.Fd())),
		StderrIsTTY:  term.IsTerminal(int(os.Stderr.Fd())),
		ReadPassword: func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) },
	})
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
	if ctx.Err() != nil && exitCode(err) != ExitInterrupted {
		// Interrupted: whatever the command was doing failed because of it, and its error
		// (a request cut off, a prompt abandoned) says nothing the user does not know, unless
		// the command told what to do next itself (an interrupted wait).
		err = &exitError{code: ExitInterrupted, err: errors.New("interrupted; an upload can be resumed by running the command again, and a job already uploaded goes on on the server")}
	}
	return f.report(err)
}
