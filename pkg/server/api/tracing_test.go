package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server/api"
)

// TestServerSpans: each request has a server span named by its route template (unmatched
// paths by no path at all); a caller's traceparent is only linked to, unless the service
// trusts it (auth), which continues the caller's trace.
func TestServerSpans(t *testing.T) {
	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, trust := range []bool{false, true} {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		h := api.New(api.Config{TracerProvider: tp, TrustTraceContext: trust})
		for _, path := range []string{"/healthz", "/v1/jobs/secret-looking-id/nowhere"} {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.Header.Set("traceparent", caller)
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
		spans := rec.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans, want 2", len(spans))
		}
		if spans[0].Name() != "GET /healthz" || spans[1].Name() != "GET unmatched" {
			t.Errorf("span names %q, %q", spans[0].Name(), spans[1].Name())
		}
		for _, s := range spans {
			if s.SpanKind() != trace.SpanKindServer {
				t.Errorf("%s: kind %v", s.Name(), s.SpanKind())
			}
			for _, a := range s.Attributes() {
				if strings.Contains(a.Value.String(), "secret-looking-id") {
					t.Errorf("%s: attribute %s holds the raw path", s.Name(), a.Key)
				}
			}
			inCaller := s.SpanContext().TraceID().String() == "0af7651916cd43dd8448eb211c80319c"
			switch {
			case trust && !inCaller:
				t.Errorf("trusted: %s is not in the caller's trace", s.Name())
			case !trust && inCaller:
				t.Errorf("untrusted: %s continues the caller's trace", s.Name())
			case !trust && (len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID().String() != "b7ad6b7169203331"):
				t.Errorf("untrusted: %s has links %+v, want one to the caller's span", s.Name(), s.Links())
			}
		}
	}
}
