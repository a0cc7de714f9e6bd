package api

import (
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

func (s *Server) download(c *gin.Context) { s.serveFile(c, c.Param("fid")) }

// tutorialDownload is the tutorial's GET /download?fid=.
func (s *Server) tutorialDownload(c *gin.Context) { s.serveFile(c, c.Query("fid")) }

// serveFile streams the caller's file fid (an MP3, the zip of a split job's MP3s, or one of
// these) with Range and ETag support. Someone else's file, and a job that is not done, are
// not found.
func (s *Server) serveFile(c *gin.Context, fid string) {
	d, err := s.cfg.Service.OpenFile(c.Request.Context(), owner(c), fid)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer d.Close()
	w := c.Writer
	w.Header().Set("Content-Type", d.Type)
	w.Header().Set("ETag", `"`+fid+`"`) // a file never changes once its job is done
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": d.Name}))
	normalizeRange(c.Request.Header)
	sw := s.streamResponse(c)
	http.ServeContent(sw, c.Request, "", d.ModTime(), d) // also HEAD, Range, If-None-Match, If-Range
	s.cfg.Metrics.BytesOut(sw.n)
}

// archive streams a zip of the MP3s of the caller's done job: GET /v1/jobs/{id}/archive.
func (s *Server) archive(c *gin.Context) {
	sw := s.streamResponse(c)
	started := false
	err := s.cfg.Service.WriteArchive(c.Request.Context(), owner(c), c.Param("id"), sw, func(name string) {
		started = true
		h := c.Writer.Header()
		h.Set("Content-Type", "application/zip")
		h.Set("Cache-Control", "private, max-age=86400")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	})
	s.cfg.Metrics.BytesOut(sw.n)
	if err != nil && !started {
		s.fail(c, err)
	} else if err != nil {
		// The answer has begun; it ends without the zip's central directory, which every
		// zip reader refuses, so no one takes the partial zip for a whole one.
		s.log.WarnContext(c.Request.Context(), "archive cut short", "job_id", c.Param("id"), "err", err)
	}
}

// normalizeRange adjusts a Range header for http.ServeContent, which gets some cases wrong
// under RFC 9110: a range unit other than bytes must be ignored (section 14.2), so the whole
// file is sent instead of a 416; a suffix range of zero bytes ("bytes=-0") selects nothing,
// where ServeContent would answer 206 with an impossible Content-Range; and an invalid range
// set ("bytes=5-2", "bytes=abc") is refused with 416 and, as for any 416, "Content-Range:
// bytes */size" (ServeContent leaves that header out there). Ranges past the end (416) and
// several ranges (206 multipart/byteranges) are ServeContent's.
func normalizeRange(h http.Header) {
	v := h.Get("Range")
	if v == "" {
		return
	}
	unit, set, ok := strings.Cut(v, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		h.Del("Range")
		return
	}
	var keep []string
	valid, dropped := true, false
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		first, last, ok := strings.Cut(spec, "-")
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		f, ferr := parseRangePos(first)
		l, lerr := parseRangePos(last)
		switch {
		case !ok || (first == "" && last == ""):
			valid = false
		case first == "": // suffix
			if lerr != nil {
				valid = false
			} else if l == 0 {
				dropped = true
				continue
			}
		case ferr != nil || (last != "" && (lerr != nil || l < f)):
			valid = false
		}
		keep = append(keep, first+"-"+last)
	}
	if !valid || (dropped && len(keep) == 0) {
		// Nothing satisfiable: a range that starts past any file makes ServeContent answer
		// 416 with "Content-Range: bytes */size", after its precondition checks.
		keep = []string{strconv.FormatInt(math.MaxInt64, 10) + "-"}
	}
	h.Set("Range", "bytes="+strings.Join(keep, ","))
}

// parseRangePos reads a first-pos or last-pos: digits only (no sign, no space).
func parseRangePos(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}
