package mp3

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The Xing (VBR) or Info (CBR) frame is a frame without audio at the start of the file
// that tells the frame count, the byte count and a seek table, followed by the LAME tag,
// which holds the encoder's delay and padding: what a gapless decoder drops at both ends.
// This is the layout that ffmpeg's mp3 muxer writes (libavformat/mp3enc.c): the flags say
// frames, bytes, TOC and quality, and the LAME tag follows the quality field.

const (
	xingFlags   = 0x0f // frames, bytes, TOC, quality
	tocLen      = 100
	tagSize     = 156 // from "Xing" to the end of the LAME tag's CRC
	tagCRCBytes = 190 // the tag CRC covers the frame's first 190 bytes, as ffmpeg computes it
	numBags     = 400 // ffmpeg's seek table sampling
)

// Offsets from "Xing".
const (
	offFrames   = 8
	offBytes    = 12
	offTOC      = 16
	offEncoder  = 120
	offDelayPad = 141
	offMusicLen = 148
	offMusicCRC = 152
	offTagCRC   = 154
)

// XingInfo is what an Xing/Info frame with a LAME tag says.
type XingInfo struct {
	VBR             bool // "Xing" rather than "Info"
	Frames, Bytes   int
	TOC             [tocLen]byte
	Encoder         string // the LAME tag's encoder string, e.g. "Lavc59.37"
	Delay, Padding  int
	MusicLen        int
	MusicCRC        uint16
	TagCRC, WantCRC uint16 // the tag's CRC and the CRC of the frame's bytes it covers
}

// xingOffset returns where "Xing" or "Info" starts in f, or an error when f is not such a
// frame in ffmpeg's layout.
func xingOffset(f []byte) (int, error) {
	h, err := ParseHeader(f)
	if err != nil {
		return 0, err
	}
	off := h.DataOffset()
	if len(f) != h.Size() || len(f) < off+tagSize {
		return 0, errors.New("no Xing frame: too short")
	}
	if id := string(f[off : off+4]); id != "Xing" && id != "Info" {
		return 0, errors.New("no Xing frame")
	}
	if flags := binary.BigEndian.Uint32(f[off+4:]); flags != xingFlags {
		return 0, fmt.Errorf("an Xing frame with flags %#x, want %#x", flags, xingFlags)
	}
	return off, nil
}

// IsXing reports whether the frame f is an Xing or Info frame.
func IsXing(f []byte) bool {
	h, err := ParseHeader(f)
	if err != nil || len(f) < h.DataOffset()+4 {
		return false
	}
	id := string(f[h.DataOffset() : h.DataOffset()+4])
	return id == "Xing" || id == "Info"
}

// ParseXing reads the Xing/Info frame f (a whole frame) and its LAME tag.
func ParseXing(f []byte) (XingInfo, error) {
	off, err := xingOffset(f)
	if err != nil {
		return XingInfo{}, err
	}
	x := f[off:]
	info := XingInfo{
		VBR:      string(x[:4]) == "Xing",
		Frames:   int(binary.BigEndian.Uint32(x[offFrames:])),
		Bytes:    int(binary.BigEndian.Uint32(x[offBytes:])),
		Encoder:  string(trimZero(x[offEncoder : offEncoder+9])),
		MusicLen: int(binary.BigEndian.Uint32(x[offMusicLen:])),
		MusicCRC: binary.BigEndian.Uint16(x[offMusicCRC:]),
		TagCRC:   binary.BigEndian.Uint16(x[offTagCRC:]),
	}
	copy(info.TOC[:], x[offTOC:])
	dp := int(x[offDelayPad])<<16 | int(x[offDelayPad+1])<<8 | int(x[offDelayPad+2])
	info.Delay, info.Padding = dp>>12, dp&0xfff
	info.WantCRC = tagCRC(f, off)
	return info, nil
}

func trimZero(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// tagCRC is the LAME tag's CRC of frame f as ffmpeg computes it: over the first 190 bytes,
// with the CRC field itself counted as zero, and zeros past the end of a shorter frame (a
// mono frame's is 182 bytes long).
func tagCRC(f []byte, off int) uint16 {
	b := make([]byte, tagCRCBytes)
	copy(b, f)
	if p := off + offTagCRC; p+2 <= len(b) {
		b[p], b[p+1] = 0, 0
	}
	return CRC16(0, b)
}

// crcTable is CRC-16/ARC (polynomial 0x8005, reflected), ffmpeg's AV_CRC_16_ANSI_LE, which
// LAME's music and tag CRCs use.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xa001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC16 continues the CRC-16/ARC crc over b.
func CRC16(crc uint16, b []byte) uint16 {
	for _, v := range b {
		crc = crc>>8 ^ crcTable[byte(crc)^v]
	}
	return crc
}

// Stats accumulates what the Xing frame says of the audio frames that follow it, the way
// ffmpeg's mp3 muxer does.
type Stats struct {
	xingSize  int
	frames    int
	size      int // bytes from the Xing frame's start
	want      int
	seen, pos int
	bag       [numBags]int
	crc       uint16
	firstRate int
	vbr       bool
}

// newStats starts the counts for a file whose Xing frame is xingSize bytes long.
func newStats(xingSize int) *Stats { return &Stats{xingSize: xingSize, size: xingSize, want: 1} }

// add counts one audio frame.
func (s *Stats) add(f []byte, bitrateIndex int) {
	s.frames++
	s.seen++
	s.size += len(f)
	s.crc = CRC16(s.crc, f)
	if s.firstRate == 0 {
		s.firstRate = bitrateIndex
	} else if bitrateIndex != s.firstRate {
		s.vbr = true
	}
	if s.seen == s.want {
		s.bag[s.pos] = s.size
		s.pos++
		if s.pos == numBags {
			for i := 1; i < numBags; i += 2 {
				s.bag[i>>1] = s.bag[i]
			}
			s.want *= 2
			s.pos = numBags / 2
		}
		s.seen = 0
	}
}

// Frames is the count of audio frames added.
func (s *Stats) Frames() int { return s.frames }

// VBR reports whether the frames have more than one bit rate.
func (s *Stats) VBR() bool { return s.vbr }

// Tag is the Xing frame of an encode, used as the model of the whole file's: the header,
// the encoder string and the LAME tag's settings (quality, lowpass, flags) stay, the
// counts, seek table, delay, padding and CRCs are rewritten.
type Tag struct {
	frame []byte
	off   int
}

// NewTag takes the Xing frame f, written by ffmpeg with the same encoder settings, as the model.
func NewTag(f []byte) (*Tag, error) {
	off, err := xingOffset(f)
	if err != nil {
		return nil, err
	}
	return &Tag{frame: append([]byte(nil), f...), off: off}, nil
}

// Size is the Xing frame's length.
func (t *Tag) Size() int { return len(t.frame) }

// Delay is the encoder delay of the model's LAME tag: the same for every encode with the
// same settings.
func (t *Tag) Delay() int {
	x := t.frame[t.off+offDelayPad:]
	return (int(x[0])<<16 | int(x[1])<<8 | int(x[2])) >> 12
}

// Frame returns the Xing frame for the frames counted by s, with the encoder delay delay
// and padding padding (in samples).
func (t *Tag) Frame(s *Stats, delay, padding int) ([]byte, error) {
	if delay < 0 || delay >= 1<<12 || padding < 0 || padding >= 1<<12 {
		return nil, fmt.Errorf("delay %d and padding %d do not fit the LAME tag", delay, padding)
	}
	if s.size <= 0 || s.xingSize != len(t.frame) {
		return nil, errors.New("stats of another Xing frame")
	}
	f := append([]byte(nil), t.frame...)
	x := f[t.off:]
	copy(x, "Info")
	if s.vbr {
		copy(x, "Xing")
	}
	binary.BigEndian.PutUint32(x[offFrames:], uint32(s.frames))
	binary.BigEndian.PutUint32(x[offBytes:], uint32(s.size))
	toc := x[offTOC : offTOC+tocLen]
	toc[0] = 0
	for i := 1; i < tocLen; i++ {
		j := i * s.pos / tocLen
		toc[i] = byte(min(256*int64(s.bag[j])/int64(s.size), 255))
	}
	dp := delay<<12 | padding
	x[offDelayPad], x[offDelayPad+1], x[offDelayPad+2] = byte(dp>>16), byte(dp>>8), byte(dp)
	binary.BigEndian.PutUint32(x[offMusicLen:], uint32(s.size))
	binary.BigEndian.PutUint16(x[offMusicCRC:], s.crc)
	binary.BigEndian.PutUint16(x[offTagCRC:], tagCRC(f, t.off))
	return f, nil
}
