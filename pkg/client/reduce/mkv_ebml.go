package reduce

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// The element-header walker of the Matroska reducer: it reads an element's ID and size
// (RFC 8794 variable-size integers) and nothing of its data, so that a Cluster's blocks
// are stepped over, never read.

// Element IDs, with their length marker, as RFC 8794 and the Matroska specification give
// them.
const (
	idEBML        = 0x1A45DFA3
	idSegment     = 0x18538067
	idSeekHead    = 0x114D9B74
	idInfo        = 0x1549A966
	idTracks      = 0x1654AE6B
	idChapters    = 0x1043A770
	idCluster     = 0x1F43B675
	idCues        = 0x1C53BB6B
	idAttachments = 0x1941A469
	idTags        = 0x1254C367
	idVoid        = 0xEC
	idCRC32       = 0xBF

	idTrackEntry = 0xAE
	idTag        = 0x7373
	idTargets    = 0x63C0

	idTimestamp      = 0xE7
	idSilentTracks   = 0x5854
	idPosition       = 0xA7
	idPrevSize       = 0xAB
	idSimpleBlock    = 0xA3
	idBlockGroup     = 0xA0
	idEncryptedBlock = 0xAF
	idBlock          = 0xA1
	idReferenceBlock = 0xFB
)

// unknownSize is the size of an element whose size field says "unknown" (all ones).
const unknownSize = -1

// element is the header of one EBML element.
type element struct {
	id   uint32
	off  int64 // where the header starts
	data int64 // where the data starts
	size int64 // the data's length, or unknownSize
}

// end is where the element ends; only for a known size.
func (e element) end() int64 { return e.data + e.size }

// unsupported is an error wrapping ErrUnsupported.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: matroska: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// ebmlReader reads a source through a small window, so that walking headers that lie close
// together (audio blocks, a cluster's children) costs few reads.
type ebmlReader struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	boff int64 // the source offset of buf[0]
	bn   int   // how much of buf holds data
}

const ebmlWindow = 4096

func newEBMLReader(r io.ReaderAt, size int64) *ebmlReader {
	return &ebmlReader{r: r, size: size, buf: make([]byte, ebmlWindow)}
}

// peek returns up to n (at most ebmlWindow) bytes at off, fewer only at the end of the
// source. The bytes are valid until the next call.
func (rd *ebmlReader) peek(off int64, n int) ([]byte, error) {
	if off < 0 || off > rd.size {
		return nil, unsupported("offset %d outside the file", off)
	}
	n = int(min(int64(n), rd.size-off))
	if off >= rd.boff && off+int64(n) <= rd.boff+int64(rd.bn) {
		at := int(off - rd.boff)
		return rd.buf[at : at+n], nil
	}
	want := int(min(int64(len(rd.buf)), rd.size-off))
	got, err := rd.r.ReadAt(rd.buf[:want], off)
	if got < want {
		rd.bn = 0
		return nil, readError(off, err)
	}
	rd.boff, rd.bn = off, want
	return rd.buf[:n], nil
}

// readAll returns a copy of the n bytes at off, which the caller has bounded.
func (rd *ebmlReader) readAll(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || n > rd.size-off {
		return nil, unsupported("range %d+%d outside the file", off, n)
	}
	b := make([]byte, n)
	if got, err := rd.r.ReadAt(b, off); int64(got) < n {
		return nil, readError(off, err)
	}
	return b, nil
}

// readError is a short read of the source: an I/O error, not a verdict on the file.
func readError(off int64, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the source is shorter than its size said
	}
	return fmt.Errorf("matroska: read at %d: %w", off, err)
}

// vintLength is the length of a variable-size integer from its first byte: 1 to 8, or 9
// when the byte is 0 (invalid).
func vintLength(b byte) int { return bits.LeadingZeros8(b) + 1 }

// header reads the element header at off, which must end, with the data of a known size,
// by limit.
func (rd *ebmlReader) header(off, limit int64) (element, error) {
	b, err := rd.peek(off, 12)
	if err != nil {
		return element{}, err
	}
	b = b[:min(int64(len(b)), limit-off)]
	if len(b) == 0 {
		return element{}, unsupported("element header at %d past its parent's end", off)
	}
	idLen := vintLength(b[0])
	if idLen > 4 || idLen >= len(b) {
		return element{}, unsupported("bad element ID at %d", off)
	}
	var id uint32
	for _, c := range b[:idLen] {
		id = id<<8 | uint32(c)
	}
	if id == 1<<(7*idLen+1)-1 || id == 1<<(7*idLen) {
		// All value bits set, or none: reserved (RFC 8794, 5).
		return element{}, unsupported("reserved element ID %#x at %d", id, off)
	}
	size, sizeLen, ok := vint(b[idLen:])
	if !ok {
		return element{}, unsupported("bad element size at %d", off)
	}
	e := element{id: id, off: off, data: off + int64(idLen+sizeLen), size: unknownSize}
	if size != unknownSize {
		if size > limit-e.data {
			return element{}, unsupported("element %#x at %d overruns its parent", id, off)
		}
		e.size = size
	}
	return e, nil
}

// vint decodes the variable-size integer at the start of b: its value (unknownSize when
// every value bit is set), its length, and whether b holds a valid one.
func vint(b []byte) (int64, int, bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	n := vintLength(b[0])
	if n > 8 || n > len(b) {
		return 0, 0, false
	}
	v := uint64(b[0]) & (0xFF >> n)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	if v == 1<<(7*n)-1 {
		return unknownSize, n, true
	}
	return int64(v), n, true // at most 2^56-2: no overflow
}

// appendHeader appends the header of an element of a known size: its ID and the shortest
// size field that holds size.
func appendHeader(b []byte, id uint32, size int64) []byte {
	idLen := (bits.Len32(id) + 7) / 8
	for i := idLen - 1; i >= 0; i-- {
		b = append(b, byte(id>>(8*i)))
	}
	n := 1
	for n < 8 && uint64(size) >= 1<<(7*n)-1 { // all ones would read as "unknown"
		n++
	}
	v := uint64(size) | 1<<(7*n) // the length marker
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// uintValue decodes an EBML unsigned integer element's data (0 to 8 bytes).
func uintValue(b []byte) (uint64, bool) {
	if len(b) > 8 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, true
}
