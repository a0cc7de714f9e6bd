//go:build linux

package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/v2m/v2m/internal/testserver"
)

// ttySession is v2m running in a pseudo-terminal of its own, as in a user's shell: stdin,
// stdout and stderr are the terminal, whose line discipline turns Ctrl-C into SIGINT.
type ttySession struct {
	t        *testing.T
	ptmx     *os.File // the side the user types on and reads
	tty      *os.File // v2m's side, kept open to look at its settings after v2m exits
	mu       sync.Mutex
	out      bytes.Buffer
	changed  chan struct{}
	exited   chan struct{}
	exitCode int
}

// ttyPatience bounds how long a test waits for v2m to show something or to exit; it is a limit
// for a test that fails, not a synchronisation.
const ttyPatience = 30 * time.Second

func startTTY(t *testing.T, env map[string]string, args ...string) *ttySession {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "V2M_SERVER=", "V2M_TOKEN=", "V2M_CONFIG_DIR=")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term := &ttySession{t: t, ptmx: ptmx, tty: tty, changed: make(chan struct{}, 1), exited: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			select {
			case term.changed <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		term.exitCode = cmd.ProcessState.ExitCode()
		close(term.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-term.exited:
		default:
			_ = cmd.Process.Kill()
			<-term.exited
		}
		tty.Close()
		ptmx.Close()
	})
	return term
}

// screen is everything v2m wrote so far.
func (term *ttySession) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// waitFor waits until the terminal shows s.
func (term *ttySession) waitFor(s string) {
	term.t.Helper()
	deadline := time.After(ttyPatience)
	for !strings.Contains(term.screen(), s) {
		select {
		case <-term.changed:
		case <-deadline:
			term.t.Fatalf("the terminal does not show %q; it shows %q", s, term.screen())
		}
	}
}

// waitForMatch waits until the terminal shows a match of the regular expression re.
func (term *ttySession) waitForMatch(re string) {
	term.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(ttyPatience)
	for !rx.MatchString(term.screen()) {
		select {
		case <-term.changed:
		case <-deadline:
			term.t.Fatalf("the terminal shows nothing like %s; it shows %q", re, term.screen())
		}
	}
}

// wait waits for v2m to exit and returns its exit code.
func (term *ttySession) wait() int {
	term.t.Helper()
	select {
	case <-term.exited:
		return term.exitCode
	case <-time.After(ttyPatience):
		term.t.Fatalf("v2m did not exit; the terminal shows %q", term.screen())
		return -1
	}
}

// echoes reports whether the terminal echoes what is typed.
func (term *ttySession) echoes() bool {
	term.t.Helper()
	tio, err := unix.IoctlGetTermios(int(term.tty.Fd()), unix.TCGETS)
	if err != nil {
		term.t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// TestCtrlCAtThePrompts: Ctrl-C at the password prompt, and at the email prompt, interrupts
// at once (no Enter follows) and exits 130, with the terminal echoing again; nothing is sent.
func TestCtrlCAtThePrompts(t *testing.T) {
	s := testserver.New(t, testserver.Options{})
	env := map[string]string{"V2M_SERVER": s.URL, "V2M_CONFIG_DIR": t.TempDir()}
	for _, tc := range []struct {
		name, prompt string
		args         []string
	}{
		{"password", "Password: ", []string{"register", "--email", "a@example.com"}},
		{"email", "Email: ", []string{"login"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			term := startTTY(t, env, tc.args...)
			term.waitFor(tc.prompt)
			if _, err := term.ptmx.Write([]byte("secr\x03")); err != nil {
				t.Fatal(err)
			}
			if code := term.wait(); code != 130 {
				t.Fatalf("exit %d, want 130; the terminal shows %q", code, term.screen())
			}
			term.waitFor("v2m: interrupted")
			if !term.echoes() {
				t.Fatal("the terminal no longer echoes what is typed")
			}
		})
	}
	if n := len(s.Requests(anyRoute)); n != 0 {
		t.Fatalf("%d requests after Ctrl-C at a prompt", n)
	}
}

// TestBarsAndTablesOnATerminal: convert of two files on a terminal draws one line per file
// while their jobs run, then the summary as a table with its header; jobs prints its table.
func TestBarsAndTablesOnATerminal(t *testing.T) {
	release := make(chan struct{})
	s := testserver.New(t, testserver.Options{PartSize: 1000, Convert: gatedConvert(release)})
	token := s.Signup(t, "a@example.com", "password1")
	dir := t.TempDir()
	var files []string
	for _, name := range []string{"first.mp4", "second-video.mp4"} {
		files = append(files, writeTo(t, filepath.Join(dir, name), []byte("hold: "+strings.Repeat(name, 300))))
	}
	out := filepath.Join(t.TempDir(), "mp3s") + "/"
	env := map[string]string{"V2M_SERVER": s.URL, "V2M_CONFIG_DIR": t.TempDir(), "V2M_TOKEN": token}
	term := startTTY(t, env, append([]string{"convert", "-o", out}, files...)...)
	// Both jobs are held by the converter until both lines are on the screen.
	term.waitForMatch(`first\.mp4 +converting`)
	term.waitForMatch(`second-video\.mp4 +converting`)
	close(release)
	if code := term.wait(); code != 0 {
		t.Fatalf("exit %d; the terminal shows %q", code, term.screen())
	}
	// What v2m wrote before it exited is read on: wait for the summary's last line.
	for _, want := range []string{"FILE  ", "JOB  ", "STATE  ", "RESULT", filepath.Join(out, "first.mp3"), filepath.Join(out, "second-video.mp3")} {
		term.waitFor(want)
	}
	if screen := term.screen(); strings.Contains(screen, "uploading first.mp4") || strings.Contains(screen, "\t") {
		t.Errorf("step lines or tabs among the bars: %q", screen)
	}

	term = startTTY(t, env, "jobs")
	if code := term.wait(); code != 0 {
		t.Fatalf("jobs: exit %d; %q", code, term.screen())
	}
	term.waitFor("PROGRESS  FILE")
}
