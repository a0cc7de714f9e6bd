package api

import (
	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
)

// adminOnly lets through only tokens of administrators. Everyone else gets 404, the answer
// for a route that does not exist, so that the admin routes are not even shown to users.
func (s *Server) adminOnly(c *gin.Context) {
	if !claimsOf(c).Admin() {
		s.fail(c, server.Errorf(server.ENOTFOUND, "no such route %s", c.Request.URL.Path))
		return
	}
	c.Next()
}

// adminRoutes registers /v1/admin/*, for administrators only.
func (s *Server) adminRoutes(authed *gin.RouterGroup) {
	admin := authed.Group("/admin", s.adminOnly)
	s.adminUserRoutes(admin)
	s.adminJobRoutes(admin)
	s.adminLimitRoutes(admin)
}
