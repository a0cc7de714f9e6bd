// Package reduce builds, from a video file, a smaller media file that holds only what the
// server needs to make the MP3: the audio tracks, the container's tags and chapters,
// attached pictures, and one video keyframe for the cover. Packets and timestamps are
// copied unchanged, so that the server decodes exactly the audio it would decode from the
// whole file.
//
// The reduced file is never written out: a Layout describes it as a sequence of pieces,
// bytes held in memory and byte ranges of the source, and reads as an io.ReaderAt over the
// source. Building it twice from the same source gives the same bytes, so an interrupted
// upload of it can resume.
package reduce

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrUnsupported is returned (wrapped) for a source that Reduce cannot reduce with
// confidence: the caller uploads the whole file instead.
var ErrUnsupported = errors.New("reduce: not a file this package can reduce")

// Layout is a file made of pieces. The zero value is an empty file.
type Layout struct {
	pieces []piece
	size   int64
}

// piece is one run of the file: lit when not nil, else n bytes of the source at src.
type piece struct {
	off int64 // where the piece starts in the file
	lit []byte
	src int64
	n   int64
}

// Literal appends b (which the Layout keeps; the caller must not change it).
func (l *Layout) Literal(b []byte) {
	if len(b) == 0 {
		return
	}
	l.pieces = append(l.pieces, piece{off: l.size, lit: b, n: int64(len(b))})
	l.size += int64(len(b))
}

// Copy appends n bytes of the source from offset src. A range that continues the previous
// one joins it.
func (l *Layout) Copy(src, n int64) {
	if n <= 0 {
		return
	}
	if k := len(l.pieces); k > 0 {
		if p := &l.pieces[k-1]; p.lit == nil && p.src+p.n == src {
			p.n += n
			l.size += n
			return
		}
	}
	l.pieces = append(l.pieces, piece{off: l.size, src: src, n: n})
	l.size += n
}

// Size is the file's length in bytes.
func (l *Layout) Size() int64 { return l.size }

// Pieces is how many pieces the file has (for tests and logs).
func (l *Layout) Pieces() int { return len(l.pieces) }

// SourceBytes is how many of the file's bytes are copied from the source.
func (l *Layout) SourceBytes() int64 {
	var n int64
	for _, p := range l.pieces {
		if p.lit == nil {
			n += p.n
		}
	}
	return n
}

// Open returns the file, reading the copied ranges from src.
func (l *Layout) Open(src io.ReaderAt) *File { return &File{l: l, src: src} }

// File is a Layout read over its source. It is safe for concurrent use when the source is.
type File struct {
	l   *Layout
	src io.ReaderAt
}

// Size is the file's length in bytes.
func (f *File) Size() int64 { return f.l.size }

// ReadAt implements io.ReaderAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reduce: negative offset %d", off)
	}
	if off >= f.l.size {
		return 0, io.EOF
	}
	ps := f.l.pieces
	i := sort.Search(len(ps), func(i int) bool { return ps[i].off+ps[i].n > off })
	n := 0
	for ; i < len(ps) && n < len(p); i++ {
		pc := ps[i]
		at := off + int64(n) - pc.off
		want := min(int64(len(p)-n), pc.n-at)
		if pc.lit != nil {
			n += copy(p[n:], pc.lit[at:at+want])
			continue
		}
		got, err := f.src.ReadAt(p[n:n+int(want)], pc.src+at)
		n += got
		if err != nil && !(errors.Is(err, io.EOF) && int64(got) == want) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the source is shorter than when it was reduced
			}
			return n, fmt.Errorf("reduce: read source at %d: %w", pc.src+at, err)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
