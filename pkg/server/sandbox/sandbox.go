// Package sandbox runs a program confined by Linux's Landlock LSM
// (github.com/landlock-lsm/go-landlock), so that it can read only the files and write only
// the directories that a Policy names, and can open no TCP connection.
//
// Landlock restricts the thread that asks for it and whatever that thread executes. A Go
// program cannot ask for it between fork and exec, so a Launcher starts the current
// executable again as a small helper: the helper's main calls Main, which applies the policy
// to its own thread and then executes the real program in place, keeping the process id. The
// program thus starts confined, before it reads its first byte of input.
//
// Where the kernel has no Landlock, or an older version of it, the helper applies what the
// kernel offers (best effort) and ABI says how much that is. The Launcher also gives every
// program a parent-death signal and a process group of its own, so that it never outlives
// the process that started it.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// specEnv carries the helper's instructions from Command to Main. Main only acts when it is set.
const specEnv = "V2M_SANDBOX_SPEC"

// ExitSetup is the helper's exit code when it could not confine or start the program: a
// fault of the machine, never of the program's input.
const ExitSetup = 125

// Policy says what a confined program may touch. Paths that do not exist are left out.
type Policy struct {
	// ReadFiles are files the program may read.
	ReadFiles []string `json:"read_files,omitempty"`
	// ReadDirs are directories whose files the program may read and execute: its own
	// installation and the system's libraries.
	ReadDirs []string `json:"read_dirs,omitempty"`
	// WriteDirs are directories in which the program may read, create, write and remove files.
	WriteDirs []string `json:"write_dirs,omitempty"`
}

// spec is what the helper receives.
type spec struct {
	Policy Policy   `json:"policy"`
	Path   string   `json:"path"`
	Env    []string `json:"env"`
}

// Launcher starts confined programs.
type Launcher struct {
	self string // the executable whose main calls Main
}

// New returns a Launcher that uses the running executable as its helper. That executable's
// main function must call Main before anything else.
func New() (*Launcher, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox: find own executable: %w", err)
	}
	return &Launcher{self: self}, nil
}

// Command returns a command that runs the program at path with args, confined by p, in dir,
// with env as its whole environment. Canceling ctx kills the program and anything it started.
func (l *Launcher) Command(ctx context.Context, p Policy, dir string, env []string, path string, args ...string) (*exec.Cmd, error) {
	abs, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if abs, err = filepath.Abs(abs); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	// The program must be able to execute itself and load its libraries.
	p.ReadDirs = append(append([]string{}, p.ReadDirs...), filepath.Dir(abs))
	b, err := json.Marshal(spec{Policy: p, Path: abs, Env: env})
	if err != nil {
		return nil, fmt.Errorf("sandbox: encode policy: %w", err)
	}
	cmd := exec.CommandContext(ctx, l.self)
	cmd.Args = append([]string{abs}, args...) // what ps shows, before and after the exec
	cmd.Env = []string{specEnv + "=" + string(b)}
	cmd.Dir = dir
	configure(cmd)
	return cmd, nil
}

// Unconfined returns a command like Command's but without Landlock: the same directory,
// environment, process group and parent-death signal. It serves where no helper is wired in.
func Unconfined(ctx context.Context, dir string, env []string, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = dir
	configure(cmd)
	return cmd
}

// configure sets what every started program gets: its own process group, killed whole when
// the context ends, and a parent-death signal (platform-specific, see proc_*.go).
func configure(cmd *exec.Cmd) {
	setProcAttr(cmd)
	cmd.WaitDelay = 5 * time.Second
}

// Main makes the running executable serve as a Launcher's helper: when the process was started
// by Command, it confines itself and executes the program, and never returns. Otherwise it
// returns at once. Call it first thing in main, and in TestMain of tests that use a Launcher.
func Main() {
	raw, ok := os.LookupEnv(specEnv)
	if !ok {
		return
	}
	var sp spec
	if err := json.Unmarshal([]byte(raw), &sp); err != nil {
		fail(fmt.Errorf("decode policy: %w", err))
	}
	if sp.Path == "" {
		fail(errors.New("no program to run"))
	}
	fail(confineAndExec(sp, os.Args))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
	os.Exit(ExitSetup)
}

// System returns the policy every dynamically linked program needs to start on a Debian-like
// system: its libraries, the loader's cache, and the few kernel files that the C library and
// ffmpeg's CPU detection read. Nothing else under /etc, /home, /var, /tmp or /srv is readable.
func System() Policy {
	return Policy{
		ReadDirs:  []string{"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/sys/devices/system", "/proc/self"},
		ReadFiles: []string{"/etc/ld.so.cache", "/proc/filesystems", "/dev/null", "/dev/urandom"},
	}
}

// Merge returns p with q's paths added.
func (p Policy) Merge(q Policy) Policy {
	return Policy{
		ReadFiles: append(append([]string{}, p.ReadFiles...), q.ReadFiles...),
		ReadDirs:  append(append([]string{}, p.ReadDirs...), q.ReadDirs...),
		WriteDirs: append(append([]string{}, p.WriteDirs...), q.WriteDirs...),
	}
}
