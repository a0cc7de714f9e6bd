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

func toJobJSON(j *server.Job) wire.Job { return jobs.WireJob(j) }

func (s *Server) listJobs(c *gin.Context) {
	jobs, err := s.cfg.Service.ListJobs(c.Request.Context(), owner(c), 100)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]wire.Job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, toJobJSON(j))
	}
	c.JSON(http.StatusOK, wire.JobList{Jobs: out})
}

// ownJob loads the caller's job; someone else's is not found, with the same answer as a job
// that does not exist.
func (s *Server) ownJob(c *gin.Context, id string) (*server.Job, error) {
	return s.cfg.Service.Job(c.Request.Context(), owner(c), id)
}

// parseWait reads ?wait= as a Go duration ("30s") or whole seconds ("30").
func parseWait(v string, limit time.Duration) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, serr := strconv.Atoi(v)
		if serr != nil {
			return 0, server.Errorf(server.EINVALID, "wait must be a duration like 30s")
		}
		d = time.Duration(secs) * time.Second
	}
	if d < 0 {
		return 0, server.Errorf(server.EINVALID, "wait must not be negative")
	}
	return min(d, limit), nil
}

func (s *Server) getJob(c *gin.Context) {
	wait, err := parseWait(c.Query("wait"), s.cfg.MaxWait)
	if err != nil {
		s.fail(c, err)
		return
	}
	j, err := s.ownJob(c, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if wait > 0 && !j.State.Final() {
		s.extendFor(c, wait)
		j, err = s.waitJob(c, j, wait)
		if err != nil {
			s.fail(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, toJobJSON(j))
}

// waitJob looks at the job until it is final, the wait runs out, or the client leaves. Polling
// the store works the same with one gateway replica or many.
func (s *Server) waitJob(c *gin.Context, j *server.Job, wait time.Duration) (*server.Job, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	changes := func() <-chan struct{} {
		if s.cfg.Changes == nil {
			return nil // never ready: polling only
		}
		return s.cfg.Changes.Wait()
	}
	changed := changes()
	for {
		select {
		case <-changed:
			// reload below
		case <-tick.C:
			// reload below
		case <-deadline.C:
			return j, nil
		case <-s.draining:
			return j, nil
		case <-c.Request.Context().Done():
			return j, c.Request.Context().Err()
		}
		changed = changes() // before the read, so that no change slips between the two
		cur, err := s.ownJob(c, j.ID)
		if err != nil {
			return nil, err
		}
		j = cur
		if j.State.Final() {
			return j, nil
		}
	}
}

// deleteJob removes the caller's job with its video and MP3s.
func (s *Server) deleteJob(c *gin.Context) {
	if err := s.cfg.Service.Delete(c.Request.Context(), owner(c), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
