package reduce

import (
	"encoding/binary"
	"math"

	gomp4 "github.com/abema/go-mp4"
)

// outBox is a box of the reduced file: a box copied from the source, a payload built in
// memory, a container of other boxes, or a chunk offset table filled in at the end.
type outBox struct {
	typ    string
	src    *mp4Box     // copied whole
	lit    []byte      // the payload
	kids   []*outBox   // a container
	chunks []*mp4Chunk // a chunk offset table (stco, or co64 when co64 is set)
}

func copied(b *mp4Box) *outBox { return &outBox{typ: b.typ, src: b} }

// payload is how many bytes follow the box header (not for a copied box).
func (o *outBox) payload(co64 bool) int64 {
	switch {
	case o.chunks != nil:
		w := int64(4)
		if co64 {
			w = 8
		}
		return 8 + w*int64(len(o.chunks))
	case o.kids != nil:
		var n int64
		for _, k := range o.kids {
			n += k.size(co64)
		}
		return n
	}
	return int64(len(o.lit))
}

func (o *outBox) size(co64 bool) int64 {
	if o.src != nil {
		return o.src.size
	}
	n := o.payload(co64)
	return n + int64(len(boxHeader(o.typ, n)))
}

func (o *outBox) emit(l *Layout, co64 bool) error {
	if o.src != nil {
		l.Copy(o.src.off, o.src.size)
		return nil
	}
	if o.chunks != nil {
		p, err := chunkOffsetPayload(o.chunks, co64)
		if err != nil {
			return err
		}
		typ := "stco"
		if co64 {
			typ = "co64"
		}
		l.Literal(append(boxHeader(typ, int64(len(p))), p...))
		return nil
	}
	if o.kids == nil {
		l.Literal(append(boxHeader(o.typ, int64(len(o.lit))), o.lit...))
		return nil
	}
	l.Literal(boxHeader(o.typ, o.payload(co64)))
	for _, k := range o.kids {
		if err := k.emit(l, co64); err != nil {
			return err
		}
	}
	return nil
}

func chunkOffsetPayload(chunks []*mp4Chunk, co64 bool) ([]byte, error) {
	if co64 {
		b := &gomp4.Co64{EntryCount: uint32(len(chunks)), ChunkOffset: make([]uint64, len(chunks))}
		for i, c := range chunks {
			b.ChunkOffset[i] = uint64(c.out)
		}
		return marshal(b)
	}
	b := &gomp4.Stco{EntryCount: uint32(len(chunks)), ChunkOffset: make([]uint32, len(chunks))}
	for i, c := range chunks {
		b.ChunkOffset[i] = uint32(c.out)
	}
	return marshal(b)
}

// offsetTable is the chunk offset box of a track whose chunks are t's.
func offsetTable(t *mp4Samples) *outBox {
	o := &outBox{typ: "stco", chunks: make([]*mp4Chunk, len(t.chunks))}
	for i := range t.chunks {
		o.chunks[i] = &t.chunks[i]
	}
	return o
}

// sampleTables are the boxes that describe t's samples, built from it: stts, ctts, stsc,
// stsz, the chunk offsets and stss.
func sampleTables(t *mp4Samples) ([]*outBox, error) {
	var boxes []*outBox
	add := func(typ string, b gomp4.IImmutableBox) error {
		p, err := marshal(b)
		if err != nil {
			return err
		}
		boxes = append(boxes, &outBox{typ: typ, lit: p})
		return nil
	}
	if err := add("stts", &gomp4.Stts{EntryCount: uint32(len(t.stts)), Entries: t.stts}); err != nil {
		return nil, err
	}
	if len(t.ctts) > 0 {
		ctts := &gomp4.Ctts{EntryCount: uint32(len(t.ctts)), Entries: make([]gomp4.CttsEntry, len(t.ctts))}
		for _, r := range t.ctts {
			if r.offset < 0 {
				ctts.SetVersion(1)
			}
		}
		for i, r := range t.ctts {
			ctts.Entries[i] = gomp4.CttsEntry{SampleCount: r.count, SampleOffsetV0: uint32(r.offset), SampleOffsetV1: r.offset}
		}
		if err := add("ctts", ctts); err != nil {
			return nil, err
		}
	}
	stsc := &gomp4.Stsc{}
	for i, c := range t.chunks {
		if k := len(stsc.Entries); k > 0 && stsc.Entries[k-1].SamplesPerChunk == c.samples && stsc.Entries[k-1].SampleDescriptionIndex == c.sdi {
			continue
		}
		stsc.Entries = append(stsc.Entries, gomp4.StscEntry{FirstChunk: uint32(i + 1), SamplesPerChunk: c.samples, SampleDescriptionIndex: c.sdi})
	}
	stsc.EntryCount = uint32(len(stsc.Entries))
	if err := add("stsc", stsc); err != nil {
		return nil, err
	}
	if err := add("stsz", &gomp4.Stsz{SampleSize: t.uniform, SampleCount: t.count, EntrySize: t.sizes}); err != nil {
		return nil, err
	}
	boxes = append(boxes, offsetTable(t))
	if !t.allSync {
		if err := add("stss", &gomp4.Stss{EntryCount: uint32(len(t.sync)), SampleNumber: t.sync}); err != nil {
			return nil, err
		}
	}
	return boxes, nil
}

// withDuration is box b (tkhd, mdhd or mvhd) with its duration field set to d.
func (s *mp4Source) withDuration(b *mp4Box, d uint64) (*outBox, error) {
	p, err := s.bytes(b.payloadOff(), b.payloadLen())
	if err != nil {
		return nil, err
	}
	at := map[string][2]int{"tkhd": {20, 28}, "mdhd": {16, 24}, "mvhd": {16, 24}}[b.typ]
	if len(p) < at[0]+4 || (p[0] == 1 && len(p) < at[1]+8) {
		return nil, mp4Unsupported("%s box too short", b.typ)
	}
	if p[0] == 1 {
		binary.BigEndian.PutUint64(p[at[1]:], d)
	} else {
		if d > math.MaxUint32 {
			return nil, mp4Unsupported("%s duration %d does not fit its version 0 box", b.typ, d)
		}
		binary.BigEndian.PutUint32(p[at[0]:], uint32(d))
	}
	return &outBox{typ: b.typ, lit: p}, nil
}

// keptRefs is a tref box that names only the tracks kept, or nil when none is.
func keptRefs(refs []trackRef, kept map[uint32]bool) *outBox {
	var p []byte
	for _, r := range refs {
		var ids []byte
		for _, id := range r.ids {
			if kept[id] {
				ids = binary.BigEndian.AppendUint32(ids, id)
			}
		}
		if len(ids) > 0 {
			p = append(append(p, boxHeader(r.typ, int64(len(ids)))...), ids...)
		}
	}
	if p == nil {
		return nil
	}
	return &outBox{typ: "tref", lit: p}
}

// editList is an edit list that shows the track's media from time 0 for dur, after an empty
// edit of empty (both in the movie's timescale).
func editList(empty, dur uint64) (*outBox, error) {
	elst := &gomp4.Elst{}
	if empty > math.MaxUint32 || dur > math.MaxUint32 {
		elst.SetVersion(1)
	}
	if empty > 0 {
		elst.Entries = append(elst.Entries, gomp4.ElstEntry{SegmentDurationV0: uint32(empty), MediaTimeV0: -1, SegmentDurationV1: empty, MediaTimeV1: -1, MediaRateInteger: 1})
	}
	elst.Entries = append(elst.Entries, gomp4.ElstEntry{SegmentDurationV0: uint32(dur), SegmentDurationV1: dur, MediaRateInteger: 1})
	elst.EntryCount = uint32(len(elst.Entries))
	p, err := marshal(elst)
	if err != nil {
		return nil, err
	}
	return &outBox{typ: "edts", kids: []*outBox{{typ: "elst", lit: p}}}, nil
}
