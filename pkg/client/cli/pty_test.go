package cli_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/v2m/v2m/internal/testserver"
	"github.com/v2m/v2m/pkg/client/cli"
)

var v2mBinary struct {
	once sync.Once
	path string
	err  error
}

// buildV2M builds the real v2m command once per test run.
func buildV2M(t *testing.T) string {
	t.Helper()
	v2mBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "v2m-cli-bin-")
		if err != nil {
			v2mBinary.err = err
			return
		}
		v2mBinary.path = filepath.Join(dir, "v2m")
		out, err := exec.Command("go", "build", "-o", v2mBinary.path, "github.com/v2m/v2m/cmd/v2m").CombinedOutput()
		if err != nil {
			v2mBinary.err = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if v2mBinary.err != nil {
		t.Fatal(v2mBinary.err)
	}
	return v2mBinary.path
}

// terminal is the output of a process on a pseudo-terminal.
type terminal struct {
	mu    sync.Mutex
	out   strings.Builder
	more  chan struct{} // a token after each read
	ended chan struct{} // closed when the terminal has nothing more to read
}

func (term *terminal) text() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// waitFor waits until the output has s after position from, and returns where it ends.
func (term *terminal) waitFor(t *testing.T, s string, from int) int {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		out := term.text()
		if i := strings.Index(out[from:], s); i >= 0 {
			return from + i + len(s)
		}
		select {
		case <-term.more:
		case <-term.ended:
			t.Fatalf("the terminal closed without %q after byte %d:\n%q", s, from, term.text()[from:])
		case <-deadline:
			t.Fatalf("no %q after byte %d on the terminal:\n%q", s, from, term.text()[from:])
		}
	}
}

// TestWaitOnTerminalShowsProgressAndResumeHint runs the real v2m binary on a pseudo-terminal:
// `v2m wait` draws the conversion's bar as the server's progress rises, and Ctrl-C (SIGINT)
// exits 130 and says how to wait again.
func TestWaitOnTerminalShowsProgressAndResumeHint(t *testing.T) {
	bin := buildV2M(t)
	steps := make(chan int)
	s := testserver.New(t, testserver.Options{Convert: testserver.Stepped(steps)})
	tok := s.Signup(t, "ann@example.com", "password1")
	job := addJob(t, sdk(t, s, tok), "talk.mp4", []byte("a video"), false)

	cmd := exec.Command(bin, "wait", job.ID)
	cmd.Env = append(os.Environ(), "V2M_SERVER="+s.URL, "V2M_TOKEN="+tok, "V2M_CONFIG_DIR="+t.TempDir())
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	term := &terminal{more: make(chan struct{}, 1), ended: make(chan struct{})}
	go func() {
		defer close(term.ended)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			select {
			case term.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	at := term.waitFor(t, "converting", 0)
	for _, p := range []int{30, 70} {
		steps <- p
		at = term.waitFor(t, fmt.Sprintf("%d%%", p), at)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-exited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("v2m wait did not exit after SIGINT:\n%q", term.text())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != cli.ExitInterrupted {
		t.Fatalf("v2m wait ended with %v, want exit %d:\n%q", err, cli.ExitInterrupted, term.text())
	}
	term.waitFor(t, "goes on on the server: run 'v2m wait "+job.ID+"' to wait for it again", at)
}
