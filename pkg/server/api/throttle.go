package api

import (
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/throttle"
)

// trustProxies makes gin take the client IP from X-Forwarded-For (or X-Real-IP) only when the
// peer is one of prefixes; with none, the peer's address is the client IP, whatever the headers
// say. The prefixes are parsed already, so this cannot fail.
func (s *Server) trustProxies(prefixes []netip.Prefix) {
	list := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		list = append(list, p.String())
	}
	if len(list) == 0 {
		list = nil // gin trusts every proxy unless told none
	}
	if err := s.eng.SetTrustedProxies(list); err != nil {
		s.log.Error("trusted proxies refused; trusting none", "err", err)
		_ = s.eng.SetTrustedProxies(nil)
	}
}

// throttled takes one attempt of p for email and the client IP. Over the limit it answers 429
// with Retry-After and returns true. The answer does not depend on whether the email has an
// account. It also puts the client IP into the request's context, for the auth service. A
// refusal is logged at debug level only: the request log has its 429 already, and a flood must
// not double the log volume.
func (s *Server) throttled(c *gin.Context, p *throttle.Policy, email string) bool {
	ip := c.ClientIP()
	c.Request = c.Request.WithContext(server.WithClientIP(c.Request.Context(), ip))
	wait, refund := p.Take(emailKey(email), ip)
	if wait <= 0 {
		c.Set(ctxRefund, refund)
		return false
	}
	s.log.Debug("throttled", "request_id", c.GetString(ctxRequestID), "route", c.FullPath(), "client_ip", ip,
		"retry_after", wait.String())
	s.fail(c, &server.Error{Code: server.ERATELIMITED, RetryAfter: wait,
		Message: "too many attempts; retry after the time given in Retry-After"})
	return true
}

// ctxRefund is the gin context key of the refund of the request's throttled attempt.
const ctxRefund = "v2m.throttle.refund"

// refundIfUnavailable gives the request's throttled attempt back when err says that it could
// not be carried out (EUNAVAILABLE: the password was not even checked), so that a client
// retrying through an outage does not use up its logins or registrations.
func refundIfUnavailable(c *gin.Context, err error) {
	if !server.IsCode(err, server.EUNAVAILABLE) {
		return
	}
	if v, ok := c.Get(ctxRefund); ok {
		if refund, ok := v.(func()); ok {
			refund()
		}
	}
}

// emailKey is the throttling key of an email: trimmed and lower-cased like NormalizeEmail, so
// that changing the letter case does not give a new bucket, but also for invalid addresses.
func emailKey(email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if len(email) > 254 {
		email = email[:254]
	}
	return email
}
