package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
)

// scriptWaitDelay bounds how long a finished or killed script's output pipes
// are drained: a grandchild that left the process group may hold them open.
const scriptWaitDelay = time.Second

// newScriptProbe runs ScriptArgs as Consul's CheckMonitor does: exit 0 is
// passing, 1 warning, anything else critical; the output is stdout and
// stderr together, its last 4 KiB kept. A run past the timeout has its whole
// process group killed and is critical.
func newScriptProbe(s spec, logger hclog.Logger) probe {
	args := s.def.ScriptArgs
	return func(ctx context.Context) (string, string) {
		runCtx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()

		cmd := exec.CommandContext(runCtx, args[0], args[1:]...)
		output := newTailBuffer(outputMaxSize)
		cmd.Stdout = output
		cmd.Stderr = output
		cmd.WaitDelay = scriptWaitDelay
		var killed atomic.Bool
		killProcessGroupOnCancel(cmd, &killed)

		err := cmd.Run()
		if killed.Load() {
			if ctx.Err() != nil {
				return state.HealthCritical, "check removed while running"
			}
			logger.Warn("Timed out running check", "timeout", s.timeout.String())
			msg := fmt.Sprintf("Timed out (%s) running check", s.timeout)
			if out := output.captured(); out != "" {
				msg += "\n\n" + out
			}
			return state.HealthCritical, msg
		}
		// ErrWaitDelay: the script itself exited 0, but a child it left in
		// the background still holds its output open. Its exit status is
		// the result; waiting for the child (Consul would, until the
		// timeout) would only delay it.
		if err == nil || errors.Is(err, exec.ErrWaitDelay) {
			return state.HealthPassing, output.captured()
		}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == 1 {
				return state.HealthWarning, output.captured()
			}
			return state.HealthCritical, output.captured()
		}
		// It did not start (no such program, no permission), or its output
		// could not be drained.
		logger.Error("Check failed to invoke", "error", err)
		return state.HealthCritical, err.Error()
	}
}
