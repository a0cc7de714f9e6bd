package ffmpeg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/sandbox"
)

// Cover art: the source's own picture (an attached_pic stream, as MP4, MKV and MP3 files
// carry), else a frame of the video, goes into the MP3 as an APIC front cover in JPEG, which
// every player shows (many mis-handle PNG or WebP there). A separate ffmpeg run writes it
// into the work directory first; the conversion takes it as a second input.

const (
	// coverSize bounds a cover made by ffmpeg (a frame, or a picture that was not JPEG).
	coverSize = 600
	// coverAt is where in the video a frame is taken, as a fraction of its duration: past
	// titles and fades in.
	coverAt = 0.10
	// coverWindow is how much of the video after that point may be decoded to find a frame
	// that is not black.
	coverWindow = 20 * time.Second
	// coverMinLuma is the mean luma (0-255) above which a frame does not count as black.
	coverMinLuma = 32
)

// metaPlan is what the conversion adds to the MP3 besides its audio.
type metaPlan struct {
	tags []string // output options: tags and chapters
	// cover is the cover's JPEG in the work directory, "" for none; when ready is not nil,
	// it is being written, and is known once ready is closed (every method waits for it).
	cover string
	ready chan struct{}
}

// planMeta takes the tags and chapters of src, which Probe described as in, and starts
// writing its cover next to dst, while the audio is decoded and encoded: the MP3's tag needs
// it only at the end of a parallel encode. Trouble with the cover costs the MP3 its cover,
// never the conversion.
func (c *Converter) planMeta(ctx context.Context, in Info, src, dst string, conv server.Conversion) *metaPlan {
	p := &metaPlan{tags: tagArgs(in.meta, conv), ready: make(chan struct{})}
	go func() {
		defer close(p.ready)
		// An error here is the context's end, which ends the conversion as well.
		if cp, err := c.coverPlan(ctx, src, dst, conv, in.meta); err == nil {
			p.cover = cp.cover
		}
	}()
	return p
}

// wait waits until the cover is written, or known to be missing.
func (p *metaPlan) wait() {
	if p != nil && p.ready != nil {
		<-p.ready
	}
}

// coverPlan writes the cover of src, whose tags m are, next to dst: a metaPlan without tags.
func (c *Converter) coverPlan(ctx context.Context, src, dst string, conv server.Conversion, m sourceMeta) (*metaPlan, error) {
	p := &metaPlan{}
	if conv.Options.NoCover {
		return p, nil
	}
	cover := strings.TrimSuffix(dst, filepath.Ext(dst)) + ".cover.jpg"
	ok, err := c.extractCover(ctx, src, cover, m)
	if err != nil {
		removeQuietly(cover)
		if ctx.Err() != nil {
			return nil, err
		}
		c.log.WarnContext(ctx, "no cover from the source", "src", src, "err", err)
		return p, nil
	}
	if ok {
		p.cover = cover
	}
	return p, nil
}

// inputArgs is the cover as the conversion's second input (after the source's -i): a JPEG
// that the first run wrote, read as such and nothing else.
func (p *metaPlan) inputArgs() []string {
	p.wait()
	if p == nil || p.cover == "" {
		return nil
	}
	return []string{"-protocol_whitelist", "file", "-f", "jpeg_pipe", "-i", "file:" + p.cover}
}

// outputArgs are the MP3's tags, chapters and cover.
func (p *metaPlan) outputArgs() []string {
	if p == nil {
		return nil
	}
	p.wait()
	args := p.tags
	if p.cover != "" {
		args = append(args[:len(args):len(args)], "-map", "1:v:0", "-c:v", "copy", "-disposition:v", "attached_pic",
			"-metadata:s:v", "title=Album cover", "-metadata:s:v", "comment=Cover (front)")
	}
	return args
}

// readFiles are the files besides the source that the conversion reads.
func (p *metaPlan) readFiles() []string {
	p.wait()
	if p == nil || p.cover == "" {
		return nil
	}
	return []string{p.cover}
}

// cleanup removes the cover file, once it is written.
func (p *metaPlan) cleanup() {
	if p != nil {
		p.wait()
		removeQuietly(p.cover)
	}
}

// extractCover writes src's cover to dst as a JPEG, and reports whether there is one: the
// attached picture (copied when it is a JPEG, else converted and bounded to coverSize), or a
// frame of the video near coverAt that is not black, bounded to coverSize, or failing that
// one from its start (a video with frames only there, such as the one keyframe of a short
// clip's audio-only upload). An audio file without a picture has none, and neither has a video
// that is black throughout.
func (c *Converter) extractCover(ctx context.Context, src, dst string, m sourceMeta) (bool, error) {
	at := time.Duration(float64(m.Duration) * coverAt)
	ok, err := c.grabCover(ctx, src, dst, m, at)
	if ok || err != nil || m.Picture >= 0 || m.Video < 0 || at == 0 {
		return ok, err
	}
	return c.grabCover(ctx, src, dst, m, 0)
}

// grabCover is extractCover with a frame from at on.
func (c *Converter) grabCover(ctx context.Context, src, dst string, m sourceMeta, at time.Duration) (bool, error) {
	scale := fmt.Sprintf("scale=w='min(%d,iw)':h='min(%d,ih)':force_original_aspect_ratio=decrease", coverSize, coverSize)
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-y"}
	args = append(args, c.inputArgs()...)
	switch {
	case m.Picture >= 0 && m.PictureCodec == "mjpeg":
		args = append(args, "-i", "file:"+src, "-map", "0:"+strconv.Itoa(m.Picture), "-c:v", "copy")
	case m.Picture >= 0:
		args = append(args, "-i", "file:"+src, "-map", "0:"+strconv.Itoa(m.Picture),
			"-vf", scale+",format=yuvj420p", "-c:v", "mjpeg", "-q:v", "2")
	case m.Video >= 0:
		// Shrink first, so that the frames thumbnail keeps to compare stay small; skip the
		// dark ones; of the rest, take the most typical of a few (not a frame mid-cut). A
		// client that uploads only the audio carries the first keyframe from coverAt on,
		// for these steps to take the cover from.
		vf := fmt.Sprintf("%s,signalstats,metadata=mode=select:key=lavfi.signalstats.YAVG:value=%d:function=greater,thumbnail=n=10,format=yuvj420p",
			scale, coverMinLuma)
		args = append(args, "-ss", secsArg(at), "-t", secsArg(coverWindow), "-i", "file:"+src,
			"-map", "0:"+strconv.Itoa(m.Video), "-vf", vf, "-c:v", "mjpeg", "-q:v", "3")
	default:
		return false, nil
	}
	args = append(args, "-an", "-sn", "-dn", "-frames:v", "1", "-f", "mjpeg", "file:"+dst)

	var stderr tail
	work := filepath.Dir(dst)
	cmd, err := c.command(ctx, sandbox.Policy{ReadFiles: []string{src}, WriteDirs: []string{work}}, work, c.ffmpeg, args...)
	if err != nil {
		return false, err
	}
	cmd.Stderr = &stderr
	c.log.DebugContext(ctx, "ffmpeg cover", "args", args)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("cover: %w", context.Cause(ctx))
		}
		return false, fmt.Errorf("cover: %v: %s", err, oneLine(stderr.String()))
	}
	st, err := os.Stat(dst)
	if err != nil || st.Size() == 0 { // no frame passed the filters
		removeQuietly(dst)
		return false, nil
	}
	return true, nil
}

// secsArg formats d as seconds for ffmpeg's -ss and -t.
func secsArg(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
