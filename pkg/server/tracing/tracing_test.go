package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestOffIsNoop(t *testing.T) {
	p, err := New(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Fatal("no endpoint, yet enabled")
	}
	_, span := Tracer(p.TracerProvider()).Start(t.Context(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Fatal("the noop provider records spans")
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestBadEndpointsRefused(t *testing.T) {
	for _, e := range []string{"ftp://x:1", "http://", "host:1/path", "https://u:p@host:4318", "http://a b"} {
		if _, err := New(t.Context(), Config{Endpoint: e, SampleRatio: 1}); err == nil {
			t.Errorf("endpoint %q accepted", e)
		}
	}
	if _, err := New(t.Context(), Config{Endpoint: "host:4318", SampleRatio: 1.5}); err == nil {
		t.Error("sample ratio 1.5 accepted")
	}
	if _, err := New(t.Context(), Config{Endpoint: "https://host:4318", Insecure: true, SampleRatio: 1}); err == nil {
		t.Error("an https URL with insecure accepted")
	}
}

// TestExportsOverOTLPHTTP: spans reach an OTLP/HTTP receiver at /v1/traces as protobuf, with
// the service's name, by the time Shutdown returns.
func TestExportsOverOTLPHTTP(t *testing.T) {
	got := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			got <- b
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	for _, cfg := range []Config{
		{Endpoint: srv.URL, SampleRatio: 1, Service: "v2m-test", Version: "1.2.3"},
		{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Insecure: true, SampleRatio: 1, Service: "v2m-test", Version: "1.2.3"},
	} {
		p, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, span := Tracer(p.TracerProvider()).Start(t.Context(), "convert video")
		span.End()
		if err := p.Shutdown(t.Context()); err != nil {
			t.Fatalf("%s: Shutdown: %v", cfg.Endpoint, err)
		}
		select {
		case b := <-got:
			if !bytes.Contains(b, []byte("convert video")) || !bytes.Contains(b, []byte("v2m-test")) {
				t.Errorf("%s: the export lacks the span or the service name", cfg.Endpoint)
			}
		default:
			t.Errorf("%s: nothing exported by the end of Shutdown", cfg.Endpoint)
		}
	}
}

func TestSampleRatioZeroRecordsNoNewTrace(t *testing.T) {
	p, err := New(t.Context(), Config{Endpoint: "127.0.0.1:1", Insecure: true, SampleRatio: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	if _, span := Tracer(p.TracerProvider()).Start(t.Context(), "x"); span.SpanContext().IsSampled() {
		t.Fatal("ratio 0 sampled a new trace")
	}
}

func TestLogHandlerAddsTraceID(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "convert")
	ctx, span := Tracer(tp).Start(t.Context(), "x")
	log.InfoContext(ctx, "in a span")
	log.Info("outside")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var in, out map[string]any
	json.Unmarshal([]byte(lines[0]), &in)
	json.Unmarshal([]byte(lines[1]), &out)
	if in["trace_id"] != span.SpanContext().TraceID().String() || in["span_id"] != span.SpanContext().SpanID().String() || in["service"] != "convert" {
		t.Errorf("line in a span: %v", in)
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("line outside a span has a trace_id: %v", out)
	}
}

func TestInjectExtractCarry(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	if c := Inject(t.Context()); len(c) != 0 {
		t.Fatalf("no span, carrier %v", c)
	}
	m, _ := baggage.NewMember("tenant", "a")
	b, _ := baggage.New(m)
	ctx, span := Tracer(tp).Start(baggage.ContextWithBaggage(t.Context(), b), "x")
	defer span.End()
	c := Inject(ctx)
	got := Extract(context.Background(), c)
	if sc := trace.SpanContextFromContext(got); sc.TraceID() != span.SpanContext().TraceID() || !sc.IsRemote() {
		t.Fatalf("extracted %+v", sc)
	}
	if baggage.FromContext(got).Member("tenant").Value() != "a" {
		t.Fatal("baggage lost")
	}
	work := Carry(got, context.Background())
	if trace.SpanContextFromContext(work).TraceID() != span.SpanContext().TraceID() || baggage.FromContext(work).Len() != 1 {
		t.Fatal("Carry lost the span or the baggage")
	}
	// Hostile headers: a malformed traceparent, a non-string, an oversized value.
	bad := CarrierFrom(func(k string) (any, bool) {
		switch k {
		case "traceparent":
			return "00-zz-yy-01", true
		case "tracestate":
			return 42, true
		}
		return strings.Repeat("a=b,", 5000), true
	})
	if _, ok := bad["tracestate"]; ok || len(bad["baggage"]) != 0 {
		t.Fatalf("carrier kept %v", bad)
	}
	if sc := trace.SpanContextFromContext(Extract(context.Background(), bad)); sc.IsValid() {
		t.Fatal("a malformed traceparent gave a span context")
	}
}

func TestFailScrubsEmails(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, span := Tracer(tp).Start(t.Context(), "send mail")
	Fail(span, errors.New("550 5.1.1 <ann@example.com>: Recipient address rejected"))
	span.End()
	s := rec.Ended()[0]
	if strings.Contains(s.Status().Description, "ann@example.com") || !strings.Contains(s.Status().Description, "<email>") {
		t.Fatalf("status %q", s.Status().Description)
	}
	for _, e := range s.Events() {
		for _, a := range e.Attributes {
			if strings.Contains(a.Value.String(), "@example.com") {
				t.Fatalf("event attribute %s = %q", a.Key, a.Value.String())
			}
		}
	}
}
