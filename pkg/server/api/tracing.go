package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// traced records a server span per request, named by its method and route template
// ("POST /v1/uploads/:id/complete"), never by its path. Its attributes are the method, the
// route, the status and, on the routes of one upload or job, v2m.job_id (an upload's id is its
// job's): no path, query, header, token or address.
//
// A caller's traceparent is continued only with Config.TrustTraceContext (a service that only
// other services call); elsewhere the request starts a trace of its own, linked to the caller's,
// so that no client decides what is sampled.
func (s *Server) traced() gin.HandlerFunc {
	tracer := tracing.Tracer(s.cfg.TracerProvider)
	return func(c *gin.Context) {
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		method := methodLabel(c.Request.Method)
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", method), attribute.String("http.route", route))}
		ctx := c.Request.Context()
		remote := tracing.Propagator().Extract(ctx, propagation.HeaderCarrier(c.Request.Header))
		if s.cfg.TrustTraceContext {
			ctx = remote
		} else if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
		}
		ctx, span := tracer.Start(ctx, method+" "+route, opts...)
		defer span.End()
		if id := c.Param("id"); id != "" && server.ValidID(id) &&
			(strings.HasPrefix(route, "/v1/uploads/") || strings.HasPrefix(route, "/v1/jobs/")) {
			span.SetAttributes(tracing.JobID.String(id))
		}
		c.Request = c.Request.WithContext(ctx)
		c.Next()
		status := c.Writer.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
}
