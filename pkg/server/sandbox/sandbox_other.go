//go:build !linux

package sandbox

import (
	"errors"
	"os/exec"
)

// ABI returns 0: Landlock exists on Linux only.
func ABI() int { return 0 }

func setProcAttr(*exec.Cmd) {}

func confineAndExec(spec, []string) error {
	return errors.New("confined programs need Linux")
}
