package api

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
)

// tutorialUpload is the tutorial's POST /upload: a multipart form with exactly one file. The
// file streams into the store; nothing is buffered in memory or in a temporary file.
//
// The upload is all or nothing. The store's Put makes a file visible only when its reader
// ends cleanly (disk renames a temporary file, GridFS adds the files document last), so the
// file part's reader does not end at the part's end: it first parses the rest of the body, and
// ends with an error instead when that fails (a malformed part, a second file, a body cut
// short, a stall, a client gone) or when the file is over the limit. Put then discards what
// it wrote, and the video never appears under its fid.
func (s *Server) tutorialUpload(c *gin.Context) {
	body := s.requestBody(c)
	c.Request.Body = io.NopCloser(body)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		s.fail(c, server.Errorf(server.EINVALID, "a multipart/form-data body with one file is required"))
		return
	}
	var file *multipart.Part
	for file == nil {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			s.fail(c, server.Errorf(server.EINVALID, "exactly one file is required"))
			return
		}
		if err != nil {
			s.fail(c, body.blame(server.Errorf(server.EINVALID, "malformed multipart body")))
			return
		}
		if p.FileName() == "" {
			p.Close()
			continue
		}
		file = p
	}
	whole := &wholeBody{part: file, mr: mr, left: s.cfg.Service.SizeLimit()}
	j, err := s.cfg.Service.Submit(c.Request.Context(), owner(c), file.FileName(), whole)
	body.answer()
	if err != nil {
		if whole.err != nil {
			err = whole.err // the store wraps it; the client gets the reason itself
		}
		s.fail(c, body.blame(err))
		return
	}
	c.JSON(http.StatusOK, toJobJSON(j))
}

// wholeBody reads the file part of a multipart body, at most left bytes of it. Where the part
// ends it parses the remaining parts, skipping form fields, and reports io.EOF only when the
// body ended cleanly with no second file; otherwise it reports why not, and remembers it in err.
type wholeBody struct {
	part *multipart.Part
	mr   *multipart.Reader
	left int64
	err  error
}

func (b *wholeBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.part.Read(p)
	if int64(n) > b.left {
		b.err = server.Errorf(server.ETOOLARGE, "the file is larger than the limit of %d bytes", b.left)
		return 0, b.err
	}
	b.left -= int64(n)
	switch {
	case errors.Is(err, io.EOF):
		b.part.Close()
		if b.err = b.rest(); b.err != nil {
			return n, b.err
		}
		return n, io.EOF
	case err != nil:
		b.err = server.Errorf(server.EINVALID, "malformed multipart body: the file part is cut short")
		return n, b.err
	}
	return n, nil
}

// rest reads the parts after the file: form fields are skipped; a second file, a malformed
// part or a body cut short is an error. A stall shows as such an error too; the handler's
// request body reader then reports it as one.
func (b *wholeBody) rest() error {
	for {
		p, err := b.mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return server.Errorf(server.EINVALID, "malformed multipart body after the file")
		}
		if p.FileName() != "" {
			p.Close()
			return server.Errorf(server.EINVALID, "exactly one file is required")
		}
		_, err = io.Copy(io.Discard, p)
		p.Close()
		if err != nil {
			return server.Errorf(server.EINVALID, "malformed multipart body after the file")
		}
	}
}
