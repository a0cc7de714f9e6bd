package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// webhookRoutes adds the /v1/webhooks routes to the authenticated group.
func (s *Server) webhookRoutes(authed *gin.RouterGroup) {
	authed.POST("/webhooks", s.createWebhook)
	authed.GET("/webhooks", s.listWebhooks)
	authed.GET("/webhooks/:id", s.getWebhook)
	authed.DELETE("/webhooks/:id", s.deleteWebhook)
}

// toWebhookJSON shows a webhook; its secret only when withSecret (the answer of its creation).
func toWebhookJSON(w *server.Webhook, withSecret bool) wire.Webhook {
	out := wire.Webhook{ID: w.ID, URL: w.URL, Events: w.Events, CreatedAt: w.CreatedAt}
	if out.Events == nil {
		out.Events = []string{}
	}
	if withSecret {
		out.Secret = w.Secret
	}
	return out
}

// createWebhook is POST /v1/webhooks {url, events}: 201 with the secret, shown this once.
func (s *Server) createWebhook(c *gin.Context) {
	var req wire.NewWebhook
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	w, err := s.cfg.Webhooks.Create(c.Request.Context(), owner(c), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store") // it carries the secret
	c.JSON(http.StatusCreated, toWebhookJSON(w, true))
}

func (s *Server) listWebhooks(c *gin.Context) {
	list, err := s.cfg.Webhooks.Webhooks(c.Request.Context(), owner(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	out := wire.WebhookList{Webhooks: make([]wire.Webhook, 0, len(list))}
	for _, w := range list {
		out.Webhooks = append(out.Webhooks, toWebhookJSON(w, false))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getWebhook(c *gin.Context) {
	w, err := s.cfg.Webhooks.Webhook(c.Request.Context(), owner(c), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toWebhookJSON(w, false))
}

func (s *Server) deleteWebhook(c *gin.Context) {
	if err := s.cfg.Webhooks.Delete(c.Request.Context(), owner(c), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
