// The MP4 and QuickTime reducer (ReduceMP4) reads boxes with github.com/abema/go-mp4
// rather than github.com/Eyevinn/mp4ff. Its box walker hands over each box's offset and size
// and reads a payload only when asked, so mdat is never touched, and every box the reduced
// file keeps as it is (stsd with its codec configuration, udta, meta, edts...) is copied
// byte for byte as a range of the source, never decoded and encoded again; it also bounds
// arrays by the box that holds them and knows QuickTime's sound descriptions. mp4ff decodes
// the whole file into a tree of boxes and would encode every kept box again from that tree.
package reduce

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"

	gomp4 "github.com/abema/go-mp4"
)

// SniffMP4 reports whether head, the first bytes of a file (8 are enough), looks like an
// MP4 or QuickTime file: one that starts with a box such files start with.
func SniffMP4(head []byte) bool {
	if len(head) < 8 {
		return false
	}
	switch string(head[4:8]) {
	case "ftyp", "moov", "mdat", "free", "skip", "wide", "pnot":
		return true
	}
	return false
}

// What the reduced file keeps of a track.
const (
	keepNone  = iota
	keepWhole // every sample: audio, chapters, attached pictures
	keepFrame // one video keyframe
)

// mp4Trak is a track of the source.
type mp4Trak struct {
	box      *mp4Box
	order    int
	id       uint32
	handler  string
	mediaTS  uint32
	tkhdDur  uint64
	mdhdDur  uint64
	area     uint64 // width × height, for video
	entries  []string
	refs     []trackRef
	smp      *mp4Samples
	keep     int
	out      *mp4Samples // the samples the reduced file holds
	frameAt  uint64      // keepFrame: the empty edit before the frame, in the movie's timescale
	frameDur uint64      // and the frame's duration
}

// ReduceMP4 describes a progressive MP4/MOV file that holds, of the MP4, MOV or fragmented
// MP4 file r of size bytes, every audio track, the tags, chapters and attached pictures,
// and one video keyframe from about 10% of the video. Packets are copied unchanged. It
// returns an error wrapping ErrUnsupported for a file it cannot reduce with confidence.
func ReduceMP4(ctx context.Context, r io.ReaderAt, size int64) (*Layout, error) {
	return reduceMP4(ctx, r, size, math.MaxUint32)
}

// reduceMP4 is ReduceMP4 writing co64 chunk offsets when the reduced file is larger than
// co64Above bytes (tests lower it).
func reduceMP4(ctx context.Context, r io.ReaderAt, size, co64Above int64) (l *Layout, err error) {
	defer func() {
		if p := recover(); p != nil { // the library panics on some malformed boxes
			l, err = nil, fmt.Errorf("reduce mp4: panic on a malformed file: %v: %w", p, ErrUnsupported)
		}
	}()
	s := &mp4Source{r: r, size: size}
	if size < 8 {
		return nil, mp4Unsupported("file of %d bytes", size)
	}
	head, err := s.bytes(0, 8)
	if err != nil {
		return nil, err
	}
	if !SniffMP4(head) {
		return nil, mp4Unsupported("not an MP4 or QuickTime file")
	}
	top, err := s.walk(ctx)
	if err != nil {
		return nil, err
	}
	var ftyp, moov *mp4Box
	var moofs []*mp4Box
	sidx := false
	for _, b := range top {
		switch b.typ {
		case "ftyp":
			if ftyp == nil {
				ftyp = b
			}
		case "moov":
			if moov != nil {
				return nil, mp4Unsupported("two moov boxes")
			}
			moov = b
		case "moof":
			moofs = append(moofs, b)
		case "sidx":
			sidx = true
		}
	}
	if moov == nil {
		return nil, mp4Unsupported("no moov box")
	}
	red := &mp4Reduction{s: s, moov: moov, co64Above: co64Above}
	if err := red.read(ctx, moofs, sidx); err != nil {
		return nil, err
	}
	if err := red.choose(ctx); err != nil {
		return nil, err
	}
	return red.layout(ftyp)
}

// mp4Reduction is the state of one reduction.
type mp4Reduction struct {
	s          *mp4Source
	moov       *mp4Box
	movieTS    uint32
	movieDur   uint64
	fragmented bool
	traks      []*mp4Trak
	co64Above  int64
}

// read reads the movie header, the tracks and their sample tables.
func (red *mp4Reduction) read(ctx context.Context, moofs []*mp4Box, sidx bool) error {
	s, moov := red.s, red.moov
	if moov.child("pssh") != nil {
		return mp4Unsupported("encrypted file (pssh)")
	}
	mvhdBox := moov.child("mvhd")
	if mvhdBox == nil {
		return mp4Unsupported("no mvhd box")
	}
	var mvhd gomp4.Mvhd
	if err := s.decode(mvhdBox, &mvhd); err != nil {
		return err
	}
	red.movieTS, red.movieDur = mvhd.Timescale, mvhd.GetDuration()
	if red.movieTS == 0 {
		return mp4Unsupported("movie timescale 0")
	}
	for i, b := range moov.kids {
		if b.typ != "trak" {
			continue
		}
		t, err := s.readTrak(b, i)
		if err != nil {
			return err
		}
		red.traks = append(red.traks, t)
	}
	mvex := moov.child("mvex")
	red.fragmented = len(moofs) > 0
	if !red.fragmented {
		for _, t := range red.traks {
			if t.handler == "soun" || t.handler == "vide" || red.isChapters(t) {
				smp, err := s.loadTables(ctx, t.box.path("mdia", "minf", "stbl"), uint32(len(t.entries)))
				if err != nil {
					return err
				}
				t.smp = smp
			}
		}
		return nil
	}
	if mvex == nil {
		return mp4Unsupported("movie fragments without mvex")
	}
	if sidx {
		return mp4Unsupported("fragmented file with a segment index (sidx)")
	}
	frags := map[uint32]*fragTrack{}
	for _, b := range mvex.kids {
		if b.typ != "trex" {
			continue
		}
		var trex gomp4.Trex
		if err := s.decode(b, &trex); err != nil {
			return err
		}
		frags[trex.TrackID] = &fragTrack{trex: trex}
	}
	for _, t := range red.traks {
		var stsz gomp4.Stsz
		if b := t.box.path("mdia", "minf", "stbl", "stsz"); b != nil {
			if err := s.decode(b, &stsz); err != nil {
				return err
			}
		}
		if stsz.SampleCount != 0 {
			return mp4Unsupported("fragmented file with samples in moov too")
		}
	}
	if err := s.gatherFragments(ctx, moofs, frags); err != nil {
		return err
	}
	for _, t := range red.traks {
		t.smp = &mp4Samples{allSync: true}
		if f := frags[t.id]; f != nil {
			t.smp = &f.smp
		}
		for _, c := range t.smp.chunks {
			if c.sdi == 0 || c.sdi > uint32(len(t.entries)) {
				return mp4Unsupported("track %d: sample description %d of %d", t.id, c.sdi, len(t.entries))
			}
		}
	}
	if red.movieDur == 0 {
		red.movieDur = red.fragmentedDuration(mvex)
	}
	return nil
}

// fragmentedDuration is the duration of a fragmented movie, as players see it: mehd's, or
// that of its longest track.
func (red *mp4Reduction) fragmentedDuration(mvex *mp4Box) uint64 {
	if b := mvex.child("mehd"); b != nil {
		var mehd gomp4.Mehd
		if red.s.decode(b, &mehd) == nil {
			d := uint64(mehd.FragmentDurationV0)
			if mehd.GetVersion() == 1 {
				d = mehd.FragmentDurationV1
			}
			if d > 0 {
				return d
			}
		}
	}
	var d uint64
	for _, t := range red.traks {
		if v, ok := scale(t.smp.dtsEnd, uint64(red.movieTS), uint64(t.mediaTS)); ok {
			d = max(d, v)
		}
	}
	return d
}

// readTrak reads a track's headers, sample descriptions and references.
func (s *mp4Source) readTrak(b *mp4Box, order int) (*mp4Trak, error) {
	t := &mp4Trak{box: b, order: order}
	tkhdBox, mdhdBox, hdlrBox := b.child("tkhd"), b.path("mdia", "mdhd"), b.path("mdia", "hdlr")
	stsd := b.path("mdia", "minf", "stbl", "stsd")
	if tkhdBox == nil || mdhdBox == nil || hdlrBox == nil || stsd == nil {
		return nil, mp4Unsupported("track without tkhd, mdhd, hdlr or stsd")
	}
	var tkhd gomp4.Tkhd
	if err := s.decode(tkhdBox, &tkhd); err != nil {
		return nil, err
	}
	t.id, t.tkhdDur = tkhd.TrackID, tkhd.GetDuration()
	t.area = uint64(tkhd.Width>>16) * uint64(tkhd.Height>>16)
	var mdhd gomp4.Mdhd
	if err := s.decode(mdhdBox, &mdhd); err != nil {
		return nil, err
	}
	t.mediaTS, t.mdhdDur = mdhd.Timescale, mdhd.GetDuration()
	if hdlrBox.payloadLen() < 12 {
		return nil, mp4Unsupported("hdlr box too short")
	}
	p, err := s.bytes(hdlrBox.payloadOff()+8, 4)
	if err != nil {
		return nil, err
	}
	t.handler = string(p)
	for _, k := range stsd.kids {
		t.entries = append(t.entries, k.typ)
	}
	if tref := b.child("tref"); tref != nil {
		p, err := s.bytes(tref.payloadOff(), tref.payloadLen())
		if err != nil {
			return nil, err
		}
		if t.refs, err = trackRefs(p); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// isChapters reports whether a track holds QuickTime chapters: another track refers to it
// with a chap reference.
func (red *mp4Reduction) isChapters(t *mp4Trak) bool {
	for _, o := range red.traks {
		for _, r := range o.refs {
			if r.typ != "chap" {
				continue
			}
			for _, id := range r.ids {
				if id == t.id {
					return true
				}
			}
		}
	}
	return false
}

// pictureCodecs are the sample entries of a still picture (an attached picture when the
// track has one sample).
var pictureCodecs = map[string]bool{"jpeg": true, "png ": true, "mjpa": true, "mjpb": true, "MJPG": true, "gif ": true, "bmp ": true}

// choose decides what the reduced file keeps of each track.
func (red *mp4Reduction) choose(ctx context.Context) error {
	audio := false
	var video *mp4Trak
	for _, t := range red.traks {
		switch {
		case t.handler == "soun":
			t.keep, audio = keepWhole, true
		case red.isChapters(t):
			t.keep = keepWhole
		case t.handler == "vide" && len(t.entries) > 0 && t.smp.count == 1 && pictureCodecs[t.entries[0]]:
			t.keep = keepWhole
		case t.handler == "vide" && t.smp.count > 0 && len(t.entries) > 0:
			if video == nil || t.area > video.area {
				video = t
			}
		}
	}
	if !audio {
		return mp4Unsupported("no audio track")
	}
	for _, t := range red.traks {
		if t.keep == keepWhole {
			if err := red.s.checkSelfContained(t); err != nil {
				return err
			}
			t.out = t.smp
		}
	}
	if video == nil {
		return nil
	}
	if err := red.s.checkSelfContained(video); err != nil {
		return err
	}
	return red.chooseFrame(ctx, video)
}

// chooseFrame picks the video keyframe and where the reduced file shows it.
func (red *mp4Reduction) chooseFrame(ctx context.Context, t *mp4Trak) error {
	empty, mediaTime, err := red.s.edits(t)
	if err != nil {
		return err
	}
	emptyMedia, ok := scale(empty, uint64(t.mediaTS), uint64(red.movieTS))
	if !ok || emptyMedia > math.MaxInt64/4 || mediaTime > math.MaxInt64/4 || mediaTime < -math.MaxInt64/4 {
		return mp4Unsupported("edit list out of range")
	}
	// 10% of the duration: the track's, or the movie's when longer, since that is what a
	// player (and the server) seeks to.
	total, ok := scaleUp(red.movieDur, uint64(t.mediaTS), uint64(red.movieTS))
	if !ok {
		return mp4Unsupported("movie duration out of range")
	}
	total = max(total, t.smp.dtsEnd)
	pick, have, err := t.smp.pickKeyframe(ctx, int64(emptyMedia)-mediaTime, total/10+min(total%10, 1))
	if err != nil || !have {
		return err
	}
	at, ok1 := scaleUp(pick.pres, uint64(red.movieTS), uint64(t.mediaTS))
	dur, ok2 := scale(uint64(pick.dur), uint64(red.movieTS), uint64(t.mediaTS))
	if !ok1 || !ok2 {
		return mp4Unsupported("video timing out of range")
	}
	dur = max(dur, 1)
	if red.movieDur > 0 { // the reduced file must not last longer than the source
		if at >= red.movieDur {
			return nil
		}
		dur = min(dur, red.movieDur-at)
	}
	sizes := []uint32(nil)
	if pick.size == 0 {
		sizes = []uint32{0}
	}
	t.keep, t.frameAt, t.frameDur = keepFrame, at, dur
	t.out = &mp4Samples{
		stts:    []gomp4.SttsEntry{{SampleCount: 1, SampleDelta: pick.dur}},
		uniform: pick.size, sizes: sizes, count: 1, allSync: true, dtsEnd: uint64(pick.dur),
		chunks: []mp4Chunk{{src: pick.src, n: int64(pick.size), samples: 1, sdi: pick.sdi}},
	}
	return nil
}

// edits reads a track's edit list: the empty time before its media (movie timescale) and
// where the media starts (media timescale).
func (s *mp4Source) edits(t *mp4Trak) (empty uint64, mediaTime int64, err error) {
	b := t.box.path("edts", "elst")
	if b == nil {
		return 0, 0, nil
	}
	var elst gomp4.Elst
	if err := s.decode(b, &elst); err != nil {
		return 0, 0, err
	}
	for _, e := range elst.Entries {
		dur, mt := uint64(e.SegmentDurationV0), int64(e.MediaTimeV0)
		if elst.GetVersion() == 1 {
			dur, mt = e.SegmentDurationV1, e.MediaTimeV1
		}
		if mt != -1 {
			return empty, mt, nil
		}
		if empty += dur; empty > math.MaxInt64/4 {
			return 0, 0, mp4Unsupported("edit list out of range")
		}
	}
	return empty, 0, nil
}

// encryptedEntries are the sample entries of protected samples.
var encryptedEntries = map[string]bool{"enca": true, "encv": true, "enct": true, "encs": true, "encm": true, "encf": true, "drms": true, "drmi": true}

// checkSelfContained refuses a track whose samples are encrypted or kept in another file.
func (s *mp4Source) checkSelfContained(t *mp4Trak) error {
	if len(t.entries) == 0 {
		return mp4Unsupported("track %d has no sample description", t.id)
	}
	for _, e := range t.entries {
		if encryptedEntries[e] {
			return mp4Unsupported("track %d is encrypted (%s)", t.id, e)
		}
	}
	if t.mediaTS == 0 {
		return mp4Unsupported("track %d has timescale 0", t.id)
	}
	dref := t.box.path("mdia", "minf", "dinf", "dref")
	if dref == nil {
		return nil
	}
	if len(dref.kids) == 0 {
		return mp4Unsupported("track %d: empty data reference", t.id)
	}
	for _, k := range dref.kids {
		_, flags, err := s.fullBoxFlags(k)
		if err != nil {
			return err
		}
		if flags&1 == 0 {
			return mp4Unsupported("track %d: samples in another file (%s data reference)", t.id, k.typ)
		}
	}
	return nil
}

// layout lays the reduced file out: ftyp, moov, then one mdat with the kept chunks in the
// order they have in the source.
func (red *mp4Reduction) layout(ftyp *mp4Box) (*Layout, error) {
	kept := map[uint32]bool{}
	var chunks []*mp4Chunk
	for _, t := range red.traks {
		if t.keep == keepNone {
			continue
		}
		kept[t.id] = true
		for i := range t.out.chunks {
			c := &t.out.chunks[i]
			c.order = t.order
			chunks = append(chunks, c)
		}
	}
	sort.Slice(chunks, func(i, j int) bool {
		a, b := chunks[i], chunks[j]
		if a.src != b.src {
			return a.src < b.src
		}
		if a.order != b.order {
			return a.order < b.order
		}
		return a.first < b.first
	})
	var data int64
	for _, c := range chunks {
		if data += c.n; data > red.s.size {
			return nil, mp4Unsupported("the kept samples add up to more than the file (chunks overlap)")
		}
	}
	moov, err := red.moovBox(kept)
	if err != nil {
		return nil, err
	}
	mdatHdr := boxHeader("mdat", data)
	var head int64
	if ftyp != nil {
		head = ftyp.size
	}
	co64 := head+moov.size(false)+int64(len(mdatHdr))+data > red.co64Above
	at := head + moov.size(co64) + int64(len(mdatHdr))
	for _, c := range chunks {
		c.out = at
		at += c.n
	}
	l := &Layout{}
	if ftyp != nil {
		l.Copy(ftyp.off, ftyp.size)
	}
	if err := moov.emit(l, co64); err != nil {
		return nil, err
	}
	l.Literal(mdatHdr)
	for _, c := range chunks {
		l.Copy(c.src, c.n)
	}
	return l, nil
}

// moovBox is the reduced file's moov: the movie header, the kept tracks, the tags.
func (red *mp4Reduction) moovBox(kept map[uint32]bool) (*outBox, error) {
	moov := &outBox{typ: "moov", kids: []*outBox{}}
	byBox := map[*mp4Box]*mp4Trak{}
	for _, t := range red.traks {
		byBox[t.box] = t
	}
	for _, b := range red.moov.kids {
		switch b.typ {
		case "mvhd":
			o := copied(b)
			if red.fragmented {
				var err error
				if o, err = red.s.withDuration(b, red.movieDur); err != nil {
					return nil, err
				}
			}
			moov.kids = append(moov.kids, o)
		case "udta", "meta":
			moov.kids = append(moov.kids, copied(b))
		case "trak":
			t := byBox[b]
			if t == nil || t.keep == keepNone {
				continue
			}
			o, err := red.trakBox(t, kept)
			if err != nil {
				return nil, err
			}
			moov.kids = append(moov.kids, o)
		}
	}
	return moov, nil
}

// trakBox is a kept track: its boxes as they are in the source, but for the sample tables,
// the references to dropped tracks and, for the video frame or a fragmented source, the
// durations and the edit list.
func (red *mp4Reduction) trakBox(t *mp4Trak, kept map[uint32]bool) (*outBox, error) {
	s := red.s
	swap := map[*mp4Box][]*outBox{}
	if tref := t.box.child("tref"); tref != nil {
		swap[tref] = nil
		if o := keptRefs(t.refs, kept); o != nil {
			swap[tref] = []*outBox{o}
		}
	}
	tkhd, mdhd, stbl := t.box.child("tkhd"), t.box.path("mdia", "mdhd"), t.box.path("mdia", "minf", "stbl")
	mediaDur, movieDur := t.mdhdDur, t.tkhdDur
	switch {
	case t.keep == keepFrame:
		mediaDur, movieDur = t.out.dtsEnd, t.frameAt+t.frameDur
		edts, err := editList(t.frameAt, t.frameDur)
		if err != nil {
			return nil, err
		}
		if old := t.box.child("edts"); old != nil {
			swap[old] = nil
		}
		swap[tkhd] = []*outBox{nil, edts} // tkhd itself is set below
	case red.fragmented:
		if mediaDur == 0 {
			mediaDur = t.out.dtsEnd
		}
		if movieDur == 0 {
			movieDur = red.editedDuration(t)
		}
	}
	if t.keep == keepFrame || red.fragmented {
		tables, err := sampleTables(t.out)
		if err != nil {
			return nil, err
		}
		o := &outBox{typ: "stbl", kids: []*outBox{copied(stbl.child("stsd"))}}
		o.kids = append(o.kids, tables...)
		if t.keep == keepWhole {
			for _, k := range stbl.kids {
				if !sampleTableBoxes[k.typ] {
					o.kids = append(o.kids, copied(k))
				}
			}
		}
		swap[stbl] = []*outBox{o}
	} else {
		for _, k := range stbl.kids {
			if k.typ == "stco" || k.typ == "co64" {
				swap[k] = nil
			}
		}
		co := stbl.child("co64")
		if co == nil {
			co = stbl.child("stco")
		}
		swap[co] = []*outBox{offsetTable(t.out)}
	}
	if movieDur != t.tkhdDur || t.keep == keepFrame {
		o, err := s.withDuration(tkhd, movieDur)
		if err != nil {
			return nil, err
		}
		if t.keep == keepFrame {
			swap[tkhd][0] = o
		} else {
			swap[tkhd] = []*outBox{o}
		}
	}
	if mediaDur != t.mdhdDur {
		o, err := s.withDuration(mdhd, mediaDur)
		if err != nil {
			return nil, err
		}
		swap[mdhd] = []*outBox{o}
	}
	return rebuilt(t.box, swap)[0], nil
}

// editedDuration is a track's duration in the movie's timescale: its edit list's, or its
// media's.
func (red *mp4Reduction) editedDuration(t *mp4Trak) uint64 {
	if b := t.box.path("edts", "elst"); b != nil {
		var elst gomp4.Elst
		if red.s.decode(b, &elst) == nil {
			var d uint64
			for _, e := range elst.Entries {
				if elst.GetVersion() == 1 {
					d += e.SegmentDurationV1
				} else {
					d += uint64(e.SegmentDurationV0)
				}
			}
			if d > 0 {
				return d
			}
		}
	}
	d, _ := scale(t.out.dtsEnd, uint64(red.movieTS), uint64(t.mediaTS))
	return d
}

// sampleTableBoxes are the stbl boxes that describe samples one by one; the reduced file
// builds them again when it gathers a fragmented track's samples.
var sampleTableBoxes = map[string]bool{
	"stsd": true, "stts": true, "ctts": true, "cslg": true, "stsc": true, "stsz": true, "stz2": true,
	"stco": true, "co64": true, "stss": true, "stps": true, "sdtp": true, "sbgp": true, "subs": true,
	"saiz": true, "saio": true, "stdp": true, "padb": true,
}

// rebuilt is box b with the boxes in swap replaced by theirs (none: dropped). The
// containers on the way to a replaced box are built again around their children; every
// other box is copied.
func rebuilt(b *mp4Box, swap map[*mp4Box][]*outBox) []*outBox {
	if o, ok := swap[b]; ok {
		var kept []*outBox
		for _, k := range o {
			if k != nil {
				kept = append(kept, k)
			}
		}
		return kept
	}
	if !holdsAny(b, swap) {
		return []*outBox{copied(b)}
	}
	o := &outBox{typ: b.typ, kids: []*outBox{}}
	for _, k := range b.kids {
		o.kids = append(o.kids, rebuilt(k, swap)...)
	}
	return []*outBox{o}
}

func holdsAny(b *mp4Box, swap map[*mp4Box][]*outBox) bool {
	for _, k := range b.kids {
		if _, ok := swap[k]; ok || holdsAny(k, swap) {
			return true
		}
	}
	return false
}
