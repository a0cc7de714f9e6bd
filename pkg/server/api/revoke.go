package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/auth"
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
// expired, for gateways to refuse them, and the states of disabled users and administrators.
// It names token ids and hashed emails (auth.SubjectKey) only, never tokens or addresses.
func (s *Server) listRevocations(c *gin.Context) {
	list, err := s.cfg.Revocations.Revocations(c.Request.Context(), time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	if list == nil {
		list = []server.Revocation{}
	}
	body := gin.H{"revocations": list}
	if s.cfg.Users != nil {
		users, err := s.cfg.Users.UserStates(c.Request.Context())
		if err != nil {
			s.fail(c, err)
			return
		}
		body["users"] = auth.States(users)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, body)
}
