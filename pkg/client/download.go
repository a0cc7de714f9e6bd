package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Download saves file fid to dst. It writes into dst+".part" and keeps the file's ETag in
// dst+".part.etag"; a later call finds them and asks only for the rest (Range with If-Range,
// so a changed file is fetched whole). On completion the part file is renamed to dst.
// progress, when not nil, is called with the bytes on disk and the total (-1 when unknown).
func (c *Client) Download(ctx context.Context, fid, dst string, progress func(done, total int64)) error {
	if err := c.download(ctx, fid, dst, progress, true); err != nil {
		return fmt.Errorf("download %s: %w", fid, err)
	}
	return nil
}

func (c *Client) download(ctx context.Context, fid, dst string, progress func(done, total int64), mayResume bool) error {
	part, etagPath := dst+".part", dst+".part.etag"
	var off int64
	if fi, err := os.Stat(part); err == nil {
		off = fi.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	etag := ""
	if b, err := os.ReadFile(etagPath); err == nil {
		etag = strings.TrimSpace(string(b))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !mayResume || etag == "" {
		off = 0 // what is there cannot be validated
	}

	req, err := c.newRequest(ctx, http.MethodGet, "/v1/files/"+url.PathEscape(fid), nil)
	if err != nil {
		return err
	}
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
		req.Header.Set("If-Range", etag)
	}
	resp, err := c.send(req)
	if StatusOf(err) == http.StatusRequestedRangeNotSatisfiable && mayResume {
		return c.download(ctx, fid, dst, progress, false)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// The part file is created only once the server has the file: a failed download leaves
	// nothing behind.
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()

	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, t, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			return fmt.Errorf("server answered range %q to a request from byte %d", resp.Header.Get("Content-Range"), off)
		}
		total = t
	case http.StatusOK:
		off = 0
		if resp.ContentLength >= 0 {
			total = resp.ContentLength
		}
		if err := f.Truncate(0); err != nil {
			return err
		}
		if err := writeSmallFile(etagPath, resp.Header.Get("ETag")); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unexpected answer %s", resp.Status)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	if progress != nil {
		progress(off, total)
	}
	var w io.Writer = f
	if progress != nil {
		done := off
		w = writerFunc(func(p []byte) (int, error) {
			n, err := f.Write(p)
			done += int64(n)
			progress(done, total)
			return n, err
		})
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", off+n, err)
	}
	if total >= 0 && off+n != total {
		return fmt.Errorf("got %d of %d bytes", off+n, total)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(part, dst); err != nil {
		return err
	}
	_ = os.Remove(etagPath)
	return nil
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", giving -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// writeSmallFile writes s to path, or removes path when s is empty.
func writeSmallFile(path, s string) error {
	if s == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return os.WriteFile(path, []byte(s+"\n"), 0o644)
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }
