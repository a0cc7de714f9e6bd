package ffmpeg_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
	"github.com/v2m/v2m/pkg/server/sandbox"
)

// mediaDir holds the samples, generated once for all the tests of the package: in the
// directory named by $V2M_TESTMEDIA_DIR, kept between runs, or else in a temporary one.
var mediaDir string

func TestMain(m *testing.M) {
	sandbox.Main() // the test binary is the sandbox's helper too
	if dir := os.Getenv(testmedia.DirEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		mediaDir = dir
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "v2m-ffmpeg-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mediaDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func media(t testing.TB, s testmedia.Sample) string {
	t.Helper()
	return testmedia.MustGenerate(t, mediaDir, s)
}

func newConverter(t testing.TB, cfg ffmpeg.Config) *ffmpeg.Converter {
	t.Helper()
	testenv.Tool(t, "ffmpeg")
	testenv.Tool(t, "ffprobe")
	c, err := ffmpeg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// progressLog records progress reports and checks that they rise within 0-100.
type progressLog struct {
	t    testing.TB
	pcts []int
}

func (p *progressLog) report(pct int) {
	if pct < 0 || pct > 100 {
		p.t.Errorf("progress %d: out of 0-100", pct)
	}
	if n := len(p.pcts); n > 0 && pct <= p.pcts[n-1] {
		p.t.Errorf("progress %d after %d: not rising", pct, p.pcts[n-1])
	}
	p.pcts = append(p.pcts, pct)
}

func within(got, want, tol time.Duration) bool { return got >= want-tol && got <= want+tol }

func TestConvertGood(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	for _, s := range testmedia.Good {
		t.Run(s.File(), func(t *testing.T) {
			t.Parallel()
			src := media(t, s)
			dst := filepath.Join(t.TempDir(), "out.mp3")
			pl := &progressLog{t: t}
			if err := c.Convert(t.Context(), src, dst, server.Conversion{}, pl.report); err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if len(pl.pcts) < 2 || pl.pcts[len(pl.pcts)-1] != 100 {
				t.Errorf("progress %v: want several reports ending at 100", pl.pcts)
			}
			info, err := c.Probe(t.Context(), dst)
			if err != nil {
				t.Fatalf("Probe(mp3): %v", err)
			}
			// Every sample is a video, so the MP3 has a cover: a picture stream (cover_test.go).
			if info.FormatName != "mp3" || info.AudioCodec != "mp3" || !info.HasAudio || !info.HasVideo {
				t.Errorf("mp3 probed as %+v", info)
			}
			if !within(info.Duration, s.AudioDuration, 200*time.Millisecond) {
				t.Errorf("mp3 lasts %v, want %v", info.Duration, s.AudioDuration)
			}
		})
	}
}

func TestConvertBad(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	for _, s := range testmedia.Bad {
		t.Run(s.File(), func(t *testing.T) {
			t.Parallel()
			src := media(t, s)
			dst := filepath.Join(t.TempDir(), "out.mp3")
			pl := &progressLog{t: t}
			err := c.Convert(t.Context(), src, dst, server.Conversion{}, pl.report)
			if err == nil {
				t.Fatal("Convert succeeded")
			}
			if !server.IsPermanent(err) || !server.IsCode(err, server.EINVALID) {
				t.Errorf("error %v: want a permanent %s", err, server.EINVALID)
			}
			msg := server.ErrorMessage(err)
			if !strings.Contains(msg, s.WantErr) {
				t.Errorf("message %q: want it to say %q", msg, s.WantErr)
			}
			if strings.Contains(msg, mediaDir) || strings.Contains(msg, "\n") || len(msg) > 300 {
				t.Errorf("message %q: want one short line without paths", msg)
			}
			if n := len(pl.pcts); n > 0 && pl.pcts[n-1] == 100 {
				t.Errorf("progress reached 100 on a failure: %v", pl.pcts)
			}
			if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dst left behind after a failure: %v", err)
			}
			t.Logf("%s: %v", s.File(), err)
		})
	}
}

func TestConvertTruncatedReason(t *testing.T) {
	// The cut MP4 has lost its index: the reason should tell so, not only "invalid data".
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.Bad[2])
	err := c.Convert(t.Context(), src, filepath.Join(t.TempDir(), "out.mp3"), server.Conversion{}, nil)
	if msg := server.ErrorMessage(err); !strings.Contains(msg, "moov atom not found") {
		t.Errorf("message %q: want the missing moov atom named", msg)
	}
}

// slowFFmpeg returns a program that starts a sleeping child, which keeps its stdout and
// stderr open, writes the child's pid to the returned file, and waits for it before it
// runs the real ffmpeg.
func slowFFmpeg(t *testing.T) (prog, pidFile string) {
	t.Helper()
	real := testenv.Tool(t, "ffmpeg")
	dir := t.TempDir()
	prog, pidFile = filepath.Join(dir, "slow-ffmpeg"), filepath.Join(dir, "child.pid")
	script := fmt.Sprintf("#!/bin/sh\nsleep 600 &\necho $! > %s\nwait\nexec %s \"$@\"\n", pidFile, real)
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, pidFile
}

// dead waits until the process pid has exited (gone, or a zombie waiting for its reaper),
// and reports whether it did within a generous while.
func dead(pid string) bool {
	for range 200 {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return true
		}
		// pid (comm) state ...
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func TestConvertTimeout(t *testing.T) {
	// The program hangs as a broken ffmpeg could; the limit kills it with its child, and the
	// job fails for good, saying why.
	prog, pidFile := slowFFmpeg(t)
	c := newConverter(t, ffmpeg.Config{FFmpeg: prog, Timeout: time.Second})
	src := media(t, testmedia.Good[0])
	dst := filepath.Join(t.TempDir(), "out.mp3")
	err := c.Convert(t.Context(), src, dst, server.Conversion{}, nil)
	if !server.IsPermanent(err) || !server.IsCode(err, server.EINVALID) {
		t.Fatalf("error %v: want a permanent %s", err, server.EINVALID)
	}
	if msg := server.ErrorMessage(err); msg != "conversion took longer than 1s" {
		t.Errorf("message %q: want the limit named", msg)
	}
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		// On a very slow machine the limit can expire during the probe, before ffmpeg starts.
		t.Logf("ffmpeg did not start before the limit: %v", err)
		return
	}
	if p := strings.TrimSpace(string(pid)); !dead(p) {
		t.Errorf("ffmpeg's child %s still runs after the timeout", p)
	}
}

func TestConvertTimeoutExpired(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{Timeout: time.Nanosecond})
	err := c.Convert(t.Context(), media(t, testmedia.Good[0]), filepath.Join(t.TempDir(), "out.mp3"), server.Conversion{}, nil)
	if !server.IsPermanent(err) || !strings.Contains(server.ErrorMessage(err), "took longer than 1ns") {
		t.Errorf("error %v: want a permanent timeout", err)
	}
}

func TestConvertCanceled(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{Timeout: time.Hour})
	src := media(t, testmedia.Good[0])

	t.Run("running", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		dst := filepath.Join(t.TempDir(), "out.mp3")
		err := c.Convert(ctx, src, dst, server.Conversion{}, func(int) { cancel() })
		if err == nil || server.IsPermanent(err) || !errors.Is(err, context.Canceled) {
			t.Errorf("error %v: want a plain context.Canceled", err)
		}
		if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("dst left behind after a failure: %v", err)
		}
	})
	t.Run("slow", func(t *testing.T) {
		// A caller's deadline is a shutdown, not a fault of the video, even when it comes
		// before the converter's own limit.
		prog, pidFile := slowFFmpeg(t)
		c := newConverter(t, ffmpeg.Config{FFmpeg: prog, Timeout: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := c.Convert(ctx, src, filepath.Join(t.TempDir(), "out.mp3"), server.Conversion{}, nil)
		if err == nil || server.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v: want a plain context.DeadlineExceeded", err)
		}
		if pid, err := os.ReadFile(pidFile); err == nil && !dead(strings.TrimSpace(string(pid))) {
			t.Errorf("ffmpeg's child %s still runs after the cancel", pid)
		}
	})
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := c.Convert(ctx, src, filepath.Join(t.TempDir(), "out.mp3"), server.Conversion{}, nil)
		if err == nil || server.IsPermanent(err) || !errors.Is(err, context.Canceled) {
			t.Errorf("error %v: want a plain context.Canceled", err)
		}
	})
}

func TestConvertSystemTrouble(t *testing.T) {
	// Failures that are not the video's fault are left to retry.
	c := newConverter(t, ffmpeg.Config{})
	src := media(t, testmedia.Good[0])
	dir := t.TempDir()
	for name, tc := range map[string]struct{ src, dst string }{
		"missing src":     {filepath.Join(dir, "nope.mp4"), filepath.Join(dir, "a.mp3")},
		"src is a dir":    {dir, filepath.Join(dir, "b.mp3")},
		"dst dir missing": {src, filepath.Join(dir, "no", "such", "dir", "c.mp3")},
		"dst is a dir":    {src, dir},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.Convert(t.Context(), tc.src, tc.dst, server.Conversion{}, nil)
			if err == nil || server.IsPermanent(err) {
				t.Errorf("error %v: want a plain error", err)
			}
			if _, err := os.Stat(dir); err != nil {
				t.Errorf("the directory is gone: %v", err)
			}
		})
	}
	t.Run("ffprobe missing", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "ffprobe")
		if err := os.Symlink(testenv.Tool(t, "ffprobe"), bin); err != nil {
			t.Fatal(err)
		}
		c := newConverter(t, ffmpeg.Config{FFprobe: bin})
		if err := os.Remove(bin); err != nil {
			t.Fatal(err)
		}
		err := c.Convert(t.Context(), src, filepath.Join(t.TempDir(), "out.mp3"), server.Conversion{}, nil)
		if err == nil || server.IsPermanent(err) {
			t.Errorf("error %v: want a plain error", err)
		}
	})
}

func TestConvertBitrate(t *testing.T) {
	for _, br := range []struct {
		cfg  string
		want int64
	}{{"96k", 96000}, {"192k", 192000}} {
		t.Run(br.cfg, func(t *testing.T) {
			c := newConverter(t, ffmpeg.Config{Bitrate: br.cfg})
			dst := filepath.Join(t.TempDir(), "out.mp3")
			noCover := server.Conversion{Options: server.JobOptions{NoCover: true}} // a cover would count in the bit rate
			if err := c.Convert(t.Context(), media(t, testmedia.Good[0]), dst, noCover, nil); err != nil {
				t.Fatal(err)
			}
			info, err := c.Probe(t.Context(), dst)
			if err != nil {
				t.Fatal(err)
			}
			if info.BitRate < br.want*95/100 || info.BitRate > br.want*105/100 {
				t.Errorf("bit rate %d, want about %d", info.BitRate, br.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	testenv.Tool(t, "ffmpeg")
	testenv.Tool(t, "ffprobe")
	const hint = "install it with `sudo apt-get install ffmpeg`"
	missing := filepath.Join(t.TempDir(), "ffmpeg")
	for name, tc := range map[string]struct {
		cfg  ffmpeg.Config
		want string
	}{
		"missing ffmpeg":  {ffmpeg.Config{FFmpeg: missing}, "ffmpeg not found at " + missing},
		"missing ffprobe": {ffmpeg.Config{FFprobe: missing}, "ffprobe not found at " + missing},
		"no unit":         {ffmpeg.Config{Bitrate: "192"}, "bitrate"},
		"bps":             {ffmpeg.Config{Bitrate: "192000"}, "bitrate"},
		"letters":         {ffmpeg.Config{Bitrate: "abck"}, "bitrate"},
		"unit only":       {ffmpeg.Config{Bitrate: "k"}, "bitrate"},
		"sign":            {ffmpeg.Config{Bitrate: "+192k"}, "bitrate"},
		"too high":        {ffmpeg.Config{Bitrate: "1000k"}, "bitrate"},
		"too low":         {ffmpeg.Config{Bitrate: "4k"}, "bitrate"},
		"negative":        {ffmpeg.Config{Timeout: -time.Second}, "timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ffmpeg.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(tc.want, "not found") && !strings.Contains(err.Error(), hint) {
				t.Errorf("New: %v, want the install command", err)
			}
		})
	}
	if _, err := ffmpeg.New(ffmpeg.Config{Bitrate: "320k"}); err != nil {
		t.Errorf("New(320k): %v", err)
	}
}

func TestNewNotInPath(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := ffmpeg.New(ffmpeg.Config{})
	want := "ffmpeg not found in PATH: install it with `sudo apt-get install ffmpeg`"
	if err == nil || err.Error() != want {
		t.Errorf("New: %v, want %q", err, want)
	}
}

func TestCheck(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	if err := c.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	for name, cfg := range map[string]ffmpeg.Config{
		"ffmpeg fails":        {FFmpeg: testenv.Tool(t, "false")},
		"ffprobe not ffprobe": {FFprobe: testenv.Tool(t, "true")},
	} {
		t.Run(name, func(t *testing.T) {
			c := newConverter(t, cfg)
			if err := c.Check(t.Context()); err == nil {
				t.Error("Check succeeded")
			}
		})
	}
}

func TestProbe(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	info, err := c.Probe(t.Context(), media(t, testmedia.Good[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !info.HasVideo || !info.HasAudio || info.AudioCodec != "aac" || !strings.Contains(info.FormatName, "mp4") ||
		!within(info.Duration, 3*time.Second, 100*time.Millisecond) ||
		!within(info.AudioDuration, 3*time.Second, 100*time.Millisecond) || info.BitRate <= 0 {
		t.Errorf("Probe: %+v", info)
	}
	// Matroska keeps stream durations in tags.
	info, err = c.Probe(t.Context(), media(t, testmedia.Good[2]))
	if err != nil {
		t.Fatal(err)
	}
	if !within(info.AudioDuration, 3*time.Second, 100*time.Millisecond) {
		t.Errorf("Probe(mkv): audio duration %v", info.AudioDuration)
	}
}

// BenchmarkConvert converts ten minutes of 720p H.264/AAC. Generating the input takes about
// two minutes of CPU time; set $V2M_TESTMEDIA_DIR to keep it between runs.
func BenchmarkConvert(b *testing.B) {
	c := newConverter(b, ffmpeg.Config{})
	s := testmedia.Long(10*time.Minute, 1280, 720)
	src := media(b, s)
	dst := filepath.Join(b.TempDir(), "out.mp3")
	for b.Loop() {
		if err := c.Convert(b.Context(), src, dst, server.Conversion{}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(s.Duration.Seconds()*float64(b.N)/b.Elapsed().Seconds(), "x-realtime")
}
