// Package cli is the v2m command line: cobra commands over the client SDK, configured by
// flags, environment variables and <config dir>/config.yaml (through viper).
//
// Commands: register, login, logout, whoami, upload, jobs, status, wait, download, convert.
// Global flags: --server (env V2M_SERVER, config key "server", default http://127.0.0.1:8080),
// --json (machine-readable output on stdout), --config-dir (env V2M_CONFIG_DIR, default
// os.UserConfigDir()/v2m). V2M_TOKEN, when set, is used as the token and login/logout refuse to
// change it.
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
// {"error":{"code":...,"message":...,"exit":N}} is also written to stdout.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/v2m/v2m/internal/version"
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
	if d.Getenv == nil {
		d.Getenv = func(string) string { return "" }
	}
	if d.Stdin == nil {
		d.Stdin = strings.NewReader("")
	}
	if d.Stdout == nil {
		d.Stdout = io.Discard
	}
	if d.Stderr == nil {
		d.Stderr = io.Discard
	}
	a := &app{d: d}
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if !a.started { // cobra failed before any command ran: flags, arguments, unknown command
		err = &exitError{code: ExitUsage, err: err}
	}
	return a.report(err)
}

// app is one run of the command line.
type app struct {
	d         Deps
	server    string
	configDir string
	json      bool
	started   bool

	flagServer, flagConfigDir string
}

// exitError carries an exit code and, for a failed job, the job.
type exitError struct {
	code int
	err  error
	job  *client.Job
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode classifies err.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, client.ErrNoToken), client.IsUnauthorized(err):
		return ExitAuth
	case client.IsNotFound(err):
		return ExitNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	case client.IsUnreachable(err):
		return ExitUnreachable
	}
	return ExitError
}

var codeNames = map[int]string{
	ExitError: "error", ExitUsage: "usage", ExitAuth: "unauthorized", ExitNotFound: "not_found",
	ExitJobFailed: "job_failed", ExitTimeout: "timeout", ExitUnreachable: "unreachable",
}

// report prints err and returns its exit code.
func (a *app) report(err error) int {
	code := exitCode(err)
	msg := err.Error()
	switch code {
	case ExitAuth:
		msg += " (run 'v2m login')"
	case ExitUnreachable:
		msg = fmt.Sprintf("cannot reach the server %s: %v", a.server, err)
	case ExitUsage:
		msg += " (see 'v2m --help')"
	}
	fmt.Fprintf(a.d.Stderr, "v2m: %s\n", msg)
	if a.json {
		name := codeNames[code]
		if ae := (*client.APIError)(nil); errors.As(err, &ae) && ae.Code != "" {
			name = ae.Code
		}
		out := map[string]any{"error": map[string]any{"code": name, "message": err.Error(), "exit": code}}
		var ee *exitError
		if errors.As(err, &ee) && ee.job != nil {
			out["job"] = ee.job
		}
		_ = a.printJSON(out)
	}
	return code
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.d.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// say prints a step line on stderr, unless --json.
func (a *app) say(format string, args ...any) {
	if !a.json {
		fmt.Fprintf(a.d.Stderr, format+"\n", args...)
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "v2m",
		Short:         "Convert videos to MP3 on a v2m server",
		Version:       version.String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.started = true
			return a.configure(cmd)
		},
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetIn(a.d.Stdin)
	root.SetOut(a.d.Stdout)
	root.SetErr(a.d.Stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&a.flagServer, "server", "", "server URL (env V2M_SERVER, config key server; default "+DefaultServer+")")
	pf.BoolVar(&a.json, "json", false, "print JSON on stdout")
	pf.StringVar(&a.flagConfigDir, "config-dir", "", "configuration directory (env V2M_CONFIG_DIR; default <user config dir>/v2m)")
	root.AddCommand(a.registerCmd(), a.loginCmd(), a.logoutCmd(), a.whoamiCmd(),
		a.uploadCmd(), a.jobsCmd(), a.statusCmd(), a.waitCmd(), a.downloadCmd(), a.convertCmd())
	return root
}

// configure resolves the config dir and the server: flag, then environment, then
// config.yaml, then the default.
func (a *app) configure(cmd *cobra.Command) error {
	switch {
	case a.flagConfigDir != "":
		a.configDir = a.flagConfigDir
	case a.d.Getenv("V2M_CONFIG_DIR") != "":
		a.configDir = a.d.Getenv("V2M_CONFIG_DIR")
	default:
		base, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("find the configuration directory (set --config-dir or V2M_CONFIG_DIR): %w", err)
		}
		a.configDir = filepath.Join(base, "v2m")
	}
	v := viper.New()
	v.SetDefault("server", DefaultServer)
	v.SetConfigFile(filepath.Join(a.configDir, "config.yaml"))
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read config: %w", err)
	}
	if env := a.d.Getenv("V2M_SERVER"); env != "" {
		v.Set("server", env)
	}
	if cmd.Flags().Changed("server") {
		v.Set("server", a.flagServer)
	}
	a.server = client.NormalizeServer(v.GetString("server"))
	if _, err := client.New(a.server); err != nil {
		return usageError("%v", err)
	}
	return nil
}

func (a *app) tokenStore() client.TokenStore {
	if a.d.TokenStore != nil {
		return a.d.TokenStore(a.server, a.configDir)
	}
	return client.NewTokenStore(a.server, a.configDir, a.d.Getenv("V2M_TOKEN"), a.d.Stderr)
}

// client returns an API client; with auth it carries the stored token (or fails with
// ErrNoToken).
func (a *app) client(auth bool) (*client.Client, error) {
	token := ""
	if auth {
		t, err := a.tokenStore().Get()
		if errors.Is(err, client.ErrNoToken) {
			return nil, fmt.Errorf("no token for %s: %w", a.server, client.ErrNoToken)
		}
		if err != nil {
			return nil, fmt.Errorf("read token: %w", err)
		}
		token = t
	}
	if a.d.NewClient != nil {
		return a.d.NewClient(a.server, token)
	}
	return client.New(a.server, client.WithToken(token), client.WithUserAgent("v2m-cli"))
}
