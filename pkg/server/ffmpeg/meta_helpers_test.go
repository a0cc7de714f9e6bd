package ffmpeg_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
	"github.com/v2m/v2m/pkg/server/sandbox"
)

// makeMedia writes mediaDir/name with `ffmpeg ARGS... OUT` unless it is there already, and
// returns its path. The file appears whole, by rename.
func makeMedia(t *testing.T, name string, args ...string) string {
	t.Helper()
	ff := testenv.Tool(t, "ffmpeg")
	path := filepath.Join(mediaDir, name)
	if _, err := os.Stat(path); err == nil {
		return path
	}
	f, err := os.CreateTemp(mediaDir, ".gen-*-"+name)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	tmp := f.Name()
	defer os.Remove(tmp) // nothing is left after the rename
	full := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)
	full = append(full, "-f", formatOf(name), tmp)
	if out, err := exec.Command(ff, full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", strings.Join(full, " "), err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// formatOf is the muxer for a file name's extension.
func formatOf(name string) string {
	switch ext := filepath.Ext(name); ext {
	case ".mkv":
		return "matroska"
	case ".m4a":
		return "mp4"
	default:
		return ext[1:]
	}
}

// writeFile writes text to a file of the test's and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// probed is the part of ffprobe's JSON that the tests look at.
type probed struct {
	Streams []struct {
		CodecType   string            `json:"codec_type"`
		CodecName   string            `json:"codec_name"`
		Width       int               `json:"width"`
		Height      int               `json:"height"`
		Disposition map[string]int    `json:"disposition"`
		Tags        map[string]string `json:"tags"`
	} `json:"streams"`
	Chapters []struct {
		StartTime string            `json:"start_time"`
		EndTime   string            `json:"end_time"`
		Tags      map[string]string `json:"tags"`
	} `json:"chapters"`
	Format struct {
		Duration string            `json:"duration"`
		Tags     map[string]string `json:"tags"`
	} `json:"format"`
}

// videoStreams returns the video streams.
func (p probed) videoStreams() (n int) {
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			n++
		}
	}
	return n
}

func ffprobe(t *testing.T, path string) probed {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-show_streams", "-show_chapters", "-show_format",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probed
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// mutagen returns what mutagen-inspect (Debian's python3-mutagen) reads in an MP3's ID3 tag,
// a reader that is not ffmpeg.
func mutagen(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "mutagen-inspect"), path).CombinedOutput()
	if err != nil {
		t.Fatalf("mutagen-inspect %s: %v: %s", path, err, out)
	}
	return string(out)
}

// confinedConverter is a Converter confined by Landlock as the server runs it, when the
// kernel offers Landlock (required under CI=true).
func confinedConverter(t *testing.T) *ffmpeg.Converter {
	t.Helper()
	if sandbox.ABI() < 1 {
		if testenv.CI() {
			t.Fatal("CI=true and the kernel offers no Landlock")
		}
		return newConverter(t, ffmpeg.Config{})
	}
	l, err := sandbox.New()
	if err != nil {
		t.Fatal(err)
	}
	return newConverter(t, ffmpeg.Config{Sandbox: l})
}
