package reduce

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"

	gomp4 "github.com/abema/go-mp4"
)

// Bounds on what the reducer reads into memory. A file beyond them is uploaded whole.
const (
	maxMP4Boxes        = 1 << 20  // boxes recorded while walking the structure
	maxMP4Payload      = 64 << 20 // a box whose payload is decoded (sample tables, trun)
	maxMP4Samples      = 1 << 23  // samples of one track gathered from fragments
	maxMP4EmptyEntries = 1 << 16  // trun entries that carry no bytes (all defaults)
)

// mp4Box is one box of the source: where it is, and the boxes inside it when it is a
// container the reducer looks into.
type mp4Box struct {
	typ  string
	off  int64 // first byte of the header
	size int64 // header included
	hdr  int64
	kids []*mp4Box
}

func (b *mp4Box) payloadOff() int64 { return b.off + b.hdr }
func (b *mp4Box) payloadLen() int64 { return b.size - b.hdr }

// child is the first box of type t inside b, or nil.
func (b *mp4Box) child(t string) *mp4Box {
	if b == nil {
		return nil
	}
	for _, k := range b.kids {
		if k.typ == t {
			return k
		}
	}
	return nil
}

// path follows child boxes by type: b.path("mdia", "minf", "stbl").
func (b *mp4Box) path(types ...string) *mp4Box {
	for _, t := range types {
		b = b.child(t)
	}
	return b
}

// mp4Containers are the boxes whose children the reducer needs, by their parent's type
// ("" is the top level).
var mp4Containers = map[string]bool{
	"moov": true, "trak": true, "mdia": true, "minf": true, "stbl": true, "dinf": true,
	"dref": true, "edts": true, "mvex": true, "moof": true, "traf": true, "stsd": true,
}

// mp4Source is the file being reduced. It remembers the first real I/O error, so that a
// parse failure caused by one is reported as such and not as an unsupported file.
type mp4Source struct {
	r     io.ReaderAt
	size  int64
	ioErr error
}

func (s *mp4Source) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) && s.ioErr == nil {
		s.ioErr = err
	}
	return n, err
}

// fail turns an error met while parsing into the error ReduceMP4 returns: an I/O error
// when reading failed, else ErrUnsupported.
func (s *mp4Source) fail(what string, err error) error {
	if s.ioErr != nil {
		return fmt.Errorf("reduce mp4: read source: %w", s.ioErr)
	}
	if errors.Is(err, ErrUnsupported) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("reduce mp4: %s: %v: %w", what, err, ErrUnsupported)
}

// bytes reads n bytes at off, within the file.
func (s *mp4Source) bytes(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || n > maxMP4Payload || off > s.size-n {
		return nil, mp4Unsupported("range %d+%d outside the file", off, n)
	}
	p := make([]byte, n)
	if _, err := s.ReadAt(p, off); err != nil {
		if s.ioErr != nil {
			return nil, fmt.Errorf("reduce mp4: read source at %d: %w", off, s.ioErr)
		}
		return nil, mp4Unsupported("read at %d: %v", off, err)
	}
	return p, nil
}

// decode unmarshals b's payload into dst with the library.
func (s *mp4Source) decode(b *mp4Box, dst gomp4.IBox) error {
	n := b.payloadLen()
	if n > maxMP4Payload {
		return mp4Unsupported("%s box of %d bytes", b.typ, n)
	}
	// One read into memory: the library reads field by field, bit by bit, and a ReadAt of
	// the file for each would cost a system call per field of every sample table entry.
	p, err := s.bytes(b.payloadOff(), n)
	if err != nil {
		return err
	}
	if _, err := gomp4.Unmarshal(bytes.NewReader(p), uint64(n), dst, gomp4.Context{}); err != nil {
		return s.fail("decode "+b.typ, err)
	}
	return nil
}

func mp4Unsupported(format string, args ...any) error {
	return fmt.Errorf("reduce mp4: %s: %w", fmt.Sprintf(format, args...), ErrUnsupported)
}

// walk reads the box structure of the file: the top-level ftyp, moov, moof and mdat boxes,
// and inside them the containers the reducer needs. Payloads are not read.
func (s *mp4Source) walk(ctx context.Context) ([]*mp4Box, error) {
	count := 0
	handler := func(h *gomp4.ReadHandle) (any, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if count++; count > maxMP4Boxes {
			return nil, mp4Unsupported("more than %d boxes", maxMP4Boxes)
		}
		bi := h.BoxInfo
		if bi.Size < bi.HeaderSize || bi.Offset > uint64(s.size) || bi.Size > uint64(s.size)-bi.Offset {
			return nil, mp4Unsupported("box %q at %d: size %d past the end of the file", bi.Type, bi.Offset, bi.Size)
		}
		b := &mp4Box{typ: bi.Type.String(), off: int64(bi.Offset), size: int64(bi.Size), hdr: int64(bi.HeaderSize)}
		if len(h.Path) == 1 {
			switch b.typ {
			case "ftyp", "moov", "moof", "mdat", "sidx":
			default:
				return nil, nil
			}
		}
		if !mp4Containers[b.typ] || len(h.Path) > 8 {
			return b, nil
		}
		vals, err := h.Expand()
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if k, ok := v.(*mp4Box); ok {
				b.kids = append(b.kids, k)
			}
		}
		return b, nil
	}
	vals, err := gomp4.ReadBoxStructure(io.NewSectionReader(s, 0, s.size), handler)
	if err != nil {
		return nil, s.fail("read the box structure", err)
	}
	var top []*mp4Box
	for _, v := range vals {
		if b, ok := v.(*mp4Box); ok {
			top = append(top, b)
		}
	}
	return top, nil
}

// fullBoxFlags reads the version and flags of a full box.
func (s *mp4Source) fullBoxFlags(b *mp4Box) (version uint8, flags uint32, err error) {
	if b.payloadLen() < 4 {
		return 0, 0, mp4Unsupported("%s box too short", b.typ)
	}
	p, err := s.bytes(b.payloadOff(), 4)
	if err != nil {
		return 0, 0, err
	}
	v := binary.BigEndian.Uint32(p)
	return uint8(v >> 24), v & 0xffffff, nil
}

// trackRef is one entry of a tref box: a reference type and the tracks it names.
type trackRef struct {
	typ string
	ids []uint32
}

// trackRefs reads a tref box's payload.
func trackRefs(p []byte) ([]trackRef, error) {
	var refs []trackRef
	for len(p) > 0 {
		if len(p) < 8 {
			return nil, mp4Unsupported("tref: truncated reference")
		}
		n := binary.BigEndian.Uint32(p)
		if n < 8 || uint64(n) > uint64(len(p)) || (n-8)%4 != 0 {
			return nil, mp4Unsupported("tref: bad reference size %d", n)
		}
		ref := trackRef{typ: string(p[4:8])}
		for i := uint32(8); i < n; i += 4 {
			ref.ids = append(ref.ids, binary.BigEndian.Uint32(p[i:]))
		}
		refs = append(refs, ref)
		p = p[n:]
	}
	return refs, nil
}

// boxHeader is the header of a box of type typ whose payload has n bytes.
func boxHeader(typ string, n int64) []byte {
	if n+8 <= math.MaxUint32 {
		h := make([]byte, 8)
		binary.BigEndian.PutUint32(h, uint32(n+8))
		copy(h[4:], typ)
		return h
	}
	h := make([]byte, 16)
	binary.BigEndian.PutUint32(h, 1)
	copy(h[4:], typ)
	binary.BigEndian.PutUint64(h[8:], uint64(n+16))
	return h
}

// marshal encodes a box's payload with the library.
func marshal(b gomp4.IImmutableBox) ([]byte, error) {
	var buf bytesWriter
	if _, err := gomp4.Marshal(&buf, b, gomp4.Context{}); err != nil {
		return nil, fmt.Errorf("reduce mp4: encode %s: %w", b.GetType(), err)
	}
	return buf, nil
}

type bytesWriter []byte

func (w *bytesWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}

// scale converts v from timescale den to timescale num, rounding to nearest; ok is false
// on overflow or a zero timescale.
func scale(v, num, den uint64) (uint64, bool) { return scaleRound(v, num, den, den/2) }

// scaleUp is scale rounding up.
func scaleUp(v, num, den uint64) (uint64, bool) { return scaleRound(v, num, den, max(den, 1)-1) }

func scaleRound(v, num, den, add uint64) (uint64, bool) {
	if den == 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(v, num)
	lo, carry := bits.Add64(lo, add, 0)
	hi += carry
	if hi >= den {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, den)
	return q, true
}
