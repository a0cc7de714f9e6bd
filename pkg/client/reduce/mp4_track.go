package reduce

import (
	"context"
	"sort"

	gomp4 "github.com/abema/go-mp4"
)

// mp4Chunk is a run of a track's samples that lie one after another in the source.
type mp4Chunk struct {
	src     int64  // offset in the source
	n       int64  // bytes
	first   uint32 // index of its first sample, from 0
	samples uint32
	sdi     uint32 // sample description index, from 1
	order   int    // the track's place in the source, to sort chunks that share an offset
	out     int64  // offset in the reduced file
}

// mp4Samples is a track's sample table: timing, sizes, chunks and sync samples.
type mp4Samples struct {
	stts    []gomp4.SttsEntry
	ctts    []cttsRun
	uniform uint32   // the size of every sample, or 0
	sizes   []uint32 // when uniform is 0
	count   uint32
	chunks  []mp4Chunk
	sync    []uint32 // sample numbers from 1, increasing; ignored when allSync
	allSync bool
	dtsEnd  uint64 // sum of the durations
}

type cttsRun struct {
	count  uint32
	offset int32
}

func (t *mp4Samples) size(i uint32) uint32 {
	if t.uniform != 0 {
		return t.uniform
	}
	return t.sizes[i]
}

// loadTables reads a progressive track's sample tables (stbl) and works out its chunks.
func (s *mp4Source) loadTables(ctx context.Context, stbl *mp4Box, descs uint32) (*mp4Samples, error) {
	t := &mp4Samples{allSync: true}
	if stbl.child("stz2") != nil {
		return nil, mp4Unsupported("compact sample sizes (stz2)")
	}
	sttsBox, stszBox, stscBox := stbl.child("stts"), stbl.child("stsz"), stbl.child("stsc")
	if sttsBox == nil || stszBox == nil || stscBox == nil {
		return nil, mp4Unsupported("sample table without stts, stsz or stsc")
	}
	var stts gomp4.Stts
	if err := s.decode(sttsBox, &stts); err != nil {
		return nil, err
	}
	t.stts = stts.Entries
	for _, e := range t.stts {
		t.dtsEnd += uint64(e.SampleCount) * uint64(e.SampleDelta)
	}
	var stsz gomp4.Stsz
	if err := s.decode(stszBox, &stsz); err != nil {
		return nil, err
	}
	t.uniform, t.sizes, t.count = stsz.SampleSize, stsz.EntrySize, stsz.SampleCount
	if t.uniform == 0 && uint64(len(t.sizes)) != uint64(t.count) {
		return nil, mp4Unsupported("stsz: %d sizes for %d samples", len(t.sizes), t.count)
	}
	var total uint64
	for _, e := range t.stts {
		total += uint64(e.SampleCount)
	}
	if total != uint64(t.count) {
		return nil, mp4Unsupported("stts covers %d samples, stsz %d", total, t.count)
	}
	if b := stbl.child("ctts"); b != nil {
		var ctts gomp4.Ctts
		if err := s.decode(b, &ctts); err != nil {
			return nil, err
		}
		for _, e := range ctts.Entries {
			off := e.SampleOffsetV1
			if ctts.GetVersion() == 0 {
				off = int32(e.SampleOffsetV0) // read as signed, as ffmpeg does
			}
			t.ctts = append(t.ctts, cttsRun{e.SampleCount, off})
		}
	}
	if b := stbl.child("stss"); b != nil {
		var stss gomp4.Stss
		if err := s.decode(b, &stss); err != nil {
			return nil, err
		}
		if len(stss.SampleNumber) > 0 {
			t.allSync, t.sync = false, stss.SampleNumber
			for i, n := range t.sync {
				if n == 0 || n > t.count || (i > 0 && n <= t.sync[i-1]) {
					return nil, mp4Unsupported("stss: sample number %d out of order or range", n)
				}
			}
		}
	}
	offsets, err := s.chunkOffsets(stbl)
	if err != nil {
		return nil, err
	}
	var stsc gomp4.Stsc
	if err := s.decode(stscBox, &stsc); err != nil {
		return nil, err
	}
	if err := t.splitChunks(ctx, stsc.Entries, offsets, descs, s.size); err != nil {
		return nil, err
	}
	return t, nil
}

// chunkOffsets reads stco or co64.
func (s *mp4Source) chunkOffsets(stbl *mp4Box) ([]uint64, error) {
	if b := stbl.child("co64"); b != nil {
		var co gomp4.Co64
		if err := s.decode(b, &co); err != nil {
			return nil, err
		}
		return co.ChunkOffset, nil
	}
	b := stbl.child("stco")
	if b == nil {
		return nil, mp4Unsupported("sample table without stco or co64")
	}
	var co gomp4.Stco
	if err := s.decode(b, &co); err != nil {
		return nil, err
	}
	offsets := make([]uint64, len(co.ChunkOffset))
	for i, o := range co.ChunkOffset {
		offsets[i] = uint64(o)
	}
	return offsets, nil
}

// splitChunks works out where each chunk is and how many bytes it holds, from stsc and
// the chunk offsets, and checks that every sample lies inside the file.
func (t *mp4Samples) splitChunks(ctx context.Context, stsc []gomp4.StscEntry, offsets []uint64, descs uint32, fileSize int64) error {
	nChunks := uint64(len(offsets))
	if nChunks > 0 && (len(stsc) == 0 || stsc[0].FirstChunk != 1) {
		return mp4Unsupported("stsc does not start at chunk 1")
	}
	t.chunks = make([]mp4Chunk, 0, len(offsets))
	var sample uint64
	for j, e := range stsc {
		end := nChunks + 1
		if j+1 < len(stsc) {
			end = uint64(stsc[j+1].FirstChunk)
		}
		if uint64(e.FirstChunk) >= end || end > nChunks+1 {
			return mp4Unsupported("stsc: chunk runs out of order")
		}
		if e.SamplesPerChunk == 0 || e.SampleDescriptionIndex == 0 || e.SampleDescriptionIndex > descs {
			return mp4Unsupported("stsc: %d samples per chunk, description %d of %d", e.SamplesPerChunk, e.SampleDescriptionIndex, descs)
		}
		for c := uint64(e.FirstChunk); c < end; c++ {
			if len(t.chunks)%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if sample+uint64(e.SamplesPerChunk) > uint64(t.count) {
				return mp4Unsupported("stsc describes more samples than stsz")
			}
			var n uint64
			if t.uniform != 0 {
				n = uint64(e.SamplesPerChunk) * uint64(t.uniform)
			} else {
				for _, sz := range t.sizes[sample : sample+uint64(e.SamplesPerChunk)] {
					n += uint64(sz)
				}
			}
			src := offsets[c-1]
			if src > uint64(fileSize) || n > uint64(fileSize)-src {
				return mp4Unsupported("chunk at %d of %d bytes lies outside the file", src, n)
			}
			t.chunks = append(t.chunks, mp4Chunk{src: int64(src), n: int64(n), first: uint32(sample), samples: e.SamplesPerChunk, sdi: e.SampleDescriptionIndex})
			sample += uint64(e.SamplesPerChunk)
		}
	}
	if sample != uint64(t.count) {
		return mp4Unsupported("stsc describes %d samples, stsz %d", sample, t.count)
	}
	return nil
}

// mp4Pick is the one video sample the reduced file carries.
type mp4Pick struct {
	src  int64
	size uint32
	dur  uint32
	sdi  uint32
	pres uint64 // presentation time in the track's timescale
}

// pickKeyframe finds the first sync sample presented at or after target, or the last sync
// sample when none is. shift is what the edit list adds to dts+cts to give the
// presentation time.
func (t *mp4Samples) pickKeyframe(ctx context.Context, shift int64, target uint64) (mp4Pick, bool, error) {
	var (
		sttsAt, cttsAt     int    // current entries
		sttsBase, cttsBase uint32 // first sample of the current entries
		dtsBase            uint64 // dts of sttsBase
		have               bool
		pick               uint32
		pickPres           uint64
		next                      = 0 // index into t.sync
		sample             uint32 = 0
	)
	if t.allSync && t.count > maxMP4Samples {
		return mp4Pick{}, false, mp4Unsupported("%d video samples, all keyframes", t.count)
	}
	for n := 0; ; n++ {
		if t.allSync {
			if sample >= t.count {
				break
			}
		} else {
			if next >= len(t.sync) {
				break
			}
			sample = t.sync[next] - 1
			next++
		}
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return mp4Pick{}, false, err
			}
		}
		for sttsAt < len(t.stts) && sample-sttsBase >= t.stts[sttsAt].SampleCount {
			dtsBase += uint64(t.stts[sttsAt].SampleCount) * uint64(t.stts[sttsAt].SampleDelta)
			sttsBase += t.stts[sttsAt].SampleCount
			sttsAt++
		}
		if sttsAt == len(t.stts) {
			break
		}
		dts := dtsBase + uint64(sample-sttsBase)*uint64(t.stts[sttsAt].SampleDelta)
		for cttsAt < len(t.ctts) && sample-cttsBase >= t.ctts[cttsAt].count {
			cttsBase += t.ctts[cttsAt].count
			cttsAt++
		}
		var cto int64
		if cttsAt < len(t.ctts) {
			cto = int64(t.ctts[cttsAt].offset)
		}
		pres := int64(dts) + cto + shift
		if pres >= 0 {
			pick, pickPres, have = sample, uint64(pres), true
			if uint64(pres) >= target {
				break
			}
		}
		sample++
	}
	if !have {
		return mp4Pick{}, false, nil
	}
	p, err := t.locate(pick)
	if err != nil {
		return mp4Pick{}, false, err
	}
	p.pres = pickPres
	return p, true, nil
}

// locate finds sample i's bytes, duration and description.
func (t *mp4Samples) locate(i uint32) (mp4Pick, error) {
	k := sort.Search(len(t.chunks), func(k int) bool { return t.chunks[k].first+t.chunks[k].samples > i })
	if k == len(t.chunks) || t.chunks[k].first > i {
		return mp4Pick{}, mp4Unsupported("sample %d is in no chunk", i)
	}
	c := t.chunks[k]
	off := c.src
	for j := c.first; j < i; j++ {
		off += int64(t.size(j))
	}
	var dur uint32
	var base uint32
	for _, e := range t.stts {
		if i-base < e.SampleCount {
			dur = e.SampleDelta
			break
		}
		base += e.SampleCount
	}
	return mp4Pick{src: off, size: t.size(i), dur: dur, sdi: c.sdi}, nil
}
