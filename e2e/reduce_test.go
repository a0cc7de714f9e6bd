package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
)

// reduceSources are videos whose audio-only upload must make the same MP3 as the whole file:
// 20 s, with a keyframe every 2 s so that one falls after the cover's 10 % point.
var reduceSources = []testmedia.Sample{
	{Name: "reduce-h264-aac", Container: "mp4", Args: []string{
		"-f", "lavfi", "-i", "testsrc=duration=20:size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=20:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50", "-b:v", "1M", "-c:a", "aac", "-shortest"}},
	{Name: "reduce-h264-opus", Container: "mkv", Args: []string{
		"-f", "lavfi", "-i", "testsrc=duration=20:size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=20:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50", "-b:v", "1M", "-c:a", "libopus", "-shortest"}},
}

// TestAudioOnlyUpload: v2m convert sends only the audio of an MP4 and of a Matroska file,
// and the MP3 is the one a whole upload (--full) makes: the same samples, the same cover.
func TestAudioOnlyUpload(t *testing.T) {
	srv := startStandalone(t, t.TempDir())
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	for _, s := range reduceSources {
		t.Run(s.File(), func(t *testing.T) {
			src := media(t, s)
			st, err := os.Stat(src)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			reduced, whole := filepath.Join(dir, "reduced.mp3"), filepath.Join(dir, "whole.mp3")
			var a, b struct {
				Job struct {
					Size       int64 `json:"size"`
					SourceSize int64 `json:"source_size"`
				} `json:"job"`
			}
			if err := json.Unmarshal([]byte(u.must("", "convert", src, "-o", reduced, "--json").stdout), &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(u.must("", "convert", src, "--full", "-o", whole, "--json").stdout), &b); err != nil {
				t.Fatal(err)
			}
			if a.Job.SourceSize != st.Size() || a.Job.Size <= 0 || a.Job.Size*4 > st.Size() {
				t.Errorf("audio-only upload sent %d bytes of %d (job says source %d)", a.Job.Size, st.Size(), a.Job.SourceSize)
			}
			if b.Job.SourceSize != 0 || b.Job.Size != st.Size() {
				t.Errorf("--full sent %d bytes of %d (source_size %d)", b.Job.Size, st.Size(), b.Job.SourceSize)
			}
			t.Logf("sent %d of %d bytes (%.1f%%)", a.Job.Size, st.Size(), 100*float64(a.Job.Size)/float64(st.Size()))

			pa, na := decodePCM(t, reduced)
			pb, nb := decodePCM(t, whole)
			if d := na - nb; d < -1152 || d > 1152 {
				t.Errorf("samples: %d from the audio-only upload, %d from the whole file", na, nb)
			}
			if pa != pb {
				t.Errorf("decoded PCM differs: %s vs %s (%d and %d samples)", pa, pb, na, nb)
			}
			ca, cb := coverOf(t, reduced), coverOf(t, whole)
			if len(ca) == 0 || len(cb) == 0 {
				t.Fatalf("covers of %d and %d bytes", len(ca), len(cb))
			}
			sim := ssim(t, ca, cb)
			t.Logf("PCM identical: %v; cover SSIM %.3f", pa == pb, sim)
			if sim < 0.9 {
				t.Errorf("cover from the carried keyframe differs from the whole video's: SSIM %.3f", sim)
			}
		})
	}
}

// decodePCM returns the SHA-256 and the sample count of an MP3's decoded audio.
func decodePCM(t *testing.T, path string) (string, int) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-v", "error", "-i", path, "-map", "0:a", "-f", "s16le", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	ch, err := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-select_streams", "a", "-show_entries", "stream=channels",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(string(bytes.TrimSpace(ch)))
	sum := sha256.Sum256(out)
	return hex.EncodeToString(sum[:8]), len(out) / 2 / max(n, 1)
}

// coverOf returns the JPEG of an MP3's cover.
func coverOf(t *testing.T, path string) []byte {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-v", "error", "-i", path, "-map", "0:v", "-c", "copy", "-f", "mjpeg", "-").Output()
	if err != nil {
		t.Fatalf("cover of %s: %v", path, err)
	}
	return out
}

var ssimAll = regexp.MustCompile(`All:([0-9.]+)`)

// ssim compares two images with ffmpeg's ssim filter: 1 is identical.
func ssim(t *testing.T, a, b []byte) float64 {
	t.Helper()
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a.jpg"), filepath.Join(dir, "b.jpg")
	if err := os.WriteFile(pa, a, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pb, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Tool(t, "ffmpeg"), "-v", "info", "-i", pa, "-i", pb,
		"-lavfi", "[0:v][1:v]scale2ref[x][y];[x][y]ssim", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ssim: %v: %s", err, out)
	}
	m := ssimAll.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no SSIM in %s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
