// Package api serves v2m's HTTP API with gin: the /v1 routes documented in docs/api.md, the
// tutorial's original routes, and the service routes (/healthz, /readyz). Metrics are counted
// here but served elsewhere (v2md's --metrics-addr), never on the API's port.
//
// One Server type serves every role. Which routes exist follows from the dependencies set in
// Config: standalone sets them all; the auth service sets Accounts and JWKS; the gateway sets
// everything, with Accounts calling the auth service.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/api/web"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/server/metrics"
	"github.com/v2m/v2m/pkg/server/throttle"
	"github.com/v2m/v2m/pkg/server/webhook"
	"github.com/v2m/v2m/pkg/wire"
)

// Config holds a Server's dependencies and limits. Nil dependencies switch their routes off.
type Config struct {
	Accounts server.Accounts      // user and token routes
	Verifier server.TokenVerifier // bearer tokens; required by every authenticated route
	Service  *jobs.Service        // the upload, job and file routes
	Webhooks *webhook.Service     // the /v1/webhooks routes
	Admin    *jobs.Admin          // /v1/admin/jobs and /v1/admin/dead-letters

	JWKS  func() any                      // served at /.well-known/jwks.json when set
	Ready func(ctx context.Context) error // /readyz; nil means always ready

	MaxWait      time.Duration // longest long-poll; 60 s when zero
	PollInterval time.Duration // how often a long-poll looks at the job; 250 ms when zero
	Changes      *Signal       // optional: wakes long-polls when a job changes in this process
	Limits       Limits        // connection limits; the same as the http.Server's (NewHTTPServer)

	// Updates, when set, brings job changes to the event streams (GET /v1/events and
	// /v1/jobs/{id}/events) as they happen; they read the store every EventsPoll besides.
	Updates    server.JobUpdates
	EventsPoll time.Duration // DefaultEventsPoll with Updates, PollInterval without, when zero
	KeepAlive  time.Duration // how often an idle event stream sends a comment; DefaultKeepAlive when zero

	// Throttling of logins and registrations, by email then client IP (nil: unlimited).
	LoginLimit, RegisterLimit *throttle.Policy
	// TrustedProxies are the peers whose X-Forwarded-For gives the client IP; none when empty.
	TrustedProxies []netip.Prefix
	// Revoker revokes the caller's token (DELETE /v1/tokens/current) when set.
	Revoker server.TokenRevoker
	// Revocations, when set, is listed at GET /v1/revocations for gateways (the auth service).
	Revocations server.RevocationStore
	// Users, with Revocations, adds to that list the states of the users who are disabled or
	// administrators (auth.UserState), for gateways to refuse or demote their tokens.
	Users server.UserStore
	// PersonalTokens serves /v1/tokens/personal and /v1/tokens/introspect when set.
	PersonalTokens server.PersonalTokens
	// UserAdmin serves /v1/admin/users... when set.
	UserAdmin server.UserAdmin

	Logger  *slog.Logger
	Metrics *metrics.Metrics

	// TracerProvider, when set, records a server span per request (tracing.go).
	TracerProvider trace.TracerProvider
	// TrustTraceContext continues the trace of a request's traceparent header: for services
	// that only other services call (auth). Otherwise a request starts a trace linked to it.
	TrustTraceContext bool
}

// Server is the HTTP API.
type Server struct {
	cfg       Config
	log       *slog.Logger
	eng       *gin.Engine
	draining  chan struct{} // closed by Drain
	drainOnce sync.Once

	readyMu  sync.Mutex
	notReady string // why the last readiness probe failed; "" when it passed
}

// Drain makes long-polls answer at once with the job's current state, and ends event streams,
// so that a graceful shutdown does not wait for them.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// New builds a Server and its routes.
func New(cfg Config) *Server {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 60 * time.Second
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.EventsPoll <= 0 {
		cfg.EventsPoll = cfg.PollInterval
		if cfg.Updates != nil {
			cfg.EventsPoll = DefaultEventsPoll
		}
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, log: cfg.Logger, eng: gin.New(), draining: make(chan struct{})}
	s.trustProxies(cfg.TrustedProxies)
	// Handlers pass c.Request.Context() to stores, never the *gin.Context: gin recycles
	// contexts after a request, while a driver may still watch the one it was given.
	s.eng.HandleMethodNotAllowed = true
	s.eng.Use(secureHeaders, s.traced(), s.recoverer(), s.observe())
	s.eng.NoRoute(func(c *gin.Context) {
		s.fail(c, server.Errorf(server.ENOTFOUND, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	s.eng.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, errorBody("method_not_allowed", "method not allowed"))
	})
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.eng.ServeHTTP(w, r) }

func (s *Server) routes() {
	e := s.eng
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	if s.cfg.JWKS != nil {
		e.GET("/.well-known/jwks.json", func(c *gin.Context) {
			c.Header("Cache-Control", "public, max-age=300")
			c.JSON(http.StatusOK, s.cfg.JWKS())
		})
	}
	v1 := e.Group("/v1")
	if s.cfg.Accounts != nil {
		v1.POST("/users", s.createUser)
		v1.POST("/tokens", s.createToken)
		e.POST("/registration", s.registration)
		e.POST("/login", s.login)
	}
	if s.cfg.Revocations != nil {
		v1.GET("/revocations", s.listRevocations)
	}
	if s.cfg.Verifier == nil {
		return
	}
	authed := v1.Group("", s.authenticate)
	authed.GET("/me", s.me)
	s.adminRoutes(authed)
	if s.cfg.PersonalTokens != nil {
		s.personalTokenRoutes(authed)
	}
	if s.cfg.Revoker != nil {
		authed.DELETE("/tokens/current", s.revokeToken)
	}
	e.POST("/validate", s.authenticate, s.validate)
	if s.cfg.Webhooks != nil {
		s.webhookRoutes(authed)
	}
	if s.cfg.Service == nil {
		return
	}
	authed.POST("/uploads", s.createUpload)
	authed.GET("/uploads/:id", s.getUpload)
	authed.PUT("/uploads/:id/parts/:n", s.putPart)
	authed.POST("/uploads/:id/complete", s.completeUpload)
	authed.DELETE("/uploads/:id", s.abortUpload)
	authed.GET("/jobs", s.listJobs)
	authed.GET("/jobs/:id", s.getJob)
	authed.DELETE("/jobs/:id", s.deleteJob)
	authed.GET("/jobs/:id/archive", s.archive)
	authed.GET("/jobs/:id/events", s.jobEvents)
	authed.GET("/events", s.allEvents)
	authed.GET("/files/:fid", s.download)
	authed.HEAD("/files/:fid", s.download)
	e.POST("/upload", s.authenticate, s.tutorialUpload)
	e.GET("/download", s.authenticate, s.tutorialDownload)
	e.HEAD("/download", s.authenticate, s.tutorialDownload)
	s.page()
}

// page serves the web page at / and its files under /assets/ (package web), with the page's
// own Content-Security-Policy instead of the API's.
func (s *Server) page() {
	site, err := web.New()
	if err != nil {
		s.log.Error("the web page is not served", "err", err)
		return
	}
	serve := func(c *gin.Context) {
		if !site.Serve(c.Writer, c.Request, c.Request.URL.Path) {
			s.fail(c, server.Errorf(server.ENOTFOUND, "no such file %s", c.Request.URL.Path))
		}
	}
	for _, p := range []string{"/", "/assets/*file"} {
		s.eng.GET(p, serve)
		s.eng.HEAD(p, serve)
	}
}

func (s *Server) ready(c *gin.Context) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.readyChanged(err)
			retryAfter(c, server.EUNAVAILABLE, 0)
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
			return
		}
		s.readyChanged(nil)
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyChanged logs a change of readiness once, not every probe: a warning with the reason
// when it is lost or its reason changes (the details name internal hosts: logs only), a line
// when it is back.
func (s *Server) readyChanged(err error) {
	why := ""
	if err != nil {
		why = err.Error()
	}
	s.readyMu.Lock()
	last := s.notReady
	s.notReady = why
	s.readyMu.Unlock()
	switch {
	case why == last:
		if err != nil {
			s.log.Debug("not ready", "err", err)
		}
	case err != nil:
		s.log.Warn("not ready", "err", err)
	default:
		s.log.Info("ready again")
	}
}

// statusOf maps a domain error code to its HTTP status.
func statusOf(code string) int {
	switch code {
	case server.EINVALID:
		return http.StatusBadRequest
	case server.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case server.EFORBIDDEN:
		return http.StatusForbidden
	case server.ENOTFOUND:
		return http.StatusNotFound
	case server.ECONFLICT:
		return http.StatusConflict
	case server.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case server.ETIMEOUT:
		return http.StatusRequestTimeout
	case server.ERATELIMITED, server.ELIMIT:
		return http.StatusTooManyRequests
	case server.EGONE:
		return http.StatusGone
	case server.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// DefaultRetryAfter is the Retry-After of a 503 or 429 whose error names no wait of its own.
const DefaultRetryAfter = 2 * time.Second

// retryAfter sets Retry-After, in whole seconds rounded up, on an answer with code: every 503
// and 429 carries one (d, or DefaultRetryAfter when d is not positive), and any other answer
// only when d is positive.
func retryAfter(c *gin.Context, code string, d time.Duration) {
	if d <= 0 && (code == server.EUNAVAILABLE || code == server.ERATELIMITED) {
		d = DefaultRetryAfter
	}
	if d > 0 {
		c.Header("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
}

func errorBody(code, msg string) wire.ErrorBody {
	return wire.ErrorBody{Error: wire.Error{Code: code, Message: msg}}
}

// fail writes err as the API's error shape. Internal errors are logged with their details
// and answered with a generic message.
func (s *Server) fail(c *gin.Context, err error) {
	code := server.ErrorCode(err)
	if code == server.EINTERNAL {
		if errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil {
			c.Abort() // the client went away; nobody reads an answer
			return
		}
		s.log.ErrorContext(c.Request.Context(), "request failed", "request_id", c.GetString(ctxRequestID), "method", c.Request.Method,
			"path", c.FullPath(), "err", err)
	}
	if code == server.EUNAUTHORIZED && c.Writer.Header().Get("WWW-Authenticate") == "" {
		c.Header("WWW-Authenticate", `Bearer realm="v2m"`) // the login routes set Basic
	}
	retryAfter(c, code, server.RetryAfter(err))
	c.AbortWithStatusJSON(statusOf(code), errorBody(code, server.ErrorMessage(err)))
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
