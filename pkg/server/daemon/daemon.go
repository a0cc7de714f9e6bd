// Package daemon is v2md's command line: one cobra subcommand per service (standalone, auth,
// gateway, convert, notify) plus keygen and describe. Each subcommand reads its settings, wires
// the adapters into the handlers, and runs until SIGINT or SIGTERM. It does nothing else.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/internal/version"
	"github.com/v2m/v2m/pkg/server/api"
	"github.com/v2m/v2m/pkg/server/metrics"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// Main runs v2md with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewCommand(os.Stdout, os.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "v2md:", err)
		return ExitCode(err)
	}
	return 0
}

// settingError is a bad flag, environment variable or config file value: the operator's to
// fix, before anything starts.
type settingError struct{ err error }

func (e *settingError) Error() string { return e.err.Error() }
func (e *settingError) Unwrap() error { return e.err }

// badSetting makes a settingError of a message such as "--concurrency must be ...".
func badSetting(format string, args ...any) error {
	return &settingError{fmt.Errorf(format, args...)}
}

// ExitCode is v2md's exit code for err: 0 for none, 2 for a bad setting or flag (as for a
// command line that does not parse), 1 for anything else.
func ExitCode(err error) int {
	var se *settingError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &se):
		return 2
	}
	return 1
}

// NewCommand returns the v2md command tree.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "v2md",
		Short:         "v2m's server: turns uploaded videos into MP3s",
		Long:          "v2md runs v2m's services. `v2md standalone` runs all of them in one process on embedded storage;\nauth, gateway, convert and notify run them separately on MySQL, MongoDB, RabbitMQ and SMTP.",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &settingError{err} })
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, c := range subcommands(stderr) {
		root.AddCommand(c.cmd)
	}
	root.AddCommand(keygenCommand(), describeCommand(stderr), adminCommand(stdout, stderr))
	return root
}

// subcommand is a service subcommand and what describe says of it.
type subcommand struct {
	cmd      *cobra.Command
	settings *settings
	paths    []string
}

func subcommands(stderr io.Writer) []subcommand {
	return []subcommand{
		standaloneCommand(stderr), authCommand(stderr), gatewayCommand(stderr), convertCommand(stderr), notifyCommand(stderr),
	}
}

// service routes every service answers on its listen address. Prometheus metrics are served
// at /metrics on --metrics-addr only, never on the API's port.
var servicePaths = []string{"/healthz", "/readyz"}

// metricsSetting is --metrics-addr with a service's default: loopback, on a port of its own
// so that the services of `make dev` can run side by side.
func metricsSetting(def string) setting {
	return setting{"metrics-addr", def, "listen address of the Prometheus metrics (/metrics); empty to serve none"}
}

func newLogger(s *settings, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(s.str("log-level"))); err != nil {
		return nil, badSetting("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch s.str("log-format") {
	case "json": // records logged with a span's context carry its trace_id and span_id
		return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text", "":
		return slog.New(tracing.LogHandler(slog.NewTextHandler(w, opts))), nil
	default:
		return nil, badSetting("--log-format must be text or json, not %q", s.str("log-format"))
	}
}

// concurrency is --concurrency, with 0 meaning one per CPU.
func concurrency(s *settings) int {
	if n := s.int("concurrency"); n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// httpSettings bound every HTTP connection of a service (api.Limits); 0 takes the default.
var httpSettings = []setting{
	{"read-header-timeout", time.Duration(0), fmt.Sprintf("longest time to read a request's headers; 0 for %v", api.DefaultLimits.ReadHeaderTimeout)},
	{"read-timeout", time.Duration(0), fmt.Sprintf("longest time to read a whole request (upload parts excepted: they have --min-transfer-rate); 0 for %v", api.DefaultLimits.ReadTimeout)},
	{"write-timeout", time.Duration(0), fmt.Sprintf("longest time to answer a request (downloads and long-polls excepted); 0 for %v", api.DefaultLimits.WriteTimeout)},
	{"idle-timeout", time.Duration(0), fmt.Sprintf("longest wait for the next request on a kept-alive connection; 0 for %v", api.DefaultLimits.IdleTimeout)},
	{"max-header-bytes", 0, fmt.Sprintf("largest request line and headers, in bytes; 0 for %d", api.DefaultLimits.MaxHeaderBytes)},
	{"min-transfer-rate", 0, fmt.Sprintf("bytes per second an upload body or a download must average over each --transfer-rate-window, or it ends (408 for uploads); 0 for %d", api.DefaultLimits.MinRate)},
	{"transfer-rate-window", time.Duration(0), fmt.Sprintf("the window --min-transfer-rate is measured over; 0 for %v", api.DefaultLimits.RateWindow)},
}

// httpLimits reads httpSettings.
func httpLimits(s *settings) (api.Limits, error) {
	l := api.Limits{
		ReadHeaderTimeout: s.dur("read-header-timeout"),
		ReadTimeout:       s.dur("read-timeout"),
		WriteTimeout:      s.dur("write-timeout"),
		IdleTimeout:       s.dur("idle-timeout"),
		MaxHeaderBytes:    s.int("max-header-bytes"),
		MinRate:           int64(s.int("min-transfer-rate")),
		RateWindow:        s.dur("transfer-rate-window"),
	}
	for name, neg := range map[string]bool{
		"read-header-timeout": l.ReadHeaderTimeout < 0, "read-timeout": l.ReadTimeout < 0, "write-timeout": l.WriteTimeout < 0,
		"idle-timeout": l.IdleTimeout < 0, "max-header-bytes": l.MaxHeaderBytes < 0, "min-transfer-rate": l.MinRate < 0,
		"transfer-rate-window": l.RateWindow < 0,
	} {
		if neg {
			return api.Limits{}, badSetting("--%s must not be negative (0 takes the default)", name)
		}
	}
	return l, nil
}

// serveHTTP runs the API handler h on addr and m's Prometheus metrics at /metrics on
// metricsAddr (nothing when it is empty), both behind the limits l, until ctx ends.
func serveHTTP(ctx context.Context, log *slog.Logger, addr, metricsAddr string, h http.Handler, m *metrics.Metrics, l api.Limits) error {
	apiLn, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	var metricsLn net.Listener
	if metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", metricsAddr); err != nil {
			apiLn.Close()
			return fmt.Errorf("--metrics-addr: listen on %s: %w", metricsAddr, err)
		}
	} else {
		log.Info("no metrics: --metrics-addr is empty")
	}
	return serveOn(ctx, log, apiLn, metricsLn, h, m, l)
}

// serveOn is serveHTTP on listeners; metricsLn may be nil.
func serveOn(ctx context.Context, log *slog.Logger, apiLn, metricsLn net.Listener, h http.Handler, m *metrics.Metrics, l api.Limits) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := newGroup(cancel)
	g.Go("api", func() error { return serve(ctx, log, apiLn, h, l) })
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		g.Go("metrics", func() error { return serve(ctx, log.With("listener", "metrics"), metricsLn, mux, l) })
	}
	return g.Wait()
}

// serve runs h on ln behind the connection limits l until ctx ends, then shuts it down
// gracefully.
func serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, l api.Limits) error {
	srv := api.NewHTTPServer(h, l, log)
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	if d, ok := h.(interface{ Drain() }); ok {
		d.Drain() // long-polls answer now
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 70*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// drain returns a context for work in progress that outlives ctx by grace: consumers stop taking
// new messages when ctx ends, and running jobs get grace to finish before they are interrupted
// (and handed back to the queue).
func drain(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(work, func() { t.Stop() })
	})
	return work, func() { stop(); cancel() }
}

// group runs functions until the first fails or all return; ctx's cancel is called on the first
// error so the others stop.
type group struct {
	errc   chan error
	n      int
	cancel context.CancelFunc
}

func newGroup(cancel context.CancelFunc) *group {
	return &group{errc: make(chan error, 16), cancel: cancel}
}

func (g *group) Go(name string, f func() error) {
	g.n++
	go func() {
		err := f()
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
			g.cancel()
		}
		g.errc <- err
	}()
}

func (g *group) Wait() error {
	var first error
	for range g.n {
		if err := <-g.errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
