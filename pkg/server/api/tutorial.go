package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
)

// tutorialUpload is the tutorial's POST /upload: a multipart form with exactly one file. The
// file streams into the store; nothing is buffered in memory or in a temporary file.
func (s *Server) tutorialUpload(c *gin.Context) {
	body := s.requestBody(c)
	c.Request.Body = io.NopCloser(body)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		s.fail(c, server.Errorf(server.EINVALID, "a multipart/form-data body with one file is required"))
		return
	}
	var (
		fid   string
		name  string
		size  int64
		files int
	)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.fail(c, body.blame(server.Errorf(server.EINVALID, "malformed multipart body")))
			return
		}
		if p.FileName() == "" {
			p.Close()
			continue
		}
		if files++; files > 1 {
			p.Close()
			s.cfg.Blobs.Delete(c.Request.Context(), server.BucketVideos, fid)
			s.fail(c, server.Errorf(server.EINVALID, "exactly one file is required"))
			return
		}
		if name, err = cleanFilename(p.FileName()); err != nil {
			s.fail(c, err)
			return
		}
		fid = server.NewID()
		size, err = s.putLimited(c, fid, name, body.track(p))
		p.Close()
		if err != nil {
			s.cfg.Blobs.Delete(c.Request.Context(), server.BucketVideos, fid)
			s.fail(c, body.blame(err))
			return
		}
	}
	if files == 0 {
		s.fail(c, server.Errorf(server.EINVALID, "exactly one file is required"))
		return
	}
	s.cfg.Metrics.BytesIn(size)
	j, err := s.enqueue(c, fid, owner(c), name, size)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toJobJSON(j))
}

func (s *Server) putLimited(c *gin.Context, fid, name string, p io.Reader) (int64, error) {
	lr := &io.LimitedReader{R: p, N: s.cfg.MaxUploadSize + 1}
	n, err := s.cfg.Blobs.Put(c.Request.Context(), server.BucketVideos, fid, name, lr)
	if err != nil {
		return 0, err
	}
	if n > s.cfg.MaxUploadSize {
		return 0, server.Errorf(server.ETOOLARGE, "the file is larger than the limit of %d bytes", s.cfg.MaxUploadSize)
	}
	return n, nil
}
