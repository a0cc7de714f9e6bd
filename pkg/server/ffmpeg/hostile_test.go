package ffmpeg_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
	"github.com/v2m/v2m/pkg/server/sandbox"
)

// hostileFixture lays files out as standalone does: uploads side by side in
// data/blobs/videos, named by their ids, and a work directory elsewhere. Alice's video and
// some server files are what an attacker's upload tries to read.
type hostileFixture struct {
	videos  string // data/blobs/videos
	aliceID string // a sibling upload, by id
	secrets map[string]string
	work    string
	hits    *atomic.Int32 // requests to a server that a playlist names
	url     string
}

func newHostileFixture(t *testing.T) *hostileFixture {
	t.Helper()
	ff := testenv.Tool(t, "ffmpeg")
	root := t.TempDir()
	f := &hostileFixture{
		videos:  filepath.Join(root, "data", "blobs", "videos"),
		aliceID: "0123456789abcdef01234567",
		secrets: map[string]string{},
		work:    filepath.Join(t.TempDir(), "v2m-work-x"),
		hits:    new(atomic.Int32),
	}
	for _, d := range []string{f.videos, f.work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Server files an attacker would like: audio in the formats the probe found readable.
	for _, ext := range []string{"ts", "mp3", "mp4"} {
		p := filepath.Join(root, "secret."+ext)
		out, err := exec.Command(ff, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=1000:duration=2",
			"-f", map[string]string{"ts": "mpegts", "mp3": "mp3", "mp4": "mp4"}[ext], p).CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v: %s", p, err, out)
		}
		f.secrets[ext] = p
	}
	// Alice's upload, and a copy of a secret next to the attacker's upload for relative names.
	for dst, src := range map[string]string{f.aliceID: f.secrets["ts"], "secret.ts": f.secrets["ts"]} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(f.videos, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		http.ServeFile(w, r, f.secrets["ts"])
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func hls(segment string) string {
	return "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n" + segment + "\n#EXT-X-ENDLIST\n"
}

func concat(file string) string { return "ffconcat version 1.0\nfile " + file + "\n" }

// attacks are uploads that name other files and URLs, each as the file "video" would hold.
func (f *hostileFixture) attacks(t *testing.T) map[string]string {
	ts, err := os.ReadFile(f.secrets["ts"])
	if err != nil {
		t.Fatal(err)
	}
	data := "data:video/mp2t;base64," + base64.StdEncoding.EncodeToString(ts)
	return map[string]string{
		"hls absolute ts":       hls(f.secrets["ts"]),
		"hls absolute mp3":      hls(f.secrets["mp3"]),
		"hls absolute mp4":      hls(f.secrets["mp4"]),
		"hls relative":          hls("secret.ts"),
		"hls sibling blob":      hls(f.aliceID),
		"hls file url":          hls("file:" + f.secrets["ts"]),
		"hls http url":          hls(f.url + "/seg.ts"),
		"hls data url":          hls(data),
		"concat sibling blob":   concat(f.aliceID),
		"concat relative":       concat("secret.ts"),
		"concat absolute":       concat(f.secrets["ts"]),
		"concat file url":       concat("file:" + f.secrets["ts"]),
		"concat http url":       concat("'" + f.url + "/seg.ts'"),
		"concat safe-off abs":   "ffconcat version 1.0\noption safe 0\nfile " + f.secrets["mp3"] + "\n",
		"hls then concat chain": hls(filepath.Join(f.videos, "nested.m3u8")),
	}
}

// convertAttack uploads body as Bob's video and converts it with c; it returns the error and
// whether an MP3 was left.
func (f *hostileFixture) convertAttack(t *testing.T, c *ffmpeg.Converter, body string) (error, bool) {
	t.Helper()
	src := filepath.Join(f.videos, "fedcba9876543210fedcba98")
	if err := os.WriteFile(src, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// A nested playlist the chain case points at.
	if err := os.WriteFile(filepath.Join(f.videos, "nested.m3u8"), []byte(concat(f.aliceID)), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(f.work, "audio.mp3")
	if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	err := c.Convert(context.Background(), src, dst, server.Conversion{}, nil)
	t.Logf("Convert: %v", err)
	_, statErr := os.Stat(dst)
	return err, statErr == nil
}

func newSandbox(t *testing.T) *sandbox.Launcher {
	t.Helper()
	if sandbox.ABI() < 1 {
		testenv.Missing(t, "the kernel offers no Landlock")
	}
	l, err := sandbox.New()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestHostilePlaylistsAreRefused: with the server's configuration (the demuxer allow-list
// and Landlock), and with the allow-list alone, every upload that names another file or a
// URL fails for good with "not a supported media file", and nothing is fetched.
func TestHostilePlaylistsAreRefused(t *testing.T) {
	f := newHostileFixture(t)
	for _, layers := range []struct {
		name    string
		sandbox *sandbox.Launcher
	}{{"allow-list and landlock", newSandbox(t)}, {"allow-list alone", nil}} {
		c := newConverter(t, ffmpeg.Config{Sandbox: layers.sandbox})
		for name, body := range f.attacks(t) {
			t.Run(layers.name+"/"+name, func(t *testing.T) {
				err, left := f.convertAttack(t, c, body)
				if err == nil || !server.IsPermanent(err) || server.ErrorMessage(err) != "not a supported media file" {
					t.Fatalf("Convert = %v, want permanent \"not a supported media file\"", err)
				}
				if left {
					t.Error("an MP3 was left behind")
				}
			})
		}
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("ffmpeg fetched %d URLs named in uploads", n)
	}
}

// TestLandlockAloneHoldsTheLine: with the allow-list switched off, so that ffmpeg does pick
// the hls and concat demuxers, Landlock alone stops every attack: no file but the input is
// opened (the attempts fail with permission denied) and no URL is fetched. The unconfined
// control shows that the same uploads do read the files when neither layer is there.
func TestLandlockAloneHoldsTheLine(t *testing.T) {
	f := newHostileFixture(t)
	open := newConverter(t, ffmpeg.Config{})
	ffmpeg.WithoutFormatAllowList(open)
	if err, left := f.convertAttack(t, open, hls(f.secrets["ts"])); err != nil || !left {
		t.Fatalf("control: with neither layer an HLS playlist should read a local file; Convert = %v", err)
	}
	if err, left := f.convertAttack(t, open, concat(f.aliceID)); err != nil || !left {
		t.Fatalf("control: with neither layer a concat script should read a sibling upload; Convert = %v", err)
	}

	confined := newConverter(t, ffmpeg.Config{Sandbox: newSandbox(t)})
	ffmpeg.WithoutFormatAllowList(confined)
	for name, body := range f.attacks(t) {
		t.Run(name, func(t *testing.T) {
			err, left := f.convertAttack(t, confined, body)
			if err == nil {
				t.Fatal("Convert succeeded: Landlock let ffmpeg read another file")
			}
			if left {
				t.Error("an MP3 was left behind")
			}
			for _, p := range f.secrets {
				if strings.Contains(err.Error(), p) && server.IsPermanent(err) {
					t.Errorf("a user-facing reason names a server path: %v", err)
				}
			}
		})
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("a confined ffmpeg fetched %d URLs", n)
	}
}

// TestConfinedConversionWorks: real media converts under the sandbox exactly as without it,
// read in place from the data directory, into a work directory elsewhere.
func TestConfinedConversionWorks(t *testing.T) {
	l := newSandbox(t)
	c := newConverter(t, ffmpeg.Config{Sandbox: l})
	f := newHostileFixture(t)
	src := filepath.Join(f.videos, f.aliceID) // an MPEG-TS with 2 s of audio
	dst := filepath.Join(f.work, "audio.mp3")
	if err := c.Convert(context.Background(), src, dst, server.Conversion{}, nil); err != nil {
		t.Fatalf("confined Convert of real media: %v", err)
	}
	info, err := c.Probe(context.Background(), dst)
	if err != nil || !info.HasAudio || info.Duration < 1900e6 {
		t.Fatalf("confined output: %+v, %v", info, err)
	}
}

// TestReasonsNameNoServerPath: whatever ffmpeg prints, the reason a user reads names no
// absolute path.
func TestReasonsNameNoServerPath(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	dir := t.TempDir()
	src := filepath.Join(dir, "video")
	// A truncated MPEG-TS: ffmpeg names the input in its complaints.
	if err := os.WriteFile(src, []byte(strings.Repeat("\x47garbage", 2000)), 0o600); err != nil {
		t.Fatal(err)
	}
	err := c.Convert(context.Background(), src, filepath.Join(dir, "out.mp3"), server.Conversion{}, nil)
	if err == nil {
		t.Fatal("Convert of garbage succeeded")
	}
	if msg := server.ErrorMessage(err); strings.Contains(msg, dir) || strings.Contains(msg, "/tmp") {
		t.Errorf("reason %q names a server path", msg)
	}
}
