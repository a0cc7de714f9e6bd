// Package e2e runs v2m's binaries as a user and an operator would: v2md as server processes
// and v2m as a subprocess, against real ffmpeg and, for the distributed tests, real MariaDB,
// RabbitMQ, FerretDB and Mailpit.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/internal/testmedia"
)

var bins struct {
	once      sync.Once
	dir       string
	err       error
	v2m, v2md string
}

// binaries builds v2m and v2md once per test run.
func binaries(t *testing.T) (v2m, v2md string) {
	t.Helper()
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "v2m-e2e-bin-")
		if bins.err != nil {
			return
		}
		for _, b := range []string{"v2m", "v2md"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(bins.dir, b), "github.com/v2m/v2m/cmd/"+b).CombinedOutput()
			if err != nil {
				bins.err = fmt.Errorf("build %s: %v\n%s", b, err, out)
				return
			}
		}
		bins.v2m, bins.v2md = filepath.Join(bins.dir, "v2m"), filepath.Join(bins.dir, "v2md")
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.v2m, bins.v2md
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

func mediaDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(testmedia.DirEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "v2m-test-media")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func media(t *testing.T, s testmedia.Sample) string {
	t.Helper()
	testenv.Tool(t, "ffmpeg")
	return testmedia.MustGenerate(t, mediaDir(t), s)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running v2md process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *syncBuffer
	addr    string
	metrics string // --metrics-addr, a port of its own: processes of one test never collide
	done    chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// start runs the v2md service command args, with a free --metrics-addr, and waits until addr
// answers /healthz.
func start(t *testing.T, name, addr string, env []string, args ...string) *proc {
	t.Helper()
	_, v2md := binaries(t)
	p := &proc{name: name, out: &syncBuffer{}, addr: addr, metrics: freeAddr(t), done: make(chan struct{})}
	p.cmd = exec.Command(v2md, append(args, "--metrics-addr", p.metrics)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() || os.Getenv("V2M_E2E_LOGS") != "" {
			t.Logf("--- %s output:\n%s", p.name, tail(p.out.String(), 6000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited at start:\n%s", name, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer /healthz:\n%s", name, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) url() string { return "http://" + p.addr }

// stop signals the process and waits for it to exit.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// user is a v2m user with its own config dir.
type user struct {
	t      *testing.T
	server string
	email  string
	dir    string
	token  string   // V2M_TOKEN: empty unless the user scripts with a token
	env    []string // more environment for v2m, after the harness's own
}

func newUser(t *testing.T, server, email string) *user {
	return &user{t: t, server: server, email: email, dir: t.TempDir()}
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// run runs v2m with args (and stdin) as the user.
func (u *user) run(stdin string, args ...string) result {
	u.t.Helper()
	return u.runCtx(context.Background(), stdin, args...)
}

func (u *user) runCtx(ctx context.Context, stdin string, args ...string) result {
	u.t.Helper()
	v2m, _ := binaries(u.t)
	cmd := exec.CommandContext(ctx, v2m, args...)
	cmd.Env = append(os.Environ(), "V2M_SERVER="+u.server, "V2M_CONFIG_DIR="+u.dir, "V2M_TOKEN="+u.token)
	cmd.Env = append(cmd.Env, u.env...)
	cmd.Dir = u.dir // a download without -o lands in the user's temp dir, never in the source tree
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func (u *user) must(stdin string, args ...string) result {
	u.t.Helper()
	r := u.run(stdin, args...)
	if r.code != 0 {
		u.t.Fatalf("v2m %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// signup registers and logs in.
func (u *user) signup() {
	u.t.Helper()
	u.must("s3cret-password\n", "register", "--email", u.email, "--password-stdin")
	u.must("s3cret-password\n", "login", "--email", u.email, "--password-stdin")
}

type job struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Progress int    `json:"progress"`
	Error    string `json:"error"`
	Filename string `json:"filename"`
	MP3FID   string `json:"mp3_fid"`
}

func (u *user) jobs() []job {
	u.t.Helper()
	var out struct{ Jobs []job }
	r := u.must("", "jobs", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		u.t.Fatalf("jobs --json: %v\n%s", err, r.stdout)
	}
	return out.Jobs
}

// duration probes a media file's duration.
func duration(t *testing.T, path string) time.Duration {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:format=format_name", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p struct {
		Format struct {
			Duration   string `json:"duration"`
			FormatName string `json:"format_name"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if p.Format.FormatName != "mp3" {
		t.Fatalf("%s is %q, not mp3", path, p.Format.FormatName)
	}
	secs, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return time.Duration(secs * float64(time.Second))
}

// checkMP3 fails unless path is an MP3 lasting about want.
func checkMP3(t *testing.T, path string, want time.Duration) {
	t.Helper()
	got := duration(t, path)
	if diff := got - want; diff < -time.Second || diff > time.Second {
		t.Fatalf("%s lasts %v, want %v", path, got, want)
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
