package ffmpeg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/v2m/v2m/pkg/server/mp3"
	"github.com/v2m/v2m/pkg/server/sandbox"
)

// LAME is single-threaded and takes about three quarters of a conversion's time. Audio of
// Config.ParallelMin or more is therefore decoded once, by one ffmpeg that applies the
// job's whole filter chain, channels and rate and writes float PCM (what libmp3lame takes
// from the decoder anyway, so every encoder sees the serial encode's very samples) to a
// pipe. Go cuts the PCM into segments on the 1152-sample frame grid and deals them round
// robin to a few long-running encoders, each segment with preRoll frames before it and
// postRoll after: an encoder's stream is its segments one after the other, and the frames
// around each jump between them are dropped. The mp3 package joins the segments' frames
// without a seam and writes one Xing/LAME frame for the whole file, modelled on the Xing
// frame of a tiny run that also writes the ID3v2 tag (tags, chapters and cover) as the
// serial run would. Only the PCM of the segments in flight is held in memory: each encoder's
// queue holds about one segment (10.6 MB of 44.1 kHz stereo), and the joiner two segments'
// frames.

const (
	defaultParallelMin = 2 * time.Minute
	// defaultSegFrames is a segment's length in frames (about 27 s at 44.1 kHz): long
	// enough that the pre- and post-roll cost little (1 %), short enough that the
	// encoders finish together.
	defaultSegFrames = 1024
	// preRoll frames before a segment let its encoder settle (LAME's delay and MDCT overlap
	// are one frame); postRoll after it cover the encoder's look-ahead. The seam may move
	// by a few frames into either (mp3.Joiner).
	preRoll, postRoll = 8, 4
	// chunkFrames is how many frames of PCM go to an encoder at once.
	chunkFrames = 64
)

// errSerial says that the parallel encode cannot make this MP3, which the serial one can.
var errSerial = errors.New("encode serially")

// cpuPool counts the CPUs that conversions use, out of runtime.GOMAXPROCS(0), read at
// every take. Since Go 1.25 (with go.mod's go 1.25 or later, as here) the runtime sets
// GOMAXPROCS from the CPU bandwidth limit of the cgroup holding the process when it is
// below the CPU count, which is what a Kubernetes container's CPU limit (not its request)
// sets, and updates it when the limit changes (runtime/cgroup_linux.go; unless the
// GOMAXPROCS variable is set or GODEBUG turns it off). It reads the leaf cgroup only.
type cpuPool struct {
	mu   sync.Mutex
	used int
}

// hold counts one CPU for a conversion, without waiting: the conversion runs anyway.
func (p *cpuPool) hold() {
	p.mu.Lock()
	p.used++
	p.mu.Unlock()
}

// take counts up to n more CPUs among those free, without waiting, and returns how many.
func (p *cpuPool) take(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := max(0, min(n, runtime.GOMAXPROCS(0)-p.used))
	p.used += k
	return k
}

// give returns n CPUs.
func (p *cpuPool) give(n int) {
	p.mu.Lock()
	p.used -= n
	p.mu.Unlock()
}

// run writes the job's MP3 to dst: in segments on several CPUs when the audio is long
// enough, the output MPEG-1 and CPUs are free; else, or when that fails for a reason the
// serial run does not share, with one ffmpeg (runSerial).
func (c *Converter) run(ctx context.Context, src, dst string, j *job, meta *metaPlan, pw *progressWriter) error {
	c.cpus.hold()
	defer c.cpus.give(1)
	rate, channels := pcmFormat(j)
	threads := c.encodeThreads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	if j.span < c.parallelMin || threads < 2 || rate == 0 || channels == 0 {
		return c.runSerial(ctx, src, dst, j, meta, pw)
	}
	extra := c.cpus.take(threads - 1)
	defer c.cpus.give(extra)
	if extra == 0 {
		return c.runSerial(ctx, src, dst, j, meta, pw)
	}
	err := c.runParallel(ctx, src, dst, j, meta, pw, 1+extra, rate, channels)
	if errors.Is(err, errSerial) && ctx.Err() == nil {
		c.fallbacks.Add(1)
		c.log.WarnContext(ctx, "parallel encode failed: encoding serially", "src", src, "err", err)
		return c.runSerial(ctx, src, dst, j, meta, pw)
	}
	if err == nil {
		c.joined.Add(1)
	}
	return err
}

// pcmFormat is the sample rate and channel count of the job's audio as the encoder takes
// it; 0 for audio that the parallel encode does not take (a rate not of MPEG-1, unknown).
func pcmFormat(j *job) (rate, channels int) {
	rate = j.audio.SampleRate
	if r := outRate(rate); j.loud != nil || rate > 0 && r != rate {
		rate = r
	}
	switch {
	case j.conv.Options.Mono || j.audio.Channels == 1:
		channels = 1
	case j.audio.Channels > 1:
		channels = 2
	}
	if rate != 32000 && rate != 44100 && rate != 48000 {
		return 0, 0
	}
	return rate, channels
}

// segment is one segment as dealt to an encoder.
type segment struct {
	worker int
	// first is the file's frame of the segment's first frame of PCM (pre-roll included),
	// start the first frame it stands for, frames how many frames of PCM it got.
	first, start, frames int
	last                 bool
}

// chunk is PCM for an encoder; main counts its samples that are not pre- or post-roll.
type chunk struct {
	pcm  []byte
	main int
}

// encoder is one encoding ffmpeg, fed by its own goroutine.
type encoder struct {
	in     chan chunk
	out    string // its MP3 frames, in the work directory
	stderr tail
	done   chan error
}

// runParallel encodes the job in segments on n encoders; see above.
func (c *Converter) runParallel(pctx context.Context, src, dst string, j *job, meta *metaPlan, pw *progressWriter, n, rate, channels int) error {
	ctx, cancel := context.WithCancelCause(pctx)
	defer cancel(nil)
	work := workDir(dst)
	base := strings.TrimSuffix(dst, filepath.Ext(dst))
	audio := c.audioArgs(j)
	enc := slices.Index(audio, "-c:a")
	if enc < 0 {
		return fmt.Errorf("%w: no encoder in %q", errSerial, audio)
	}

	// The ID3v2 tag and the model Xing frame, meanwhile.
	head := base + ".head.mp3"
	defer removeQuietly(head)
	headDone := make(chan error, 1)
	go func() { headDone <- c.runHead(ctx, src, head, j, meta) }()

	// The decoder.
	dargs := []string{"-nostdin", "-hide_banner", "-v", "error"}
	dargs = append(dargs, c.inputArgs()...)
	dargs = append(dargs, j.seekArgs()...)
	dargs = append(dargs, "-i", "file:"+src)
	dargs = append(dargs, audio[:enc]...)
	if channels == 2 {
		dargs = append(dargs, "-ac", "2") // libmp3lame takes no more: ffmpeg would downmix too
	}
	dargs = append(dargs, "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1")
	dec, err := c.command(ctx, sandbox.Policy{ReadFiles: []string{src}}, work, c.ffmpeg, dargs...)
	if err != nil {
		return err
	}
	var decErr tail
	dec.Stderr = &decErr
	pcm, err := dec.StdoutPipe()
	if err != nil {
		return fmt.Errorf("decoder pipe: %w", err)
	}
	c.log.DebugContext(ctx, "ffmpeg decode", "args", dargs)
	if err := dec.Start(); err != nil {
		return fmt.Errorf("run %s: %w", c.ffmpeg, err)
	}

	// The encoders.
	encoders := make([]*encoder, n)
	var encoded atomic.Int64
	var progressMu sync.Mutex
	total := float64(j.span) / float64(time.Second) * float64(rate)
	report := func(samples int) {
		done := float64(encoded.Add(int64(samples))) / total
		progressMu.Lock()
		defer progressMu.Unlock()
		pw.set(min(pw.top(), pw.lo+int(float64(pw.width())*done)))
	}
	pw.set(pw.lo)
	for i := range encoders {
		e := &encoder{in: make(chan chunk, c.segFrames/chunkFrames+2), out: base + ".part" + strconv.Itoa(i) + ".mp3", done: make(chan error, 1)}
		encoders[i] = e
		defer removeQuietly(e.out)
		if err := c.startEncoder(ctx, cancel, e, work, rate, channels, audio[enc:], report); err != nil {
			cancel(err)
			for _, e := range encoders[:i] {
				close(e.in)
				<-e.done
			}
			_ = dec.Wait()
			<-headDone
			return err
		}
	}

	segs, samples, dealErr := c.deal(ctx, bufio.NewReaderSize(pcm, 1<<20), encoders, channels)
	if dealErr != nil {
		cancel(dealErr)
	}
	for _, e := range encoders {
		close(e.in)
	}
	decWait := dec.Wait() // after the reads: Wait closes the pipe
	var encErr error
	for _, e := range encoders {
		if err := <-e.done; err != nil && encErr == nil {
			encErr = err
		}
	}
	headErr := <-headDone
	switch {
	case pctx.Err() != nil:
		return fmt.Errorf("ffmpeg: %w", context.Cause(pctx))
	case decWait != nil && ctx.Err() == nil:
		// The decoder's own failure: the input's fault, or the machine's, as for the serial run.
		return c.runError(pctx, decWait, &decErr, "file:"+src, src, "", "")
	case dealErr != nil:
		return dealErr
	case encErr != nil:
		return encErr
	case ctx.Err() != nil:
		return context.Cause(ctx)
	}
	if headErr != nil {
		// The serial run meets the same trouble, and says what it is.
		return fmt.Errorf("%w: %v", errSerial, headErr)
	}
	if samples == 0 {
		return fmt.Errorf("%w: no audio decoded", errSerial)
	}
	if err := c.join(ctx, dst, head, encoders, segs, samples); err != nil {
		return err
	}
	j.joined = time.Duration(int64(samples) * int64(time.Second) / int64(rate))
	progressMu.Lock()
	pw.set(pw.top())
	progressMu.Unlock()
	return nil
}

// runHead writes the ID3v2 tag and Xing frame of the job's MP3 to head, with one frame of audio.
func (c *Converter) runHead(ctx context.Context, src, head string, j *job, meta *metaPlan) error {
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-y"}
	args = append(args, c.inputArgs()...)
	args = append(args, j.seekArgs()...)
	args = append(args, "-i", "file:"+src)
	args = append(args, meta.inputArgs()...)
	// A tenth of a second, enough for the encoder's first packet to tell its delay; the
	// filter ends the audio, since -frames:a would end the run before the cover arrives,
	// and -t would drop the chapters past it.
	audio := slices.Clone(c.audioArgs(j))
	if i := slices.Index(audio, "-af"); i >= 0 && i+1 < len(audio) {
		audio[i+1] += ",atrim=end=0.1"
	}
	args = append(args, audio...)
	args = append(args, meta.outputArgs()...)
	args = append(args, "-f", "mp3", "file:"+head)
	work := workDir(head)
	cmd, err := c.command(ctx, sandbox.Policy{ReadFiles: append([]string{src}, meta.readFiles()...), WriteDirs: []string{work}}, work, c.ffmpeg, args...)
	if err != nil {
		return err
	}
	var stderr tail
	cmd.Stderr = &stderr
	c.log.DebugContext(ctx, "ffmpeg head", "args", args)
	if err := cmd.Run(); err != nil {
		return c.runError(ctx, err, &stderr, "file:"+src, src, "file:"+head, head)
	}
	return nil
}

// startEncoder starts e's ffmpeg and the goroutine that feeds it e.in, reporting the main
// samples written; a failure cancels ctx.
func (c *Converter) startEncoder(ctx context.Context, cancel context.CancelCauseFunc, e *encoder, work string, rate, channels int, encArgs []string, report func(int)) error {
	args := []string{"-hide_banner", "-v", "error", "-y", "-f", "f32le", "-ar", strconv.Itoa(rate), "-ac", strconv.Itoa(channels), "-i", "pipe:0"}
	args = append(args, encArgs...)
	args = append(args, "-map_metadata", "-1", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", "file:"+e.out)
	cmd, err := c.command(ctx, sandbox.Policy{WriteDirs: []string{work}}, work, c.ffmpeg, args...)
	if err != nil {
		return err
	}
	cmd.Stderr = &e.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("encoder pipe: %w", err)
	}
	c.log.DebugContext(ctx, "ffmpeg encode", "args", args)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", c.ffmpeg, err)
	}
	go func() {
		var werr error
		for ch := range e.in {
			if werr != nil {
				continue // drain
			}
			if _, werr = stdin.Write(ch.pcm); werr == nil {
				report(ch.main)
			}
		}
		stdin.Close()
		err := cmd.Wait()
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("ffmpeg: %w", context.Cause(ctx))
		case err != nil:
			err = fmt.Errorf("ffmpeg encode: %v: %s", err, oneLine(e.stderr.String()))
		case werr != nil:
			err = fmt.Errorf("ffmpeg encode: %w", werr)
		}
		if err != nil {
			cancel(err)
		}
		e.done <- err
	}()
	return nil
}

// deal reads the PCM and deals it to the encoders in segments, and returns the segments
// and the count of samples (per channel) read.
func (c *Converter) deal(ctx context.Context, r io.Reader, encoders []*encoder, channels int) ([]segment, int, error) {
	fb := mp3.SamplesPerFrame * channels * 4
	bufs := make([]chunk, len(encoders))
	send := func(w int, frame []byte, main bool) error {
		b := &bufs[w]
		if b.pcm == nil {
			b.pcm = make([]byte, 0, chunkFrames*fb)
		}
		b.pcm = append(b.pcm, frame...)
		if main {
			b.main += len(frame) / (channels * 4)
		}
		if len(b.pcm) < chunkFrames*fb {
			return nil
		}
		return flush(ctx, encoders[w], b)
	}
	var segs []segment
	seg := segment{}
	history := make([][]byte, 0, preRoll) // the last frames of the segment's main part
	var pending [][]byte                  // the frames after a full segment, kept until postRoll
	mainFrames, samples := 0, 0
	for {
		frame := make([]byte, fb)
		k, err := io.ReadFull(r, frame)
		if k == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return nil, 0, fmt.Errorf("read pcm: %w", err)
		}
		frame = frame[:k]
		samples += k / (channels * 4)
		if mainFrames < c.segFrames {
			if err := send(seg.worker, frame, true); err != nil {
				return nil, 0, err
			}
			seg.frames++
			mainFrames++
			history = pushFrame(history, frame)
			continue
		}
		pending = append(pending, frame)
		if len(pending) < postRoll {
			continue
		}
		for _, p := range pending {
			if err := send(seg.worker, p, false); err != nil {
				return nil, 0, err
			}
			seg.frames++
		}
		if err := flush(ctx, encoders[seg.worker], &bufs[seg.worker]); err != nil {
			return nil, 0, err
		}
		segs = append(segs, seg)
		start := seg.start + mainFrames
		seg = segment{worker: (seg.worker + 1) % len(encoders), first: start - len(history), start: start}
		for _, h := range history {
			if err := send(seg.worker, h, false); err != nil {
				return nil, 0, err
			}
			seg.frames++
		}
		mainFrames = 0
		for _, p := range pending {
			if err := send(seg.worker, p, true); err != nil {
				return nil, 0, err
			}
			seg.frames++
			mainFrames++
			history = pushFrame(history, p)
		}
		pending = pending[:0]
	}
	for _, p := range pending { // fewer than postRoll frames after the last segment: its own
		if err := send(seg.worker, p, true); err != nil {
			return nil, 0, err
		}
		seg.frames++
	}
	seg.last = true
	segs = append(segs, seg)
	for w := range encoders {
		if err := flush(ctx, encoders[w], &bufs[w]); err != nil {
			return nil, 0, err
		}
	}
	return segs, samples, nil
}

// pushFrame appends frame to history, keeping its last preRoll frames.
func pushFrame(history [][]byte, frame []byte) [][]byte {
	if len(history) == preRoll {
		copy(history, history[1:])
		history = history[:preRoll-1]
	}
	return append(history, frame)
}

// flush sends b to e, unless ctx ends first.
func flush(ctx context.Context, e *encoder, b *chunk) error {
	if len(b.pcm) == 0 {
		return nil
	}
	select {
	case e.in <- *b:
		*b = chunk{}
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// join writes dst from head's ID3v2 tag, a Xing frame modelled on head's, and the frames of
// the segments, joined.
func (c *Converter) join(ctx context.Context, dst, head string, encoders []*encoder, segs []segment, samples int) error {
	hb, err := os.ReadFile(head)
	if err != nil {
		return fmt.Errorf("read mp3 head: %w", err)
	}
	n, err := mp3.ID3v2Len(hb)
	if err != nil {
		return fmt.Errorf("%w: mp3 head: %v", errSerial, err)
	}
	h, err := mp3.ParseHeader(hb[n:])
	if err != nil || n+h.Size() > len(hb) {
		return fmt.Errorf("%w: mp3 head has no Xing frame: %v", errSerial, err)
	}
	tag, err := mp3.NewTag(hb[n : n+h.Size()])
	if err != nil || tag.Delay() == 0 {
		return fmt.Errorf("%w: mp3 head has no encoder delay: %v", errSerial, err)
	}

	readers := make([]*mp3.Reader, len(encoders))
	for i, e := range encoders {
		f, err := os.Open(e.out)
		if err != nil {
			return fmt.Errorf("read encoded segments: %w", err)
		}
		defer f.Close()
		readers[i] = mp3.NewReader(f)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write mp3: %w", err)
	}
	defer out.Close()
	bw := bufio.NewWriterSize(out, 256<<10)
	bw.Write(hb[:n])
	bw.Write(make([]byte, tag.Size())) // the Xing frame's place
	jn := mp3.NewJoiner(bw, tag.Size())
	for _, s := range segs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("join segments: %w", context.Cause(ctx))
		}
		ms := &mp3.Segment{First: s.first, Start: s.start, Last: s.last}
		for k := 0; s.last || k < s.frames; k++ {
			f, before, err := readers[s.worker].Next()
			if err == io.EOF && s.last {
				break
			}
			if err != nil {
				return fmt.Errorf("%w: encoded segment at frame %d: %v", errSerial, s.first+k, err)
			}
			if k == 0 {
				ms.Before = before
			}
			ms.Frames = append(ms.Frames, f)
		}
		if err := jn.Add(ms); err != nil {
			return fmt.Errorf("%w: %v", errSerial, err)
		}
	}
	if err := jn.Close(); err != nil {
		return fmt.Errorf("%w: %v", errSerial, err)
	}
	st := jn.Stats()
	// LAME pads the last frame with less than a frame, besides the decoder's delay (529):
	// any other padding would mean frames lost or doubled.
	padding := st.Frames()*mp3.SamplesPerFrame - tag.Delay() - samples
	if padding < 0 || padding >= mp3.SamplesPerFrame+529 {
		return fmt.Errorf("%w: %d frames for %d samples", errSerial, st.Frames(), samples)
	}
	xing, err := tag.Frame(st, tag.Delay(), padding)
	if err != nil {
		return fmt.Errorf("%w: %v", errSerial, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write mp3: %w", err)
	}
	if _, err := out.WriteAt(xing, int64(n)); err != nil {
		return fmt.Errorf("write mp3: %w", err)
	}
	grown := 0
	for _, s := range jn.Seams() {
		if s.Grown {
			grown++
		}
	}
	c.log.DebugContext(ctx, "joined segments", "dst", dst, "segments", len(segs), "frames", st.Frames(), "grown", grown)
	return out.Close()
}
