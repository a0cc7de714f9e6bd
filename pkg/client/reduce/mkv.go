// Matroska and WebM (ReduceMatroska): a small reader of element headers of its own walks
// the file, and github.com/at-wat/ebml-go decodes only the few small elements whose fields
// matter (the EBML header, Info, each TrackEntry, a Tag's Targets) and encodes the new
// Cues. The library cannot walk a large file: its Unmarshal reads every element it meets,
// each SimpleBlock and its frames included, into memory even when no field takes it, and
// it reads an io.Reader through, with no way to step over a Cluster's data.
package reduce

import (
	"context"
	"fmt"
	"io"
)

// ReduceMatroska plans the reduced copy of the Matroska or WebM file r of size bytes: the
// EBML header, then one Segment of known size holding Info, Tracks (every audio track and
// the first video track, their TrackEntry unchanged), Chapters, Attachments and Tags (less
// the tags of dropped tracks), then the Clusters with every block of the audio tracks and
// one video keyframe: the first at or after a tenth of the Duration from the audio's
// start, where the server looks for a cover frame. The source's SeekHead and Cues are
// dropped: every top-level element comes before the first Cluster, so a reader needs no
// SeekHead, and new Cues index the new clusters (see mkv_cues.go).
//
// An error wrapping ErrUnsupported means the file is not one this function reduces with
// confidence (the caller then uploads the whole file); any other error is the source's
// I/O error or the context's end. Nothing of the blocks' data is read.
func ReduceMatroska(ctx context.Context, r io.ReaderAt, size int64) (*Layout, error) {
	if size < 0 {
		return nil, unsupported("negative size %d", size)
	}
	p := &mkvParser{rd: newEBMLReader(r, size), ctx: ctx}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.layout()
}

// mkvParser holds what the walk of the source found.
type mkvParser struct {
	rd  *ebmlReader
	ctx context.Context

	header      element // the EBML header, copied unchanged
	segment     element
	segEnd      int64 // where the Segment ends (the file's end for an unknown size)
	info        *element
	tracksSeen  bool
	chapters    *element
	attachments *element
	tags        []element // Tags elements, each a Tags master

	timing   timing
	tracks   []track // in the source's order
	video    uint64  // the kept video track's number, 0 for none
	audioNum map[uint64]bool

	clusters  []mkvCluster
	keyframes []keyframe // of the video track, in file order
	audioFrom int64      // the least first-block timestamp of the audio tracks
	audioSeen map[uint64]bool
}

// mkvCluster is a source Cluster: its Timestamp element and the blocks kept from it.
type mkvCluster struct {
	ts     element
	time   int64      // its value
	blocks []mkvBlock // of the kept tracks, in file order
}

// mkvBlock is a SimpleBlock or BlockGroup element, its track and absolute timestamp.
type mkvBlock struct {
	elem  element
	track uint64
	ts    int64
}

// keyframe is a video keyframe block and its cluster.
type keyframe struct {
	mkvBlock
	cluster int
}

func (p *mkvParser) parse() error {
	rd := p.rd
	h, err := rd.header(0, rd.size)
	if err != nil {
		return err
	}
	if h.id != idEBML {
		return unsupported("no EBML header")
	}
	if _, err := rd.docType(h); err != nil {
		return err
	}
	p.header = h
	off := h.end()
	for {
		if off >= rd.size {
			return unsupported("no Segment")
		}
		e, err := rd.header(off, rd.size)
		if err != nil {
			return err
		}
		if e.id == idSegment {
			p.segment = e
			break
		}
		if e.id != idVoid || e.size == unknownSize {
			return unsupported("element %#x at %d before the Segment", e.id, off)
		}
		off = e.end()
	}
	p.segEnd = rd.size
	if p.segment.size != unknownSize {
		p.segEnd = p.segment.end()
		if err := p.checkTrailer(p.segEnd); err != nil {
			return err
		}
	}
	if err := p.segmentChildren(); err != nil {
		return err
	}
	if p.info == nil || !p.tracksSeen {
		return unsupported("no Info or no Tracks")
	}
	return nil
}

// canceled is the context's cause once it is done.
func (p *mkvParser) canceled() error {
	if p.ctx.Err() != nil {
		return fmt.Errorf("matroska: %w", context.Cause(p.ctx))
	}
	return nil
}

// checkTrailer accepts after the Segment only Void elements.
func (p *mkvParser) checkTrailer(off int64) error {
	for off < p.rd.size {
		e, err := p.rd.header(off, p.rd.size)
		if err != nil {
			return err
		}
		if e.id != idVoid || e.size == unknownSize {
			return unsupported("element %#x after the Segment", e.id)
		}
		off = e.end()
	}
	return nil
}

// isTopLevel reports whether id is an element that ends a Cluster of unknown size.
func isTopLevel(id uint32) bool {
	switch id {
	case idSeekHead, idInfo, idTracks, idChapters, idCluster, idCues, idAttachments, idTags, idEBML, idSegment:
		return true
	}
	return false
}

func (p *mkvParser) segmentChildren() error {
	off := p.segment.data
	for off < p.segEnd {
		if err := p.canceled(); err != nil {
			return err
		}
		e, err := p.rd.header(off, p.segEnd)
		if err != nil {
			return err
		}
		if e.size == unknownSize && e.id != idCluster {
			return unsupported("element %#x of unknown size at %d", e.id, off)
		}
		switch e.id {
		case idCluster:
			if p.info == nil || !p.tracksSeen {
				return unsupported("a Cluster before Info and Tracks")
			}
			off, err = p.cluster(e)
			if err != nil {
				return err
			}
			continue
		case idInfo:
			if p.info != nil {
				return unsupported("two Info elements")
			}
			if p.timing, err = p.rd.info(e); err != nil {
				return err
			}
			p.info = &e
		case idTracks:
			if p.tracksSeen {
				return unsupported("two Tracks elements")
			}
			if err := p.readTracks(e); err != nil {
				return err
			}
			p.tracksSeen = true
		case idChapters:
			if p.chapters != nil {
				return unsupported("two Chapters elements")
			}
			p.chapters = &e
		case idAttachments:
			if p.attachments != nil {
				return unsupported("two Attachments elements")
			}
			p.attachments = &e
		case idTags:
			p.tags = append(p.tags, e)
		case idSeekHead, idCues, idVoid, idCRC32:
			// Dropped.
		default:
			return unsupported("element %#x at %d in the Segment", e.id, off)
		}
		off = e.end()
	}
	return nil
}

// children calls f for each child of the master e (of known size), skipping Void and
// CRC-32 elements.
func (p *mkvParser) children(e element, f func(c element) error) error {
	for off := e.data; off < e.end(); {
		c, err := p.rd.header(off, e.end())
		if err != nil {
			return err
		}
		if c.size == unknownSize {
			return unsupported("element %#x of unknown size at %d", c.id, off)
		}
		if c.id != idVoid && c.id != idCRC32 {
			if err := f(c); err != nil {
				return err
			}
		}
		off = c.end()
	}
	return nil
}

func (p *mkvParser) readTracks(e element) error {
	err := p.children(e, func(c element) error {
		if c.id != idTrackEntry {
			return unsupported("element %#x in Tracks", c.id)
		}
		if len(p.tracks) == maxTracks {
			return unsupported("over %d tracks", maxTracks)
		}
		t, err := p.rd.trackEntry(c)
		if err != nil {
			return err
		}
		for _, o := range p.tracks {
			if o.number == t.number {
				return unsupported("two tracks numbered %d", t.number)
			}
		}
		p.tracks = append(p.tracks, t)
		return nil
	})
	if err != nil {
		return err
	}
	p.audioNum = map[uint64]bool{}
	p.audioSeen = map[uint64]bool{}
	for _, t := range p.tracks {
		switch {
		case t.kind == trackAudio && t.encrypted:
			return unsupported("encrypted audio track %d", t.number)
		case t.kind == trackAudio:
			p.audioNum[t.number] = true
		case t.kind == trackVideo && p.video == 0:
			if t.encrypted {
				return unsupported("encrypted video track %d", t.number)
			}
			p.video = t.number
		}
	}
	if len(p.audioNum) == 0 {
		return unsupported("no audio track")
	}
	return nil
}

// keptTrack reports whether the track numbered n goes into the reduced file.
func (p *mkvParser) keptTrack(t track) bool {
	return p.audioNum[t.number] || t.number == p.video
}

// tagKept reports whether the Tag element tag applies to something the reduced file
// keeps: a Tag whose targets name tracks, none of them kept, goes.
func (p *mkvParser) tagKept(tag element) (bool, error) {
	var uids []uint64
	err := p.children(tag, func(c element) error {
		if c.id != idTargets {
			return nil
		}
		u, err := p.rd.targetTracks(c)
		uids = append(uids, u...)
		return err
	})
	if err != nil || len(uids) == 0 {
		return true, err
	}
	for _, u := range uids {
		if u == 0 { // every track
			return true, nil
		}
		for _, t := range p.tracks {
			if t.uid == u && p.keptTrack(t) {
				return true, nil
			}
		}
	}
	return false, nil
}

// layout builds the reduced file from what parse found.
func (p *mkvParser) layout() (*Layout, error) {
	kf, err := p.pickKeyframe()
	if err != nil {
		return nil, err
	}
	var body Layout
	body.Copy(p.info.off, p.info.end()-p.info.off)
	var entries []element
	for _, t := range p.tracks {
		if p.keptTrack(t) {
			entries = append(entries, t.elem)
		}
	}
	p.master(&body, idTracks, entries)
	for _, e := range []*element{p.chapters, p.attachments} {
		if e != nil {
			body.Copy(e.off, e.end()-e.off)
		}
	}
	for _, tags := range p.tags {
		var kept []element
		err := p.children(tags, func(c element) error {
			if c.id != idTag {
				return unsupported("element %#x in Tags", c.id)
			}
			ok, err := p.tagKept(c)
			if ok {
				kept = append(kept, c)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		p.master(&body, idTags, kept)
	}
	clusters, cues, err := p.clusterBody(kf)
	if err != nil {
		return nil, err
	}
	cueBytes, err := marshalCues(cues, body.Size())
	if err != nil {
		return nil, err
	}
	body.Literal(cueBytes)
	appendLayout(&body, clusters)

	l := &Layout{}
	l.Copy(p.header.off, p.header.end()-p.header.off)
	l.Literal(appendHeader(nil, idSegment, body.Size()))
	appendLayout(l, &body)
	return l, nil
}

// master appends to l the master element id holding the source elements children, whole
// and in order, and returns where it starts in l; nothing when there are none.
func (p *mkvParser) master(l *Layout, id uint32, children []element) int64 {
	at := l.Size()
	if len(children) == 0 {
		return at
	}
	var n int64
	for _, c := range children {
		n += c.end() - c.off
	}
	l.Literal(appendHeader(nil, id, n))
	for _, c := range children {
		l.Copy(c.off, c.end()-c.off)
	}
	return at
}

// appendLayout appends the pieces of src to l.
func appendLayout(l, src *Layout) {
	for _, pc := range src.pieces {
		if pc.lit != nil {
			l.Literal(pc.lit)
		} else {
			l.Copy(pc.src, pc.n)
		}
	}
}
