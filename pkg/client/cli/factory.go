package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/viper"

	"github.com/v2m/v2m/pkg/client"
)

// iostreams are the process's standard streams and what is known about them.
type iostreams struct {
	in          io.Reader
	out, errOut io.Writer
	// stdinTTY enables prompts, stderrTTY progress bars; stdoutTTY makes tables for people
	// rather than for scripts.
	stdinTTY, stdoutTTY, stderrTTY bool
	// readPassword reads a line from the terminal without echo, returning when ctx ends; nil
	// when there is none.
	readPassword func(ctx context.Context) ([]byte, error)
}

// canPrompt reports whether the user can be asked for an email and a password.
func (s *iostreams) canPrompt() bool { return s.stdinTTY && s.readPassword != nil }

// globalFlags are the root command's persistent flags.
type globalFlags struct {
	server        string
	serverChanged bool // --server was given, even empty
	configDir     string
	json          bool
	retryFor      time.Duration
	retryChanged  bool // --retry-for was given
}

// config is the resolved configuration of one run.
type config struct {
	Server string // normalized: no trailing slash
	Dir    string // the config directory
	// RetryFor bounds how long a request is sent again while the server answers 503 or 429
	// (--retry-for, then V2M_RETRY_FOR, then DefaultRetryFor); 0 does not retry those.
	RetryFor time.Duration
}

// DefaultRetryFor is how long v2m rides out a server that answers 503 or 429 when
// neither --retry-for nor V2M_RETRY_FOR says otherwise.
const DefaultRetryFor = 2 * time.Minute

// factory holds what the commands share: the IO streams, the global flags, the configuration
// (resolved on first use, then kept) and the constructors of API clients and token stores.
// Commands copy the parts they need into their options when they are built; nothing here
// reads a file or talks to the server until a command's run asks for it.
type factory struct {
	io            *iostreams
	getenv        func(string) string
	userConfigDir func() (string, error)
	flags         globalFlags

	makeClient     func(server, token string) (*client.Client, error)
	makeTokenStore func(server, configDir string) client.TokenStore

	waitOnce sync.Once
	waitFn   func(time.Duration, error)

	// config resolves the configuration from the flags, the environment and config.yaml once,
	// on its first call.
	config func() (*config, error)
}

func newFactory(d Deps) *factory {
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
	f := &factory{
		io: &iostreams{
			in: d.Stdin, out: d.Stdout, errOut: d.Stderr,
			stdinTTY: d.StdinIsTTY, stdoutTTY: d.StdoutIsTTY, stderrTTY: d.StderrIsTTY,
			readPassword: d.ReadPassword,
		},
		getenv:         d.Getenv,
		userConfigDir:  os.UserConfigDir,
		makeClient:     d.NewClient,
		makeTokenStore: d.TokenStore,
	}
	f.config = sync.OnceValues(func() (*config, error) {
		return resolveConfig(f.flags, f.getenv, f.userConfigDir)
	})
	return f
}

// resolveConfig finds the config dir (--config-dir, then V2M_CONFIG_DIR, then the user's
// config dir) and the server (--server, then V2M_SERVER, then config.yaml, then
// DefaultServer). A server that is not an http(s) URL is a usage error.
func resolveConfig(g globalFlags, getenv func(string) string, userConfigDir func() (string, error)) (*config, error) {
	var dir string
	switch {
	case g.configDir != "":
		dir = g.configDir
	case getenv("V2M_CONFIG_DIR") != "":
		dir = getenv("V2M_CONFIG_DIR")
	default:
		base, err := userConfigDir()
		if err != nil {
			return nil, fmt.Errorf("find the configuration directory (set --config-dir or V2M_CONFIG_DIR): %w", err)
		}
		dir = filepath.Join(base, "v2m")
	}
	v := viper.New()
	v.SetDefault("server", DefaultServer)
	v.SetConfigFile(filepath.Join(dir, "config.yaml"))
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if env := getenv("V2M_SERVER"); env != "" {
		v.Set("server", env)
	}
	if g.serverChanged {
		v.Set("server", g.server)
	}
	server, err := serverURL(v.GetString("server"))
	if err != nil {
		return nil, err
	}
	retryFor := DefaultRetryFor
	if env := strings.TrimSpace(getenv("V2M_RETRY_FOR")); env != "" {
		if retryFor, err = time.ParseDuration(env); err != nil || retryFor < 0 {
			return nil, usageError("V2M_RETRY_FOR=%q is not a duration such as 2m or 0", env)
		}
	}
	if g.retryChanged {
		if g.retryFor < 0 {
			return nil, usageError("--retry-for must not be negative")
		}
		retryFor = g.retryFor
	}
	return &config{Server: server, Dir: dir, RetryFor: retryFor}, nil
}

// serverURL returns the canonical form of the server the user named: with http:// when it
// has no scheme (127.0.0.1:8080 is http://127.0.0.1:8080), without a trailing slash. Anything
// that is not an http(s) URL of a host is a usage error.
func serverURL(s string) (string, error) {
	server := strings.TrimSpace(s)
	if server == "" {
		return "", usageError("the server URL is empty: set --server, V2M_SERVER or server in config.yaml")
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	server = client.NormalizeServer(server)
	if u, err := url.Parse(server); err != nil || u.Hostname() == "" || u.User != nil {
		return "", usageError("server URL %q is not a URL such as http://127.0.0.1:8080", s)
	}
	if _, err := client.New(server); err != nil {
		return "", usageError("%v", err)
	}
	return server, nil
}

// tokenStore returns the token store of the configured server.
func (f *factory) tokenStore() (client.TokenStore, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	if f.makeTokenStore != nil {
		return f.makeTokenStore(cfg.Server, cfg.Dir), nil
	}
	return client.NewTokenStore(cfg.Server, cfg.Dir, f.getenv("V2M_TOKEN"), f.io.errOut), nil
}

// clientWithToken returns an API client of the configured server that sends token ("" for
// none).
func (f *factory) clientWithToken(token string) (*client.Client, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	var c *client.Client
	if f.makeClient != nil {
		c, err = f.makeClient(cfg.Server, token)
	} else {
		c, err = client.New(cfg.Server, client.WithToken(token), client.WithUserAgent("v2m-cli"))
	}
	if err != nil {
		return nil, err
	}
	c.Retry = client.RetryPolicy{For: cfg.RetryFor, Waiting: f.waiting(cfg.RetryFor)}
	return c, nil
}

// waiting returns the RetryPolicy.Waiting of the run: one line on stderr when the server
// first puts a request off, and no more for as long as the retries may last (parallel parts
// and the following requests of the same outage say nothing more).
func (f *factory) waiting(retryFor time.Duration) func(time.Duration, error) {
	f.waitOnce.Do(func() {
		var mu sync.Mutex
		var said time.Time
		f.waitFn = func(d time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if !said.IsZero() && time.Since(said) < retryFor {
				return
			}
			said = time.Now()
			reason := "the server is unavailable"
			if client.StatusOf(err) == http.StatusTooManyRequests {
				reason = "the server asks for fewer requests"
			}
			fmt.Fprintf(f.io.errOut, "v2m: %s; waiting for it (retrying for up to %s, see --retry-for)\n", reason, retryFor)
		}
	})
	return f.waitFn
}

// anonymousClient returns an API client without a token, for register and login.
func (f *factory) anonymousClient() (*client.Client, error) { return f.clientWithToken("") }

// authClient returns an API client with the stored token, or fails with ErrNoToken.
func (f *factory) authClient() (*client.Client, error) {
	store, err := f.tokenStore()
	if err != nil {
		return nil, err
	}
	t, err := store.Get()
	if errors.Is(err, client.ErrNoToken) {
		cfg, _ := f.config() // resolved by tokenStore
		return nil, fmt.Errorf("no token for %s: %w", cfg.Server, client.ErrNoToken)
	}
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	return f.clientWithToken(t)
}
