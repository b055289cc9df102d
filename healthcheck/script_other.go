//go:build !unix

package healthcheck

import (
	"os/exec"
	"sync/atomic"
)

// killProcessGroupOnCancel kills only the process itself where there are no
// Unix process groups.
func killProcessGroupOnCancel(cmd *exec.Cmd, killed *atomic.Bool) {
	cmd.Cancel = func() error {
		err := cmd.Process.Kill()
		if err == nil {
			killed.Store(true)
		}
		return err
	}
}
