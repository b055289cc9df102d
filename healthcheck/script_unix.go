//go:build unix

package healthcheck

import (
	"errors"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
)

// killProcessGroupOnCancel starts cmd in a process group of its own and
// makes the cancellation of its context kill the whole group, so that a
// shell's children die with it (Consul's KillCommandSubtree).
func killProcessGroupOnCancel(cmd *exec.Cmd, killed *atomic.Bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		if err == nil {
			killed.Store(true)
		}
		return err
	}
}
