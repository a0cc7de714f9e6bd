package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/sandbox"
	"github.com/v2m/v2m/pkg/server/tracing"
)

// errTimeout is the cause of a conversion's context when Config.Timeout expires.
var errTimeout = errors.New("conversion timeout")

// Convert writes an audio track of the media file src to dst as an MP3 as conv's options
// say (the default track is the one marked default, else the first), calling progress
// (when not nil) with a rising percentage of the audio converted; 100 comes only once the
// MP3 has been checked. It implements server.Converter.
//
// Input that cannot be converted, or a conversion that exceeds Config.Timeout, gives an
// EINVALID error marked server.Permanent that says why. When ctx ends first, the error
// wraps ctx's error and is not permanent. On a failure after dst was created, dst is removed.
func (c *Converter) Convert(ctx context.Context, src, dst string, conv server.Conversion, progress func(pct int)) error {
	if conv.Options.SplitChapters {
		return server.Permanent(server.Errorf(server.EINVALID, "a job split by chapters makes several MP3s: use Split"))
	}
	return c.session(ctx, src, func(jctx context.Context) error {
		start := time.Now()
		out, err := c.convertOne(jctx, src, dst, conv, progress)
		if err != nil {
			return err
		}
		c.log.DebugContext(ctx, "converted", "src", src, "dst", dst, "audio", out.Duration, "elapsed", time.Since(start))
		return nil
	})
}

// session runs fn with the conversion's timeout, and makes its error what Convert says: the
// timeout a permanent EINVALID error, the end of ctx an error that wraps ctx's.
func (c *Converter) session(ctx context.Context, src string, fn func(jctx context.Context) error) error {
	jctx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		jctx, cancel = context.WithTimeoutCause(ctx, c.timeout, errTimeout)
		defer cancel()
	}
	start := time.Now()
	err := fn(jctx)
	if err == nil {
		return nil
	}
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("convert %s: %w", src, ctx.Err())
	case errors.Is(context.Cause(jctx), errTimeout):
		err = server.Permanent(server.Errorf(server.EINVALID, "conversion took longer than %v", c.timeout))
	}
	c.log.DebugContext(ctx, "conversion failed", "src", src, "elapsed", time.Since(start), "err", err)
	return err
}

// convertOne is Convert within its session. On a failure after dst was created, dst is removed.
func (c *Converter) convertOne(jctx context.Context, src, dst string, conv server.Conversion, progress func(pct int)) (_ Info, err error) {
	in, err := c.Probe(jctx, src)
	if err != nil {
		return Info{}, err
	}
	if !in.HasAudio {
		return Info{}, server.Permanent(server.Errorf(server.EINVALID, "the video has no audio track"))
	}
	j, err := c.plan(jctx, src, in, conv, nil)
	if err != nil {
		return Info{}, err
	}
	if err := tooLong(conv, j.span); err != nil {
		return Info{}, err
	}

	// Create dst first, so that a destination we cannot write is told apart from bad input.
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Info{}, fmt.Errorf("create mp3: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	if err := f.Close(); err != nil {
		return Info{}, fmt.Errorf("create mp3: %w", err)
	}

	meta := c.planMeta(jctx, in, src, dst, conv) // tags, chapters and cover (cover.go, tags.go)
	defer meta.cleanup()
	pw := &progressWriter{total: j.span, report: progress, last: -1}
	if conv.Options.Loudness != 0 {
		// Two passes: measuring counts for 0-49 %, encoding for 50-99 %.
		pw.span = 50
		mctx, span := c.startSpan(jctx, "ffmpeg loudness")
		j.loud, err = c.measure(mctx, src, workDir(dst), j, pw)
		tracing.Fail(span, err)
		span.End()
		if err != nil {
			return Info{}, err
		}
		pw.lo = 50
	}
	out, err := c.encode(jctx, src, dst, j, meta, pw)
	if err != nil {
		return Info{}, err
	}
	if err := tooLong(conv, out.Duration); err != nil { // the container claimed less than it held
		return Info{}, err
	}
	if progress != nil && pw.last < 100 {
		progress(100)
	}
	return out, nil
}

// encode writes the job's MP3 to dst, finishes its tags, and checks that it holds the
// audio's samples (or its trimmed span): not what the container or the timestamps claim.
func (c *Converter) encode(ctx context.Context, src, dst string, j *job, meta *metaPlan, pw *progressWriter) (Info, error) {
	ectx, span := c.startSpan(ctx, "ffmpeg encode")
	err := c.run(ectx, src, dst, j, meta, pw)
	tracing.Fail(span, err)
	span.End()
	if err != nil {
		return Info{}, err
	}
	if err := commentFrame(dst); err != nil { // the comment as a COMM frame (tags.go)
		return Info{}, fmt.Errorf("mp3 comment: %w", err)
	}
	out, err := c.checkMP3(ctx, dst, j)
	if err != nil {
		return Info{}, err
	}
	if want, got := j.span, out.Duration; want > 0 && j.pk == nil && !near(got, want) {
		// The container's claim was not the truth: learn from the packets what the audio
		// holds, and whether the file is cut short (see plan).
		pk, err := c.scanPackets(ctx, src, j.audio.Index)
		if err != nil {
			return Info{}, err
		}
		if err := j.setPackets(pk); err != nil {
			return Info{}, err
		}
		j.span = j.length // no trim: a job that trims was scanned at plan
	}
	if want := j.span; want > 0 {
		tol := tolerance(want)
		if got := out.Duration; got < want-tol {
			return Info{}, server.Permanent(server.Errorf(server.EINVALID,
				"conversion produced a truncated MP3 (%s of %s)", secs(got), secs(want)))
		} else if got > want+tol {
			return Info{}, server.Permanent(server.Errorf(server.EINVALID,
				"conversion produced an MP3 of %s from %s of audio", secs(got), secs(want)))
		}
	}
	return out, nil
}

// checkMP3 describes the MP3 at dst: as the parallel encode wrote it (it parsed every frame
// it joined, and counted the samples), or else as ffprobe reads it.
func (c *Converter) checkMP3(ctx context.Context, dst string, j *job) (Info, error) {
	if j.joined > 0 {
		return Info{FormatName: "mp3", Duration: j.joined, HasAudio: true, AudioCodec: "mp3"}, nil
	}
	out, err := c.Probe(ctx, dst)
	if err != nil {
		if server.IsPermanent(err) {
			return Info{}, server.Permanent(server.Errorf(server.EINVALID,
				"conversion produced no usable MP3: %s", server.ErrorMessage(err)))
		}
		return Info{}, fmt.Errorf("check mp3: %w", err)
	}
	return out, nil
}

// tolerance is how far an MP3's duration may be from what it should be: the frames' padding,
// rounding of the container's times.
func tolerance(want time.Duration) time.Duration { return max(time.Second, want/50) }

// near reports whether an MP3 of got lasts want, within tolerance.
func near(got, want time.Duration) bool {
	return got >= want-tolerance(want) && got <= want+tolerance(want)
}

// runSerial runs one ffmpeg that writes the MP3, feeding its -progress output to pw; run
// (parallel.go) chooses it or the encode in segments.
func (c *Converter) runSerial(ctx context.Context, src, dst string, j *job, meta *metaPlan, pw *progressWriter) error {
	input, output := "file:"+src, "file:"+dst
	// Only the input file, and only as a real media container: a playlist inside an upload
	// must not make ffmpeg read other files or fetch URLs.
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-y"}
	args = append(args, c.inputArgs()...)
	args = append(args, j.seekArgs()...) // -ss, only for a Start ≥ 30 s with sound timestamps
	args = append(args, "-i", input)
	args = append(args, meta.inputArgs()...)  // the cover, as a second input (cover.go)
	args = append(args, c.audioArgs(j)...)    // the track, filters, channels and encoder (options.go)
	args = append(args, meta.outputArgs()...) // tags, chapters and cover (tags.go, cover.go)
	args = append(args, "-abort_on", "empty_output", "-progress", "pipe:1", "-nostats", "-f", "mp3", output)

	var stderr tail
	// ffmpeg works in the MP3's directory, may read src and write there, and nothing else.
	work := filepath.Dir(dst)
	cmd, err := c.command(ctx, sandbox.Policy{ReadFiles: append([]string{src}, meta.readFiles()...), WriteDirs: []string{work}}, work, c.ffmpeg, args...)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = pw, &stderr
	c.log.DebugContext(ctx, "ffmpeg", "args", args)
	if err := cmd.Run(); err != nil {
		return c.runError(ctx, err, &stderr, input, src, output, dst)
	}
	return nil
}

// runError classifies the failure err of an ffmpeg run that read input (the file src) and
// wrote output (the file dst, or a pipe when ""), whose stderr is stderr: bad input gives a
// permanent EINVALID error, the machine's trouble and ctx's end a plain one.
func (c *Converter) runError(ctx context.Context, err error, stderr *tail, input, src, output, dst string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("ffmpeg: %w", context.Cause(ctx))
	}
	if sandboxFailed(err) {
		return fmt.Errorf("ffmpeg: %s", oneLine(stderr.String()))
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("run %s: %w", c.ffmpeg, err)
	}
	msg := stderr.String()
	if strings.Contains(msg, "not on whitelist") {
		return server.Permanent(server.Errorf(server.EINVALID, "not a supported media file"))
	}
	if !ee.Exited() { // killed by a signal not ours: the machine's trouble
		return fmt.Errorf("ffmpeg: %v: %s", err, reason(msg, input, src, output, dst))
	}
	if systemTrouble(msg) || dst != "" && bytes.Contains(stderr.Bytes(), []byte(dst)) {
		return fmt.Errorf("ffmpeg: %v: %s", err, reason(msg, input, src, output, dst))
	}
	return server.Permanent(server.Errorf(server.EINVALID,
		"the video could not be converted: %s", reason(msg, input, src, output, dst)))
}

// secs formats d as seconds with one decimal, e.g. "12.3s".
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}

// progressWriter parses ffmpeg's -progress key=value lines and reports a rising
// percentage of total, each value at most once, and below 100: 100 is for the caller
// to report once the output is checked.
type progressWriter struct {
	total  time.Duration
	report func(pct int)
	last   int
	line   []byte
	// lo and span place this run's 0-100 % at lo to lo+span-1 of the whole: a job of two
	// passes reports the first at 0-49 and the second at 50-99. Span 0 means 100.
	lo, span int
}

func (w *progressWriter) Write(p []byte) (int, error) {
	splitLines(&w.line, p, w.handle)
	return len(p), nil
}

// handle takes one line.
func (w *progressWriter) handle(line []byte) {
	key, val, ok := bytes.Cut(bytes.TrimSpace(line), []byte("="))
	if !ok {
		return
	}
	switch string(key) {
	case "out_time_us", "out_time_ms": // both count microseconds
		us, err := strconv.ParseInt(string(val), 10, 64)
		if err != nil || us <= 0 || w.total <= 0 {
			return
		}
		done := float64(us) * float64(time.Microsecond) / float64(w.total)
		w.set(min(w.top(), w.lo+int(float64(w.width())*done)))
	case "progress":
		if string(val) == "end" {
			w.set(w.top())
		} else {
			w.set(w.lo)
		}
	}
}

func (w *progressWriter) width() int {
	if w.span <= 0 {
		return 100
	}
	return w.span
}

// top is the highest percentage of this run: never 100, which is the caller's.
func (w *progressWriter) top() int { return min(99, w.lo+w.width()-1) }

// set reports pct if it is higher than what was reported before.
func (w *progressWriter) set(pct int) {
	if pct <= w.last {
		return
	}
	w.last = pct
	if w.report != nil {
		w.report(pct)
	}
}

// tooLong says why audio lasting d is refused under conv's MaxDuration, or returns nil.
func tooLong(conv server.Conversion, d time.Duration) error {
	if conv.MaxDuration <= 0 || d <= conv.MaxDuration {
		return nil
	}
	return server.Permanent(server.Errorf(server.ETOOLARGE, "the audio lasts %s; this server converts at most %s per job",
		roundHuman(d), roundHuman(conv.MaxDuration)))
}

// roundHuman writes d to the second without zero units: 2h10m, 45m, 1h0m5s → 1h5s.
func roundHuman(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	out := ""
	if h > 0 {
		out += fmt.Sprintf("%dh", h)
	}
	if m > 0 {
		out += fmt.Sprintf("%dm", m)
	}
	if sec > 0 || out == "" {
		out += fmt.Sprintf("%ds", sec)
	}
	return out
}
