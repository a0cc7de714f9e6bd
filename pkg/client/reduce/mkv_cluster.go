package reduce

import "math"

// coverAt is where, as a fraction of the Duration after the audio's start, the server
// looks for a cover frame (pkg/server/ffmpeg: coverAt).
const coverAt = 0.10

// cluster walks the Cluster e and returns where it ends: for an unknown size, at the
// next top-level element or the Segment's end.
func (p *mkvParser) cluster(e element) (int64, error) {
	limit := p.segEnd
	if e.size != unknownSize {
		limit = e.end()
	}
	var c mkvCluster
	var clusterTS int64
	haveTS := false
	off := e.data
	for n := 0; off < limit; n++ {
		if n%1024 == 1023 {
			if err := p.canceled(); err != nil {
				return 0, err
			}
		}
		h, err := p.rd.header(off, limit)
		if err != nil {
			return 0, err
		}
		if e.size == unknownSize && isTopLevel(h.id) {
			break
		}
		if h.size == unknownSize {
			return 0, unsupported("element %#x of unknown size at %d in a Cluster", h.id, off)
		}
		switch h.id {
		case idTimestamp:
			if haveTS {
				return 0, unsupported("two Timestamps in the Cluster at %d", e.off)
			}
			v, err := p.uintElement(h)
			if err != nil {
				return 0, err
			}
			if v > 1<<53 {
				return 0, unsupported("Cluster Timestamp %d", v)
			}
			c.ts, c.time, haveTS = h, int64(v), true
			clusterTS = c.time
		case idSimpleBlock, idBlockGroup:
			if !haveTS {
				return 0, unsupported("a block before the Timestamp of the Cluster at %d", e.off)
			}
			if err := p.block(&c, h, clusterTS); err != nil {
				return 0, err
			}
		case idPosition, idPrevSize, idSilentTracks, idVoid, idCRC32:
			// Dropped: Position and PrevSize would be wrong in the reduced file, and a
			// CRC-32 covers children that change.
		default:
			return 0, unsupported("element %#x at %d in a Cluster", h.id, off)
		}
		off = h.end()
	}
	if !haveTS {
		return 0, unsupported("a Cluster without Timestamp at %d", e.off)
	}
	p.clusters = append(p.clusters, c)
	return off, nil
}

// uintElement reads the unsigned integer element e.
func (p *mkvParser) uintElement(e element) (uint64, error) {
	if e.size > 8 {
		return 0, unsupported("integer of %d bytes at %d", e.size, e.off)
	}
	b, err := p.rd.peek(e.data, int(e.size))
	if err != nil {
		return 0, err
	}
	v, _ := uintValue(b)
	return v, nil
}

// block reads the header of the SimpleBlock or BlockGroup e (in a Cluster whose Timestamp
// is clusterTS): an audio track's block is kept, a video keyframe is a candidate.
func (p *mkvParser) block(c *mkvCluster, e element, clusterTS int64) error {
	blk, key := e, true
	if e.id == idBlockGroup {
		found := false
		err := p.children(e, func(ch element) error {
			switch ch.id {
			case idBlock:
				if found {
					return unsupported("two Blocks in the BlockGroup at %d", e.off)
				}
				blk, found = ch, true
			case idReferenceBlock:
				key = false
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !found {
			return unsupported("a BlockGroup without Block at %d", e.off)
		}
	}
	// Track number (a vint of up to 8 bytes), 16-bit relative timestamp, flags.
	b, err := p.rd.peek(blk.data, int(min(blk.size, 11)))
	if err != nil {
		return err
	}
	num, n, ok := vint(b)
	if !ok || num == unknownSize || len(b) < n+3 {
		return unsupported("bad block header at %d", blk.off)
	}
	ts := clusterTS + int64(int16(uint16(b[n])<<8|uint16(b[n+1])))
	if e.id == idSimpleBlock {
		key = b[n+2]&0x80 != 0
	}
	track := uint64(num)
	switch {
	case p.audioNum[track]:
		c.blocks = append(c.blocks, mkvBlock{elem: e, track: track, ts: ts})
		if !p.audioSeen[track] {
			if len(p.audioSeen) == 0 || ts < p.audioFrom {
				p.audioFrom = ts
			}
			p.audioSeen[track] = true
		}
	case track == p.video && key:
		p.keyframes = append(p.keyframes, keyframe{mkvBlock{elem: e, track: track, ts: ts}, len(p.clusters)})
	}
	return nil
}

// pickKeyframe chooses the video block to keep: the earliest keyframe at or after a tenth
// of the Duration past the audio's start. The server seeks there (a tenth of the Duration
// after the file's start, which in the reduced file is the audio's) and takes a frame from
// that point on, so this keyframe is the first it finds. Without Duration, the server
// looks from the start: the earliest keyframe.
func (p *mkvParser) pickKeyframe() (*keyframe, error) {
	if p.video == 0 {
		return nil, nil
	}
	if len(p.audioSeen) == 0 {
		return nil, unsupported("no audio blocks")
	}
	from := math.Inf(-1)
	if p.timing.duration > 0 {
		from = float64(p.audioFrom) + p.timing.duration*coverAt
	}
	var best *keyframe
	for i := range p.keyframes {
		k := &p.keyframes[i]
		if float64(k.ts) >= from && (best == nil || k.ts < best.ts) {
			best = k
		}
	}
	if best == nil {
		return nil, unsupported("no video keyframe at or after %.0f ticks", from)
	}
	return best, nil
}
