package mp3

import (
	"errors"
	"fmt"
	"io"
)

// Segment is the encode of one segment of the audio: consecutive frames of one encoder's
// output. The encoder was fed the segment's samples with some before (pre-roll) and some
// after (post-roll), starting at a multiple of SamplesPerFrame; as every encode with the
// same settings has the same delay, the encoder's k-th frame is the whole file's frame
// First+k.
type Segment struct {
	// First is the index in the whole file of Frames[0].
	First int
	// Start is the index in the whole file of the first frame the segment stands for: the
	// segment before it stands for the frames before Start. The first segment's is 0.
	Start int
	// Last marks the last segment, which stands for every frame from Start to its end.
	Last bool
	// Frames are the encode's frames, and Before the bytes of the encoder's main data
	// stream before Frames[0] (as Reader.Next gives them), which Frames[0] may refer to.
	Frames []Frame
	Before []byte
}

// Seam says how two segments were joined.
type Seam struct {
	// Frame is the index in the whole file of the first frame taken from the later segment.
	Frame int
	// Moved is how many bytes of the later segment's bit reservoir were copied into the
	// earlier segment's last frame.
	Moved int
	// Grown tells that the earlier segment's last frame was given a higher bit rate to make
	// room for them.
	Grown bool
}

// Joiner writes the frames of consecutive segments as one stream: from each segment the
// frames it stands for, with every seam made safe for the bit reservoir.
//
// The first frame taken from a segment may have its main data start main_data_begin bytes
// back, in the encoder's earlier frames, which are dropped. Those bytes go into the free
// end of the last frame taken from the segment before (after the end of that frame's own
// main data, which no frame taken uses), so that a decoder finds them where the frame says;
// when that end is too short, the frame gets a higher bit rate, which lengthens it without
// moving its own main data. The seam may move by a few frames from the segments' nominal
// boundary (both encodes cover those frames) to where no frame needs to grow. The bit
// reservoir is thus kept everywhere, at the cost of at most one larger frame per seam.
type Joiner struct {
	// PreMin is the least count of an encode's frames before the first frame taken from
	// it: the encoder must have settled. PostMin is the least count after the last.
	PreMin, PostMin int

	w       io.Writer
	stats   *Stats
	seams   []Seam
	prev    *Segment
	from    int // index in prev.Frames of the first frame not yet written
	rate    int
	mono    bool
	started bool
	err     error
}

// NewJoiner returns a Joiner that writes to w the audio frames that follow a Xing frame of
// xingSize bytes, counting them for it.
func NewJoiner(w io.Writer, xingSize int) *Joiner {
	return &Joiner{PreMin: 4, PostMin: 2, w: w, stats: newStats(xingSize)}
}

// Stats are the counts of the frames written, for Tag.Frame.
func (j *Joiner) Stats() *Stats { return j.stats }

// Seams are the seams made so far.
func (j *Joiner) Seams() []Seam { return j.seams }

// ErrNoSeam says that two segments could not be joined without damage.
var ErrNoSeam = errors.New("no safe seam between segments")

// Add takes the next segment. Its frames before its seam with the previous segment are
// dropped; the previous segment's frames up to the seam are written.
func (j *Joiner) Add(s *Segment) error {
	if j.err != nil {
		return j.err
	}
	if err := j.check(s); err != nil {
		j.err = err
		return err
	}
	if j.prev == nil {
		if s.First != 0 || s.Start != 0 {
			j.err = errors.New("the first segment must start at frame 0")
			return j.err
		}
		j.prev, j.from = s, 0
		return nil
	}
	if j.prev.Last {
		j.err = errors.New("a segment after the last")
		return j.err
	}
	if err := j.join(s); err != nil {
		j.err = err
		return err
	}
	return nil
}

// Close writes the last segment's frames. It fails unless the last segment added was
// marked Last.
func (j *Joiner) Close() error {
	if j.err != nil {
		return j.err
	}
	if j.prev == nil || !j.prev.Last {
		return errors.New("the segments stop before the last")
	}
	frames := j.prev.Frames[j.from:]
	j.prev = nil
	return j.write(frames)
}

// check checks that all the segments' frames have the same sample rate and channels.
func (j *Joiner) check(s *Segment) error {
	if len(s.Frames) == 0 {
		return errors.New("a segment without frames")
	}
	for i := range s.Frames {
		f := &s.Frames[i]
		if !j.started {
			j.rate, j.mono, j.started = f.SampleRate, f.Mono, true
		}
		if f.SampleRate != j.rate || f.Mono != j.mono {
			return fmt.Errorf("frame %d of a segment has %d Hz mono=%v, not %d Hz mono=%v", i, f.SampleRate, f.Mono, j.rate, j.mono)
		}
	}
	return nil
}

// join finds the seam between j.prev and s, and writes j.prev's frames up to it.
func (j *Joiner) join(s *Segment) error {
	a := j.prev
	// c is the index in the file of s's first frame taken: a keeps a.First+j.from ... c-1.
	lo := max(a.First+j.from+1, s.First+j.PreMin)
	hi := min(a.First+len(a.Frames)-j.PostMin, s.First+len(s.Frames)-1)
	if !s.Last {
		hi = min(hi, s.First+len(s.Frames)-1-j.PostMin)
	}
	if lo > hi {
		return fmt.Errorf("%w: segments at frames %d and %d do not overlap enough", ErrNoSeam, a.First, s.First)
	}
	// The nominal boundary first, then the nearest others.
	cands := make([]int, 0, hi-lo+1)
	for d := 0; len(cands) < hi-lo+1; d++ {
		for _, c := range []int{s.Start - d, s.Start + d} {
			if c >= lo && c <= hi && (d > 0 || len(cands) == 0) {
				cands = append(cands, c)
			}
		}
	}
	for _, grow := range []bool{false, true} {
		for _, c := range cands {
			frames, moved, grown, ok := j.seam(a, s, c, grow)
			if !ok {
				continue
			}
			if err := j.write(frames); err != nil {
				return err
			}
			j.seams = append(j.seams, Seam{Frame: c, Moved: moved, Grown: grown})
			j.prev, j.from = s, c-s.First
			return nil
		}
	}
	return fmt.Errorf("%w near frame %d", ErrNoSeam, s.Start)
}

// seam tries the seam before the file's frame c. It returns a's frames still to write up to
// c-1, the last of them holding at the end of the main data stream the bytes of s's stream
// that s's frame c refers to, and how many they are. The last frame grows to a higher bit
// rate when that is needed and grow allows it.
func (j *Joiner) seam(a, s *Segment, c int, grow bool) ([]Frame, int, bool, bool) {
	kept := append([]Frame(nil), a.Frames[j.from:c-a.First]...)
	m := s.Frames[c-s.First].MainDataBegin
	if m == 0 {
		return kept, 0, false, true
	}
	borrowed := streamBefore(s, c-s.First, m)
	if borrowed == nil {
		return nil, 0, false, false
	}
	// The stream is free after the end of the last frame's main data, which may end before
	// that frame's own data does: in the frames before it (still to write).
	e := kept[len(kept)-1]
	before := 0
	for i := len(kept) - 2; i >= 0 && before < MaxReservoir; i-- {
		before += len(kept[i].Data())
	}
	free := min(len(e.Data())+e.MainDataBegin-e.MainDataLen, len(e.Data())+before)
	grown := false
	if free < m {
		if !grow || e.Protected {
			return nil, 0, false, false
		}
		g, ok := growFrame(e, m-free)
		if !ok {
			return nil, 0, false, false
		}
		kept[len(kept)-1], grown = g, true
	}
	// Copy the bytes into the end of the stream, frame by frame from the last.
	n := m
	for i := len(kept) - 1; n > 0; i-- {
		f := &kept[i]
		f.Bytes = append([]byte(nil), f.Bytes...)
		d := f.Data()
		take := min(n, len(d))
		copy(d[len(d)-take:], borrowed[n-take:n])
		n -= take
	}
	return kept, m, grown, true
}

// growFrame returns e with at least more bytes of data, by a higher bit rate (or the padding
// slot), its side information and data unmoved; false when no bit rate is high enough.
func growFrame(e Frame, more int) (Frame, bool) {
	for idx := e.BitrateIndex; idx <= 14; idx++ {
		for _, pad := range []bool{false, true} {
			size := frameSize(idx, e.SampleRate, pad)
			if size < len(e.Bytes)+more {
				continue
			}
			b := make([]byte, size)
			copy(b, e.Bytes)
			b[2] = b[2]&0x0d | byte(idx)<<4
			if pad {
				b[2] |= 2
			}
			g, err := ParseFrame(b)
			return g, err == nil
		}
	}
	return Frame{}, false
}

// streamBefore returns the last m bytes of s's main data stream before its frame k, or nil
// when s does not hold that many.
func streamBefore(s *Segment, k, m int) []byte {
	out := make([]byte, m)
	n := m
	for i := k - 1; i >= -1 && n > 0; i-- {
		d := s.Before
		if i >= 0 {
			d = s.Frames[i].Data()
		}
		take := min(n, len(d))
		copy(out[n-take:n], d[len(d)-take:])
		n -= take
	}
	if n > 0 {
		return nil
	}
	return out
}

// write writes frames and counts them.
func (j *Joiner) write(frames []Frame) error {
	for i := range frames {
		if _, err := j.w.Write(frames[i].Bytes); err != nil {
			j.err = fmt.Errorf("write mp3: %w", err)
			return j.err
		}
		j.stats.add(frames[i].Bytes, frames[i].BitrateIndex)
	}
	return nil
}
