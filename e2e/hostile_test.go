package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
)

// checkHostileUploads uploads, as a second user, files named like videos that hold playlists
// and concat scripts naming a file of the server's machine, a URL, and the first user's job
// (the ids that mails and the CLI show). Each job fails with "not a supported media file";
// the server keeps serving.
func checkHostileUploads(t *testing.T, alice, bob *user) {
	t.Helper()
	ff := testenv.Tool(t, "ffmpeg")
	secret := filepath.Join(t.TempDir(), "secret.ts")
	if out, err := exec.Command(ff, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=1000:duration=2",
		"-f", "mpegts", secret).CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v: %s", secret, err, out)
	}
	aliceJob := strings.TrimSpace(alice.must("", "upload", media(t, testmedia.Good[1]), "--wait").stdout)
	hls := func(seg string) string {
		return "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n" + seg + "\n#EXT-X-ENDLIST\n"
	}
	attacks := map[string]string{
		"hls-absolute.mp4":  hls(secret),
		"hls-file-url.mp4":  hls("file:" + secret),
		"hls-http.mp4":      hls("http://127.0.0.1:1/seg.ts"),
		"hls-sibling.mp4":   hls(aliceJob),
		"concat-job.mp4":    "ffconcat version 1.0\nfile " + aliceJob + "\n",
		"concat-abs.mkv":    "ffconcat version 1.0\nfile " + secret + "\n",
		"concat-parent.mp4": "ffconcat version 1.0\nfile ../videos/" + aliceJob + "\n",
	}
	dir := t.TempDir()
	for name, body := range attacks {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		r := bob.run("", "upload", p, "--wait", "--timeout", "2m")
		if r.code != 5 || !strings.Contains(r.stderr, "not a supported media file") {
			t.Errorf("%s: %s\nwant exit 5 and \"not a supported media file\"", name, r)
		}
	}
	for _, j := range bob.jobs() {
		if j.State != "failed" || j.MP3FID != "" {
			t.Errorf("bob's job %s (%s): %s, mp3 %q; want failed with no MP3", j.ID, j.Filename, j.State, j.MP3FID)
		}
		if strings.Contains(j.Error, "/") {
			t.Errorf("bob's job %s: reason %q names a path", j.Filename, j.Error)
		}
	}
	alice.must("", "convert", media(t, testmedia.Good[0]), "-o", filepath.Join(t.TempDir(), "still-works.mp3"))
}

func TestStandaloneHostileUploads(t *testing.T) {
	srv := startStandalone(t, t.TempDir())
	alice := newUser(t, srv.url(), "alice@example.com")
	alice.signup()
	bob := newUser(t, srv.url(), "bob@example.com")
	bob.signup()
	checkHostileUploads(t, alice, bob)
}

func TestDistributedHostileUploads(t *testing.T) {
	c := startCluster(t, 1)
	checkHostileUploads(t, c.user("alice"), c.user("bob"))
}
