package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
)

// revokeToken is DELETE /v1/tokens/current: the caller's token is refused from now on.
func (s *Server) revokeToken(c *gin.Context) {
	cl := claimsOf(c)
	if err := s.cfg.Revoker.RevokeToken(c.Request.Context(), c.GetString(ctxToken), cl); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("token revoked", "request_id", c.GetString(ctxRequestID), "jti", cl.ID)
	c.Status(http.StatusNoContent)
}

// listRevocations is GET /v1/revocations on the auth service: the revoked tokens that have not
// expired, for gateways to refuse them. It names token ids only, never tokens or users.
func (s *Server) listRevocations(c *gin.Context) {
	list, err := s.cfg.Revocations.Revocations(c.Request.Context(), time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	if list == nil {
		list = []server.Revocation{}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"revocations": list})
}
