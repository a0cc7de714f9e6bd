package sandbox_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server/sandbox"
)

// The test binary plays three roles besides running the tests: the Launcher's helper
// (sandbox.Main), a program run confined (probe: it tries what the environment says and
// reports), and a parent that starts a confined program and waits to be killed.
const (
	probeEnv  = "SANDBOX_TEST_PROBE"  // read:PATH, write:PATH or dial:ADDR
	parentEnv = "SANDBOX_TEST_PARENT" // the program the parent starts confined
)

func TestMain(m *testing.M) {
	sandbox.Main()
	if p := os.Getenv(probeEnv); p != "" {
		os.Exit(probe(p))
	}
	if prog := os.Getenv(parentEnv); prog != "" {
		os.Exit(parent(prog))
	}
	os.Exit(m.Run())
}

// probe does what p says and exits 0 when it worked, 3 when it was denied, 4 on another error.
func probe(p string) int {
	verb, arg, _ := strings.Cut(p, ":")
	var err error
	switch verb {
	case "read":
		_, err = os.ReadFile(arg)
	case "write":
		err = os.WriteFile(arg, []byte("x"), 0o600)
	case "dial":
		var c net.Conn
		if c, err = net.DialTimeout("tcp", arg, 5*time.Second); err == nil {
			c.Close()
		}
	}
	fmt.Fprintln(os.Stderr, err)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return 3
	default:
		return 4
	}
}

// parent starts prog confined, prints its pid, and waits until it is killed.
func parent(prog string) int {
	l, err := sandbox.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd, err := l.Command(context.Background(), sandbox.System(), "/", nil, prog, "600")
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(cmd.Process.Pid)
	_ = cmd.Wait()
	return 0
}

func needLandlock(t *testing.T, abi int) {
	t.Helper()
	if got := sandbox.ABI(); got < abi {
		testenv.Missing(t, "the kernel offers Landlock ABI %d, the test needs %d", got, abi)
	}
}

// runProbe runs the test binary confined by p as a probe of what, and returns its exit code.
func runProbe(t *testing.T, p sandbox.Policy, what string) int {
	t.Helper()
	l, err := sandbox.New()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := l.Command(t.Context(), sandbox.System().Merge(p), t.TempDir(), []string{probeEnv + "=" + what}, self)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run probe: %v", err)
	}
	code := cmd.ProcessState.ExitCode()
	t.Logf("probe %s: exit %d: %s", what, code, strings.TrimSpace(string(out)))
	if code == sandbox.ExitSetup {
		t.Fatalf("the helper could not confine the probe: %s", out)
	}
	return code
}

func TestFilesOutsideThePolicyCannotBeRead(t *testing.T) {
	needLandlock(t, 1)
	dir := t.TempDir()
	allowed := filepath.Join(dir, "input")
	sibling := filepath.Join(dir, "other-users-video")
	for _, f := range []string{allowed, sibling} {
		if err := os.WriteFile(f, []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := sandbox.Policy{ReadFiles: []string{allowed}}
	if code := runProbe(t, p, "read:"+allowed); code != 0 {
		t.Errorf("reading the allowed file: exit %d, want 0", code)
	}
	for _, f := range []string{sibling, "/etc/passwd", "/etc/hostname"} {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if code := runProbe(t, p, "read:"+f); code != 3 {
			t.Errorf("reading %s: exit %d, want 3 (permission denied)", f, code)
		}
	}
}

func TestWritesOnlyInWriteDirs(t *testing.T) {
	needLandlock(t, 1)
	work, other := t.TempDir(), t.TempDir()
	p := sandbox.Policy{WriteDirs: []string{work}}
	if code := runProbe(t, p, "write:"+filepath.Join(work, "out.mp3")); code != 0 {
		t.Errorf("writing in the work dir: exit %d, want 0", code)
	}
	if code := runProbe(t, p, "write:"+filepath.Join(other, "out.mp3")); code != 3 {
		t.Errorf("writing elsewhere: exit %d, want 3", code)
	}
	if _, err := os.Stat(filepath.Join(other, "out.mp3")); err == nil {
		t.Error("a file was created outside the work dir")
	}
}

func TestNoTCP(t *testing.T) {
	needLandlock(t, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if code := runProbe(t, sandbox.Policy{}, "dial:"+ln.Addr().String()); code != 3 {
		t.Errorf("TCP connect from a confined program: exit %d, want 3 (denied)", code)
	}
}

// TestUnconfinedControl shows that the probe itself can read, write and dial, so that the
// denials above come from the policy.
func TestUnconfinedControl(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := sandbox.Unconfined(t.Context(), t.TempDir(), []string{probeEnv + "=read:" + f}, self)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unconfined probe: %v: %s", err, out)
	}
}

// TestProgramDiesWithItsParent: a confined program started by a process that is killed with
// SIGKILL does not outlive it.
func TestProgramDiesWithItsParent(t *testing.T) {
	sleep := testenv.Tool(t, "sleep")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	par := exec.Command(self)
	par.Env = append(os.Environ(), parentEnv+"="+sleep)
	out, err := par.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := par.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		par.Process.Kill()
		t.Fatalf("read child pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the confined program is not running: %v", err)
	}
	if err := par.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = par.Wait()
	// The kernel delivers the parent-death signal as the parent exits; the child may take a
	// moment to be reaped by init. Wait for it to be gone, with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the confined program %d outlived its parent by 10 s", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
