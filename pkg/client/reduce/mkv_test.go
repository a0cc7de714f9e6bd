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
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// needFFmpeg skips the test without ffmpeg and ffprobe, or fails it under CI=true.

// run runs a tool and returns its standard output.

// ffmpeg runs ffmpeg quietly with args and returns its standard output.
func ffmpeg(t testing.TB, args ...string) []byte {
	t.Helper()
	return run(t, "ffmpeg", append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)...)
}

// lavfiInputs are a test video (with noise, so that it costs real bits) and a tone.
func lavfiInputs(secs int, size string) []string {
	d := strconv.Itoa(secs)
	return []string{"-f", "lavfi", "-i", "testsrc=duration=" + d + ":size=" + size + ":rate=25,noise=alls=30:allf=t",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=" + d}
}

var x264 = []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"}

type probeOut struct {
	Streams []struct {
		CodecType   string            `json:"codec_type"`
		CodecName   string            `json:"codec_name"`
		Channels    int               `json:"channels"`
		SampleRate  string            `json:"sample_rate"`
		Tags        map[string]string `json:"tags"`
		Disposition map[string]int    `json:"disposition"`
	} `json:"streams"`
	Chapters []struct {
		Start string            `json:"start_time"`
		End   string            `json:"end_time"`
		Tags  map[string]string `json:"tags"`
	} `json:"chapters"`
	Format struct {
		Duration  string            `json:"duration"`
		StartTime string            `json:"start_time"`
		Tags      map[string]string `json:"tags"`
	} `json:"format"`
}

func probe(t testing.TB, path string) probeOut {
	t.Helper()
	var p probeOut
	b := run(t, "ffprobe", "-v", "error", "-show_streams", "-show_chapters", "-show_format", "-of", "json", path)
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// audioStreams describes the audio streams as the server sees them.
func (p probeOut) audioStreams() []string {
	var s []string
	for _, st := range p.Streams {
		if st.CodecType == "audio" {
			s = append(s, fmt.Sprintf("%s %dch %sHz lang=%s default=%d", st.CodecName, st.Channels, st.SampleRate,
				st.Tags["language"], st.Disposition["default"]))
		}
	}
	return s
}

// pictureIndex is the position among video streams of the first attached picture.
func (p probeOut) pictureIndex() int {
	n := 0
	for _, st := range p.Streams {
		if st.CodecType != "video" {
			continue
		}
		if st.Disposition["attached_pic"] == 1 {
			return n
		}
		n++
	}
	return -1
}

// pictures counts the attached pictures.
func (p probeOut) pictures() int {
	n := 0
	for _, st := range p.Streams {
		if st.Disposition["attached_pic"] == 1 {
			n++
		}
	}
	return n
}

// pcm returns the SHA-256 and the sample count of audio stream n decoded to s16le.
func pcm(t testing.TB, path string, n int, pre ...string) (string, int) {
	t.Helper()
	args := append(pre[:len(pre):len(pre)], "-i", path, "-map", "0:a:"+strconv.Itoa(n), "-f", "s16le", "-")
	b := ffmpeg(t, args...)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), len(b) / 2
}

// videoPackets returns the pts and flags of the first video stream's packets.
func videoPackets(t testing.TB, path string) []string {
	t.Helper()
	b := run(t, "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", path)
	return strings.Fields(string(b))
}

func seconds(t testing.TB, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("seconds %q: %v", s, err)
	}
	return v
}

func sha(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// mkvCase is one source of the corpus.
type mkvCase struct {
	name  string
	ext   string
	build func(t *testing.T, dir, dst string)
	// What else to check of the reduced file.
	cover    bool    // an attached cover.jpg
	subtitle bool    // the source has a subtitle track (dropped)
	seek     float64 // a server-side seek to check, in seconds; 0 for none
}

func simpleCase(name, ext string, secs int, codec ...string) mkvCase {
	return mkvCase{name: name, ext: ext, build: func(t *testing.T, dir, dst string) {
		args := append(lavfiInputs(secs, "256x192"), codec...)
		ffmpeg(t, append(args, "-shortest", dst)...)
	}}
}

func mkvCorpus() []mkvCase {
	cases := []mkvCase{
		simpleCase("h264-opus", ".mkv", 6, append(x264, "-c:a", "libopus")...),
		simpleCase("h264-vorbis", ".mkv", 6, append(x264, "-c:a", "libvorbis")...),
		simpleCase("h264-ac3", ".mkv", 6, append(x264, "-c:a", "ac3")...),
		simpleCase("h264-flac", ".mkv", 6, append(x264, "-c:a", "flac")...),
		simpleCase("vp9-opus", ".webm", 6, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
			"-b:v", "1M", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "libopus"),
	}
	aac := simpleCase("h264-aac-60s", ".mkv", 60, append(x264, "-c:a", "aac")...)
	aac.build = func(t *testing.T, dir, dst string) {
		args := append(lavfiInputs(60, "160x120"), x264...)
		ffmpeg(t, append(args, "-c:a", "aac", "-shortest", dst)...)
	}
	aac.seek = 40
	cases = append(cases, aac, mkvCase{name: "two-languages", ext: ".mkv", build: func(t *testing.T, dir, dst string) {
		args := append(lavfiInputs(6, "256x192"), "-f", "lavfi", "-i", "sine=frequency=660:duration=6")
		args = append(args, "-map", "0:v", "-map", "1:a", "-map", "2:a")
		args = append(args, x264...)
		ffmpeg(t, append(args, "-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
			"-disposition:a:0", "0", "-disposition:a:1", "default", "-shortest", dst)...)
	}}, mkvCase{name: "tags-chapters-cover-subtitle", ext: ".mkv", cover: true, subtitle: true, build: func(t *testing.T, dir, dst string) {
		meta := filepath.Join(dir, "chapters.txt")
		writeFile(t, meta, ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=2500\ntitle=Opening\n"+
			"[CHAPTER]\nTIMEBASE=1/1000\nSTART=2500\nEND=6000\ntitle=The rest\n")
		srt := filepath.Join(dir, "subs.srt")
		writeFile(t, srt, "1\n00:00:01,000 --> 00:00:02,000\nHello\n\n2\n00:00:03,000 --> 00:00:04,000\nWorld\n")
		cover := filepath.Join(dir, "cover.jpg")
		ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1", cover)
		args := append(lavfiInputs(6, "256x192"), "-i", meta, "-i", srt)
		args = append(args, "-map", "0:v", "-map", "1:a", "-map", "3:s", "-map_chapters", "2")
		args = append(args, x264...)
		ffmpeg(t, append(args, "-c:a", "aac", "-c:s", "srt", "-metadata", "title=A test title", "-metadata", "artist=Someone",
			"-attach", cover, "-metadata:s:t", "mimetype=image/jpeg", "-metadata:s:t", "filename=cover.jpg", "-shortest", dst)...)
	}}, mkvCase{name: "audio-offset", ext: ".mkv", build: func(t *testing.T, dir, dst string) {
		args := []string{"-f", "lavfi", "-i", "testsrc=duration=8:size=256x192:rate=25,noise=alls=30:allf=t",
			"-itsoffset", "2.5", "-f", "lavfi", "-i", "sine=frequency=440:duration=5"}
		ffmpeg(t, append(append(args, x264...), "-c:a", "aac", dst)...)
	}}, mkvCase{name: "live-unknown-sizes", ext: ".mkv", build: func(t *testing.T, dir, dst string) {
		args := append(lavfiInputs(6, "256x192"), x264...)
		live := ffmpeg(t, append(args, "-c:a", "aac", "-shortest", "-f", "matroska", "-")...)
		writeFile(t, dst, string(unknownSizeClusters(t, live)))
	}})
	return cases
}

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// unknownSizeClusters rewrites a Matroska file whose Segment has an unknown size (as ffmpeg
// writes to a pipe) with every Cluster of unknown size too, as live encoders write them.
func unknownSizeClusters(t testing.TB, src []byte) []byte {
	t.Helper()
	rd := newEBMLReader(bytes.NewReader(src), int64(len(src)))
	h, err := rd.header(0, rd.size)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := rd.header(h.end(), rd.size)
	if err != nil || seg.id != idSegment || seg.size != unknownSize {
		t.Fatalf("no Segment of unknown size: %+v, %v", seg, err)
	}
	out := append([]byte(nil), src[:seg.data]...)
	clusters := 0
	for off := seg.data; off < rd.size; {
		e, err := rd.header(off, rd.size)
		if err != nil {
			t.Fatal(err)
		}
		if e.id == idCluster {
			out = append(out, 0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
			out = append(out, src[e.data:e.end()]...)
			clusters++
		} else {
			out = append(out, src[e.off:e.end()]...)
		}
		off = e.end()
	}
	if clusters < 2 {
		t.Fatalf("%d clusters", clusters)
	}
	return out
}

func TestReduceMatroskaCorpus(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	for _, c := range mkvCorpus() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "source"+c.ext)
			c.build(t, dir, src)
			checkReduced(t, c, dir, src)
		})
	}
}

func checkReduced(t *testing.T, c mkvCase, dir, src string) {
	red, l := reduceFile(t, src, ReduceMatroska)
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	ratio := float64(l.Size()) / float64(st.Size())
	t.Logf("%s: %d -> %d bytes (%.1f%%), %d pieces", c.name, st.Size(), l.Size(), 100*ratio, l.Pieces())
	if ratio >= 0.30 {
		t.Errorf("reduced to %.1f%% of the source, want under 30%%", 100*ratio)
	}
	first := sha(t, red)
	if _, again := reduceFile(t, src, ReduceMatroska); !reflect.DeepEqual(again, l) || sha(t, red) != first {
		t.Errorf("a second reduction differs")
	}

	ps, pr := probe(t, src), probe(t, red)
	if a, b := ps.audioStreams(), pr.audioStreams(); !reflect.DeepEqual(a, b) || len(a) == 0 {
		t.Errorf("audio streams %q, want %q", b, a)
	}
	if !reflect.DeepEqual(ps.Format.Tags, pr.Format.Tags) || ps.Format.Duration != pr.Format.Duration {
		t.Errorf("format tags %v duration %s, want %v %s", pr.Format.Tags, pr.Format.Duration, ps.Format.Tags, ps.Format.Duration)
	}
	if !reflect.DeepEqual(ps.Chapters, pr.Chapters) {
		t.Errorf("chapters %+v, want %+v", pr.Chapters, ps.Chapters)
	}
	for _, s := range pr.Streams {
		if s.CodecType == "subtitle" {
			t.Errorf("the subtitle track is still there")
		}
	}
	if c.cover {
		if pr.pictures() != 1 {
			t.Errorf("%d attached pictures, want 1", pr.pictures())
		}
		// ffmpeg shows a JPEG attachment as an attached picture: its one packet is the file.
		dump := filepath.Join(dir, "dumped.jpg")
		ffmpeg(t, "-i", red, "-map", "0:v:"+strconv.Itoa(pr.pictureIndex()), "-c", "copy", "-f", "mjpeg", dump)
		if sha(t, dump) != sha(t, filepath.Join(dir, "cover.jpg")) {
			t.Errorf("the attachment differs from cover.jpg")
		}
	}
	if c.subtitle {
		// ffmpeg tags each track with its DURATION: the subtitle track's Tag goes with it.
		s, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		r, err := os.ReadFile(red)
		if err != nil {
			t.Fatal(err)
		}
		if ns, nr := bytes.Count(s, []byte("DURATION")), bytes.Count(r, []byte("DURATION")); nr != ns-1 {
			t.Errorf("%d DURATION tags, want %d", nr, ns-1)
		}
	}
	// The CRC-32 elements kept are still right.
	if out := ffmpeg(t, "-err_detect", "crccheck", "-i", red, "-map", "0:a", "-f", "null", "-"); len(out) != 0 {
		t.Errorf("crccheck: %s", out)
	}

	for n := range len(ps.audioStreams()) {
		hs, ns := pcm(t, src, n)
		hr, nr := pcm(t, red, n)
		if hs != hr || ns != nr {
			t.Errorf("audio %d: %d samples %s, want %d %s", n, nr, hr[:12], ns, hs[:12])
		}
	}
	if c.seek > 0 {
		ss := strconv.FormatFloat(c.seek, 'f', -1, 64)
		hs, ns := pcm(t, src, 0, "-ss", ss)
		hr, nr := pcm(t, red, 0, "-ss", ss)
		if hs != hr || ns != nr || ns == 0 {
			t.Errorf("audio after -ss %s: %d samples %s, want %d %s", ss, nr, hr[:12], ns, hs[:12])
		}
	}
	checkCoverFrame(t, src, red, ps, pr)
}

// checkCoverFrame checks that the reduced file has one video frame, the source's first
// keyframe at or after a tenth of the duration past the audio's start, and that the server's
// seek to a tenth of the duration finds it.
func checkCoverFrame(t *testing.T, src, red string, ps, pr probeOut) {
	got := videoPackets(t, red)
	if len(got) != 1 || !strings.HasSuffix(got[0], ",K__") && !strings.HasSuffix(got[0], ",K_") {
		t.Fatalf("video packets %q, want one keyframe", got)
	}
	frames := strings.TrimSpace(string(run(t, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", red)))
	if frames != "1" {
		t.Errorf("%s video frames, want 1", frames)
	}
	audioStart := math.Inf(1)
	for _, line := range strings.Fields(string(run(t, "ffprobe", "-v", "error", "-select_streams", "a",
		"-show_entries", "stream=start_time", "-of", "csv=p=0", src))) {
		audioStart = min(audioStart, seconds(t, line))
	}
	at := seconds(t, cmpOrString(ps.Format.Duration, "0")) * coverAt // none: the server's 0
	want := ""
	for _, p := range videoPackets(t, src) {
		pts, flags, _ := strings.Cut(p, ",")
		if strings.HasPrefix(flags, "K") && seconds(t, pts) >= audioStart+at-0.0015 { // ms ticks
			want = pts
			break
		}
	}
	kf, _, _ := strings.Cut(got[0], ",")
	if kf != want {
		t.Errorf("video keyframe at %s, want %s (audio from %.3f, duration %s)", kf, want, audioStart, ps.Format.Duration)
	}
	// The server's cover run: from a tenth of the duration past the start, one frame.
	server := func(path, ss string) string {
		return string(ffmpeg(t, "-ss", ss, "-t", "20", "-i", path, "-map", "0:v:0", "-frames:v", "1", "-f", "framemd5", "-"))
	}
	start := seconds(t, cmpOrString(ps.Format.StartTime, "0"))
	frame := lastField(server(red, strconv.FormatFloat(at, 'f', 6, 64)))
	if frame == "" || frame != lastField(server(src, strconv.FormatFloat(seconds(t, kf)-start, 'f', 6, 64))) {
		t.Errorf("the server's seek to %.3f s finds frame %q, not the keyframe at %s", at, frame, kf)
	}
}

func cmpOrString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// lastField is the hash of the last frame in framemd5 output.
func lastField(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	f := strings.Split(lines[len(lines)-1], ",")
	if len(f) < 6 {
		return ""
	}
	return strings.TrimSpace(f[len(f)-1])
}

// tinyMatroska writes a one-second Matroska file of a few kilobytes.
func tinyMatroska(t testing.TB, dir string, extra ...string) []byte {
	t.Helper()
	dst := filepath.Join(dir, "tiny.mkv")
	args := []string{"-f", "lavfi", "-i", "testsrc=duration=1:size=32x32:rate=10", "-f", "lavfi", "-i", "sine=duration=1"}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "2", "-c:a", "aac")
	ffmpeg(t, append(append(args, extra...), "-metadata", "title=tiny", dst)...)
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReduceMatroskaUnsupported(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	good := tinyMatroska(t, dir)
	tracks := bytes.Index(good, []byte{0x16, 0x54, 0xAE, 0x6B})
	if tracks < 0 {
		t.Fatal("no Tracks in the tiny file")
	}
	noAudio := filepath.Join(dir, "noaudio.mkv")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=duration=2:size=32x32:rate=10", "-c:v", "libx264", "-preset", "ultrafast", noAudio)
	silent, err := os.ReadFile(noAudio)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"text":           []byte("#EXTM3U\n/etc/passwd\n"),
		"mp4-like":       append([]byte{0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm'}, make([]byte, 64)...),
		"cut in Tracks":  good[:tracks+20],
		"cut at Tracks":  good[:tracks],
		"no audio track": silent,
	} {
		_, err := ReduceMatroska(context.Background(), bytes.NewReader(b), int64(len(b)))
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}
	if _, err := ReduceMatroska(context.Background(), bytes.NewReader(good), int64(len(good))); err != nil {
		t.Errorf("the tiny file: %v", err)
	}
}

// shortReader is a source that fails past its first n bytes.
type shortReader struct {
	r io.ReaderAt
	n int64
}

var errDisk = errors.New("disk on fire")

func (s shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > s.n {
		return 0, errDisk
	}
	return s.r.ReadAt(p, off)
}

func TestReduceMatroskaIOErrorAndCancel(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	good := tinyMatroska(t, t.TempDir())
	r := shortReader{bytes.NewReader(good), int64(len(good)) / 2}
	if _, err := ReduceMatroska(context.Background(), r, int64(len(good))); !errors.Is(err, errDisk) || errors.Is(err, ErrUnsupported) {
		t.Errorf("read error: %v, want the source's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReduceMatroska(ctx, bytes.NewReader(good), int64(len(good))); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func FuzzReduceMatroska(f *testing.F) {
	needFFmpeg(f)
	dir := f.TempDir()
	f.Add(tinyMatroska(f, dir))
	f.Add(tinyMatroska(f, dir, "-f", "webm", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ReduceMatroska(context.Background(), bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error not ErrUnsupported: %v", err)
			}
			return
		}
		out, err := io.ReadAll(io.NewSectionReader(l.Open(bytes.NewReader(b)), 0, l.Size()))
		if err != nil || int64(len(out)) != l.Size() {
			t.Fatalf("read the reduced file: %d of %d bytes, %v", len(out), l.Size(), err)
		}
		if l.Size() > int64(len(b))+1<<16 {
			t.Fatalf("reduced %d bytes to %d", len(b), l.Size())
		}
	})
}

// TestReduceMatroskaMemory reduces two files with the same blocks, one with 16 times the
// block data of the other (raw video of 160x120 and 640x480, about 200 MB), and checks that
// the bytes allocated do not grow with the data.
func TestReduceMatroskaMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MB")
	}
	needFFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	alloc := func(frame string) (int64, uint64) {
		src := filepath.Join(dir, frame+".mkv")
		ffmpeg(t, "-f", "lavfi", "-i", "testsrc=duration=17:size="+frame+":rate=25", "-f", "lavfi", "-i", "sine=duration=17",
			"-c:v", "rawvideo", "-pix_fmt", "yuv420p", "-c:a", "aac", src)
		f, size := openSource(t, src)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l, err := ReduceMatroska(context.Background(), f, size)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		n := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d MB source, %d KB reduced, %d KB allocated, %d pieces", frame, size>>20, l.Size()>>10, n>>10, l.Pieces())
		return size, n
	}
	smallSize, small := alloc("160x120")
	bigSize, big := alloc("640x480")
	if bigSize < 150<<20 || bigSize < 10*smallSize {
		t.Fatalf("sources of %d and %d bytes", smallSize, bigSize)
	}
	if big > small+small/4 || big > 4<<20 {
		t.Errorf("allocated %d bytes for %d MB, %d for %d MB: grows with the data", big, bigSize>>20, small, smallSize>>20)
	}
}
