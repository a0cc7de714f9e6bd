// Package tracing sets up OpenTelemetry tracing for v2m's services and holds the few helpers
// every traced package shares: the propagation of a trace through queue messages, the span
// attribute that names a job, and a slog.Handler that writes each record's trace_id and
// span_id.
//
// Tracing is off unless an OTLP endpoint is configured: New then returns a Provider whose
// TracerProvider is OpenTelemetry's noop, which records nothing and exports nothing. Every
// package takes its trace.TracerProvider as a dependency (nil meaning off); nothing here is
// registered globally, so two providers (the tests') never meet.
//
// Spans are exported over OTLP/HTTP with protobuf (port 4318 of an OpenTelemetry Collector),
// which needs no gRPC server and goes through ordinary HTTP proxies and ingresses.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Scope is the instrumentation scope of v2m's own spans.
const Scope = "github.com/v2m/v2m"

// JobID is the attribute that names the job a span works on: search for v2m.job_id = <id>
// to find a job's trace.
const JobID = attribute.Key("v2m.job_id")

// Config says where spans go.
type Config struct {
	// Endpoint is the OTLP/HTTP endpoint: host:port (https unless Insecure) or a URL such as
	// http://otel-collector:4318 (its path, when given, replaces /v1/traces). "" turns tracing off.
	Endpoint string
	// Insecure sends spans over plain HTTP to a host:port endpoint.
	Insecure bool
	// SampleRatio is the share of new traces recorded, 0 to 1; a trace continued from a
	// sampled parent is recorded whatever it is.
	SampleRatio float64
	// Service and Version name the process (service.name, service.version).
	Service, Version string
}

// Provider is the tracer provider of a process, and its shutdown.
type Provider struct {
	tp  trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil when tracing is off
}

// New returns the provider cfg asks for: the noop provider when cfg.Endpoint is "", else an
// SDK provider that batches spans to the OTLP endpoint. It connects to nothing yet: an
// unreachable collector costs dropped spans (and a logged error from the exporter), never a
// service that does not start.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Endpoint == "" {
		return &Provider{tp: noop.NewTracerProvider()}, nil
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fmt.Errorf("sample ratio %v: must be from 0 to 1", cfg.SampleRatio)
	}
	opts, err := endpointOptions(cfg.Endpoint, cfg.Insecure)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(cfg.Service), semconv.ServiceVersion(cfg.Version)))
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return &Provider{tp: sdk, sdk: sdk}, nil
}

// endpointOptions reads an endpoint given as host:port or as a URL.
func endpointOptions(endpoint string, insecure bool) ([]otlptracehttp.Option, error) {
	if !strings.Contains(endpoint, "://") {
		if strings.ContainsAny(endpoint, "/?#@ ") {
			return nil, fmt.Errorf("otlp endpoint %q: give host:port or a URL such as http://collector:4318", endpoint)
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(endpoint)}
		if insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return opts, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("otlp endpoint %q: give host:port or an http(s) URL such as http://collector:4318", endpoint)
	}
	if u.Scheme == "https" && insecure {
		return nil, errors.New("otlp endpoint is https: the insecure setting is for host:port endpoints (or use an http:// URL)")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}, nil
}

// NewWith wraps a provider made elsewhere (the tests' span recorder) as a Provider.
func NewWith(tp trace.TracerProvider) *Provider { return &Provider{tp: tp} }

// TracerProvider returns the provider to hand to the traced packages.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Enabled reports whether spans are exported.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// Shutdown exports the spans still buffered and stops the exporter, within ctx's deadline.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush spans: %w", err)
	}
	return nil
}

// ShutdownTimeout is how long a stopping service waits for its last spans to leave.
const ShutdownTimeout = 5 * time.Second

// Tracer returns v2m's tracer of tp; nil gives the noop tracer.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Scope)
}

// propagator is W3C trace context and baggage: stateless, the same for every process.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Propagator returns the propagator v2m uses on HTTP and in queue messages.
func Propagator() propagation.TextMapPropagator { return propagator }

// Carrier is a trace context written into a message: traceparent, tracestate, baggage.
type Carrier = propagation.MapCarrier

// Inject returns the trace context of ctx as a carrier; an empty one when ctx has no span.
func Inject(ctx context.Context) Carrier {
	c := Carrier{}
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, c)
	}
	return c
}

// Extract returns ctx carrying the remote span context of c, when c holds a valid one.
func Extract(ctx context.Context, c Carrier) context.Context {
	if len(c) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, c)
}

// Fail marks span failed with err's text, email addresses blanked out (an SMTP server's
// refusal names its recipient); nil changes nothing.
func Fail(span trace.Span, err error) {
	if err == nil {
		return
	}
	msg := Scrub(err.Error())
	span.AddEvent("exception", trace.WithAttributes(semconv.ExceptionMessage(msg)))
	span.SetStatus(codes.Error, msg)
}

var emailLike = regexp.MustCompile(`[^\s<>"'@,;:()\[\]]+@[^\s<>"'@,;:()\[\]]+`)

// Scrub blanks out what looks like an email address in s.
func Scrub(s string) string { return emailLike.ReplaceAllString(s, "<email>") }
