package mp3

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testenv"
)

// ffmpegRun runs ffmpeg with args and stdin, and returns its stdout.
func ffmpegRun(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "ffmpeg"), append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// sweep is seconds of a noisy sine sweep from 200 Hz rising 40 Hz a second, as f32le PCM.
func sweep(t testing.TB, seconds, rate, channels int) []byte {
	t.Helper()
	// A little noise keeps the encodes of a segment from settling on the serial
	// encode's very bits, as they do on a pure tone.
	expr := "0.5*sin(2*PI*(200*t+20*t*t))+0.05*(random(0)-0.5)"
	if channels == 2 {
		expr += "|0.4*sin(2*PI*(300*t+10*t*t))+0.05*(random(1)-0.5)"
	}
	return ffmpegRun(t, nil, "-f", "lavfi", "-i", "aevalsrc="+expr+":s="+strconv.Itoa(rate)+":d="+strconv.Itoa(seconds),
		"-f", "f32le", "-c:a", "pcm_f32le", "pipe:1")
}

// encode encodes f32le PCM with libmp3lame and enc's settings to a bare frame stream.
func encode(t testing.TB, pcm []byte, rate, channels int, enc ...string) []byte {
	t.Helper()
	args := []string{"-f", "f32le", "-ar", strconv.Itoa(rate), "-ac", strconv.Itoa(channels), "-i", "pipe:0", "-c:a", "libmp3lame"}
	args = append(args, enc...)
	return ffmpegRun(t, pcm, append(args, "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", "pipe:1")...)
}

// serial encodes PCM to an MP3 file as ffmpeg writes one, with its ID3v2 tag and Xing frame.
func serial(t testing.TB, pcm []byte, rate, channels int, enc ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serial.mp3")
	args := []string{"-f", "f32le", "-ar", strconv.Itoa(rate), "-ac", strconv.Itoa(channels), "-i", "pipe:0", "-c:a", "libmp3lame"}
	args = append(args, enc...)
	ffmpegRun(t, pcm, append(args, "-id3v2_version", "3", "-write_xing", "1", path)...)
	return path
}

// readAll reads every frame of a bare stream.
func readAll(t testing.TB, b []byte) []Frame {
	t.Helper()
	r := NewReader(bytes.NewReader(b))
	var out []Frame
	for {
		f, _, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(out), err)
		}
		out = append(out, f)
	}
}

// splitFile returns an MP3 file's ID3v2 tag, Xing frame and audio frames.
func splitFile(t testing.TB, path string) (id3, xing []byte, frames []Frame) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ID3v2Len(b)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(b[n:])
	if err != nil {
		t.Fatal(err)
	}
	xing = b[n : n+h.Size()]
	if !IsXing(xing) {
		t.Fatalf("%s: no Xing frame after the ID3 tag", path)
	}
	return b[:n], xing, readAll(t, b[n+h.Size():])
}

var settings = []struct {
	name           string
	rate, channels int
	enc            []string
}{
	{"stereo V2", 44100, 2, []string{"-q:a", "2"}},
	{"mono V5", 44100, 1, []string{"-q:a", "5"}},
	{"stereo CBR 128k", 44100, 2, []string{"-b:a", "128k"}},
	{"stereo CBR 320k", 44100, 2, []string{"-b:a", "320k"}},
	{"stereo 48 kHz V0", 48000, 2, []string{"-q:a", "0"}},
	{"mono 32 kHz CBR 32k", 32000, 1, []string{"-b:a", "32k"}},
}

func TestTagAsFFmpegWritesIt(t *testing.T) {
	for _, s := range settings {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			path := serial(t, sweep(t, 7, s.rate, s.channels), s.rate, s.channels, s.enc...)
			_, xing, frames := splitFile(t, path)
			info, err := ParseXing(xing)
			if err != nil {
				t.Fatal(err)
			}
			if info.TagCRC != info.WantCRC || info.Frames != len(frames) || info.Delay != 576 {
				t.Errorf("ffmpeg's tag: %+v with %d frames", info, len(frames))
			}
			tag, err := NewTag(xing)
			if err != nil {
				t.Fatal(err)
			}
			st := newStats(tag.Size())
			for _, f := range frames {
				st.add(f.Bytes, f.BitrateIndex)
			}
			got, err := tag.Frame(st, info.Delay, info.Padding)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, xing) {
				t.Errorf("Xing frame differs from ffmpeg's:\n got % x\nwant % x", got, xing)
			}
		})
	}
}

// pieces encodes pcm as segments of seg frames with pre and post frames of pre- and
// post-roll, and returns them as the Joiner takes them.
func pieces(t testing.TB, pcm []byte, rate, channels, seg, pre, post int, enc ...string) []*Segment {
	t.Helper()
	fb := SamplesPerFrame * channels * 4
	total := (len(pcm) + fb - 1) / fb
	var out []*Segment
	for start := 0; start < total; start += seg {
		first := max(0, start-pre)
		end := min(total, start+seg+post)
		last := start+seg >= total
		if last {
			end = total
		}
		b := readAll(t, encode(t, pcm[first*fb:min(len(pcm), end*fb)], rate, channels, enc...))
		out = append(out, &Segment{First: first, Start: start, Last: last, Frames: b})
		if last {
			break
		}
	}
	return out
}

// join joins segments into an MP3 file with the model tag's Xing frame, and returns its path.
func join(t testing.TB, segs []*Segment, tag *Tag, samples int) (string, *Joiner) {
	t.Helper()
	var body bytes.Buffer
	j := NewJoiner(&body, tag.Size())
	for _, s := range segs {
		if err := j.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	st := j.Stats()
	x, err := tag.Frame(st, tag.Delay(), st.Frames()*SamplesPerFrame-tag.Delay()-samples)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "joined.mp3")
	if err := os.WriteFile(path, append(x, body.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, j
}

// decodeErrors decodes an MP3 with ffmpeg and returns what its decoder complained of.
func decodeErrors(t testing.TB, path string) string {
	t.Helper()
	out, _ := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-hide_banner", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	return string(out)
}

// decodedSamples counts the samples ffmpeg decodes, honouring the LAME tag.
func decodedSamples(t testing.TB, path string) int {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-show_entries", "frame=nb_samples", "-of", "json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Frames []struct {
			N int `json:"nb_samples"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range p.Frames {
		n += f.N
	}
	return n
}

func TestJoin(t *testing.T) {
	for _, s := range settings {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			rate := s.rate
			pcm := sweep(t, 20, rate, s.channels)
			samples := len(pcm) / (4 * s.channels)
			ref := serial(t, pcm, rate, s.channels, s.enc...)
			_, xing, want := splitFile(t, ref)
			tag, err := NewTag(xing)
			if err != nil {
				t.Fatal(err)
			}
			segs := pieces(t, pcm, rate, s.channels, 97, 8, 4, s.enc...)
			path, j := join(t, segs, tag, samples)
			if msg := decodeErrors(t, path); msg != "" {
				t.Errorf("the decoder complains of the joined MP3: %s", msg)
			}
			if got, want := decodedSamples(t, path), decodedSamples(t, ref); got != want || got != samples {
				t.Errorf("joined MP3 decodes to %d samples, serial %d, PCM %d", got, want, samples)
			}
			if st := j.Stats(); st.Frames() != len(want) {
				t.Errorf("%d frames joined, %d in the serial encode", st.Frames(), len(want))
			}
			moved, grown := 0, 0
			for _, sm := range j.Seams() {
				if sm.Moved > 0 {
					moved++
				}
				if sm.Grown {
					grown++
				}
			}
			if len(j.Seams()) != len(segs)-1 {
				t.Errorf("%d seams for %d segments", len(j.Seams()), len(segs))
			}
			st, _ := os.Stat(path)
			rst, _ := os.Stat(ref)
			t.Logf("%d seams, %d with reservoir bytes moved, %d frames grown; size %d vs serial %d (%.4f)",
				len(j.Seams()), moved, grown, st.Size(), rst.Size(), float64(st.Size())/float64(rst.Size()))

			// No click at any seam: the decoded audio is as close to the PCM there as the
			// serial encode's is.
			seams := make([]int, len(j.Seams()))
			for i, sm := range j.Seams() {
				seams[i] = sm.Frame
			}
			refErr := seamErrors(t, ref, pcm, s.channels, seams)
			checkErrors(t, "joined", seamErrors(t, path, pcm, s.channels, seams), refErr)

			// The same frames cut without moving the reservoir's bytes click: the test can tell.
			var naive bytes.Buffer
			naive.Write(xing)
			for i, sg := range segs {
				end := len(sg.Frames)
				if !sg.Last {
					end = segs[i+1].Start - sg.First
				}
				for _, f := range sg.Frames[sg.Start-sg.First : end] {
					naive.Write(f.Bytes)
				}
			}
			np := filepath.Join(t.TempDir(), "naive.mp3")
			if err := os.WriteFile(np, naive.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			nominal := make([]int, len(segs)-1)
			for i := range nominal {
				nominal[i] = segs[i+1].Start
			}
			nj, nref := seamErrors(t, np, pcm, s.channels, nominal), seamErrors(t, ref, pcm, s.channels, nominal)
			clicks := 0
			for i := range nj {
				if nj[i] > 1.5*nref[i] {
					clicks++
				}
			}
			t.Logf("naive cut: %d of %d seams click", clicks, len(nj))
			if clicks == 0 && moved > 0 {
				t.Errorf("a naive join has no click: the seam check cannot fail")
			}
		})
	}
}

// checkErrors fails the test where a seam's error is over 1.5 times the serial encode's.
func checkErrors(t testing.TB, name string, got, ref []float64) {
	t.Helper()
	worst := 0.0
	for i := range got {
		worst = max(worst, got[i]/ref[i])
		if got[i] > 1.5*ref[i] {
			t.Errorf("%s: seam %d is off the PCM by %.4f, the serial encode by %.4f", name, i, got[i], ref[i])
		}
	}
	t.Logf("%s: %d seams, largest error ratio to the serial encode's %.3f", name, len(got), worst)
}

// seamErrors decodes the MP3 at path (gaplessly) and returns, around each of the file's
// frames in seams, the largest difference of a sample from the f32le PCM pcm.
func seamErrors(t testing.TB, path string, pcm []byte, channels int, seams []int) []float64 {
	t.Helper()
	dec := ffmpegRun(t, nil, "-i", path, "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1")
	if len(dec) != len(pcm) {
		t.Fatalf("%s decodes to %d bytes of PCM, not %d", path, len(dec), len(pcm))
	}
	sample := func(b []byte, i int) float64 {
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	out := make([]float64, len(seams))
	for i, c := range seams {
		// The frame's samples start at c*1152 less the encoder's and decoder's delay (1105).
		mid := c*SamplesPerFrame - 1105
		for n := max(0, mid-2*SamplesPerFrame); n < min(len(pcm)/4/channels, mid+2*SamplesPerFrame); n++ {
			for ch := range channels {
				k := n*channels + ch
				out[i] = max(out[i], math.Abs(sample(dec, k)-sample(pcm, k)))
			}
		}
	}
	return out
}

func TestParseRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":      {},
		"no sync":    {0, 1, 2, 3},
		"MPEG-2":     {0xff, 0xf3, 0x90, 0xc4},
		"layer II":   {0xff, 0xfd, 0x90, 0xc4},
		"free":       {0xff, 0xfb, 0x00, 0xc4},
		"bad rate":   {0xff, 0xfb, 0x9c, 0xc4},
		"short body": {0xff, 0xfb, 0x90, 0xc4, 0, 0},
	} {
		if _, err := ParseFrame(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := ID3v2Len([]byte("ID3\x03\x00\x00\x00\x00\x7f\x7f")); err == nil {
		t.Error("ID3 tag longer than the data: no error")
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0xff, 0xfb, 0x90, 0xc4})
	f.Add(append([]byte{0xff, 0xfb, 0x90, 0x64}, make([]byte, 413)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b))
		var frames []Frame
		for range 1000 {
			fr, before, err := r.Next()
			if err != nil {
				break
			}
			frames = append(frames, fr)
			_ = before
			_, _ = ParseXing(fr.Bytes)
		}
		_, _ = ID3v2Len(b)
		if len(frames) > 1 {
			j := NewJoiner(io.Discard, 100)
			half := len(frames) / 2
			_ = j.Add(&Segment{Frames: frames[:half+1]})
			_ = j.Add(&Segment{First: half - 1, Start: half, Last: true, Frames: frames[half-1:]})
			_ = j.Close()
		}
	})
}

func TestJoinRefuses(t *testing.T) {
	frames := readAll(t, encode(t, sweep(t, 2, 44100, 1), 44100, 1, "-q:a", "2"))
	n := len(frames)
	for name, segs := range map[string][]*Segment{
		"first not at 0":  {{First: 3, Start: 3, Last: true, Frames: frames}},
		"no overlap":      {{Frames: frames[:20]}, {First: 20, Start: 20, Last: true, Frames: frames[20:]}},
		"too little roll": {{Frames: frames[:22]}, {First: 18, Start: 20, Last: true, Frames: frames[18:]}},
		"after the last":  {{Last: true, Frames: frames}, {First: 10, Start: 12, Last: true, Frames: frames[10:]}},
		"no last":         {{Frames: frames[:n/2+4]}, {First: n/2 - 8, Start: n / 2, Frames: frames[n/2-8:]}},
		"empty":           {{Frames: frames[:30]}, {First: 20, Start: 24, Last: true}},
	} {
		j := NewJoiner(io.Discard, 200)
		var err error
		for _, s := range segs {
			if err = j.Add(s); err != nil {
				break
			}
		}
		if err == nil {
			err = j.Close()
		}
		if err == nil {
			t.Errorf("%s: joined", name)
		}
	}
	// The same frames with overlap enough join, and what is kept is exactly the frames.
	var out bytes.Buffer
	j := NewJoiner(&out, 200)
	if err := j.Add(&Segment{Frames: frames[:30]}); err != nil {
		t.Fatal(err)
	}
	if err := j.Add(&Segment{First: 16, Start: 24, Last: true, Frames: frames[16:]}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for _, f := range frames {
		want.Write(f.Bytes)
	}
	if j.Stats().Frames() != n || !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Errorf("one encode cut and joined again: %d frames of %d, same bytes %v", j.Stats().Frames(), n, bytes.Equal(out.Bytes(), want.Bytes()))
	}
}
