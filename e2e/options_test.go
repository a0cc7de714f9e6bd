package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
)

// checkOptions converts a video with per-job options through a real server and checks the MP3
// with ffprobe: the trimmed length, the constant bitrate, one channel, the tags and the cover.
func checkOptions(t *testing.T, u *user) {
	t.Helper()
	src := media(t, testmedia.Good[0]) // 3 s of video and audio
	out := filepath.Join(t.TempDir(), "trimmed.mp3")
	u.must("", "convert", src, "-o", out, "--bitrate", "128k", "--mono", "--start", "0.5s", "--end", "2.5s")
	probe := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-show_entries",
		"stream=codec_type,codec_name,channels,bit_rate:stream_disposition=attached_pic:format=duration:format_tags=title",
		"-of", "json", out)
	b, err := probe.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p struct {
		Streams []struct {
			CodecType   string `json:"codec_type"`
			CodecName   string `json:"codec_name"`
			Channels    int    `json:"channels"`
			BitRate     string `json:"bit_rate"`
			Disposition struct {
				AttachedPic int `json:"attached_pic"`
			} `json:"disposition"`
		} `json:"streams"`
		Format struct {
			Duration string            `json:"duration"`
			Tags     map[string]string `json:"tags"`
		} `json:"format"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	var audio, cover int
	for _, s := range p.Streams {
		switch {
		case s.CodecType == "audio":
			audio++
			if s.CodecName != "mp3" || s.Channels != 1 || s.BitRate != "128000" {
				t.Errorf("audio stream %+v, want mp3, mono, 128 kbit/s", s)
			}
		case s.CodecType == "video" && s.Disposition.AttachedPic == 1:
			cover++
		}
	}
	if audio != 1 || cover != 1 {
		t.Errorf("%d audio streams and %d covers, want one of each", audio, cover)
	}
	secs, _ := strconv.ParseFloat(p.Format.Duration, 64)
	if d := time.Duration(secs * float64(time.Second)); d < 1900*time.Millisecond || d > 2150*time.Millisecond {
		t.Errorf("trimmed MP3 lasts %v, want 2 s", d)
	}
	if title := p.Format.Tags["title"]; title == "" {
		t.Errorf("no title tag: %v", p.Format.Tags)
	}
	// The job shows its options; a bad one is refused before anything is uploaded.
	var js struct {
		Jobs []struct{ Options map[string]any }
	}
	if err := json.Unmarshal([]byte(u.must("", "jobs", "--json").stdout), &js); err != nil || len(js.Jobs) == 0 ||
		js.Jobs[0].Options["bitrate"] != "128k" || js.Jobs[0].Options["mono"] != true {
		t.Errorf("jobs --json does not show the options: %+v %v", js, err)
	}
	if r := u.run("", "upload", src, "--quality", "12"); r.code != 2 || !strings.Contains(r.stderr, `"quality"`) {
		t.Errorf("bad --quality: %s, want exit 2 naming the option", r)
	}
	checkSplit(t, u)
}

// checkSplit converts a video of three chapters with --split-chapters into a directory and
// checks its MP3s; a video without chapters fails with the reason.
func checkSplit(t *testing.T, u *user) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "parts")
	var res struct {
		Files []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(u.must("", "convert", media(t, testmedia.Chapters), "--split-chapters", "-o", out, "--json").stdout), &res); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		secs float64
	}{{"01 - Opening.mp3", 2}, {"02 - Middle.mp3", 2.5}, {"03 - End.mp3", 1.5}}
	if len(res.Files) != len(want) {
		t.Fatalf("convert --split-chapters saved %+v", res.Files)
	}
	for i, w := range want {
		if res.Files[i].Path != filepath.Join(out, w.name) {
			t.Errorf("file %d saved as %s, want %s", i, res.Files[i].Path, w.name)
		}
		b, err := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-show_entries", "format=duration:format_tags=title,track",
			"-of", "json", res.Files[i].Path).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", res.Files[i].Path, err)
		}
		var p struct {
			Format struct {
				Duration string
				Tags     map[string]string
			}
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		d, _ := strconv.ParseFloat(p.Format.Duration, 64)
		if d < w.secs-0.1 || d > w.secs+0.15 || p.Format.Tags["track"] != strconv.Itoa(i+1)+"/3" {
			t.Errorf("%s: %v s, tags %v; want %v s, track %d/3", w.name, d, p.Format.Tags, w.secs, i+1)
		}
	}
	if r := u.run("", "convert", media(t, testmedia.Good[0]), "--split-chapters", "-o", t.TempDir()); r.code != 5 ||
		!strings.Contains(r.stderr, "no chapters") {
		t.Errorf("split of a video without chapters: %s, want exit 5 with the reason", r)
	}
}

func TestStandaloneOptions(t *testing.T) {
	srv := startStandalone(t, t.TempDir())
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	checkOptions(t, u)
}

func TestDistributedOptions(t *testing.T) {
	c := startCluster(t, 1)
	checkOptions(t, c.user("ann"))
}
