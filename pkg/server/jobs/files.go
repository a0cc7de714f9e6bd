package jobs

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// Download is a file of a done job, opened for reading.
type Download struct {
	Job  *server.Job
	Name string // the file name to save it as
	Type string // its media type: "audio/mpeg" or "application/zip"
	server.Blob
}

// OpenFile opens file fid of one of owner's done jobs: a job's MP3FID gives its MP3, or the
// zip of all its MP3s when it was split by chapters; the fid of one of a split job's Files
// (server.FileFID) gives that MP3. Anyone else's, a job not done, or none, is ENOTFOUND.
func (s *Service) OpenFile(ctx context.Context, owner, fid string) (*Download, error) {
	notFound := server.Errorf(server.ENOTFOUND, "file %s not found", fid)
	mp3FID, n, part := server.ParseFileFID(fid)
	if !part {
		if !server.ValidID(fid) {
			return nil, notFound
		}
		mp3FID = fid
	}
	j, err := s.Jobs.JobByMP3(ctx, mp3FID)
	if server.IsCode(err, server.ENOTFOUND) || err == nil && (j.Owner != owner || j.State != server.JobDone) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if part && n >= len(j.Files) {
		return nil, notFound
	}
	if j.Expired {
		return nil, expiredError(j, s.Retention.ExpiryOf(j.FinishedAt))
	}
	s.withExpiry(j)
	b, err := s.Blobs.Open(ctx, server.BucketMP3s, mp3FID)
	if server.IsCode(err, server.ENOTFOUND) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("open mp3: %w", err)
	}
	switch {
	case !part && j.Files == nil:
		return &Download{Job: j, Name: wire.MP3Name(j.Filename), Type: "audio/mpeg", Blob: b}, nil
	case !part:
		return &Download{Job: j, Name: wire.AlbumName(j.Filename) + ".zip", Type: "application/zip", Blob: b}, nil
	}
	pb, err := openPart(b, n)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("job %s: %w", j.ID, err)
	}
	return &Download{Job: j, Name: wire.TrackName(n, j.Files[n].Title), Type: "audio/mpeg", Blob: pb}, nil
}

// WriteArchive writes a zip of the MP3s of owner's done job id to w: a split job's stored zip
// as it is, or else a zip of its one MP3. A job not done is ECONFLICT. It returns the name
// to save the zip as through name before it writes anything.
func (s *Service) WriteArchive(ctx context.Context, owner, id string, w io.Writer, name func(string)) error {
	j, err := s.Job(ctx, owner, id)
	if err != nil {
		return err
	}
	if j.State != server.JobDone {
		return server.Errorf(server.ECONFLICT, "job %s is %s, not done", id, j.State)
	}
	d, err := s.OpenFile(ctx, owner, j.MP3FID)
	if err != nil {
		return err
	}
	defer d.Close()
	name(wire.AlbumName(j.Filename) + ".zip")
	if j.Files != nil {
		if _, err := io.Copy(w, d); err != nil {
			return fmt.Errorf("send archive: %w", err)
		}
		return nil
	}
	zw := zip.NewWriter(w)
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: d.Name, Method: zip.Store, Modified: d.ModTime().UTC()})
	if err != nil {
		return fmt.Errorf("send archive: %w", err)
	}
	if _, err := io.Copy(fw, d); err != nil {
		return fmt.Errorf("send archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("send archive: %w", err)
	}
	return nil
}

// openPart returns entry n of the zip b as a Blob of its own; it closes b when closed. The
// entry must be stored, not compressed, so that it is a range of b and can be served with
// Range requests.
func openPart(b server.Blob, n int) (server.Blob, error) {
	ra := &blobReaderAt{b: b}
	zr, err := zip.NewReader(ra, b.Size())
	if err != nil {
		return nil, fmt.Errorf("read the zip of its files: %w", err)
	}
	if n >= len(zr.File) {
		return nil, fmt.Errorf("its zip has %d files, not %d", len(zr.File), n+1)
	}
	f := zr.File[n]
	if f.Method != zip.Store {
		return nil, fmt.Errorf("file %d of its zip is compressed", n+1)
	}
	off, err := f.DataOffset()
	if err != nil {
		return nil, fmt.Errorf("file %d of its zip: %w", n+1, err)
	}
	size := int64(f.UncompressedSize64)
	return &partBlob{SectionReader: io.NewSectionReader(ra, off, size), closer: b, mod: f.Modified}, nil
}

// blobReaderAt reads a Blob at offsets, one read at a time.
type blobReaderAt struct {
	mu sync.Mutex
	b  server.Blob
}

func (r *blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.b.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r.b, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF // io.ReaderAt's word for a read that ends at the end
	}
	return n, err
}

// partBlob is one stored entry of a zip Blob.
type partBlob struct {
	*io.SectionReader
	closer io.Closer
	mod    time.Time
}

func (p *partBlob) Close() error       { return p.closer.Close() }
func (p *partBlob) ModTime() time.Time { return p.mod }
func (p *partBlob) Size() int64        { return p.SectionReader.Size() }
