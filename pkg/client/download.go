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

// Download saves file fid to dst, replacing it if it exists. It writes into dst+".part" and
// keeps the file's ETag in dst+".part.etag", both next to dst; a later call finds them and
// asks only for the rest (Range with If-Range, so a changed file is fetched whole). On
// completion the part file is renamed to dst. progress, when not nil, is called with the bytes
// on disk and the total (-1 when unknown).
func (c *Client) Download(ctx context.Context, fid, dst string, progress func(done, total int64)) error {
	return c.DownloadFile(ctx, fid, dst, DownloadOptions{Progress: progress})
}

// DownloadOptions tune DownloadFile.
type DownloadOptions struct {
	// Progress, when not nil, is called with the bytes on disk and the total (-1 when unknown).
	Progress func(done, total int64)
	// NoClobber refuses to replace a file at dst: DownloadFile then fails, before anything is
	// fetched, with an error that wraps fs.ErrExist. A file that appears at dst during the
	// download is not replaced either.
	NoClobber bool
}

// DownloadFile saves file fid to dst as Download does. Only a download cut off on the way (the
// connection broke, ctx ended) keeps its part file, for the next call to resume; any other
// failure leaves nothing behind. dst must not be a directory.
func (c *Client) DownloadFile(ctx context.Context, fid, dst string, opts DownloadOptions) error {
	if fi, err := os.Stat(dst); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("download %s: %s is a directory", fid, dst)
		}
		if opts.NoClobber {
			return fmt.Errorf("download %s: %s: %w", fid, dst, fs.ErrExist)
		}
	}
	if err := c.download(ctx, fid, dst, opts, true); err != nil {
		return fmt.Errorf("download %s: %w", fid, err)
	}
	return nil
}

// DownloadStream writes file fid to w, whole (a stream cannot be resumed), and returns the
// bytes written. progress is as for Download.
func (c *Client) DownloadStream(ctx context.Context, fid string, w io.Writer, progress func(done, total int64)) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/files/"+url.PathEscape(fid), nil)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", fid, err)
	}
	resp, err := c.sendRetrying(req)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", fid, err)
	}
	defer resp.Body.Close()
	total := resp.ContentLength
	n, err := copyProgress(w, resp.Body, 0, total, progress)
	if err == nil && total >= 0 && n != total {
		err = fmt.Errorf("got %d of %d bytes", n, total)
	}
	if err != nil {
		return n, fmt.Errorf("download %s: %w", fid, err)
	}
	return n, nil
}

// readError is a failure to read the answer's body: the connection broke, and what came so
// far may be resumed.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// copyProgress copies src to dst, calling progress (when not nil) with off plus the bytes
// copied, and returns the bytes copied. A failure to read src is a *readError.
func copyProgress(dst io.Writer, src io.Reader, off, total int64, progress func(done, total int64)) (int64, error) {
	if progress != nil {
		progress(off, total)
	}
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, rerr := src.Read(buf)
		if m > 0 {
			w, werr := dst.Write(buf[:m])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
			if w < m {
				return n, io.ErrShortWrite
			}
			if progress != nil {
				progress(off+n, total)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, &readError{fmt.Errorf("after %d bytes: %w", off+n, &ConnError{Err: rerr})}
		}
	}
}

func (c *Client) download(ctx context.Context, fid, dst string, opts DownloadOptions, mayResume bool) (err error) {
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
	resp, err := c.sendRetrying(req)
	if StatusOf(err) == http.StatusRequestedRangeNotSatisfiable && mayResume {
		return c.download(ctx, fid, dst, opts, false)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// The part file is created only once the server has the file, and it stays only when the
	// answer was cut off and can be resumed: any other failure leaves nothing behind.
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		var re *readError
		if err != nil && !(errors.As(err, &re) && resp.Header.Get("ETag") != "") {
			_ = os.Remove(part)
			_ = os.Remove(etagPath)
		}
	}()

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
	n, err := copyProgress(f, resp.Body, off, total, opts.Progress)
	if err != nil {
		return err
	}
	if total >= 0 && off+n != total {
		return &readError{fmt.Errorf("got %d of %d bytes", off+n, total)}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := place(part, dst, opts.NoClobber); err != nil {
		return err
	}
	_ = os.Remove(etagPath)
	return nil
}

// place renames the finished part file to dst; with noClobber it does not replace a file at
// dst, failing with an error that wraps fs.ErrExist.
func place(part, dst string, noClobber bool) error {
	if !noClobber {
		return os.Rename(part, dst)
	}
	// A hard link fails if dst exists, atomically; where links cannot be made, check first.
	err := os.Link(part, dst)
	switch {
	case err == nil:
		return os.Remove(part)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s: %w", dst, fs.ErrExist)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s: %w", dst, fs.ErrExist)
	}
	return os.Rename(part, dst)
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
