// Package disk implements server.BlobStore on a local directory, for standalone.
//
// Layout under the root:
//
//	videos/<fid>, mp3s/<fid>       finished files
//	uploads/<id>/data               the upload, preallocated to its size; parts are written at their offsets
//	uploads/<id>/parts/<n>          an empty marker, created once part n is on disk (after fsync)
//	uploads/<id>/parts/.<n>.*       a rewrite of part n being received, before it is copied into place
//
// Completing an upload renames its data file into videos/, so no byte is copied twice.
package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// Store is a BlobStore rooted at a directory.
type Store struct {
	root  string
	locks *locks
}

// New returns a Store rooted at dir, creating its directories.
func New(dir string) (*Store, error) {
	for _, sub := range []string{server.BucketVideos, server.BucketMP3s, "uploads"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("create blob dir: %w", err)
		}
	}
	return &Store{root: dir, locks: newLocks()}, nil
}

func (s *Store) uploadDir(u *server.Upload) (string, error) {
	if !server.ValidID(u.ID) {
		return "", server.Errorf(server.EINVALID, "bad upload id")
	}
	return filepath.Join(s.root, "uploads", u.ID), nil
}

func (s *Store) path(bucket, fid string) (string, error) {
	if bucket != server.BucketVideos && bucket != server.BucketMP3s {
		return "", fmt.Errorf("unknown bucket %q", bucket)
	}
	if !server.ValidID(fid) {
		return "", server.Errorf(server.ENOTFOUND, "file %s not found", fid)
	}
	return filepath.Join(s.root, bucket, fid), nil
}

// WritePart implements server.BlobStore.
//
// The first writer of a part that is not yet counted writes it straight into place in the
// upload's data file, so an upload's bytes are written once. Any other writer of the part (a
// rewrite of a counted part, or a second writer while the first is still at it) receives the
// body into a temporary file next to the parts' markers, and only once the body is whole and
// checked copies it into place (copy_file_range, inside the kernel) while it holds the part's
// lock, unmarking the part for the time of the copy. So a counted part is always one writer's
// whole body, and a rewrite that fails leaves the counted part as it was (only a failure of the
// local copy itself leaves the part uncounted, to be sent again).
//
// The locks are in the Store: the guarantees hold for the writers of one Store, which is all
// a data directory has (standalone holds one writer per directory).
func (s *Store) WritePart(ctx context.Context, u *server.Upload, n int, r io.Reader) error {
	want := u.PartLen(n)
	if want < 0 {
		return server.Errorf(server.EINVALID, "part %d out of range (0-%d)", n, u.Parts()-1)
	}
	dir, err := s.uploadDir(u)
	if err != nil {
		return err
	}
	marker := filepath.Join(dir, "parts", strconv.Itoa(n))
	partKey := u.ID + "/" + strconv.Itoa(n)

	// Decide under the upload's lock, which CompleteUpload and AbortUpload hold too.
	unlockUpload, err := s.locks.lock(ctx, u.ID)
	if err != nil {
		return err
	}
	counted, err := s.prepare(u, dir, marker)
	if err != nil {
		unlockUpload()
		return err
	}
	unlockPart, mine := s.locks.tryLock(partKey)
	unlockUpload()
	if mine && !counted {
		defer unlockPart()
		return s.writeInPlace(ctx, u, n, dir, marker, r)
	}
	if mine {
		unlockPart()
	}

	tmp, err := os.CreateTemp(filepath.Join(dir, "parts"), "."+strconv.Itoa(n)+".*")
	if err != nil {
		return fmt.Errorf("create temporary part %d: %w", n, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := receive(ctx, tmp, n, want, r); err != nil {
		return err
	}
	if unlockPart, err = s.locks.lock(ctx, partKey); err != nil {
		return err
	}
	defer unlockPart()
	if unlockUpload, err = s.locks.lock(ctx, u.ID); err != nil {
		return err
	}
	defer unlockUpload()
	if err := s.stillOpen(u, dir, n); err != nil {
		return err
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unmark part %d: %w", n, err)
	}
	if err := s.copyInPlace(u, n, dir, tmp); err != nil {
		return err
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		return fmt.Errorf("mark part %d: %w", n, err)
	}
	return nil
}

// prepare checks, under the upload's lock, that u is not completed, creates its directories,
// and reports whether the part whose marker is given is counted.
func (s *Store) prepare(u *server.Upload, dir, marker string) (counted bool, err error) {
	video, _ := s.path(server.BucketVideos, u.ID)
	if _, err := os.Stat(video); err == nil {
		return false, server.Errorf(server.ECONFLICT, "upload %s is already complete", u.ID)
	}
	if err := os.MkdirAll(filepath.Join(dir, "parts"), 0o700); err != nil {
		return false, fmt.Errorf("create upload dir: %w", err)
	}
	switch _, err := os.Stat(marker); {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("read part marker: %w", err)
	}
}

// stillOpen checks, under the upload's lock, that u was neither completed nor aborted while
// part n was being received; its directory must then not be created again.
func (s *Store) stillOpen(u *server.Upload, dir string, n int) error {
	if _, err := os.Stat(filepath.Join(dir, "parts")); err != nil {
		return server.Errorf(server.ECONFLICT, "upload %s was completed or discarded while part %d was written", u.ID, n)
	}
	return nil
}

// openData opens the upload's data file for writing, at its final size.
func openData(u *server.Upload, dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open upload data: %w", err)
	}
	if err := f.Truncate(u.Size); err != nil { // no-op after the first part
		f.Close()
		return nil, fmt.Errorf("size upload data: %w", err)
	}
	return f, nil
}

// writeInPlace writes a part that is not counted straight at its offset; the caller holds the
// part's lock, so no one else writes there meanwhile.
func (s *Store) writeInPlace(ctx context.Context, u *server.Upload, n int, dir, marker string, r io.Reader) error {
	f, err := openData(u, dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := receive(ctx, io.NewOffsetWriter(f, int64(n)*u.PartSize), n, u.PartLen(n), r); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync part %d: %w", n, err)
	}
	unlock, err := s.locks.lock(ctx, u.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.stillOpen(u, dir, n); err != nil {
		return err
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		return fmt.Errorf("mark part %d: %w", n, err)
	}
	return nil
}

// copyInPlace copies a received part from tmp to its offset in the data file and syncs it.
func (s *Store) copyInPlace(u *server.Upload, n int, dir string, tmp *os.File) error {
	f, err := openData(u, dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(int64(n)*u.PartSize, io.SeekStart); err != nil {
		return fmt.Errorf("seek to part %d: %w", n, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind part %d: %w", n, err)
	}
	// *os.File.ReadFrom uses copy_file_range for a limited *os.File.
	if _, err := f.ReadFrom(io.LimitReader(tmp, u.PartLen(n))); err != nil {
		return fmt.Errorf("copy part %d into place: %w", n, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync part %d: %w", n, err)
	}
	return nil
}

// receive copies exactly want bytes of part n from r to w: fewer or more give EINVALID, and
// so does an error of r (the API's CRC check fails the last read).
func receive(ctx context.Context, w io.Writer, n int, want int64, r io.Reader) error {
	got, err := io.Copy(w, &ctxReader{ctx: ctx, r: io.LimitReader(r, want)})
	if err != nil {
		return fmt.Errorf("write part %d: %w", n, err)
	}
	if got != want {
		return server.Errorf(server.EINVALID, "part %d has %d bytes, want %d", n, got, want)
	}
	// Never write past the part (that is the next part's place): look for an extra byte.
	switch extra, err := r.Read(make([]byte, 1)); {
	case extra > 0:
		return server.Errorf(server.EINVALID, "part %d is longer than %d bytes", n, want)
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("read part %d: %w", n, err)
	}
	return nil
}

// Parts implements server.BlobStore.
func (s *Store) Parts(_ context.Context, u *server.Upload) ([]int, error) {
	dir, err := s.uploadDir(u)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(dir, "parts"))
	if errors.Is(err, os.ErrNotExist) {
		return []int{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list parts: %w", err)
	}
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n >= 0 && n < u.Parts() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// CompleteUpload implements server.BlobStore.
func (s *Store) CompleteUpload(ctx context.Context, u *server.Upload) error {
	dst, err := s.path(server.BucketVideos, u.ID)
	if err != nil {
		return err
	}
	dir, err := s.uploadDir(u)
	if err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, u.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(dst); err == nil {
		return nil // completed before
	}
	parts, err := s.Parts(ctx, u)
	if err != nil {
		return err
	}
	if missing := u.Parts() - len(parts); missing > 0 {
		return server.Errorf(server.ECONFLICT, "%d of %d parts missing", missing, u.Parts())
	}
	data := filepath.Join(dir, "data")
	if u.Size == 0 { // an empty file has one empty part and maybe no data file
		if err := os.WriteFile(data, nil, 0o600); err != nil {
			return fmt.Errorf("create empty upload: %w", err)
		}
	}
	if u.SHA256 != "" {
		sum, err := hashFile(ctx, data)
		if err != nil {
			return err
		}
		if sum != u.SHA256 {
			_ = os.RemoveAll(dir)
			return server.Errorf(server.EINVALID, "sha256 mismatch: the upload is %s, the client said %s", sum, u.SHA256)
		}
	}
	if err := os.Rename(data, dst); err != nil {
		return fmt.Errorf("move upload into place: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove upload dir: %w", err)
	}
	return nil
}

func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open upload: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, &ctxReader{ctx: ctx, r: f}); err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AbortUpload implements server.BlobStore.
func (s *Store) AbortUpload(ctx context.Context, u *server.Upload) error {
	dir, err := s.uploadDir(u)
	if err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, u.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove upload: %w", err)
	}
	return nil
}

// Put implements server.BlobStore: it writes a temporary file, syncs it and renames it over
// any file of the same fid.
func (s *Store) Put(ctx context.Context, bucket, fid, _ string, r io.Reader) (int64, error) {
	dst, err := s.path(bucket, fid)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+fid+".*")
	if err != nil {
		return 0, fmt.Errorf("create temp file: %w", err)
	}
	defer os.Remove(f.Name()) // after the rename this fails harmlessly
	defer f.Close()
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: r})
	if err != nil {
		return 0, fmt.Errorf("write %s/%s: %w", bucket, fid, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s/%s: %w", bucket, fid, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close %s/%s: %w", bucket, fid, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return 0, fmt.Errorf("rename %s/%s: %w", bucket, fid, err)
	}
	return n, nil
}

// Open implements server.BlobStore.
func (s *Store) Open(_ context.Context, bucket, fid string) (server.Blob, error) {
	p, err := s.path(bucket, fid)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, server.Errorf(server.ENOTFOUND, "file %s not found", fid)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", bucket, fid, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s/%s: %w", bucket, fid, err)
	}
	return &blob{File: f, size: st.Size(), mod: st.ModTime()}, nil
}

// LocalPath implements server.LocalFiler.
func (s *Store) LocalPath(_ context.Context, bucket, fid string) (string, error) {
	p, err := s.path(bucket, fid)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return "", server.Errorf(server.ENOTFOUND, "file %s not found", fid)
	} else if err != nil {
		return "", fmt.Errorf("stat %s/%s: %w", bucket, fid, err)
	}
	return p, nil
}

// ListBlobs implements server.BlobLister. Temporary files of a Put under way are not listed.
func (s *Store) ListBlobs(ctx context.Context, bucket, after string, limit int) ([]server.BlobInfo, error) {
	if bucket != server.BucketVideos && bucket != server.BucketMP3s {
		return nil, fmt.Errorf("unknown bucket %q", bucket)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(s.root, bucket)) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", bucket, err)
	}
	out := []server.BlobInfo{}
	for _, e := range ents {
		if len(out) >= limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := e.Name()
		if !server.ValidID(name) || name <= after || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted since the directory was read
		}
		if err != nil {
			return nil, fmt.Errorf("stat %s/%s: %w", bucket, name, err)
		}
		out = append(out, server.BlobInfo{FID: name, Size: info.Size(), ModTime: info.ModTime()})
	}
	return out, nil
}

// Delete implements server.BlobStore.
func (s *Store) Delete(_ context.Context, bucket, fid string) error {
	p, err := s.path(bucket, fid)
	if err != nil {
		if server.IsCode(err, server.ENOTFOUND) {
			return nil
		}
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %s/%s: %w", bucket, fid, err)
	}
	return nil
}

type blob struct {
	*os.File
	size int64
	mod  time.Time
}

func (b *blob) Size() int64        { return b.size }
func (b *blob) ModTime() time.Time { return b.mod }

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var _ server.BlobLister = (*Store)(nil)
