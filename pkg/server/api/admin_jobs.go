package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/wire"
)

// adminJobRoutes registers the routes that manage everyone's jobs and dead letters
// (/v1/admin/jobs..., /v1/admin/dead-letters...). Without Config.Admin they do not exist.
func (s *Server) adminJobRoutes(admin *gin.RouterGroup) {
	if s.cfg.Admin == nil {
		return
	}
	admin.GET("/jobs", s.adminJobs)
	admin.GET("/dead-letters", s.deadLetters)
	admin.POST("/dead-letters/replay", s.replayDeadLetters)
	admin.DELETE("/dead-letters", s.purgeDeadLetters)
}

func (s *Server) adminJobs(c *gin.Context) {
	f := server.JobFilter{State: server.JobState(c.Query("state")), Owner: c.Query("owner")}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.fail(c, server.Errorf(server.EINVALID, "limit must be a whole number"))
			return
		}
		if n == 0 {
			n = -1 // 0 is not "the default" when given
		}
		f.Limit = n
	}
	since, err := jobs.ParseSince(c.Query("since"), time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	f.Since = since
	js, err := s.cfg.Admin.FindJobs(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.AdminJobList{Jobs: js})
}

func (s *Server) deadLetters(c *gin.Context) {
	ls, err := s.cfg.Admin.DeadLetters(c.Request.Context(), c.Query("topic"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.DeadLetterList{Letters: ls})
}

func (s *Server) replayDeadLetters(c *gin.Context) {
	var req wire.LetterIDs
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.cfg.Admin.Replay(c.Request.Context(), c.Query("topic"), req.IDs, req.All)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// purgeDeadLetters purges every dead letter (of ?topic=) when the request has no body, or
// those its {"ids": [...]} names.
func (s *Server) purgeDeadLetters(c *gin.Context) {
	req := wire.LetterIDs{All: true}
	if c.Request.ContentLength != 0 {
		req = wire.LetterIDs{}
		if err := s.decodeJSON(c, &req); err != nil {
			s.fail(c, err)
			return
		}
	}
	n, err := s.cfg.Admin.Purge(c.Request.Context(), c.Query("topic"), req.IDs, req.All)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.PurgeResult{Purged: n})
}
