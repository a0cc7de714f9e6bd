package reduce

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// needFFmpeg skips the test when ffmpeg is missing, except under CI where it fails.

const mp4TestChapters = `;FFMETADATA1
title=The Title
artist=The Artist
album=The Album
date=2024
genre=Rock
comment=A comment
track=3

[CHAPTER]
TIMEBASE=1/1000
START=0
END=4000
title=Intro

[CHAPTER]
TIMEBASE=1/1000
START=4000
END=10000
title=Second part
`

// mp4Corpus is one kind of source file.
type mp4Corpus struct {
	name   string
	codec2 []string // the second audio track's encoder and options
	args   []string // muxer options
}

var mp4Corpora = []mp4Corpus{
	{"faststart.mp4", []string{"ac3", "-b:a:1", "96k"}, []string{"-movflags", "+faststart"}},
	{"moovlast.mp4", []string{"alac"}, nil},
	{"fragmented.mp4", []string{"alac"}, []string{"-movflags", "frag_keyframe+empty_moov"}},
	{"fragmented-base-moof.mp4", []string{"libopus", "-b:a:1", "64k"}, []string{"-movflags", "frag_keyframe+empty_moov+default_base_moof"}},
	{"quicktime.mov", []string{"ac3", "-b:a:1", "96k"}, []string{"-f", "mov"}},
}

// makeMP4 generates a 10 s source: noisy video, two audio tracks (the second one French
// and the default), tags, two chapters and a cover.
func makeMP4(t testing.TB, dir string, c mp4Corpus) string {
	t.Helper()
	chapters := filepath.Join(dir, "chapters.txt")
	cover := filepath.Join(dir, "cover.png")
	if err := os.WriteFile(chapters, []byte(mp4TestChapters), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1", cover)
	out := filepath.Join(dir, c.name)
	args := []string{"-nostdin", "-y", "-v", "error",
		"-f", "lavfi", "-i", "testsrc=duration=10:size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=10:sample_rate=44100",
		"-f", "lavfi", "-i", "sine=frequency=660:duration=10:sample_rate=48000",
		"-i", cover, "-i", chapters,
		"-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:v", "-map_metadata", "4", "-map_chapters", "4",
		"-filter:v:0", "noise=alls=12:allf=t",
		"-c:v:0", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
		"-c:v:1", "png", "-disposition:v:1", "attached_pic",
		"-c:a:0", "aac", "-b:a:0", "96k", "-ac:a:0", "2", "-c:a:1"}
	args = append(args, c.codec2...)
	args = append(args, "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
		"-disposition:a:0", "0", "-disposition:a:1", "default")
	args = append(args, c.args...)
	run(t, "ffmpeg", append(args, out)...)
	return out
}

// writeLayout writes the file l describes over src to out.
func writeLayout(t testing.TB, l *Layout, src io.ReaderAt, out string) {
	t.Helper()
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	r := l.Open(src)
	if _, err := io.Copy(w, io.NewSectionReader(r, 0, r.Size())); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

type probeStream struct {
	Index       int               `json:"index"`
	CodecType   string            `json:"codec_type"`
	CodecName   string            `json:"codec_name"`
	Channels    int               `json:"channels"`
	SampleRate  string            `json:"sample_rate"`
	Tags        map[string]string `json:"tags"`
	Disposition map[string]int    `json:"disposition"`
}

type probeChapter struct {
	Start string            `json:"start_time"`
	End   string            `json:"end_time"`
	Tags  map[string]string `json:"tags"`
}

type probeResult struct {
	Streams  []probeStream  `json:"streams"`
	Chapters []probeChapter `json:"chapters"`
	Format   struct {
		Duration string            `json:"duration"`
		Tags     map[string]string `json:"tags"`
	} `json:"format"`
}

func probeMP4(t testing.TB, file string) probeResult {
	t.Helper()
	out := run(t, "ffprobe", "-v", "error", "-show_streams", "-show_chapters", "-show_format", "-of", "json", file)
	var p probeResult
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	return p
}

func (p probeResult) duration(t testing.TB) float64 {
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("format duration %q: %v", p.Format.Duration, err)
	}
	return d
}

// audio is what matters of an audio stream.
func (s probeStream) audio() string {
	return fmt.Sprintf("%s %dch %sHz lang=%s default=%d", s.CodecName, s.Channels, s.SampleRate, s.Tags["language"], s.Disposition["default"])
}

func (p probeResult) streams(kind string, pic bool) []probeStream {
	var out []probeStream
	for _, s := range p.Streams {
		if s.CodecType == kind && (kind != "video" || (s.Disposition["attached_pic"] == 1) == pic) {
			out = append(out, s)
		}
	}
	return out
}

// videoIndex is the position of stream s among the video streams (for -map 0:v:N).
func (p probeResult) videoIndex(s probeStream) int {
	n := 0
	for _, o := range p.Streams {
		if o.Index == s.Index {
			return n
		}
		if o.CodecType == "video" {
			n++
		}
	}
	return -1
}

func hashOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// pcm decodes audio track n to 16-bit PCM.
func pcmMP4(t testing.TB, file string, n int) (string, int) {
	t.Helper()
	out := run(t, "ffmpeg", "-nostdin", "-v", "error", "-i", file, "-map", fmt.Sprintf("0:a:%d", n), "-f", "s16le", "-")
	return hashOf(out), len(out)
}

// audioPackets lists audio track n's packets: timestamps, size and flags (ffmpeg gives
// fragments' packets no duration; the timestamps show them).
func audioPackets(t testing.TB, file string, n int) string {
	return string(run(t, "ffprobe", "-v", "error", "-select_streams", fmt.Sprintf("a:%d", n),
		"-show_entries", "packet=pts,dts,size,flags", "-of", "csv=p=0", file))
}

// firstDiff is a from the first line where it differs from b.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range la {
		if i >= len(lb) || la[i] != lb[i] {
			return fmt.Sprintf("line %d: %s", i+1, strings.Join(la[i:], "\n"))
		}
	}
	return ""
}

// frameTimes are the presentation times of the decoded frames of video stream index i, or
// of its keyframe packets.
func frameTimes(t testing.TB, file string, index int, keyPackets bool) []float64 {
	t.Helper()
	args := []string{"-v", "error", "-select_streams", strconv.Itoa(index), "-of", "csv=p=0"}
	if keyPackets {
		args = append(args, "-show_entries", "packet=pts_time,flags")
	} else {
		args = append(args, "-show_entries", "frame=pts_time")
	}
	var times []float64
	for line := range strings.Lines(string(run(t, "ffprobe", append(args, file)...))) {
		fields := strings.Split(strings.TrimSpace(line), ",")
		if fields[0] == "" || (keyPackets && (len(fields) < 2 || !strings.HasPrefix(fields[1], "K"))) {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			t.Fatalf("pts %q: %v", fields[0], err)
		}
		times = append(times, v)
	}
	return times
}

func TestReduceMP4Corpus(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	for _, c := range mp4Corpora {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := makeMP4(t, t.TempDir(), c)
			out, l := reduceFile(t, src, ReduceMP4)
			checkReducedMP4(t, src, out)
			st, err := os.Stat(src)
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(l.Size()) / float64(st.Size())
			t.Logf("%s: %d → %d bytes (%.1f%%), %d pieces", c.name, st.Size(), l.Size(), 100*ratio, l.Pieces())
			if ratio >= 0.30 {
				t.Errorf("reduced to %.1f%% of the source, want < 30%%", 100*ratio)
			}
			_, again := reduceFile(t, src, ReduceMP4)
			if !sameBytes(t, src, l, again) {
				t.Error("two reductions of the same source differ")
			}
		})
	}
}

func sameBytes(t *testing.T, src string, a, b *Layout) bool {
	f, _ := openSource(t, src)
	read := func(l *Layout) []byte {
		r := l.Open(f)
		p, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return bytes.Equal(read(a), read(b))
}

// checkReduced compares the reduced file with its source through ffprobe and ffmpeg.
func checkReducedMP4(t *testing.T, src, out string) {
	ps, pr := probeMP4(t, src), probeMP4(t, out)
	if pr.duration(t) > ps.duration(t) {
		t.Errorf("duration %v > the source's %v", pr.Format.Duration, ps.Format.Duration)
	}
	as, ar := ps.streams("audio", false), pr.streams("audio", false)
	if len(ar) != len(as) || len(as) != 2 {
		t.Fatalf("%d audio streams, source has %d (want 2)", len(ar), len(as))
	}
	var wg sync.WaitGroup
	for i := range as {
		if as[i].audio() != ar[i].audio() {
			t.Errorf("audio %d: %s, source %s", i, ar[i].audio(), as[i].audio())
		}
		wg.Go(func() {
			if a, b := audioPackets(t, src, i), audioPackets(t, out, i); a != b {
				t.Errorf("audio %d packets differ from the source's:\n%.300s\nsource:\n%.300s", i, firstDiff(b, a), firstDiff(a, b))
			}
		})
		wg.Go(func() {
			hs, ns := pcmMP4(t, src, i)
			hr, nr := pcmMP4(t, out, i)
			if hs != hr || ns != nr {
				t.Errorf("audio %d decodes to %d bytes %s, source %d bytes %s", i, nr, hr, ns, hs)
			}
		})
	}
	wg.Wait()
	for k, v := range ps.Format.Tags {
		if pr.Format.Tags[k] != v {
			t.Errorf("tag %s = %q, source %q", k, pr.Format.Tags[k], v)
		}
	}
	if fmt.Sprint(pr.Chapters) != fmt.Sprint(ps.Chapters) || len(ps.Chapters) != 2 {
		t.Errorf("chapters %v, source %v", pr.Chapters, ps.Chapters)
	}
	pics, picr := ps.streams("video", true), pr.streams("video", true)
	if len(picr) != len(pics) {
		t.Errorf("%d attached pictures, source %d", len(picr), len(pics))
	}
	for i := range min(len(pics), len(picr)) {
		picture := func(file string, p probeResult, s probeStream) string {
			return hashOf(run(t, "ffmpeg", "-nostdin", "-v", "error", "-i", file, "-map", fmt.Sprintf("0:v:%d", p.videoIndex(s)), "-c", "copy", "-f", "image2pipe", "-"))
		}
		if a, b := picture(src, ps, pics[i]), picture(out, pr, picr[i]); a != b {
			t.Errorf("attached picture %d: %s, source %s", i, b, a)
		}
	}
	vs, vr := ps.streams("video", false), pr.streams("video", false)
	if len(vr) != 1 {
		t.Fatalf("%d video streams, want 1", len(vr))
	}
	frames := frameTimes(t, out, vr[0].Index, false)
	if len(frames) != 1 {
		t.Fatalf("video frames at %v, want one", frames)
	}
	d := ps.duration(t)
	want := math.Inf(1)
	for _, k := range frameTimes(t, src, vs[0].Index, true) {
		if k >= d/10-0.001 {
			want = k
			break
		}
	}
	if math.Abs(frames[0]-want) > 0.041 {
		t.Errorf("the video frame is at %.3f s, want the source's keyframe at %.3f s (10%% of %.3f s)", frames[0], want, d)
	}
}

// TestReduceMP4ChunkOffsets64 writes 64-bit chunk offsets (co64), as for a reduced file
// past 4 GiB, and checks that the audio still decodes the same.
func TestReduceMP4ChunkOffsets64(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	src := makeMP4(t, t.TempDir(), mp4Corpora[1])
	f, size := openSource(t, src)
	l, err := reduceMP4(context.Background(), f, size, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := src + ".co64.mp4"
	writeLayout(t, l, f, out)
	head, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(head, []byte("stco")) || !bytes.Contains(head, []byte("co64")) {
		t.Fatal("the reduced file does not use co64 only")
	}
	for i := range 2 {
		hs, ns := pcmMP4(t, src, i)
		hr, nr := pcmMP4(t, out, i)
		if hs != hr || ns != nr {
			t.Errorf("audio %d decodes to %d bytes %s, source %d bytes %s", i, nr, hr, ns, hs)
		}
	}
}

// testMP4 is a small generated MP4 with audio and video.
func testMP4(t testing.TB, dir string, extra ...string) string {
	out := filepath.Join(dir, "small.mp4")
	args := []string{"-nostdin", "-y", "-v", "error",
		"-f", "lavfi", "-i", "testsrc=duration=2:size=64x48:rate=10",
		"-f", "lavfi", "-i", "sine=duration=2:sample_rate=8000",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "5", "-c:a", "aac", "-b:a", "16k"}
	run(t, "ffmpeg", append(append(args, extra...), out)...)
	return out
}

func testMP4Bytes(t testing.TB, extra ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(testMP4(t, t.TempDir(), extra...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reduceBytes(b []byte) (*Layout, error) {
	return ReduceMP4(context.Background(), bytes.NewReader(b), int64(len(b)))
}

func TestReduceMP4Unsupported(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	whole := testMP4Bytes(t, "-movflags", "+faststart")
	moov := bytes.Index(whole, []byte("moov")) - 4
	if moov < 0 {
		t.Fatal("no moov in the test file")
	}
	moovSize := int(whole[moov])<<24 | int(whole[moov+1])<<16 | int(whole[moov+2])<<8 | int(whole[moov+3])
	noAudio := testMP4Bytes(t, "-an")
	for name, b := range map[string][]byte{
		"text":          []byte("#EXTM3U\n/etc/passwd\n"),
		"empty":         nil,
		"zeros":         make([]byte, 4096),
		"truncated":     whole[:moov+moovSize/2],
		"no audio":      noAudio,
		"moov only hdr": whole[:moov+8],
	} {
		if _, err := reduceBytes(b); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
	if _, err := reduceBytes(whole); err != nil {
		t.Errorf("the whole file: %v", err)
	}
}

// failingReader fails every read past off.
type failingReader struct {
	r   io.ReaderAt
	off int64
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.off {
		return 0, errDisk
	}
	return f.r.ReadAt(p, off)
}

func TestReduceMP4ReadError(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	b := testMP4Bytes(t)
	_, err := ReduceMP4(context.Background(), failingReader{bytes.NewReader(b), int64(len(b)) - 100}, int64(len(b)))
	if !errors.Is(err, errDisk) || errors.Is(err, ErrUnsupported) {
		t.Errorf("err = %v, want the read error", err)
	}
}

func TestReduceMP4Canceled(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	b := testMP4Bytes(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReduceMP4(ctx, bytes.NewReader(b), int64(len(b))); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func FuzzReduceMP4(f *testing.F) {
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		for _, extra := range [][]string{{"-movflags", "+faststart"}, {"-movflags", "frag_keyframe+empty_moov"}, {"-f", "mov"}} {
			f.Add(testMP4Bytes(f, extra...))
		}
	}
	f.Add([]byte("\x00\x00\x00\x08ftyp\x00\x00\x00\x08moov"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := reduceBytes(b)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) || strings.Contains(err.Error(), "panic") {
				t.Fatalf("err = %v", err)
			}
			return
		}
		r := l.Open(bytes.NewReader(b))
		if _, err := io.Copy(io.Discard, io.NewSectionReader(r, 0, r.Size())); err != nil {
			t.Fatalf("read the reduced file: %v", err)
		}
	})
}

// TestReduceMP4Memory reduces two sources with the same samples, one with tiny frames and
// one of about 200 MB, and checks that the memory it takes does not grow with the data.
func TestReduceMP4Memory(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 200 MB file")
	}
	needFFmpeg(t)
	dir := t.TempDir()
	gen := func(name, filter string) string {
		out := filepath.Join(dir, name)
		run(t, "ffmpeg", "-nostdin", "-y", "-v", "error",
			"-f", "lavfi", "-i", "testsrc=duration=20:size=640x360:rate=25",
			"-f", "lavfi", "-i", "sine=duration=20", "-vf", filter,
			"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", "-g", "25",
			"-c:a", "aac", "-b:a", "64k", out)
		return out
	}
	start := time.Now()
	small, large := gen("small.mp4", "scale=16:16"), gen("large.mp4", "noise=alls=100:allf=t")
	t.Logf("sources generated in %v", time.Since(start).Round(time.Millisecond))
	alloc := func(file string) (int64, uint64) {
		f, size := openSource(t, file)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l, err := ReduceMP4(context.Background(), f, size)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		n := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes → %d; %d bytes allocated", filepath.Base(file), size, l.Size(), n)
		return size, n
	}
	sizeSmall, allocSmall := alloc(small)
	sizeLarge, allocLarge := alloc(large)
	if sizeLarge < 150<<20 || sizeLarge < 50*sizeSmall {
		t.Fatalf("sources of %d and %d bytes: not far enough apart", sizeSmall, sizeLarge)
	}
	if allocLarge > 2*allocSmall+1<<20 {
		t.Errorf("%d bytes allocated for %d bytes of source, %d for %d", allocLarge, sizeLarge, allocSmall, sizeSmall)
	}
}
