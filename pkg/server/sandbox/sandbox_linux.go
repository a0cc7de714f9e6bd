package sandbox

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// ABI returns the Landlock ABI version that this kernel offers; 0 means none, and then
// programs run without Landlock.
func ABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// setProcAttr gives the program its own process group, killed whole when the command's
// context ends, and SIGKILL when the thread that started it dies (v2md killed with -9).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// confineAndExec applies sp's policy to the calling thread and executes the program from it.
// It returns only on failure.
func confineAndExec(sp spec, argv []string) error {
	// Landlock and no_new_privs apply to this thread; the exec below must come from it.
	runtime.LockOSThread()
	p := sp.Policy
	rules := []landlock.Rule{
		landlock.RODirs(p.ReadDirs...).IgnoreIfMissing(),
		landlock.ROFiles(p.ReadFiles...).IgnoreIfMissing(),
		landlock.RWDirs(p.WriteDirs...).IgnoreIfMissing(),
	}
	// Every right the running kernel knows is handled, so anything not granted above is
	// denied: other files, TCP and UDP sockets, signals and abstract sockets outside the domain.
	fd, flags, err := landlock.V11.BestEffort().NewRulesetFD(rules...)
	if err != nil {
		return fmt.Errorf("build landlock ruleset: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if fd >= 0 {
		if err := ll.LandlockRestrictSelf(fd, flags); err != nil {
			return fmt.Errorf("landlock_restrict_self: %w", err)
		}
		_ = unix.Close(fd)
	}
	if err := syscall.Exec(sp.Path, argv, sp.Env); err != nil {
		return fmt.Errorf("exec %s: %w", sp.Path, err)
	}
	return nil
}
