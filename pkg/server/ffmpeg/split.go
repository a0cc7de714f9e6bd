package ffmpeg

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/wire"
)

// A job split by chapters makes one MP3 per chapter of the source, each as a job of its own
// would (the same track, options, encoder and cover) with the chapter's span as its trim, the
// chapter's title and its track number. The job's Start and End, when given, keep the
// chapters, or the parts of them, that lie between the two. Loudness is measured once over
// the whole span, so that the parts keep their loudness relative to each other, as on an
// album. The MP3s are then stored in one zip, uncompressed (MP3s do not compress), in order.

// minPart is the shortest chapter, once trimmed, that becomes an MP3; shorter ones (a few
// frames left over by a trim, or a bogus zero-length chapter) are skipped.
const minPart = 500 * time.Millisecond

// Split writes one MP3 per chapter of src, zipped, to dst, and returns them. It implements
// server.Splitter. A source without chapters fails with a permanent EINVALID error.
func (c *Converter) Split(ctx context.Context, src, dst string, conv server.Conversion, progress func(pct int)) ([]server.JobFile, error) {
	var files []server.JobFile
	err := c.session(ctx, src, func(jctx context.Context) (err error) {
		defer func() {
			if err != nil {
				_ = os.Remove(dst)
			}
		}()
		files, err = c.split(jctx, src, dst, conv, progress)
		return err
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

func (c *Converter) split(ctx context.Context, src, dst string, conv server.Conversion, progress func(pct int)) ([]server.JobFile, error) {
	in, err := c.Probe(ctx, src)
	if err != nil {
		return nil, err
	}
	if !in.HasAudio {
		return nil, server.Permanent(server.Errorf(server.EINVALID, "the video has no audio track"))
	}
	m := in.meta
	whole := conv
	whole.Options.SplitChapters = false
	pk, err := c.scanFor(ctx, src, in, whole) // once, for every chapter's trim
	if err != nil {
		return nil, err
	}
	all, err := c.plan(ctx, src, in, whole, pk)
	if err != nil {
		return nil, err
	}
	if err := tooLong(conv, all.span); err != nil {
		return nil, err
	}
	parts := chapterSpans(m.Chapters, conv.Options.Start, conv.Options.Start+all.span)
	if len(parts) == 0 {
		if len(m.Chapters) == 0 {
			return nil, server.Permanent(server.Errorf(server.EINVALID, "the video has no chapters to split by"))
		}
		return nil, server.Permanent(server.Errorf(server.EINVALID, "none of the video's chapters lies within the start and end given"))
	}

	dir := workDir(dst)
	var total time.Duration
	for _, p := range parts {
		total += p.End - p.Start
	}
	pw := &progressWriter{total: total, report: progress, last: -1}
	var loud *loudness
	if conv.Options.Loudness != 0 {
		pw.total, pw.span = all.span, 50 // the measure pass: 0-49 %
		if loud, err = c.measure(ctx, src, dir, all, pw); err != nil {
			return nil, err
		}
	}
	meta, err := c.coverPlan(ctx, src, dst, conv, m)
	if err != nil {
		return nil, err
	}
	defer meta.cleanup()

	base := strings.TrimSuffix(dst, filepath.Ext(dst))
	var files []server.JobFile
	var paths []string
	defer func() {
		for _, p := range paths {
			removeQuietly(p)
		}
	}()
	lo, width := 0, 100
	if loud != nil {
		lo, width = 50, 50
	}
	var done time.Duration
	for i, ch := range parts {
		pc := conv
		pc.Options.SplitChapters = false
		pc.Options.Start, pc.Options.End = ch.Start, ch.End
		j, err := c.plan(ctx, src, in, pc, all.pk)
		if err != nil {
			return nil, fmt.Errorf("chapter %d: %w", i+1, err)
		}
		j.loud = loud
		pm := *meta
		pm.tags = partTagArgs(m, conv, &part{N: i, Total: len(parts), Title: ch.Title})
		path := fmt.Sprintf("%s.part%03d.mp3", base, i+1)
		paths = append(paths, path)
		// This part's share of the progress, by its length.
		ppw := &progressWriter{total: j.span, last: -1,
			lo:   lo + int(float64(width)*float64(done)/float64(total)),
			span: max(1, int(float64(width)*float64(j.span)/float64(total))),
			report: func(pct int) {
				if pct > pw.last && pct < 100 {
					pw.last = pct
					if progress != nil {
						progress(pct)
					}
				}
			}}
		if _, err := c.encode(ctx, src, path, j, &pm, ppw); err != nil {
			return nil, fmt.Errorf("chapter %d: %w", i+1, err)
		}
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("chapter %d: %w", i+1, err)
		}
		files = append(files, server.JobFile{Title: partTitle(ch.Title, i), Start: ch.Start, End: ch.End, Size: st.Size()})
		done += j.span
	}
	if err := writeZip(ctx, dst, paths, files); err != nil {
		return nil, err
	}
	if progress != nil {
		progress(100)
	}
	return files, nil
}

// partTitle is the title of part n: its chapter's, or "Chapter n+1".
func partTitle(title string, n int) string {
	if title != "" {
		return title
	}
	return fmt.Sprintf("Chapter %d", n+1)
}

// chapterSpans returns the chapters clipped to [start, end] (end 0: no end), without those
// left shorter than minPart. A chapter without an end ends where the next starts, or at end.
func chapterSpans(chapters []chapter, start, end time.Duration) []chapter {
	var out []chapter
	for i, ch := range chapters {
		if ch.End <= ch.Start {
			switch {
			case i+1 < len(chapters):
				ch.End = chapters[i+1].Start
			case end > 0:
				ch.End = end
			}
		}
		s, e := max(ch.Start, start), ch.End
		if end > 0 {
			e = min(e, end)
		}
		if e-s < minPart {
			continue
		}
		out = append(out, chapter{Start: s, End: e, Title: ch.Title})
	}
	return out
}

// writeZip stores the MP3s at paths in a zip at dst, uncompressed, named by wire.TrackName.
func writeZip(ctx context.Context, dst string, paths []string, files []server.JobFile) (err error) {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create zip: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write zip: %w", cerr)
		}
	}()
	zw := zip.NewWriter(f)
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write zip: %w", err)
		}
		if err := addStored(zw, p, wire.TrackName(i, files[i].Title)); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	return nil
}

// addStored adds the file at path to zw as name, uncompressed.
func addStored(zw *zip.Writer, path, name string) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: st.ModTime().UTC()})
	if err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	if _, err := io.Copy(w, in); err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	return nil
}
