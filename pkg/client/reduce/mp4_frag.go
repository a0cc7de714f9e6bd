package reduce

import (
	"context"
	"encoding/binary"
	"math"

	gomp4 "github.com/abema/go-mp4"
)

// tfhd and trun flags (ISO/IEC 14496-12, 8.8.7 and 8.8.8).
const (
	tfhdBaseDataOffset  = 0x000001
	tfhdDescription     = 0x000002
	tfhdDuration        = 0x000008
	tfhdSize            = 0x000010
	tfhdFlags           = 0x000020
	tfhdDurationIsEmpty = 0x010000
	tfhdDefaultBaseMoof = 0x020000

	trunDataOffset  = 0x000001
	trunFirstFlags  = 0x000004
	trunDuration    = 0x000100
	trunSize        = 0x000200
	trunFlags       = 0x000400
	trunCompOffsets = 0x000800

	// A sample is not a keyframe when it is marked non-sync or as depending on others;
	// this is how ffmpeg reads sample flags.
	sampleNonSync     = 0x00010000
	sampleDependsOnes = 0x01000000
)

// fragTrack gathers one track's samples from the movie fragments.
type fragTrack struct {
	trex gomp4.Trex
	smp  mp4Samples
}

// add appends one sample.
func (f *fragTrack) add(dur, size uint32, cto int32, sync bool) error {
	t := &f.smp
	if t.count >= maxMP4Samples {
		return mp4Unsupported("more than %d samples in a track", maxMP4Samples)
	}
	if k := len(t.stts); k > 0 && t.stts[k-1].SampleDelta == dur {
		t.stts[k-1].SampleCount++
	} else {
		t.stts = append(t.stts, gomp4.SttsEntry{SampleCount: 1, SampleDelta: dur})
	}
	if k := len(t.ctts); k > 0 && t.ctts[k-1].offset == cto {
		t.ctts[k-1].count++
	} else {
		t.ctts = append(t.ctts, cttsRun{1, cto})
	}
	t.sizes = append(t.sizes, size)
	t.count++
	if sync {
		t.sync = append(t.sync, t.count)
	}
	t.dtsEnd += uint64(dur)
	return nil
}

// startAt lines the track up with a fragment's decode time (tfdt): a gap after the previous
// fragment lengthens that fragment's last sample, as a player reading the fragments sees it.
func (f *fragTrack) startAt(dts uint64) error {
	t := &f.smp
	switch {
	case dts == t.dtsEnd:
		return nil
	case t.count == 0:
		return mp4Unsupported("track fragments start at decode time %d", dts)
	case dts < t.dtsEnd:
		return mp4Unsupported("track fragment at decode time %d overlaps the previous one (%d)", dts, t.dtsEnd)
	}
	gap := dts - t.dtsEnd
	last := &t.stts[len(t.stts)-1]
	if uint64(last.SampleDelta)+gap > math.MaxUint32 {
		return mp4Unsupported("gap of %d between track fragments", gap)
	}
	delta := last.SampleDelta + uint32(gap)
	if last.SampleCount == 1 {
		last.SampleDelta = delta
	} else {
		last.SampleCount--
		t.stts = append(t.stts, gomp4.SttsEntry{SampleCount: 1, SampleDelta: delta})
	}
	t.dtsEnd = dts
	return nil
}

// finish turns the gathered samples into a table like one read from stbl.
func (f *fragTrack) finish() {
	t := &f.smp
	t.allSync = uint32(len(t.sync)) == t.count
	if t.allSync {
		t.sync = nil
	}
	if len(t.ctts) == 1 && t.ctts[0].offset == 0 {
		t.ctts = nil
	}
	if len(t.sizes) > 0 && t.sizes[0] != 0 {
		uniform := true
		for _, s := range t.sizes {
			if s != t.sizes[0] {
				uniform = false
				break
			}
		}
		if uniform {
			t.uniform, t.sizes = t.sizes[0], nil
		}
	}
}

// gatherFragments reads every moof and adds its samples to the tracks, by track ID.
func (s *mp4Source) gatherFragments(ctx context.Context, moofs []*mp4Box, tracks map[uint32]*fragTrack) error {
	for _, moof := range moofs {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := moof.off // where a traf's data starts when nothing says otherwise
		first := true
		for _, traf := range moof.kids {
			if traf.typ != "traf" {
				continue
			}
			end, err := s.gatherTraf(traf, moof, next, first, tracks)
			if err != nil {
				return err
			}
			next, first = end, false
		}
	}
	for _, f := range tracks {
		f.finish()
	}
	return nil
}

// gatherTraf adds one track fragment's samples; it returns where its data ends.
func (s *mp4Source) gatherTraf(traf, moof *mp4Box, next int64, first bool, tracks map[uint32]*fragTrack) (int64, error) {
	tfhdBox := traf.child("tfhd")
	if tfhdBox == nil {
		return 0, mp4Unsupported("traf without tfhd")
	}
	var tfhd gomp4.Tfhd
	if err := s.decode(tfhdBox, &tfhd); err != nil {
		return 0, err
	}
	f := tracks[tfhd.TrackID]
	if f == nil {
		return 0, mp4Unsupported("traf of unknown track %d", tfhd.TrackID)
	}
	flags := tfhd.GetFlags()
	base := next
	switch {
	case flags&tfhdBaseDataOffset != 0:
		if tfhd.BaseDataOffset > uint64(s.size) {
			return 0, mp4Unsupported("tfhd base data offset %d outside the file", tfhd.BaseDataOffset)
		}
		base = int64(tfhd.BaseDataOffset)
	case flags&tfhdDefaultBaseMoof != 0 || first:
		base = moof.off
	}
	if flags&tfhdDurationIsEmpty != 0 {
		return 0, mp4Unsupported("empty track fragment duration")
	}
	sdi := flagged(flags, tfhdDescription, tfhd.SampleDescriptionIndex, f.trex.DefaultSampleDescriptionIndex)
	dur := flagged(flags, tfhdDuration, tfhd.DefaultSampleDuration, f.trex.DefaultSampleDuration)
	size := flagged(flags, tfhdSize, tfhd.DefaultSampleSize, f.trex.DefaultSampleSize)
	sflags := flagged(flags, tfhdFlags, tfhd.DefaultSampleFlags, f.trex.DefaultSampleFlags)
	for _, k := range traf.kids {
		switch k.typ {
		case "tfhd", "trun", "sdtp":
		case "tfdt":
			var tfdt gomp4.Tfdt
			if err := s.decode(k, &tfdt); err != nil {
				return 0, err
			}
			dts := uint64(tfdt.BaseMediaDecodeTimeV0)
			if tfdt.GetVersion() == 1 {
				dts = tfdt.BaseMediaDecodeTimeV1
			}
			if err := f.startAt(dts); err != nil {
				return 0, err
			}
		default: // sample encryption, sample groups, sub-samples...
			return 0, mp4Unsupported("%s box in a track fragment", k.typ)
		}
	}
	pos := base
	for _, k := range traf.kids {
		if k.typ != "trun" {
			continue
		}
		trun, err := s.decodeTrun(k)
		if err != nil {
			return 0, err
		}
		tf := trun.GetFlags()
		if tf&trunDataOffset != 0 {
			pos = base + int64(trun.DataOffset)
		}
		c := mp4Chunk{src: pos, first: f.smp.count, samples: trun.SampleCount, sdi: sdi}
		for i, e := range trun.Entries {
			d := flagged(tf, trunDuration, e.SampleDuration, dur)
			sz := flagged(tf, trunSize, e.SampleSize, size)
			fl := flagged(tf, trunFlags, e.SampleFlags, sflags)
			cto := int32(0)
			if i == 0 && tf&trunFirstFlags != 0 {
				fl = trun.FirstSampleFlags
			}
			if tf&trunCompOffsets != 0 {
				cto = int32(e.SampleCompositionTimeOffsetV0) // read as signed, as ffmpeg does
				if trun.GetVersion() != 0 {
					cto = e.SampleCompositionTimeOffsetV1
				}
			}
			if err := f.add(d, sz, cto, fl&(sampleNonSync|sampleDependsOnes) == 0); err != nil {
				return 0, err
			}
			c.n += int64(sz)
		}
		if c.src < 0 || c.src > s.size || c.n > s.size-c.src {
			return 0, mp4Unsupported("trun data at %d of %d bytes outside the file", c.src, c.n)
		}
		if c.samples > 0 {
			f.smp.chunks = append(f.smp.chunks, c)
		}
		pos = c.src + c.n
	}
	return pos, nil
}

// flagged is v when flags has bit, else def.
func flagged(flags, bit, v, def uint32) uint32 {
	if flags&bit != 0 {
		return v
	}
	return def
}

// decodeTrun decodes a trun after checking that its sample count fits the box, since the
// library allocates an entry per sample even when the entries carry no bytes.
func (s *mp4Source) decodeTrun(b *mp4Box) (*gomp4.Trun, error) {
	p, err := s.bytes(b.payloadOff(), min(b.payloadLen(), 8))
	if err != nil {
		return nil, err
	}
	if len(p) < 8 {
		return nil, mp4Unsupported("trun too short")
	}
	flags := binary.BigEndian.Uint32(p) & 0xffffff
	count := uint64(binary.BigEndian.Uint32(p[4:]))
	var entry uint64
	for _, bit := range []uint32{trunDuration, trunSize, trunFlags, trunCompOffsets} {
		if flags&bit != 0 {
			entry += 4
		}
	}
	if (entry == 0 && count > maxMP4EmptyEntries) || count*entry > uint64(b.payloadLen()) {
		return nil, mp4Unsupported("trun of %d samples in %d bytes", count, b.payloadLen())
	}
	var trun gomp4.Trun
	if err := s.decode(b, &trun); err != nil {
		return nil, err
	}
	if uint64(len(trun.Entries)) != count {
		return nil, mp4Unsupported("trun: %d entries for %d samples", len(trun.Entries), count)
	}
	return &trun, nil
}
