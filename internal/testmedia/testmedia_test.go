package testmedia_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
)

func TestSamples(t *testing.T) {
	ffprobe := testenv.Tool(t, "ffprobe")
	dir := t.TempDir()
	seen := map[string]bool{}
	for _, s := range append(append([]testmedia.Sample{}, testmedia.Good...), testmedia.Bad...) {
		if seen[s.File()] {
			t.Errorf("two samples named %s", s.File())
		}
		seen[s.File()] = true
		p := testmedia.MustGenerate(t, dir, s)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case s.Text != "" || (s.Video == nil && s.Audio == nil && s.From == nil):
			if b, _ := os.ReadFile(p); string(b) != s.Text {
				t.Errorf("%s holds %q, want %q", s, b, s.Text)
			}
		case s.From != nil:
			from, err := os.Stat(filepath.Join(dir, s.From.File()))
			if err != nil {
				t.Fatal(err)
			}
			if s.Keep > 0 && st.Size() != int64(float64(from.Size())*s.Keep) {
				t.Errorf("%s has %d bytes, want %v of %d", s, st.Size(), s.Keep, from.Size())
			}
			if s.ZeroMedia && st.Size() != from.Size() {
				t.Errorf("%s has %d bytes, want %d", s, st.Size(), from.Size())
			}
		default:
			out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_type",
				"-of", "csv=p=0", p).Output()
			if err != nil {
				t.Fatalf("ffprobe %s: %v", s, err)
			}
			streams := strings.Fields(string(out))
			want := []string{}
			if s.Video != nil {
				want = append(want, "video")
			}
			if s.Audio != nil {
				want = append(want, "audio")
			}
			if strings.Join(sorted(streams), ",") != strings.Join(sorted(want), ",") {
				t.Errorf("%s has streams %v, want %v", s, streams, want)
			}
		}
	}
	for _, s := range testmedia.Good {
		if s.AudioDuration <= 0 {
			t.Errorf("good sample %s has no expected audio duration", s)
		}
	}
	for _, s := range testmedia.Bad {
		if s.WantErr == "" {
			t.Errorf("bad sample %s does not say why it is bad", s)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestGenerateOnce(t *testing.T) {
	testenv.Tool(t, "ffmpeg")
	dir := t.TempDir()
	s := testmedia.Good[0]
	var wg sync.WaitGroup
	paths := make([]string, 4)
	errs := make([]error, len(paths))
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = testmedia.Generate(t.Context(), dir, s) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if p != paths[0] {
			t.Errorf("paths differ: %v", paths)
		}
	}
	// A second call finds the file and leaves it alone.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(paths[0], old, old); err != nil {
		t.Fatal(err)
	}
	testmedia.MustGenerate(t, dir, s)
	if st2, _ := os.Stat(paths[0]); !st2.ModTime().Equal(old) || st2.Size() != st.Size() {
		t.Error("an existing sample was generated again")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want only %s", names, s.File())
	}
}

func TestGenerateErrors(t *testing.T) {
	testenv.Tool(t, "ffmpeg")
	dir := t.TempDir()
	for _, s := range []testmedia.Sample{
		{Name: "../up", Container: "mp4"},
		{Name: "", Container: "mp4"},
		{Name: "x", Container: "mp4", Video: []string{"-c:v", "no-such-codec"}, Duration: time.Second},
		{Name: "y", Container: "mp4", Audio: []string{"-c:a", "aac"}}, // no duration
		{Name: "z", Container: "mp4", From: &testmedia.Good[0], Keep: 2},
	} {
		if _, err := testmedia.Generate(t.Context(), dir, s); err == nil {
			t.Errorf("Generate(%+v) succeeded", s)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".gen-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestLong(t *testing.T) {
	s := testmedia.Long(2*time.Second, 320, 240)
	p := testmedia.MustGenerate(t, t.TempDir(), s)
	out, err := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,pix_fmt,codec_name", "-of", "csv=p=0", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "h264,320,240,yuv420p" {
		t.Errorf("long sample video: %s", got)
	}
}
