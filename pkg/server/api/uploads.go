package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

func toUploadJSON(u *server.Upload, received []int) wire.Upload {
	if received == nil {
		received = []int{}
	}
	return wire.Upload{ID: u.ID, Filename: u.Filename, Size: u.Size, PartSize: u.PartSize, Parts: u.Parts(), Received: received}
}

// cleanFilename keeps the base name of what a client sent, as valid UTF-8 without control
// characters, at most 255 bytes.
func cleanFilename(name string) (string, error) {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(strings.TrimSpace(name))
	if name == "." || name == "/" || name == "" || name == ".." {
		return "", server.Errorf(server.EINVALID, "filename is required")
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", server.Errorf(server.EINVALID, "filename has invalid characters")
	}
	if len(name) > 255 {
		return "", server.Errorf(server.EINVALID, "filename longer than 255 bytes")
	}
	return name, nil
}

func (s *Server) createUpload(c *gin.Context) {
	var req struct {
		Filename string          `json:"filename"`
		Size     json.RawMessage `json:"size"`
		SHA256   string          `json:"sha256"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	name, err := cleanFilename(req.Filename)
	if err != nil {
		s.fail(c, err)
		return
	}
	size, err := strconv.ParseInt(string(req.Size), 10, 64)
	if err != nil || size < 0 {
		s.fail(c, server.Errorf(server.EINVALID, `field "size" must be a whole number of bytes`))
		return
	}
	if size > s.cfg.MaxUploadSize {
		s.fail(c, server.Errorf(server.ETOOLARGE, "the file is %d bytes; the limit is %d", size, s.cfg.MaxUploadSize))
		return
	}
	sum := strings.ToLower(req.SHA256)
	if b, err := hex.DecodeString(sum); sum != "" && (err != nil || len(b) != 32) {
		s.fail(c, server.Errorf(server.EINVALID, `field "sha256" must be 64 hex digits`))
		return
	}
	u := &server.Upload{ID: server.NewID(), Owner: owner(c), Filename: name, Size: size, PartSize: s.cfg.PartSize,
		SHA256: sum, CreatedAt: time.Now().UTC()}
	if err := s.cfg.Uploads.CreateUpload(c.Request.Context(), u); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toUploadJSON(u, nil))
}

// ownUpload loads the caller's upload; someone else's is not found.
func (s *Server) ownUpload(c *gin.Context) (*server.Upload, bool) {
	id := c.Param("id")
	notFound := server.Errorf(server.ENOTFOUND, "upload %s not found", id)
	if !server.ValidID(id) {
		s.fail(c, notFound)
		return nil, false
	}
	u, err := s.cfg.Uploads.Upload(c.Request.Context(), id)
	if err == nil && u.Owner != owner(c) {
		err = notFound
	}
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	return u, true
}

func (s *Server) getUpload(c *gin.Context) {
	u, ok := s.ownUpload(c)
	if !ok {
		return
	}
	parts, err := s.cfg.Blobs.Parts(c.Request.Context(), u)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toUploadJSON(u, parts))
}

func (s *Server) putPart(c *gin.Context) {
	u, ok := s.ownUpload(c)
	if !ok {
		return
	}
	n, err := strconv.Atoi(c.Param("n"))
	want := u.PartLen(n)
	if err != nil || want < 0 {
		s.fail(c, server.Errorf(server.EINVALID, "part number must be 0 to %d", u.Parts()-1))
		return
	}
	if cl := c.Request.ContentLength; cl >= 0 && cl != want {
		s.fail(c, server.Errorf(server.EINVALID, "part %d must be %d bytes, the request has %d", n, want, cl))
		return
	}
	req := s.requestBody(c)
	var body io.Reader = req
	if h := c.GetHeader("X-Part-CRC32C"); h != "" {
		sum, err := strconv.ParseUint(h, 16, 32)
		if err != nil || len(h) != 8 {
			s.fail(c, server.Errorf(server.EINVALID, "X-Part-CRC32C must be 8 hex digits"))
			return
		}
		body = &checkedReader{r: body, want: want, sum: uint32(sum), h: crc32.New(crc32.MakeTable(crc32.Castagnoli)), part: n}
	}
	if err := s.cfg.Blobs.WritePart(c.Request.Context(), u, n, body); err != nil {
		s.fail(c, req.blame(err))
		return
	}
	s.cfg.Metrics.BytesIn(want)
	c.Status(http.StatusNoContent)
}

// checkedReader fails the read that completes the part when its CRC-32C differs, so that a
// store never marks a corrupted part as received.
type checkedReader struct {
	r    io.Reader
	h    hash.Hash32
	want int64
	got  int64
	sum  uint32
	part int
}

func (r *checkedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.got += int64(n)
	if r.got == r.want && r.h.Sum32() != r.sum {
		return n, server.Errorf(server.EINVALID, "part %d: CRC-32C mismatch (got %08x, header says %08x)", r.part, r.h.Sum32(), r.sum)
	}
	return n, err
}

// completeRate is the slowest a store is expected to read an upload back when completing it,
// in bytes per second: 4 GiB get 8.5 minutes.
const completeRate = 8 << 20

func (s *Server) completeUpload(c *gin.Context) {
	id := c.Param("id")
	if !server.ValidID(id) {
		s.fail(c, server.Errorf(server.ENOTFOUND, "upload %s not found", id))
		return
	}
	if j, err := s.cfg.Jobs.Job(c.Request.Context(), id); err == nil && j.Owner == owner(c) {
		c.JSON(http.StatusCreated, toJobJSON(j)) // completed before: the answer was lost
		return
	}
	u, ok := s.ownUpload(c)
	if !ok {
		return
	}
	// Completing reads the whole video back (for its size and sha256): that is the server's
	// work, not the client's, and may take longer than a small request's timeouts.
	s.extendFor(c, time.Duration(u.Size/completeRate+1)*time.Second)
	if err := s.cfg.Blobs.CompleteUpload(c.Request.Context(), u); err != nil {
		if server.IsCode(err, server.EINVALID) { // checksum mismatch: the upload is gone
			_ = s.cfg.Uploads.DeleteUpload(c.Request.Context(), u.ID)
		}
		s.fail(c, err)
		return
	}
	j, err := s.enqueue(c, u.ID, u.Owner, u.Filename, u.Size)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.cfg.Uploads.DeleteUpload(c.Request.Context(), u.ID); err != nil {
		s.log.Warn("delete completed upload", "upload_id", u.ID, "err", err)
	}
	c.JSON(http.StatusCreated, toJobJSON(j))
}

// enqueue records a queued job for the video fid (the job takes the video's id) and publishes
// it. A failed publish is logged and counted but not returned: the job stays queued, and the
// sweeper publishes it again.
func (s *Server) enqueue(c *gin.Context, fid, owner, filename string, size int64) (*server.Job, error) {
	now := time.Now().UTC()
	j := &server.Job{ID: fid, Owner: owner, State: server.JobQueued, Filename: filename, Size: size, VideoFID: fid,
		MP3FID: server.NewID(), CreatedAt: now, UpdatedAt: now}
	if err := s.cfg.Jobs.CreateJob(c.Request.Context(), j); err != nil {
		if !server.IsCode(err, server.ECONFLICT) {
			return nil, fmt.Errorf("create job: %w", err)
		}
		if j, err = s.cfg.Jobs.Job(c.Request.Context(), fid); err != nil {
			return nil, err
		}
		return j, nil
	}
	s.cfg.Metrics.Job(string(server.JobQueued))
	body, _ := json.Marshal(server.VideoMessage{JobID: j.ID, VideoFID: j.VideoFID, Username: j.Owner})
	if err := s.cfg.Queue.Publish(c.Request.Context(), server.TopicVideo, body); err != nil {
		s.cfg.Metrics.PublishFailure(server.TopicVideo)
		s.log.Warn("publish failed; the sweeper will retry", "job_id", j.ID, "err", err)
	}
	s.log.Info("job queued", "request_id", c.GetString(ctxRequestID), "job_id", j.ID, "size", size)
	return j, nil
}

func (s *Server) abortUpload(c *gin.Context) {
	u, ok := s.ownUpload(c)
	if !ok {
		return
	}
	if err := s.cfg.Blobs.AbortUpload(c.Request.Context(), u); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.cfg.Uploads.DeleteUpload(c.Request.Context(), u.ID); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
