package api

import (
	"encoding/json"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/jobs"
	"github.com/v2m/v2m/pkg/wire"
)

func toUploadJSON(u *server.Upload, received []int) wire.Upload {
	if received == nil {
		received = []int{}
	}
	return wire.Upload{ID: u.ID, Filename: u.Filename, Size: u.Size, SourceSize: u.SourceSize, PartSize: u.PartSize,
		Parts: u.Parts(), Received: received}
}

func (s *Server) createUpload(c *gin.Context) {
	var req struct {
		Filename string          `json:"filename"`
		Size     json.RawMessage `json:"size"`
		SHA256   string          `json:"sha256"`
		Options  json.RawMessage `json:"options"`
		// SourceSize is read as Size is, so that a fraction or a string is a clear error.
		SourceSize json.RawMessage `json:"source_size"`
	}
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	opts, err := decodeOptions(req.Options)
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := jobs.CleanFilename(req.Filename); err != nil {
		s.fail(c, err)
		return
	}
	size, err := strconv.ParseInt(string(req.Size), 10, 64)
	if err != nil {
		s.fail(c, server.Errorf(server.EINVALID, `field "size" must be a whole number of bytes`))
		return
	}
	var sourceSize int64
	if len(req.SourceSize) > 0 && string(req.SourceSize) != "null" {
		if sourceSize, err = strconv.ParseInt(string(req.SourceSize), 10, 64); err != nil {
			s.fail(c, server.Errorf(server.EINVALID, `field "source_size" must be a whole number of bytes`))
			return
		}
	}
	u, err := s.cfg.Service.StartUpload(c.Request.Context(), owner(c),
		jobs.NewUpload{Filename: req.Filename, Size: size, SHA256: req.SHA256, Options: opts, SourceSize: sourceSize})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toUploadJSON(u, nil))
}

// decodeOptions reads the "options" of POST /v1/uploads: absent or null is nil (the
// defaults). Unlike the rest of the body, a key that is not exactly an option's (encoding/json
// would take "Quality" for "quality") is refused, naming it: a misspelt option would otherwise
// be dropped without a word and make the wrong MP3. The values are checked by the job service.
func decodeOptions(raw json.RawMessage) (*wire.Options, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, server.Errorf(server.EINVALID, `field "options" must be an object`)
	}
	names := optionNames()
	var unknown []string
	for k := range keys {
		if !slices.Contains(names, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		what := "option"
		if len(unknown) > 1 {
			what = "options"
		}
		return nil, server.Errorf(server.EINVALID, "unknown %s %s; the options are %s", what, strings.Join(unknown, ", "),
			strings.Join(names, ", "))
	}
	var o wire.Options
	err := json.Unmarshal(raw, &o)
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return &o, nil
	case errors.As(err, &typ) && typ.Field != "":
		t := typ.Type
		if t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		return nil, server.Errorf(server.EINVALID, "option %q must be %s", typ.Field, jsonKind(t))
	default:
		return nil, server.Errorf(server.EINVALID, `field "options" is malformed`)
	}
}

// optionNames lists the keys of wire.Options, as the API spells them, in their order.
func optionNames() []string {
	t := reflect.TypeFor[wire.Options]()
	names := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

// ownUpload loads the caller's upload; someone else's is not found.
func (s *Server) ownUpload(c *gin.Context) (*server.Upload, bool) {
	u, err := s.cfg.Service.Upload(c.Request.Context(), owner(c), c.Param("id"))
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
	parts, err := s.cfg.Service.Received(c.Request.Context(), u)
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
	if err != nil {
		n = -1
	}
	if err := jobs.CheckPart(u, n, c.Request.ContentLength); err != nil {
		s.fail(c, err)
		return
	}
	want := u.PartLen(n)
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
	err = s.cfg.Service.WritePart(c.Request.Context(), u, n, body)
	req.answer()
	if err != nil {
		s.fail(c, req.blame(err))
		return
	}
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
	// Completing reads the whole video back (for its size and sha256): that is the server's
	// work, not the client's, and may take longer than a small request's timeouts.
	if u, err := s.cfg.Service.Upload(c.Request.Context(), owner(c), id); err == nil {
		s.extendFor(c, time.Duration(u.Size/completeRate+1)*time.Second)
	}
	j, err := s.cfg.Service.Complete(c.Request.Context(), owner(c), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toJobJSON(j))
}

func (s *Server) abortUpload(c *gin.Context) {
	if err := s.cfg.Service.Abort(c.Request.Context(), owner(c), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
