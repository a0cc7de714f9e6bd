package ffmpeg_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
)

// cover checks that the MP3 at path has exactly one picture, an attached JPEG titled as
// ffmpeg documents for the APIC front cover, and returns its size and mean luma (0-255).
func cover(t *testing.T, path string) (w, h int, luma byte) {
	t.Helper()
	p := ffprobe(t, path)
	if n := p.videoStreams(); n != 1 {
		t.Fatalf("%d picture streams, want 1", n)
	}
	for _, s := range p.Streams {
		if s.CodecType != "video" {
			continue
		}
		if s.CodecName != "mjpeg" || s.Disposition["attached_pic"] != 1 {
			t.Errorf("picture %s, attached_pic=%d: want an attached JPEG", s.CodecName, s.Disposition["attached_pic"])
		}
		if s.Tags["title"] != "Album cover" || s.Tags["comment"] != "Cover (front)" {
			t.Errorf("picture tags %v: want the front cover", s.Tags)
		}
		w, h = s.Width, s.Height
	}
	if m := mutagen(t, path); !strings.Contains(m, "\nAPIC=cover front, Album cover (image/jpeg,") {
		t.Errorf("mutagen reads no JPEG front cover:\n%s", m)
	}
	// Averaged down to one grey pixel, the picture's mean luma.
	px, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0",
		"-vf", "scale=1:1:flags=area,format=gray", "-f", "rawvideo", "-").Output()
	if err != nil || len(px) != 1 {
		t.Fatalf("decode the cover: %v (%d bytes)", err, len(px))
	}
	return w, h, px[0]
}

func noCover(t *testing.T, path string) {
	t.Helper()
	if n := ffprobe(t, path).videoStreams(); n != 0 {
		t.Errorf("%d picture streams, want none", n)
	}
}

func convert(t *testing.T, src string, conv server.Conversion) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "audio.mp3")
	if err := confinedConverter(t).Convert(t.Context(), src, dst, conv, nil); err != nil {
		t.Fatal(err)
	}
	left, err := filepath.Glob(filepath.Join(filepath.Dir(dst), "*"))
	if err != nil || len(left) != 1 {
		t.Errorf("the work directory holds %v, want only the MP3", left)
	}
	return dst
}

// pngCoverM4A is AAC audio in MP4 with a 200x100 PNG cover.
func pngCoverM4A(t *testing.T) string {
	png := filepath.Join(t.TempDir(), "cover.png")
	if out, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-v", "error", "-f", "lavfi",
		"-i", "testsrc=size=200x100", "-frames:v", "1", png).CombinedOutput(); err != nil {
		t.Fatalf("make png: %v: %s", err, out)
	}
	return makeMedia(t, "png-cover.m4a",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=44100", "-i", png,
		"-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "copy", "-disposition:v:0", "attached_pic")
}

func TestCoverFromAttachedPicture(t *testing.T) {
	src := pngCoverM4A(t)
	if p := ffprobe(t, src); p.videoStreams() != 1 || p.Streams[1].CodecName != "png" || p.Streams[1].Disposition["attached_pic"] != 1 {
		t.Fatalf("the source has no attached PNG: %+v", p.Streams)
	}
	dst := convert(t, src, server.Conversion{})
	w, h, luma := cover(t, dst)
	t.Logf("cover %dx%d, mean luma %d", w, h, luma)
	if w != 200 || h != 100 {
		t.Errorf("cover %dx%d, want the picture's 200x100", w, h)
	}
	if luma < 40 {
		t.Errorf("mean luma %d: the cover is black", luma)
	}

	// An MP3 with a JPEG cover keeps it as it is.
	again := convert(t, dst, server.Conversion{})
	if w2, h2, _ := cover(t, again); w2 != w || h2 != h {
		t.Errorf("the cover of an MP3 with a cover is %dx%d, want %dx%d", w2, h2, w, h)
	}
	a, _ := exec.Command(testenv.Tool(t, "ffmpeg"), "-v", "error", "-i", dst, "-map", "0:v", "-c", "copy", "-f", "mjpeg", "-").Output()
	b, _ := exec.Command(testenv.Tool(t, "ffmpeg"), "-v", "error", "-i", again, "-map", "0:v", "-c", "copy", "-f", "mjpeg", "-").Output()
	if len(a) == 0 || string(a) != string(b) {
		t.Errorf("the JPEG cover was re-encoded (%d bytes, then %d)", len(a), len(b))
	}
}

func TestCoverFromVideo(t *testing.T) {
	// 720p, black for the first second: 10% of 4 s falls in it, so the cover must come from
	// later, and be scaled down.
	src := makeMedia(t, "black-start.mp4",
		"-f", "lavfi", "-i", "color=c=black:size=1280x720:rate=15:duration=1[b];testsrc=size=1280x720:rate=15:duration=3[t];[b][t]concat=n=2:v=1:a=0[out0]",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=4:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	dst := convert(t, src, server.Conversion{})
	w, h, luma := cover(t, dst)
	t.Logf("cover %dx%d, mean luma %d", w, h, luma)
	if w > 600 || h > 600 || w < 590 || h < 330 || h > 340 {
		t.Errorf("cover %dx%d, want 1280x720 scaled to 600 wide", w, h)
	}
	if luma < 40 {
		t.Errorf("mean luma %d: the cover is black", luma)
	}
}

// TestCoverFromTheStart: a video whose frames all come before 10% of its length (one frame,
// as a short clip's audio-only upload carries) still gives its cover, from the start.
func TestCoverFromTheStart(t *testing.T) {
	src := makeMedia(t, "early-frame.mp4",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=5:duration=0.2",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=5:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac")
	dst := convert(t, src, server.Conversion{})
	if w, h, luma := cover(t, dst); w != 320 || h != 240 || luma < 40 {
		t.Errorf("cover %dx%d, mean luma %d; want the 320x240 frame", w, h, luma)
	}
}

func TestNoCover(t *testing.T) {
	t.Run("audio only", func(t *testing.T) {
		src := makeMedia(t, "audio-only.m4a", "-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=44100", "-c:a", "aac")
		noCover(t, convert(t, src, server.Conversion{}))
	})
	t.Run("NoCover", func(t *testing.T) {
		dst := convert(t, taggedMP4(t), server.Conversion{Options: server.JobOptions{NoCover: true}})
		noCover(t, dst)
		if got := ffprobe(t, dst).Format.Tags["title"]; got != "Song Title" {
			t.Errorf("title %q: want the tags without the cover", got)
		}
	})
	t.Run("NoCover with a picture", func(t *testing.T) {
		noCover(t, convert(t, pngCoverM4A(t), server.Conversion{Options: server.JobOptions{NoCover: true}}))
	})
	t.Run("all black", func(t *testing.T) {
		src := makeMedia(t, "black.mp4",
			"-f", "lavfi", "-i", "color=c=black:size=160x120:rate=15:duration=2",
			"-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=44100",
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
		noCover(t, convert(t, src, server.Conversion{}))
	})
}

func TestCoverFileRemovedOnFailure(t *testing.T) {
	// A conversion that fails after the cover was written leaves nothing in the work dir.
	dir := t.TempDir()
	dst := filepath.Join(dir, "audio.mp3")
	src := makeMedia(t, "cut.mkv",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=15:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=10:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.mkv")
	if err := os.WriteFile(cut, b[:len(b)*4/10], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := confinedConverter(t).Convert(t.Context(), cut, dst, server.Conversion{}, nil); err == nil {
		t.Fatal("a truncated file converted")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left in the work directory: %v", left)
	}
}

func TestCoverFromMatroskaAttachment(t *testing.T) {
	// Matroska keeps a cover as an attachment, which ffmpeg reads as an attached picture.
	jpg := filepath.Join(t.TempDir(), "cover.jpg")
	if out, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-v", "error", "-f", "lavfi",
		"-i", "testsrc=size=300x300", "-frames:v", "1", jpg).CombinedOutput(); err != nil {
		t.Fatalf("make jpeg: %v: %s", err, out)
	}
	src := makeMedia(t, "attachment.mkv", "-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=44100",
		"-c:a", "libopus", "-attach", jpg, "-metadata:s:t", "mimetype=image/jpeg", "-metadata:s:t", "filename=cover.jpg")
	w, h, luma := cover(t, convert(t, src, server.Conversion{}))
	if w != 300 || h != 300 || luma < 40 {
		t.Errorf("cover %dx%d, mean luma %d: want the attached 300x300 picture", w, h, luma)
	}
}
