package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Running the children of lock and watch, and stopping on SIGINT/SIGTERM.

// childCommand is how Consul runs a child (agent/exec): through the shell
// ($SHELL, else /bin/sh) with -c and the arguments joined by spaces, or,
// with shell false, the arguments as they are.
func childCommand(e *env, args []string, shell bool) *exec.Cmd {
	if !shell {
		return exec.Command(args[0], args[1:]...)
	}
	sh := e.getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	return exec.Command(sh, "-c", strings.Join(args, " "))
}

// childWaitDelay bounds how long a child's output is copied after it
// exited, when something it started keeps the pipe open.
const childWaitDelay = time.Second

// child is a started child process.
type child struct {
	cmd *exec.Cmd
	// group is set when the child leads a process group of its own, so a
	// stop reaches whatever it started.
	group bool
	// done is closed once the child exited and was waited for; err is
	// Wait's error then.
	done chan struct{}
	err  error
}

// startChild starts cmd, in a process group of its own when group is set,
// and waits for it in the background.
func startChild(cmd *exec.Cmd, group bool) (*child, error) {
	if group {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.WaitDelay = childWaitDelay
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, group: group, done: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		close(ch.done)
	}()
	return ch, nil
}

// signal sends sig to the child (its whole group when it has one). A child
// that is gone already is not an error.
func (ch *child) signal(sig syscall.Signal) error {
	var err error
	if ch.group {
		err = syscall.Kill(-ch.cmd.Process.Pid, sig)
	} else {
		err = ch.cmd.Process.Signal(sig)
	}
	if errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// stop ends the child: SIGTERM, then SIGKILL once grace passed without
// an exit. It returns once the child is gone.
func (ch *child) stop(grace time.Duration, ui consulUI, say func(string, ...any)) {
	pid := ch.cmd.Process.Pid
	say("Terminating child pid %d", pid)
	if err := ch.signal(syscall.SIGTERM); err != nil {
		ui.error("Failed to terminate %d: %v", pid, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-ch.done:
		say("Child terminated")
		return
	case <-timer.C:
		say("Child did not exit after grace period of %v", grace)
	}
	say("Killing child pid %d", pid)
	if err := ch.signal(syscall.SIGKILL); err != nil {
		ui.error("Failed to kill %d: %v", pid, err)
	}
	<-ch.done
}

// isTerminal reports whether r is a terminal (a character device): a
// child that reads it must stay in the foreground process group.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// shutdownContext is done when the command is to stop: when e.shutdown
// is, if set, else on SIGINT or SIGTERM. stop ends the listening.
func shutdownContext(e *env) (ctx context.Context, stop context.CancelFunc) {
	if e.shutdown != nil {
		return e.shutdown, func() {}
	}
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// lockedWriter serializes writes from the command and its child's output
// copier when the output is not a file (a file is shared as it is, so
// the child writes to it directly).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sharedOutputs returns stdout and stderr for a command that runs
// children.
func sharedOutputs(e *env) (stdout, stderr io.Writer) {
	stdout, stderr = e.stdout, e.stderr
	mu := new(sync.Mutex)
	if _, ok := stdout.(*os.File); !ok {
		stdout = lockedWriter{mu, stdout}
	}
	if _, ok := stderr.(*os.File); !ok {
		stderr = lockedWriter{mu, stderr}
	}
	return stdout, stderr
}
