package daemon

import (
	"context"
	"log/slog"
	"strconv"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/v2m/v2m/internal/version"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// tracingSettings are every service's OpenTelemetry settings: tracing is off unless
// --otlp-endpoint is set.
var tracingSettings = []setting{
	{"otlp-endpoint", "", "OpenTelemetry traces: the OTLP/HTTP endpoint, host:port (https) or a URL such as http://otel-collector:4318; empty for no tracing"},
	{"otlp-insecure", false, "send traces over plain HTTP to a host:port --otlp-endpoint"},
	{"otlp-sample-ratio", "1", "share of new traces recorded, from 0 to 1 (a job's trace is recorded whole or not at all)"},
}

// startTracing sets up the tracer provider of service (v2m-<service>) as s says, keeps it in s
// for the service's wiring, and returns the function that flushes its last spans.
func startTracing(ctx context.Context, s *settings, log *slog.Logger, service string) (func(), error) {
	ratio, err := strconv.ParseFloat(s.str("otlp-sample-ratio"), 64)
	if err != nil || ratio < 0 || ratio > 1 {
		return nil, badSetting("--otlp-sample-ratio must be a number from 0 to 1, not %q", s.str("otlp-sample-ratio"))
	}
	insecure, err := s.flag("otlp-insecure")
	if err != nil {
		return nil, err
	}
	p, err := tracing.New(ctx, tracing.Config{Endpoint: s.str("otlp-endpoint"), Insecure: insecure, SampleRatio: ratio,
		Service: "v2m-" + service, Version: version.Version})
	if err != nil {
		return nil, badSetting("--otlp-endpoint: %w", err)
	}
	s.tp = p.TracerProvider()
	if p.Enabled() {
		log.Info("tracing: spans go to the OTLP endpoint", "otlp_endpoint", s.str("otlp-endpoint"), "sample_ratio", ratio)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracing.ShutdownTimeout)
		defer cancel()
		if err := p.Shutdown(sctx); err != nil {
			log.Warn("tracing: the last spans were not all exported", "err", err)
		}
	}, nil
}

// tracer is the service's tracer provider (the noop one until startTracing ran).
func (s *settings) tracer() trace.TracerProvider {
	if s.tp == nil {
		return noop.NewTracerProvider()
	}
	return s.tp
}
