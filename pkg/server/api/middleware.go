package api

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
)

const (
	ctxRequestID = "request_id"
	ctxClaims    = "claims"
	ctxToken     = "token" // the raw bearer token, for revoking it
)

// observe gives each request an id, logs it once it is done, and counts it in metrics.
func (s *Server) observe() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := c.GetHeader("X-Request-ID")
		if id == "" || len(id) > 64 {
			id = server.NewID()
		}
		c.Set(ctxRequestID, id)
		c.Header("X-Request-ID", id)
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		s.cfg.Metrics.HTTPRequest(methodLabel(c.Request.Method), route, c.Writer.Status(), d)
		if route == "/healthz" || route == "/readyz" {
			return
		}
		s.log.InfoContext(c.Request.Context(), "http request", "request_id", id, "method", c.Request.Method, "route", route,
			"status", c.Writer.Status(), "bytes", c.Writer.Size(), "duration_ms", d.Milliseconds())
	}
}

// secureHeaders sets on every response the headers that keep a browser from doing anything
// clever with it: no MIME sniffing, no referrer, no framing, and a content security policy
// that allows nothing (the API serves JSON and MP3 attachments, never a page).
func secureHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	c.Next()
}

// recoverer turns a panic into a 500, so that one bad request never takes the process down.
func (s *Server) recoverer() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(c.Request.Context(), "panic in handler", "request_id", c.GetString(ctxRequestID), "panic", fmt.Sprint(v),
					"stack", string(debug.Stack()))
				if !c.Writer.Written() {
					c.AbortWithStatusJSON(http.StatusInternalServerError, errorBody(server.EINTERNAL, "internal error"))
				}
			}
		}()
		c.Next()
	}
}

// authenticate requires a valid bearer token and stores its claims.
func (s *Server) authenticate(c *gin.Context) {
	raw := bearer(c.Request)
	claims, err := s.cfg.Verifier.Verify(c.Request.Context(), raw)
	if err != nil {
		s.fail(c, err)
		return
	}
	if claims.ReadOnly && c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
		s.fail(c, server.Errorf(server.EFORBIDDEN, "this token is read-only: it may only GET and HEAD, not %s", methodLabel(c.Request.Method)))
		return
	}
	c.Set(ctxClaims, claims)
	c.Set(ctxToken, raw)
	c.Next()
}

// caller is who makes the request: the token and its claims.
func caller(c *gin.Context) server.Caller {
	return server.Caller{Token: c.GetString(ctxToken), Claims: claimsOf(c)}
}

func claimsOf(c *gin.Context) *server.Claims {
	v, _ := c.Get(ctxClaims)
	cl, _ := v.(*server.Claims)
	return cl
}

func owner(c *gin.Context) string { return claimsOf(c).Subject }

// methodLabel bounds the method label of metrics: any method a client makes up counts as OTHER.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
		return m
	}
	return "OTHER"
}
