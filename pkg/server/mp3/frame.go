// Package mp3 reads MPEG-1 Layer III frame streams, and joins the encodes of consecutive
// segments of one audio signal into one MP3 without a seam: no gap, no doubled audio, and
// no reference of the bit reservoir into a frame that was left out. It also writes the
// Xing/Info and LAME tag frame that describes the whole file, as ffmpeg's mp3 muxer does.
//
// Only MPEG-1 Layer III (32, 44.1 and 48 kHz) is handled; any other stream gives an error,
// so that the caller can encode serially instead.
package mp3

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// SamplesPerFrame is how many samples per channel an MPEG-1 Layer III frame holds.
const SamplesPerFrame = 1152

// MaxReservoir is the largest main_data_begin: how far back in earlier frames' bytes a
// frame's main data may start.
const MaxReservoir = 511

// ErrUnsupported says that a stream is not MPEG-1 Layer III.
var ErrUnsupported = errors.New("not an MPEG-1 Layer III stream")

// bitrates are MPEG-1 Layer III's bit rates in kbit/s by bitrate index; 0 is free format
// and 15 is forbidden.
var bitrates = [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}

// sampleRates are MPEG-1's sample rates by index.
var sampleRates = [4]int{44100, 48000, 32000, 0}

// Header is an MPEG-1 Layer III frame header.
type Header struct {
	BitrateIndex int // 1-14
	SampleRate   int // Hz
	Padding      bool
	Protected    bool // a CRC-16 follows the header
	Mono         bool // channel mode 3: one channel
	raw          [4]byte
}

// ParseHeader parses the frame header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < 4 {
		return Header{}, io.ErrUnexpectedEOF
	}
	if b[0] != 0xff || b[1]&0xe0 != 0xe0 {
		return Header{}, fmt.Errorf("no frame sync (% x)", b[:4])
	}
	if version, layer := b[1]>>3&3, b[1]>>1&3; version != 3 || layer != 1 {
		return Header{}, ErrUnsupported
	}
	h := Header{BitrateIndex: int(b[2] >> 4), SampleRate: sampleRates[b[2]>>2&3], Padding: b[2]&2 != 0,
		Protected: b[1]&1 == 0, Mono: b[3]>>6 == 3}
	if h.BitrateIndex == 0 || h.BitrateIndex == 15 {
		return Header{}, fmt.Errorf("%w: free-format or bad bitrate index %d", ErrUnsupported, h.BitrateIndex)
	}
	if h.SampleRate == 0 {
		return Header{}, errors.New("bad sample rate index")
	}
	copy(h.raw[:], b)
	return h, nil
}

// Bitrate is the frame's bit rate in kbit/s.
func (h Header) Bitrate() int { return bitrates[h.BitrateIndex] }

// Size is the frame's length in bytes, header included.
func (h Header) Size() int { return frameSize(h.BitrateIndex, h.SampleRate, h.Padding) }

func frameSize(index, rate int, padding bool) int {
	n := 144000 * bitrates[index] / rate
	if padding {
		n++
	}
	return n
}

// SideInfoLen is the length of the side information.
func (h Header) SideInfoLen() int {
	if h.Mono {
		return 17
	}
	return 32
}

// DataOffset is where the side information ends and the frame's share of the main data
// stream starts, counted from the frame's first byte.
func (h Header) DataOffset() int {
	n := 4 + h.SideInfoLen()
	if h.Protected {
		n += 2
	}
	return n
}

// Channels is 1 or 2.
func (h Header) Channels() int {
	if h.Mono {
		return 1
	}
	return 2
}

// Frame is one MPEG-1 Layer III frame.
type Frame struct {
	Header
	// Bytes is the whole frame: header, CRC, side information and data.
	Bytes []byte
	// MainDataBegin is how many bytes of the main data stream before this frame's own
	// data its main data starts; MainDataLen is the main data's length in bytes.
	MainDataBegin, MainDataLen int
}

// Data is the frame's share of the main data stream: what follows the side information.
func (f *Frame) Data() []byte { return f.Bytes[f.DataOffset():] }

// ParseFrame parses the frame that b holds exactly.
func ParseFrame(b []byte) (Frame, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Frame{}, err
	}
	if len(b) != h.Size() {
		return Frame{}, fmt.Errorf("frame of %d bytes, header says %d", len(b), h.Size())
	}
	f := Frame{Header: h, Bytes: b}
	side := b[h.DataOffset()-h.SideInfoLen() : h.DataOffset()]
	f.MainDataBegin = int(bits(side, 0, 9))
	// After main_data_begin come the private bits and the scfsi bits; then each granule's
	// channels take 59 bits, of which part2_3_length is the first 12.
	base, n := 20, 4
	if h.Mono {
		base, n = 18, 2
	}
	total := 0
	for i := range n {
		total += int(bits(side, base+59*i, 12))
	}
	f.MainDataLen = (total + 7) / 8
	if f.MainDataLen > f.MainDataBegin+len(b)-h.DataOffset() {
		return Frame{}, fmt.Errorf("main data of %d bytes does not fit its frame of %d bytes with %d before",
			f.MainDataLen, len(b), f.MainDataBegin)
	}
	return f, nil
}

// bits reads n bits (n ≤ 32) of b from bit offset off, most significant first; b must be
// long enough.
func bits(b []byte, off, n int) uint32 {
	var v uint32
	for i := range n {
		p := off + i
		v = v<<1 | uint32(b[p/8]>>(7-p%8)&1)
	}
	return v
}

// Reader reads the frames of a stream of bare MPEG-1 Layer III frames, one after the other.
type Reader struct {
	r *bufio.Reader
	// tail holds the last MaxReservoir bytes of the main data stream read so far.
	tail []byte
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// Next returns the next frame, whose Bytes are its own, and the bytes of the main data
// stream before it (up to MaxReservoir of them, enough for any main_data_begin). It
// returns io.EOF at the end of the stream, and an error for anything but a whole,
// consistent frame.
func (r *Reader) Next() (Frame, []byte, error) {
	head, err := r.r.Peek(4)
	if err != nil {
		if err == io.EOF && len(head) == 0 {
			return Frame{}, nil, io.EOF
		}
		return Frame{}, nil, fmt.Errorf("frame header: %w", noEOF(err))
	}
	h, err := ParseHeader(head)
	if err != nil {
		return Frame{}, nil, err
	}
	b := make([]byte, h.Size())
	if _, err := io.ReadFull(r.r, b); err != nil {
		return Frame{}, nil, fmt.Errorf("frame: %w", noEOF(err))
	}
	f, err := ParseFrame(b)
	if err != nil {
		return Frame{}, nil, err
	}
	if f.MainDataBegin > len(r.tail) {
		return Frame{}, nil, fmt.Errorf("main_data_begin %d reaches before the stream's start", f.MainDataBegin)
	}
	before := r.tail
	r.tail = lastBytes(append(append([]byte(nil), r.tail...), f.Data()...), MaxReservoir)
	return f, before, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// lastBytes returns the last n bytes of b (all of b if shorter).
func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// ID3v2Len returns the length of the ID3v2 tag at the start of b, header and footer
// included, or 0 when b does not start with one.
func ID3v2Len(b []byte) (int, error) {
	if len(b) < 10 || string(b[:3]) != "ID3" {
		return 0, nil
	}
	if b[6]|b[7]|b[8]|b[9] >= 0x80 {
		return 0, errors.New("ID3v2 tag with a bad size")
	}
	n := 10 + (int(b[6])<<21 | int(b[7])<<14 | int(b[8])<<7 | int(b[9]))
	if b[5]&0x10 != 0 { // footer
		n += 10
	}
	if n > len(b) {
		return 0, fmt.Errorf("ID3v2 tag of %d bytes in %d", n, len(b))
	}
	return n, nil
}
