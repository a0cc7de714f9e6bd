package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
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
	c.JSON(http.StatusOK, jobs.WireLimits(l))
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
	l, err := jobs.ParseLimits(body)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.cfg.Service.Limits.SetUserLimits(c.Request.Context(), email, l); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("user limits set by an administrator", "admin", claimsOf(c).Subject, "user", email)
	c.JSON(http.StatusOK, jobs.WireLimits(l))
}
