package ffmpeg_test

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
)

// unzip extracts the zip at path into a new directory and returns the paths of its entries,
// in the zip's order, checking that every entry is stored, not compressed.
func unzip(t *testing.T, path string) []string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("open zip: %v", err)
	}
	defer zr.Close()
	dir := t.TempDir()
	var out []string
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want stored", f.Name, f.Method)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		p := filepath.Join(dir, filepath.Base(f.Name))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestSplitChapters(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	src := taggedMP4(t) // chapters "Intro" 0-1 s and "Main part – ünïcode" 1-3 s
	dst := filepath.Join(t.TempDir(), "out.zip")
	p := &progressLog{t: t}
	files, err := c.Split(t.Context(), src, dst, server.Conversion{Options: server.JobOptions{SplitChapters: true}, Title: "upload"}, p.report)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	want := []server.JobFile{
		{Title: "Intro", Start: 0, End: time.Second},
		{Title: "Main part – ünïcode", Start: time.Second, End: 3 * time.Second},
	}
	if len(files) != len(want) {
		t.Fatalf("files = %+v, want %d", files, len(want))
	}
	paths := unzip(t, dst)
	names := make([]string, len(paths))
	for i, path := range paths {
		names[i] = filepath.Base(path)
	}
	if !slices.Equal(names, []string{"01 - Intro.mp3", "02 - Main part – ünïcode.mp3"}) {
		t.Errorf("zip holds %q", names)
	}
	for i, w := range want {
		f := files[i]
		if f.Title != w.Title || f.Start != w.Start || f.End != w.End || f.Size <= 0 {
			t.Errorf("file %d = %+v, want %+v", i, f, w)
		}
		if i >= len(paths) {
			continue
		}
		st, err := os.Stat(paths[i])
		if err != nil || st.Size() != f.Size {
			t.Errorf("file %d: size %d in the zip, %d in the job", i, st.Size(), f.Size)
		}
		facts := probeMP3(t, paths[i])
		if facts.Format != "mp3" || facts.Codec != "mp3" || facts.Streams != 2 {
			t.Errorf("file %d: %+v, want an MP3 with its cover", i, facts)
		}
		if !within(facts.Decoded, w.End-w.Start, 50*time.Millisecond) {
			t.Errorf("file %d lasts %v, want %v", i, facts.Decoded, w.End-w.Start)
		}
		pr := ffprobe(t, paths[i])
		tags := pr.Format.Tags
		if tags["title"] != w.Title || tags["track"] != []string{"1/2", "2/2"}[i] || tags["album"] != "The Album" || tags["artist"] != "The Artist" {
			t.Errorf("file %d tags: %v", i, tags)
		}
		if len(pr.Chapters) != 0 {
			t.Errorf("file %d has %d chapters of its own", i, len(pr.Chapters))
		}
		if pr.videoStreams() != 1 {
			t.Errorf("file %d: %d cover streams, want 1", i, pr.videoStreams())
		}
	}
	if len(p.pcts) == 0 || p.pcts[len(p.pcts)-1] != 100 {
		t.Errorf("progress %v: want rising to 100", p.pcts)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "out.part001.mp3")); !os.IsNotExist(err) {
		t.Errorf("the parts stay next to the zip: %v", err)
	}
}

func TestSplitTrimmedAndLoudness(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	src := taggedMP4(t)
	dst := filepath.Join(t.TempDir(), "out.zip")
	p := &progressLog{t: t}
	files, err := c.Split(t.Context(), src, dst, server.Conversion{Options: server.JobOptions{SplitChapters: true,
		Start: 1500 * time.Millisecond, Loudness: -16, NoCover: true}}, p.report)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	// Only the second chapter lies after 1.5 s; it keeps its part from there.
	if len(files) != 1 || files[0].Start != 1500*time.Millisecond || files[0].End != 3*time.Second {
		t.Fatalf("files = %+v", files)
	}
	paths := unzip(t, dst)
	if len(paths) != 1 || !strings.HasPrefix(filepath.Base(paths[0]), "01 - Main part") {
		t.Fatalf("zip holds %v", paths)
	}
	facts := probeMP3(t, paths[0])
	if !within(facts.Decoded, 1500*time.Millisecond, 50*time.Millisecond) {
		t.Errorf("part lasts %v, want 1.5s", facts.Decoded)
	}
	if pr := ffprobe(t, paths[0]); pr.videoStreams() != 0 || pr.Format.Tags["track"] != "1/1" {
		t.Errorf("no cover and track 1/1 asked: %d cover streams, tags %v", pr.videoStreams(), pr.Format.Tags)
	}
	if p.pcts[len(p.pcts)-1] != 100 || !slices.ContainsFunc(p.pcts, func(v int) bool { return v >= 50 && v < 100 }) {
		t.Errorf("progress %v: want both passes counted", p.pcts)
	}
}

func TestSplitWithoutChapters(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	dst := filepath.Join(t.TempDir(), "out.zip")
	_, err := c.Split(t.Context(), media(t, testmedia.Stereo), dst, server.Conversion{Options: server.JobOptions{SplitChapters: true}}, nil)
	if !server.IsPermanent(err) || server.ErrorMessage(err) != "the video has no chapters to split by" {
		t.Errorf("Split of a file without chapters: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("a failed split leaves %s: %v", dst, err)
	}
}
