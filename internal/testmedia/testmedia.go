// Package testmedia generates the media files that v2m's tests convert: small videos in the
// common containers, and broken files that a converter must refuse. Nothing is committed to
// the repository; every file is made with ffmpeg's lavfi sources when a test asks for it.
package testmedia

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
)

// DirEnv names a variable that may hold a directory where tests keep generated samples
// between runs, instead of a temporary one; Generate never replaces a file found there.
const DirEnv = "V2M_TESTMEDIA_DIR"

// Sample describes one test file.
type Sample struct {
	// Name is the file's stem, unique within Good and Bad.
	Name string
	// Container is the file's extension, which also picks ffmpeg's muxer: "mp4", "mkv"...
	Container string
	// Duration is how long the media lasts; 0 for a file that is not media.
	Duration time.Duration
	// Width and Height are the video's size; 0 means 160x120.
	Width, Height int
	// Rate is the video's frame rate; 0 means 15.
	Rate int
	// Video and Audio are ffmpeg's encoding options for each stream; nil leaves the stream out.
	Video, Audio []string
	// Mux are muxer options, e.g. "-movflags", "+faststart".
	Mux []string
	// AudioDuration is how long the audio track lasts, so how long its MP3 should last;
	// 0 without audio.
	AudioDuration time.Duration

	// Text is the content of a file that is not media (no Video, no Audio, no From):
	// "" makes an empty file.
	Text string
	// From and Keep make a truncated file: the first Keep (0 to 1) of From's bytes.
	From *Sample
	Keep float64
	// ZeroMedia, with From an MP4, makes a corrupt file: From with every byte after its
	// mdat box's header zeroed, so that the index is intact but no frame decodes.
	ZeroMedia bool

	// Args, when set, are all of ffmpeg's inputs and options for a file that the fields
	// above cannot describe (several audio tracks, broken timestamps); the output's path
	// is added after them. Duration, Video, Audio and Mux are then not used by Generate.
	Args []string
	// Pipe makes ffmpeg write the file to a pipe, so that the muxer cannot go back to
	// write the duration into the header; Args must then name the format with -f.
	Pipe bool
	// Metadata, with Args, is an ffmetadata file (tags and [CHAPTER]s) that Args names as
	// "{metadata}", e.g. "-f", "ffmetadata", "-i", "{metadata}".
	Metadata string

	// WantErr is, for a Bad sample, a phrase that a converter's error message contains.
	WantErr string
}

// File returns the sample's file name.
func (s Sample) File() string { return s.Name + "." + s.Container }

func (s Sample) String() string { return s.File() }

// Encoding options shared by the samples.
var (
	h264   = []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"}
	aac    = []string{"-c:a", "aac"}
	sec3   = 3 * time.Second
	mkv10s = Sample{Name: "long", Container: "mkv", Duration: 10 * time.Second, Video: h264, Audio: aac,
		AudioDuration: 10 * time.Second}
	moovEnd = Sample{Name: "moov-end", Container: "mp4", Duration: sec3, Video: h264, Audio: aac, AudioDuration: sec3}
	fast10s = Sample{Name: "faststart-long", Container: "mp4", Duration: 10 * time.Second, Video: h264, Audio: aac,
		Mux: []string{"-movflags", "+faststart"}, AudioDuration: 10 * time.Second}
)

// Good are videos that convert to an MP3 of AudioDuration.
var Good = []Sample{
	// ffmpeg's MP4 muxer writes the moov atom at the end unless told otherwise.
	moovEnd,
	{Name: "faststart", Container: "mp4", Duration: sec3, Video: h264, Audio: aac,
		Mux: []string{"-movflags", "+faststart"}, AudioDuration: sec3},
	{Name: "h264-aac", Container: "mkv", Duration: sec3, Video: h264, Audio: aac, AudioDuration: sec3},
	{Name: "vp8-opus", Container: "webm", Duration: sec3,
		Video: []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k", "-pix_fmt", "yuv420p"},
		Audio: []string{"-c:a", "libopus"}, AudioDuration: sec3},
	{Name: "h264-aac", Container: "mov", Duration: sec3, Video: h264, Audio: aac, AudioDuration: sec3},
	{Name: "mpeg4-mp3", Container: "avi", Duration: sec3,
		Video: []string{"-c:v", "mpeg4", "-pix_fmt", "yuv420p"}, Audio: []string{"-c:a", "libmp3lame"}, AudioDuration: sec3},
	{Name: "theora-vorbis", Container: "ogv", Duration: sec3,
		Video: []string{"-c:v", "libtheora", "-pix_fmt", "yuv420p"}, Audio: []string{"-c:a", "libvorbis"}, AudioDuration: sec3},
	{Name: "flv1-mp3", Container: "flv", Duration: sec3,
		Video: []string{"-c:v", "flv", "-pix_fmt", "yuv420p"}, Audio: []string{"-c:a", "libmp3lame", "-ar", "44100"}, AudioDuration: sec3},
}

// Bad are files that a converter must refuse, for the reason in WantErr.
var Bad = []Sample{
	{Name: "not-a-video", Container: "txt", Text: "hello, not a video\n", WantErr: "not a video or audio file"},
	{Name: "empty", Container: "mp4", WantErr: "the file is empty"},
	// Without its moov atom an MP4 cannot even be probed.
	{Name: "truncated", Container: "mp4", From: &moovEnd, Keep: 0.4, WantErr: "not a video or audio file"},
	{Name: "no-audio", Container: "mp4", Duration: sec3, Video: h264, WantErr: "no audio track"},
	// A cut Matroska file still probes with its full duration, and ffmpeg converts the part
	// that is there without an error: only the MP3's duration shows that audio is missing.
	{Name: "truncated", Container: "mkv", From: &mkv10s, Keep: 0.4, WantErr: "truncated"},
	// The same for an MP4 with its index first: the index promises what is not there.
	{Name: "truncated-faststart", Container: "mp4", From: &fast10s, Keep: 0.4, WantErr: "truncated"},
	// Every frame is garbage: ffmpeg decodes nothing and fails.
	{Name: "corrupt", Container: "mp4", From: &fast10s, ZeroMedia: true, WantErr: "could not be converted"},
}

// Long returns a sample for benchmarks: an H.264/AAC MP4 of d at w×h and 30 frames/s.
// Ten minutes of 720p (28 MB) take about two minutes of CPU time to generate; keep them
// in a directory named by DirEnv to generate them once.
func Long(d time.Duration, w, h int) Sample {
	return Sample{
		Name:      fmt.Sprintf("long-%s-%dx%d", strconv.FormatFloat(d.Seconds(), 'f', -1, 64)+"s", w, h),
		Container: "mp4", Duration: d, Width: w, Height: h, Rate: 30,
		Video: h264, Audio: aac, AudioDuration: d,
	}
}

// Generate writes s into dir, unless a file of its name is there already, and returns its
// path. Concurrent calls for the same sample are safe: each file appears whole, by rename.
func Generate(ctx context.Context, dir string, s Sample) (string, error) {
	if s.Name == "" || s.Container == "" || strings.ContainsAny(s.File(), `/\`) {
		return "", fmt.Errorf("testmedia: bad sample name %q", s.File())
	}
	path := filepath.Join(dir, s.File())
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		return path, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("testmedia: %w", err)
	}

	tmp, err := os.CreateTemp(dir, ".gen-"+s.Name+"-*."+s.Container)
	if err != nil {
		return "", fmt.Errorf("testmedia: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name) // after a successful rename there is nothing left to remove

	switch {
	case s.From != nil && s.ZeroMedia:
		err = zeroMedia(ctx, dir, s, tmp)
	case s.From != nil:
		err = truncated(ctx, dir, s, tmp)
	case s.Video == nil && s.Audio == nil && s.Args == nil:
		_, err = io.WriteString(tmp, s.Text)
	default:
		if err = tmp.Close(); err == nil {
			err = encode(ctx, s, name)
		}
	}
	if cerr := tmp.Close(); err == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("testmedia: generate %s: %w", s.File(), err)
	}
	if err := os.Rename(name, path); err != nil {
		return "", fmt.Errorf("testmedia: %w", err)
	}
	return path, nil
}

// truncated writes the first s.Keep of s.From's bytes to w.
func truncated(ctx context.Context, dir string, s Sample, w io.Writer) error {
	if s.Keep <= 0 || s.Keep >= 1 {
		return fmt.Errorf("keep %v: want a fraction between 0 and 1", s.Keep)
	}
	from, err := Generate(ctx, dir, *s.From)
	if err != nil {
		return err
	}
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = io.CopyN(w, f, int64(float64(st.Size())*s.Keep))
	return err
}

// zeroMedia writes s.From to w with every byte after its mdat box's header zeroed.
func zeroMedia(ctx context.Context, dir string, s Sample, w io.Writer) error {
	from, err := Generate(ctx, dir, *s.From)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(from) // a small test file
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte("mdat"))
	if i < 0 {
		return fmt.Errorf("%s has no mdat box", s.From.File())
	}
	clear(b[i+4:])
	_, err = w.Write(b)
	return err
}

// encode runs ffmpeg on lavfi's testsrc and sine sources to make s at path.
func encode(ctx context.Context, s Sample, path string) error {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return err
	}
	if s.Args != nil {
		return encodeArgs(ctx, ffmpeg, s, path)
	}
	if s.Duration <= 0 {
		return fmt.Errorf("duration %v: want a positive duration", s.Duration)
	}
	w, h, rate := s.Width, s.Height, s.Rate
	if w <= 0 || h <= 0 {
		w, h = 160, 120
	}
	if rate <= 0 {
		rate = 15
	}
	d := strconv.FormatFloat(s.Duration.Seconds(), 'f', -1, 64)
	args := []string{"-nostdin", "-hide_banner", "-v", "error", "-y"}
	if s.Video != nil {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("testsrc=duration=%s:size=%dx%d:rate=%d", d, w, h, rate))
	}
	if s.Audio != nil {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:duration=%s:sample_rate=44100", d))
	}
	args = append(args, s.Video...)
	args = append(args, s.Audio...)
	args = append(args, s.Mux...)
	args = append(args, "-shortest", path)
	out, err := exec.CommandContext(ctx, ffmpeg, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// encodeArgs runs ffmpeg with s.Args to make s at path.
func encodeArgs(ctx context.Context, ffmpeg string, s Sample, path string) error {
	args := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, s.Args...)
	if s.Metadata != "" {
		meta := path + ".ffmetadata"
		if err := os.WriteFile(meta, []byte(s.Metadata), 0o644); err != nil {
			return err
		}
		defer os.Remove(meta)
		for i, a := range args {
			if a == "{metadata}" {
				args[i] = meta
			}
		}
	}
	cmd := exec.CommandContext(ctx, ffmpeg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if s.Pipe {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stdout = f
		args = append(args, "pipe:1")
	} else {
		args = append(args, path)
	}
	cmd.Args = append([]string{ffmpeg}, args...)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// MustGenerate is Generate for tests: it skips the test when ffmpeg is missing (fails it
// under CI=true), and fails it when generation fails. Like t.Fatal, call it from the
// test's goroutine.
func MustGenerate(t testing.TB, dir string, s Sample) string {
	t.Helper()
	testenv.Tool(t, "ffmpeg")
	p, err := Generate(t.Context(), dir, s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
