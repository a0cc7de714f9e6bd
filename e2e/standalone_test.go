package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
	"github.com/v2m/v2m/pkg/client/reduce"
)

func startStandalone(t *testing.T, data string, args ...string) *proc {
	t.Helper()
	testenv.Tool(t, "ffmpeg")
	addr := freeAddr(t)
	return start(t, "standalone", addr, nil, append([]string{"standalone", "--addr", addr, "--data", data}, args...)...)
}

// TestStandaloneConvert walks the README: register, login, convert, jobs, download; every good
// sample becomes an MP3 as long as its audio, and the outbox holds a mail naming the fid.
func TestStandaloneConvert(t *testing.T) {
	data := t.TempDir()
	srv := startStandalone(t, data)
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	if r := u.must("", "whoami"); !strings.Contains(r.stdout, "ann@example.com") {
		t.Fatalf("whoami: %s", r)
	}
	out := t.TempDir()
	// convert: one step.
	first := testmedia.Good[0]
	mp3 := filepath.Join(out, "first.mp3")
	u.must("", "convert", media(t, first), "-o", mp3)
	checkMP3(t, mp3, first.AudioDuration)

	// upload --wait -o for the others, all at once.
	var wg sync.WaitGroup
	for _, s := range testmedia.Good[1:] {
		path := media(t, s)
		wg.Go(func() {
			dst := filepath.Join(out, s.Name+"-"+s.Container+".mp3")
			if r := u.run("", "upload", path, "--wait", "-o", dst); r.code != 0 {
				t.Errorf("upload %s: %s", s.File(), r)
				return
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, s := range testmedia.Good[1:] {
		checkMP3(t, filepath.Join(out, s.Name+"-"+s.Container+".mp3"), s.AudioDuration)
	}
	jobs := u.jobs()
	if len(jobs) != len(testmedia.Good) {
		t.Fatalf("jobs lists %d jobs, want %d", len(jobs), len(testmedia.Good))
	}
	j := jobs[len(jobs)-1] // oldest: the first conversion
	if j.State != "done" || j.MP3FID == "" || j.Filename != first.File() {
		t.Fatalf("first job: %+v", j)
	}
	// download by job id and by fid give the same file.
	byJob, byFID := filepath.Join(out, "by-job.mp3"), filepath.Join(out, "by-fid.mp3")
	u.must("", "download", j.ID, "-o", byJob)
	u.must("", "download", j.MP3FID, "-o", byFID)
	a, _ := os.ReadFile(byJob)
	b, _ := os.ReadFile(byFID)
	c, _ := os.ReadFile(mp3)
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) || len(a) == 0 {
		t.Fatal("downloads by job id, by fid and from convert differ")
	}
	// The outbox holds a mail naming each fid.
	waitUntil(t, 10*time.Second, "a mail for every job", func() bool {
		files, _ := filepath.Glob(filepath.Join(data, "outbox", "*.eml"))
		return len(files) == len(testmedia.Good)
	})
	files, _ := filepath.Glob(filepath.Join(data, "outbox", "*.eml"))
	var all strings.Builder
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all.Write(b)
	}
	mails := strings.NewReplacer("=\r\n", "", "=\n", "").Replace(all.String())
	for _, j := range jobs {
		if !strings.Contains(mails, "download "+j.MP3FID) {
			t.Errorf("no mail names fid %s", j.MP3FID)
		}
	}
}

// TestStandaloneOwnership: another user can neither see nor download a job.
func TestStandaloneOwnership(t *testing.T) {
	srv := startStandalone(t, t.TempDir())
	ann, bob := newUser(t, srv.url(), "ann@example.com"), newUser(t, srv.url(), "bob@example.com")
	ann.signup()
	bob.signup()
	ann.must("", "convert", media(t, testmedia.Good[1]), "-o", filepath.Join(t.TempDir(), "a.mp3"))
	j := ann.jobs()[0]
	for _, args := range [][]string{{"status", j.ID}, {"download", j.MP3FID, "-o", filepath.Join(t.TempDir(), "x.mp3")}, {"download", j.ID}} {
		if r := bob.run("", args...); r.code != 4 {
			t.Errorf("bob %v: %s, want exit 4 (not found)", args, r)
		}
	}
	if len(bob.jobs()) != 0 {
		t.Error("bob sees ann's jobs")
	}
	// Without a login, commands say so with exit 3.
	if r := newUser(t, srv.url(), "eve@example.com").run("", "jobs"); r.code != 3 {
		t.Errorf("jobs without login: %s", r)
	}
}

// TestStandaloneBadInputs: each bad file ends as a failed job with a readable reason and a
// mail, and the server keeps serving.
func TestStandaloneBadInputs(t *testing.T) {
	data := t.TempDir()
	srv := startStandalone(t, data)
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	for _, s := range testmedia.Bad {
		r := u.run("", "upload", media(t, s), "--wait")
		if r.code != 5 || !strings.Contains(r.stderr, s.WantErr) {
			t.Errorf("%s: %s, want exit 5 and %q", s.File(), r, s.WantErr)
		}
	}
	for _, j := range u.jobs() {
		if j.State != "failed" || j.Error == "" {
			t.Errorf("job %s: %s %q", j.Filename, j.State, j.Error)
		}
	}
	resp, err := http.Get(srv.url() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("server unhealthy after bad inputs: %v", err)
	}
	resp.Body.Close()
	// A good file still converts afterwards.
	u.must("", "convert", media(t, testmedia.Good[1]), "-o", filepath.Join(t.TempDir(), "ok.mp3"))
	waitUntil(t, 10*time.Second, "failure mails", func() bool {
		files, _ := filepath.Glob(filepath.Join(data, "outbox", "*.eml"))
		return len(files) == len(testmedia.Bad)+1
	})
}

// TestTutorialCurlFlow runs the tutorial's curl commands unchanged.
func TestTutorialCurlFlow(t *testing.T) {
	curl := testenv.Tool(t, "curl")
	srv := startStandalone(t, t.TempDir())
	host := srv.url()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--fail-with-body"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("-X", "POST", host+"/registration", "-H", "Content-Type: application/json",
		"-d", `{"username":"georgio@email.com","password":"Admin123"}`)
	tok := run("-X", "POST", host+"/login", "-u", "georgio@email.com:Admin123")
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("login returned %q, want a JWT", tok)
	}
	video := media(t, testmedia.Good[0])
	var j job
	if err := json.Unmarshal([]byte(run("-X", "POST", "-F", "file=@"+video, "-H", "Authorization: Bearer "+tok, host+"/upload")), &j); err != nil {
		t.Fatal(err)
	}
	u := &user{t: t, server: host, dir: t.TempDir()}
	os.WriteFile(filepath.Join(u.dir, "tokens.json"), []byte(`{"`+host+`":"`+tok+`"}`), 0o600)
	r := u.run("", "--json", "wait", j.ID, "--timeout", "2m")
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.State != "done" {
		t.Fatalf("wait: %s", r)
	}
	mp3 := filepath.Join(t.TempDir(), "mp3_file.mp3")
	run("--output", mp3, "-X", "GET", "-H", "Authorization: Bearer "+tok, host+"/download?fid="+j.MP3FID)
	checkMP3(t, mp3, testmedia.Good[0].AudioDuration)
	if claims := run("-X", "POST", "-H", "Authorization: Bearer "+tok, host+"/validate"); !strings.Contains(claims, "georgio@email.com") {
		t.Fatalf("validate: %s", claims)
	}
}

// TestStandaloneResume: an upload killed at about half its parts, run again, sends only the
// parts that are missing: the whole video with --full, and its audio-only reduction (which
// v2m builds again, byte for byte) without.
func TestStandaloneResume(t *testing.T) {
	srv := startStandalone(t, t.TempDir(), "--part-size", "16KiB")
	video := media(t, testmedia.Sample{Name: "resume", Container: "mkv", Duration: 20 * time.Second, Width: 320, Height: 240,
		Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "1M"},
		Audio: []string{"-c:a", "aac"}, AudioDuration: 20 * time.Second})
	f, err := os.Open(video)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	lay, err := reduce.Reduce(t.Context(), f, st.Size())
	if err != nil {
		t.Fatalf("the video does not reduce: %v", err)
	}
	for _, tc := range []struct {
		name string
		size int64
		args []string
	}{
		{"whole", st.Size(), []string{"--full"}},
		{"audio only", lay.Size(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := int((tc.size + 16<<10 - 1) / (16 << 10))
			if parts < 10 {
				t.Fatalf("the upload has only %d parts", parts)
			}
			// A proxy between v2m and the server counts stored parts, and kills v2m at half of them.
			var stored atomic.Int32
			k := newKiller(t, srv.url(), func(r *http.Response) bool {
				return r.Request.Method == http.MethodPut && r.StatusCode == http.StatusNoContent && int(stored.Add(1)) >= parts/2
			})
			u := newUser(t, k.url, strings.ReplaceAll(tc.name, " ", "-")+"@example.com")
			u.signup()
			k.run(u, append([]string{"upload", video, "--parallel", "1"}, tc.args...)...)
			before := int(stored.Load())
			if before < parts/2 || before >= parts {
				t.Fatalf("killed after %d of %d parts", before, parts)
			}
			r := u.must("", append([]string{"upload", video, "--wait", "-o", filepath.Join(t.TempDir(), "resumed.mp3")}, tc.args...)...)
			if total := int(stored.Load()); total != parts {
				t.Fatalf("parts stored over both runs: %d, want %d (no part sent twice)", total, parts)
			}
			if len(u.jobs()) != 1 {
				t.Fatalf("resume made another job: %s", r)
			}
		})
	}
}

// TestStandaloneCrash: v2md killed with SIGKILL mid-conversion finishes the job after a restart
// on the same data directory.
//
// The ffmpeg it ran dies with it, and the work directory it left (with the user's audio in it)
// is gone once the server is back.
func TestStandaloneCrash(t *testing.T) {
	data, tmp := t.TempDir(), t.TempDir()
	srv := startStandalone(t, data, "--concurrency", "1", "--tmp-dir", tmp)
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	long := longSample
	r := u.must("", "upload", media(t, long))
	id := strings.TrimSpace(r.stdout)
	var ffmpegs []int
	waitUntil(t, time.Minute, "ffmpeg to run in a work dir", func() bool {
		ffmpegs = processesIn(tmp)
		return len(ffmpegs) > 0
	})
	left, _ := filepath.Glob(filepath.Join(tmp, "v2m-work-*"))
	if len(left) != 1 {
		t.Fatalf("work dirs while converting: %v, want one", left)
	}
	srv.stop(syscall.SIGKILL)
	if js := u.run("", "jobs"); js.code != 7 {
		t.Fatalf("server still answering after SIGKILL: %s", js)
	}
	waitUntil(t, 10*time.Second, "ffmpeg to die with v2md", func() bool { return len(processesIn(tmp)) == 0 })
	start(t, "standalone-restarted", srv.addr, nil, "standalone", "--addr", srv.addr, "--data", data, "--concurrency", "1", "--tmp-dir", tmp)
	if _, err := os.Stat(left[0]); !os.IsNotExist(err) {
		t.Errorf("the work dir of the killed conversion is still there after the restart: %v", err)
	}
	mp3 := filepath.Join(t.TempDir(), "after-crash.mp3")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if r := u.runCtx(ctx, "", "wait", id, "--timeout", "3m"); r.code != 0 {
		t.Fatalf("wait after restart: %s", r)
	}
	u.must("", "download", id, "-o", mp3)
	checkMP3(t, mp3, long.AudioDuration)
}

// TestStandaloneGracefulShutdown: SIGTERM mid-conversion lets the job finish (or hands it back)
// and exits 0; after a restart the job is done.
func TestStandaloneGracefulShutdown(t *testing.T) {
	data := t.TempDir()
	srv := startStandalone(t, data, "--concurrency", "1")
	u := newUser(t, srv.url(), "ann@example.com")
	u.signup()
	id := strings.TrimSpace(u.must("", "upload", media(t, longSample)).stdout)
	waitUntil(t, time.Minute, "the conversion to start", func() bool {
		for _, j := range u.jobs() {
			if j.ID == id && j.State == "converting" {
				return true
			}
		}
		return false
	})
	srv.stop(syscall.SIGTERM)
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, tail(srv.out.String(), 3000))
	}
	if !strings.Contains(srv.out.String(), "v2md standalone stopped") {
		t.Fatalf("no orderly stop:\n%s", tail(srv.out.String(), 3000))
	}
	start(t, "standalone-restarted", srv.addr, nil, "standalone", "--addr", srv.addr, "--data", data)
	if r := u.run("", "wait", id, "--timeout", "3m"); r.code != 0 {
		t.Fatalf("wait after restart: %s", r)
	}
}

// TestStandaloneLostCompleteAnswer: v2m dies after the server completed the upload but before
// it read the answer; running it again finds the job instead of uploading a second time.
func TestStandaloneLostCompleteAnswer(t *testing.T) {
	srv := startStandalone(t, t.TempDir())
	var puts atomic.Int32
	k := newKiller(t, srv.url(), func(r *http.Response) bool {
		if r.Request.Method == http.MethodPut {
			puts.Add(1)
		}
		return strings.HasSuffix(r.Request.URL.Path, "/complete")
	})
	u := newUser(t, k.url, "ann@example.com")
	u.signup()
	video := media(t, testmedia.Good[1])
	k.run(u, "upload", video)
	sent := puts.Load()
	r := u.must("", "upload", video)
	jobs := u.jobs()
	if len(jobs) != 1 || strings.TrimSpace(r.stdout) != jobs[0].ID {
		t.Fatalf("after the rerun: %d jobs, v2m printed %q", len(jobs), r.stdout)
	}
	if puts.Load() != sent {
		t.Fatalf("the rerun sent %d parts again", puts.Load()-sent)
	}
}

// killer is a proxy between v2m and a server that kills v2m with SIGKILL when a response
// matches, the way a crash or a lost connection would.
type killer struct {
	t      *testing.T
	url    string
	victim atomic.Pointer[os.Process]
}

func newKiller(t *testing.T, target string, kill func(*http.Response) bool) *killer {
	t.Helper()
	k := &killer{t: t}
	tu, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(tu)
	proxy.ModifyResponse = func(r *http.Response) error {
		if kill(r) {
			if p := k.victim.Load(); p != nil {
				p.Signal(syscall.SIGKILL)
			}
		}
		return nil
	}
	addr := freeAddr(t)
	srv := &http.Server{Addr: addr, Handler: proxy}
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })
	k.url = "http://" + addr
	return k
}

// run runs v2m as u through the proxy and requires that it was killed.
func (k *killer) run(u *user, args ...string) {
	k.t.Helper()
	v2m, _ := binaries(k.t)
	cmd := exec.Command(v2m, args...)
	cmd.Env = append(os.Environ(), "V2M_SERVER="+k.url, "V2M_CONFIG_DIR="+u.dir, "V2M_TOKEN=")
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	k.victim.Store(cmd.Process)
	err := cmd.Wait()
	k.victim.Store(nil)
	if err == nil {
		k.t.Fatalf("v2m %v finished before it was killed", args)
	}
}

// processesIn returns the processes whose working directory is under dir: the ffmpeg and
// ffprobe that a converter runs in its work dirs.
func processesIn(dir string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
	var pids []int
	for _, p := range procs {
		cwd, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(cwd, dir+"/") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
