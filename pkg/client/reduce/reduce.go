package reduce

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// ebmlMagic starts every Matroska and WebM file: the EBML header's ID.
var ebmlMagic = []byte{0x1a, 0x45, 0xdf, 0xa3}

// Reduce plans the audio-only copy of the media file r of size bytes, by its format: an
// MP4 or QuickTime file as ReduceMP4 does, a Matroska or WebM file as ReduceMatroska does.
// Anything else, and any file that these do not reduce with confidence, gives an error that
// wraps ErrUnsupported: the caller then uploads the whole file.
func Reduce(ctx context.Context, r io.ReaderAt, size int64) (*Layout, error) {
	head := make([]byte, 8)
	if n, err := r.ReadAt(head, 0); n < len(head) {
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("reduce: read the file's start: %w", err)
		}
		return nil, fmt.Errorf("%w: too short for a video", ErrUnsupported)
	}
	switch {
	case bytes.HasPrefix(head, ebmlMagic):
		return ReduceMatroska(ctx, r, size)
	case SniffMP4(head):
		return ReduceMP4(ctx, r, size)
	}
	return nil, fmt.Errorf("%w: neither MP4 nor Matroska", ErrUnsupported)
}
