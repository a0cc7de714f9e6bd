package ffmpeg_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
	"github.com/v2m/v2m/pkg/server/mp3"
)

// parallelConverter encodes anything of a second or more in segments of segFrames frames
// (0 keeps the default) on two encoders.
func parallelConverter(t *testing.T, cfg ffmpeg.Config, segFrames int) *ffmpeg.Converter {
	t.Helper()
	if cfg.ParallelMin == 0 {
		cfg.ParallelMin = time.Second
	}
	cfg.EncodeThreads = 2
	c := newConverter(t, cfg)
	if segFrames > 0 {
		ffmpeg.SetSegmentFrames(c, segFrames)
	}
	return c
}

// wasParallel fails the test unless c made n MP3s in segments, and fell back on none.
func wasParallel(t *testing.T, c *ffmpeg.Converter, n int64) {
	t.Helper()
	if joined, fallbacks := ffmpeg.EncodeCounts(c); joined != n || fallbacks != 0 {
		t.Errorf("%d MP3s encoded in segments, %d serially after a failure: want %d and 0", joined, fallbacks, n)
	}
}

// mutagenLength is the length in seconds that mutagen reads from an MP3's headers.
func mutagenLength(t *testing.T, path string) float64 {
	t.Helper()
	m := regexp.MustCompile(`([0-9.]+) seconds`).FindStringSubmatch(mutagen(t, path))
	if m == nil {
		t.Fatalf("mutagen gives no length for %s", path)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// xingOf reads the Xing frame of the MP3 at path and counts its audio frames.
func xingOf(t *testing.T, path string) (mp3.XingInfo, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := mp3.ID3v2Len(b)
	if err != nil {
		t.Fatal(err)
	}
	h, err := mp3.ParseHeader(b[n:])
	if err != nil {
		t.Fatal(err)
	}
	x, err := mp3.ParseXing(b[n : n+h.Size()])
	if err != nil {
		t.Fatal(err)
	}
	r := mp3.NewReader(bytes.NewReader(b[n+h.Size():]))
	frames := 0
	for {
		if _, _, err := r.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("frame %d of %s: %v", frames, path, err)
		}
		frames++
	}
	return x, frames
}

// sameMP3 checks that the parallel encode at got has the serial encode's length by every
// reader (within one frame), channels and rate, and a true Xing frame.
func sameMP3(t *testing.T, got, want string) (mp3Facts, mp3Facts) {
	t.Helper()
	g, w := probeMP3(t, got), probeMP3(t, want)
	if g.Format != "mp3" || g.Codec != "mp3" || g.Streams != w.Streams {
		t.Errorf("parallel MP3 %+v, serial %+v", g, w)
	}
	frame := time.Duration(float64(mp3.SamplesPerFrame) / float64(max(1, w.SampleRate)) * float64(time.Second))
	if !within(g.Decoded, w.Decoded, frame) || !within(g.Duration, w.Duration, frame) {
		t.Errorf("parallel MP3 plays %v (ffprobe %v), serial %v (%v)", g.Decoded, g.Duration, w.Decoded, w.Duration)
	}
	if g.Channels != w.Channels || g.SampleRate != w.SampleRate {
		t.Errorf("parallel MP3 %d ch %d Hz, serial %d ch %d Hz", g.Channels, g.SampleRate, w.Channels, w.SampleRate)
	}
	if ml, wl := mutagenLength(t, got), mutagenLength(t, want); math.Abs(ml-wl) > frame.Seconds() {
		t.Errorf("mutagen: parallel MP3 lasts %.3f s, serial %.3f s", ml, wl)
	}
	gx, frames := xingOf(t, got)
	wx, _ := xingOf(t, want)
	if gx.Frames != frames || gx.TagCRC != gx.WantCRC || gx.Delay != wx.Delay || gx.VBR != wx.VBR || gx.Encoder != wx.Encoder {
		t.Errorf("parallel Xing frame %+v with %d frames; serial %+v", gx, frames, wx)
	}
	return g, w
}

func TestParallelOptions(t *testing.T) {
	stereo, two := media(t, testmedia.Stereo), media(t, testmedia.TwoTracks)
	for _, tc := range []struct {
		name string
		src  string
		opts server.JobOptions
		cfg  ffmpeg.Config
		cbr  int64
	}{
		{name: "default", src: stereo},
		{name: "quality 0", src: stereo, opts: server.JobOptions{Quality: ptr(0)}},
		{name: "quality 9", src: stereo, opts: server.JobOptions{Quality: ptr(9)}},
		{name: "CBR 128k", src: stereo, opts: server.JobOptions{Bitrate: 128}, cbr: 128e3},
		{name: "server's CBR 320k", src: stereo, cfg: ffmpeg.Config{Bitrate: "320k"}, cbr: 320e3},
		{name: "trim", src: stereo, opts: server.JobOptions{Start: 700 * time.Millisecond, End: 3200 * time.Millisecond}},
		{name: "mono", src: stereo, opts: server.JobOptions{Mono: true}},
		{name: "loudness", src: media(t, testmedia.Loud), opts: server.JobOptions{Loudness: -16}},
		{name: "track 0", src: two, opts: server.JobOptions{Track: ptr(0)}},
		{name: "language fra", src: two, opts: server.JobOptions{Language: "fra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := parallelConverter(t, tc.cfg, 24)
			tc.cfg.EncodeThreads = 1
			serialC := newConverter(t, tc.cfg)
			_, pcts, got := convertTo(t, c, tc.src, tc.opts)
			_, _, want := convertTo(t, serialC, tc.src, tc.opts)
			wasParallel(t, c, 1)
			g, w := sameMP3(t, got, want)
			if tc.cbr > 0 && (g.VBR() || g.BitRate < tc.cbr*97/100 || g.BitRate > tc.cbr*103/100) {
				t.Errorf("bit rate %d with %d frame sizes, want CBR %d", g.BitRate, g.PacketSizes, tc.cbr)
			}
			if tc.cbr == 0 && g.VBR() != w.VBR() {
				t.Errorf("VBR %v, serial %v", g.VBR(), w.VBR())
			}
			if tc.opts.Loudness != 0 {
				lufs, _ := loudnessOf(t, got)
				wl, _ := loudnessOf(t, want)
				if math.Abs(lufs-wl) > 0.2 {
					t.Errorf("parallel MP3 at %.2f LUFS, serial %.2f", lufs, wl)
				}
				if !slices.Contains(pcts, 49) || !slices.Contains(pcts, 50) {
					t.Errorf("progress %v: want the measure's 49 and the encoding's 50", pcts)
				}
			}
			if tc.opts.Track != nil || tc.opts.Language != "" {
				if gf, wf := toneFrequency(t, got), toneFrequency(t, want); math.Abs(gf-wf) > wf/50 {
					t.Errorf("tone at %.0f Hz, serial %.0f Hz", gf, wf)
				}
			}
			t.Logf("%s: %v, %d ch, %d bit/s (serial %d); progress %v", tc.name, g.Decoded, g.Channels, g.BitRate, w.BitRate, pcts)
		})
	}
}

// sweepWAV writes (once) a WAV of a mono 44.1 kHz sine sweep of d, from 100 Hz rising
// 2.4 Hz a second, and returns its path.
func sweepWAV(t *testing.T, d time.Duration) string {
	t.Helper()
	const rate = 44100
	path := filepath.Join(mediaDir, "sweep-"+d.String()+".wav")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	n := int(d.Seconds() * rate)
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], 2*rate)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := range n {
		s := float64(i) / rate
		v := 0.5 * math.Sin(2*math.Pi*(100*s+1.2*s*s))
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(math.Round(v*32767))))
	}
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// windowJumps decodes the mono MP3 at path and returns, for each window of ±half frames
// around the file's frames k*every (k ≥ 1), the largest difference between consecutive
// decoded samples: a click shows as a jump.
func windowJumps(t *testing.T, path string, every, half int) []float64 {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", path, "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReaderSize(out, 1<<20)
	period, width := every*mp3.SamplesPerFrame, half*mp3.SamplesPerFrame
	var jumps []float64
	var prev float64
	buf := make([]byte, 4)
	for n := 0; ; n++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			break
		}
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(buf)))
		// Decoded sample n is the input's sample n; frame c's samples start at c*1152-1105.
		pos := n + 1105
		k := (pos + period/2) / period
		if k >= 1 && n > 0 && abs(pos-k*period) <= width {
			for len(jumps) < k {
				jumps = append(jumps, 0)
			}
			jumps[k-1] = max(jumps[k-1], math.Abs(v-prev))
		}
		prev = v
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return jumps
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func TestParallelSweepHasNoSeam(t *testing.T) {
	t.Parallel()
	src := sweepWAV(t, 20*time.Minute)
	c := parallelConverter(t, ffmpeg.Config{}, 0)
	serialC := newConverter(t, ffmpeg.Config{EncodeThreads: 1})
	start := time.Now()
	_, _, got := convertTo(t, c, src, server.JobOptions{})
	pt := time.Since(start)
	start = time.Now()
	_, _, want := convertTo(t, serialC, src, server.JobOptions{})
	st := time.Since(start)
	wasParallel(t, c, 1)
	g, w := sameMP3(t, got, want)

	const every = 1024 // the segments' nominal length; each seam is within a few frames
	gj, wj := windowJumps(t, got, every, 8), windowJumps(t, want, every, 8)
	if len(gj) < 40 || len(gj) != len(wj) {
		t.Fatalf("%d seams measured in the parallel MP3, %d in the serial", len(gj), len(wj))
	}
	worst := 0.0
	for i := range gj {
		worst = max(worst, gj[i]/wj[i])
		if gj[i] > 1.5*wj[i] {
			t.Errorf("seam %d (frame %d): largest jump %.4f, serial %.4f", i, (i+1)*every, gj[i], wj[i])
		}
	}
	out, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-i", got,
		"-af", "silencedetect=noise=-40dB:duration=0.005", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("silencedetect: %v: %s", err, out)
	}
	if bytes.Contains(out, []byte("silence_start")) {
		t.Errorf("a gap in the parallel MP3: %s", regexp.MustCompile(`silence_start: [0-9.]+`).FindAll(out, 5))
	}
	gs, _ := os.Stat(got)
	ws, _ := os.Stat(want)
	t.Logf("20 min sweep: parallel %v, serial %v; %d seams, largest jump ratio %.3f; size %d vs %d (ratio %.4f); plays %v vs %v",
		pt, st, len(gj), worst, gs.Size(), ws.Size(), float64(gs.Size())/float64(ws.Size()), g.Decoded, w.Decoded)
}

func TestParallelCanceled(t *testing.T) {
	t.Parallel()
	c := parallelConverter(t, ffmpeg.Config{}, 24)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := c.Convert(ctx, media(t, testmedia.Stereo), filepath.Join(dir, "out.mp3"), server.Conversion{},
		func(pct int) {
			if pct > 0 {
				cancel()
			}
		})
	if err == nil || server.IsPermanent(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v: want a plain context.Canceled", err)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("files left behind after a cancel: %v", left)
	}
}

func TestParallelKeepsTagsChaptersAndCover(t *testing.T) {
	t.Parallel()
	src := taggedMP4(t)
	c := parallelConverter(t, ffmpeg.Config{}, 24)
	conv := server.Conversion{Title: "fallback"}
	got, want := filepath.Join(t.TempDir(), "out.mp3"), filepath.Join(t.TempDir(), "out.mp3")
	if err := c.Convert(t.Context(), src, got, conv, nil); err != nil {
		t.Fatal(err)
	}
	if err := newConverter(t, ffmpeg.Config{EncodeThreads: 1}).Convert(t.Context(), src, want, conv, nil); err != nil {
		t.Fatal(err)
	}
	wasParallel(t, c, 1)
	gb, _ := os.ReadFile(got)
	wb, _ := os.ReadFile(want)
	_, gn := id3Header(t, gb)
	_, wn := id3Header(t, wb)
	// The same ID3v2.3 tag, byte for byte: tags, the comment as COMM, chapters and cover.
	if !bytes.Equal(gb[:gn], wb[:wn]) {
		t.Errorf("ID3v2 tag of %d bytes, the serial MP3's of %d differs", gn, wn)
	}
	if p := ffprobe(t, got); len(p.Chapters) != 2 || p.videoStreams() != 1 {
		t.Errorf("parallel MP3: %d chapters, %d pictures; want 2 and 1", len(p.Chapters), p.videoStreams())
	}
	if m := mutagen(t, got); !strings.Contains(m, "COMM=") || !strings.Contains(m, "APIC=") || !strings.Contains(m, "CHAP=") {
		t.Errorf("mutagen reads:\n%s", m)
	}
	sameMP3(t, got, want)
}
