package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// personalTokenRoutes registers /v1/tokens/personal and /v1/tokens/introspect.
func (s *Server) personalTokenRoutes(authed *gin.RouterGroup) {
	authed.POST("/tokens/personal", s.createPersonalToken)
	authed.GET("/tokens/personal", s.listPersonalTokens)
	authed.DELETE("/tokens/personal/:id", s.revokePersonalToken)
	authed.GET("/tokens/introspect", s.introspect)
}

func wireToken(t *server.PersonalToken) wire.PersonalToken {
	w := wire.PersonalToken{ID: t.ID, Name: t.Name, ReadOnly: t.ReadOnly, CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()}
	if !t.LastUsedAt.IsZero() {
		used := t.LastUsedAt.UTC()
		w.LastUsedAt = &used
	}
	return w
}

func (s *Server) createPersonalToken(c *gin.Context) {
	var req wire.NewPersonalToken
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	ttl, ok := wire.ParseTTL(req.TTL)
	if req.TTL != "" && !ok {
		s.fail(c, server.Errorf(server.EINVALID, `"ttl" must be a duration such as "30d", "12h" or "90m", not %q`, req.TTL))
		return
	}
	raw, t, err := s.cfg.PersonalTokens.CreatePersonalToken(c.Request.Context(), caller(c),
		server.NewPersonalToken{Name: req.Name, TTL: ttl, ReadOnly: req.ReadOnly})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("personal token created", "request_id", c.GetString(ctxRequestID), "token_id", t.ID, "read_only", t.ReadOnly)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, wire.CreatedPersonalToken{Token: raw, PersonalToken: wireToken(t)})
}

func (s *Server) listPersonalTokens(c *gin.Context) {
	list, err := s.cfg.PersonalTokens.ListPersonalTokens(c.Request.Context(), caller(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	out := wire.PersonalTokenList{Tokens: make([]wire.PersonalToken, 0, len(list))}
	for _, t := range list {
		out.Tokens = append(out.Tokens, wireToken(t))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) revokePersonalToken(c *gin.Context) {
	if err := s.cfg.PersonalTokens.RevokePersonalToken(c.Request.Context(), caller(c), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("personal token revoked", "request_id", c.GetString(ctxRequestID), "token_id", c.Param("id"))
	c.Status(http.StatusNoContent)
}

// introspect is GET /v1/tokens/introspect: what the caller's token says, for gateways that
// check personal tokens through the auth service.
func (s *Server) introspect(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, claimsOf(c))
}
