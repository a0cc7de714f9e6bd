package api

import (
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// adminLimitRoutes registers GET and PUT /v1/admin/users/{email}/limits: a user's own quotas.
// They are kept with the jobs (the gateway's and standalone's store), so they need the job
// service.
func (s *Server) adminLimitRoutes(admin *gin.RouterGroup) {
	if s.cfg.Service == nil || s.cfg.Service.Limits == nil {
		return
	}
	admin.GET("/users/:email/limits", s.getLimits)
	admin.PUT("/users/:email/limits", s.putLimits)
}

// limitsOwner reads the email of the route, which must look like one.
func limitsOwner(c *gin.Context) (string, error) {
	email := strings.TrimSpace(c.Param("email"))
	if email == "" || len(email) > 254 || !strings.Contains(email, "@") {
		return "", server.Errorf(server.EINVALID, "%q is not an email address", email)
	}
	return email, nil
}

func (s *Server) getLimits(c *gin.Context) {
	email, err := limitsOwner(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	l, err := s.cfg.Service.Limits.UserLimits(c.Request.Context(), email)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toWireLimits(l))
}

func (s *Server) putLimits(c *gin.Context) {
	email, err := limitsOwner(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var body wire.Limits
	if err := s.decodeJSON(c, &body); err != nil {
		s.fail(c, err)
		return
	}
	l, err := fromWireLimits(body)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.cfg.Service.Limits.SetUserLimits(c.Request.Context(), email, l); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("user limits set by an administrator", "admin", claimsOf(c).Subject, "user", email)
	c.JSON(http.StatusOK, toWireLimits(l))
}

func toWireLimits(l server.Limits) wire.Limits {
	out := wire.Limits{QuotaBytes: l.QuotaBytes, MaxOpenUploads: l.MaxOpenUploads, MaxActiveJobs: l.MaxActiveJobs}
	if l.MaxDuration != nil {
		v := l.MaxDuration.Seconds()
		out.MaxDuration = &v
	}
	return out
}

// fromWireLimits checks a body of limits: no negative values, durations within a year.
func fromWireLimits(w wire.Limits) (server.Limits, error) {
	neg := func(name string) error {
		return server.Errorf(server.EINVALID, `field %q must be 0 (no limit) or more`, name)
	}
	if w.QuotaBytes != nil && *w.QuotaBytes < 0 {
		return server.Limits{}, neg("quota_bytes")
	}
	if w.MaxOpenUploads != nil && *w.MaxOpenUploads < 0 {
		return server.Limits{}, neg("max_open_uploads")
	}
	if w.MaxActiveJobs != nil && *w.MaxActiveJobs < 0 {
		return server.Limits{}, neg("max_active_jobs")
	}
	l := server.Limits{QuotaBytes: w.QuotaBytes, MaxOpenUploads: w.MaxOpenUploads, MaxActiveJobs: w.MaxActiveJobs}
	if w.MaxDuration != nil {
		v := *w.MaxDuration
		if math.IsNaN(v) || v < 0 || v > 366*24*3600 {
			return server.Limits{}, server.Errorf(server.EINVALID, `field "max_duration" must be seconds from 0 (no limit) to a year`)
		}
		d := time.Duration(v * float64(time.Second))
		l.MaxDuration = &d
	}
	return l, nil
}
