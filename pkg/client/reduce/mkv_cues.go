package reduce

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/at-wat/ebml-go"
)

// The reduced file's Cues, rebuilt for its own clusters: for each audio track, its first
// block in each Cluster; for the video track, its one keyframe, and a seek point at the
// first Cluster. ffmpeg seeks on the video stream when there is one, and a seek to a time
// before the keyframe fails without an index entry at or before that time: with the first
// Cluster as one, such a seek reads on from there to the keyframe.

type mkvCues struct {
	CuePoint []mkvCuePoint `ebml:"CuePoint"`
}

type mkvCuePoint struct {
	CueTime           uint64              `ebml:"CueTime"`
	CueTrackPositions mkvCueTrackPosition `ebml:"CueTrackPositions"`
}

type mkvCueTrackPosition struct {
	CueTrack uint64 `ebml:"CueTrack"`
	// A fixed width, so that the Cues' size does not depend on the positions in them.
	CueClusterPosition uint64 `ebml:"CueClusterPosition,size=8"`
}

// cue is a CuePoint: a track's block at time ts in the Cluster at pos in the clusters'
// run (which the Cues precede).
type cue struct {
	ts    int64
	track uint64
	pos   int64
}

// clusterBody builds the reduced clusters: each source Cluster's Timestamp and kept blocks,
// with the keyframe kf (if any) in its place; Clusters left empty go. It returns their
// Cues, by position in the run.
func (p *mkvParser) clusterBody(kf *keyframe) (*Layout, []cue, error) {
	l := &Layout{}
	var cues []cue
	for i, c := range p.clusters {
		if err := p.canceled(); err != nil {
			return nil, nil, err
		}
		blocks := c.blocks
		if kf != nil && kf.cluster == i {
			at, _ := slices.BinarySearchFunc(blocks, kf.elem.off, func(b mkvBlock, off int64) int {
				return cmp.Compare(b.elem.off, off)
			})
			blocks = slices.Insert(slices.Clip(blocks), at, kf.mkvBlock)
		}
		if len(blocks) == 0 {
			continue
		}
		elems := make([]element, 0, len(blocks)+1)
		elems = append(elems, c.ts)
		for _, b := range blocks {
			elems = append(elems, b.elem)
		}
		pos := p.master(l, idCluster, elems)
		if kf != nil && len(cues) == 0 && c.time < kf.ts {
			cues = append(cues, cue{ts: c.time, track: kf.track, pos: pos}) // the seek point
		}
		seen := map[uint64]bool{}
		for _, b := range blocks {
			if !seen[b.track] {
				seen[b.track] = true
				cues = append(cues, cue{ts: b.ts, track: b.track, pos: pos})
			}
		}
	}
	slices.SortStableFunc(cues, func(a, b cue) int { return cmp.Compare(a.ts, b.ts) })
	return l, cues, nil
}

// marshalCues encodes cues as a Cues element that starts at the Segment position at, right
// before the clusters' run; nil for none.
func marshalCues(cues []cue, at int64) ([]byte, error) {
	if len(cues) == 0 {
		return nil, nil
	}
	v := struct {
		Cues mkvCues `ebml:"Cues"`
	}{}
	for _, c := range cues {
		v.Cues.CuePoint = append(v.Cues.CuePoint, mkvCuePoint{
			CueTime:           uint64(max(c.ts, 0)),
			CueTrackPositions: mkvCueTrackPosition{CueTrack: c.track, CueClusterPosition: uint64(c.pos)},
		})
	}
	var probe bytes.Buffer
	if err := ebml.Marshal(&v, &probe); err != nil {
		return nil, fmt.Errorf("matroska: encode Cues: %w", err)
	}
	size := int64(probe.Len()) // the same whatever the positions
	for i := range v.Cues.CuePoint {
		v.Cues.CuePoint[i].CueTrackPositions.CueClusterPosition += uint64(at + size)
	}
	var out bytes.Buffer
	if err := ebml.Marshal(&v, &out); err != nil {
		return nil, fmt.Errorf("matroska: encode Cues: %w", err)
	}
	if int64(out.Len()) != size {
		return nil, fmt.Errorf("matroska: Cues of %d bytes, then %d", size, out.Len())
	}
	return out.Bytes(), nil
}
