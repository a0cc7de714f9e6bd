package api

import (
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
)

func (s *Server) download(c *gin.Context) { s.serveMP3(c, c.Param("fid")) }

// tutorialDownload is the tutorial's GET /download?fid=.
func (s *Server) tutorialDownload(c *gin.Context) { s.serveMP3(c, c.Query("fid")) }

// serveMP3 streams the caller's MP3 with Range and ETag support. Someone else's file, and a
// job that is not done, are not found.
func (s *Server) serveMP3(c *gin.Context, fid string) {
	notFound := server.Errorf(server.ENOTFOUND, "file %s not found", fid)
	if !server.ValidID(fid) {
		s.fail(c, notFound)
		return
	}
	j, err := s.cfg.Jobs.JobByMP3(c.Request.Context(), fid)
	if err == nil && (j.Owner != owner(c) || j.State != server.JobDone) {
		err = notFound
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	b, err := s.cfg.Blobs.Open(c.Request.Context(), server.BucketMP3s, fid)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer b.Close()
	w := c.Writer
	w.Header().Set("Content-Type", "audio/mpeg")
	w.Header().Set("ETag", `"`+fid+`"`) // an MP3 never changes once its job is done
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": server.MP3Name(j.Filename)}))
	sw := s.streamResponse(c)
	http.ServeContent(sw, c.Request, "", b.ModTime(), b)
	s.cfg.Metrics.BytesOut(sw.n)
}
