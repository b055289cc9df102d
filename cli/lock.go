package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// `lock` is Consul's command/lock: it holds a lock (-n 1) or a semaphore
// slot (-n > 1) on a KV prefix while a child runs, with Consul's api.Lock
// and api.Semaphore on the same keys, so beacon and Consul clients exclude
// each other; the child is stopped when the lock is lost.

// pacing is the timing of lock and watch (tests make it faster): the pause
// before the monitor of a held lock retries a failed read, how long a child
// has between SIGTERM and SIGKILL, the TTL of the lock's session.
type pacing struct {
	monitorRetry, killGrace time.Duration
	sessionTTL              string
}

// defaultPacing is Consul's lock command's.
var defaultPacing = pacing{monitorRetry: time.Second, killGrace: 5 * time.Second, sessionTTL: api.DefaultLockSessionTTL}

var lockCommand = &command{name: "lock", synopsis: "Execute a command holding a lock",
	help: "beacon lock [options] PREFIX CHILD...", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("child-exit-code", false, "Exit 2 if the child fails; otherwise the child's failure is not propagated.")
		fs.Int("n", 1, "Limit on the number of concurrent lock holders: above 1, a semaphore instead of a lock.")
		fs.Int("monitor-retry", 3, "Times to retry, 1s apart, when the agent fails (500) while monitoring the lock.")
		fs.String("name", "", "Name of the lock session; generated from the child command if not given.")
		fs.Bool("pass-stdin", false, "Pass stdin to the child process.")
		fs.Bool("shell", true, "Use a shell to run the command (can set a custom shell via the SHELL environment variable).")
		timeout := fs.Duration("timeout", 0, "Maximum time to wait to acquire the lock, as a duration like \"1s\" or \"3h\".")
		fs.DurationVar(timeout, "try", 0, "DEPRECATED. Use -timeout instead.")
		fs.Bool("verbose", false, "Enable verbose (debugging) output.")
		serverFlags(fs, false)
	},
	run: runLock,
}

func runLock(e *env, fs *flag.FlagSet, args []string) int {
	limit, retries, timeout := flagOf[int](fs, "n"), flagOf[int](fs, "monitor-retry"), flagOf[time.Duration](fs, "timeout")
	say := func(format string, args ...any) {
		if flagOf[bool](fs, "verbose") {
			e.info(format, args...)
		}
	}
	switch {
	case limit <= 0:
		return e.fail("Lock holder limit must be positive")
	case len(args) < 2:
		return e.fail("Key prefix and child command must be specified")
	case timeout < 0:
		return e.fail("Timeout must be positive")
	case retries < 0:
		return e.fail("Number for 'monitor-retry' must be >= 0")
	}
	prefix, childArgs := strings.TrimPrefix(args[0], "/"), args[1:]
	name := cmp.Or(flagString(fs, "name"),
		fmt.Sprintf("Consul lock for '%s' at '%s'", strings.Join(childArgs, " "), prefix))

	shutdown, stopListening := shutdownContext(e)
	defer stopListening()
	c, err := newClient(e, fs, clientOptions{abort: shutdown}) // whose blocking reads a shutdown ends
	if err != nil {
		return usageErr(e, "%v", err)
	}
	defer c.close()
	if _, err := c.Agent().Self(); err != nil {
		return e.fail("Error querying Consul agent: %s", decoded("/v1/agent/self", err))
	}
	behavior := ""
	if limit == 1 {
		say("Setting up lock at path: %s", path.Join(prefix, api.DefaultSemaphoreKey))
	} else {
		say("Setting up semaphore (limit %d) at prefix: %s", limit, prefix)
		behavior = api.SessionBehaviorDelete // a contender's key goes with it
	}
	// The session is made here, not by api.Lock, which would end it in the
	// background, perhaps after the command is gone. RenewPeriodic renews
	// it every half TTL until stopRenewing closes, then destroys it.
	ttl := e.pace.sessionTTL
	session, _, err := c.Session().Create(&api.SessionEntry{Name: name, TTL: ttl, Behavior: behavior}, nil)
	if err != nil {
		return e.fail("Lock acquisition failed: failed to create session: %s", err)
	}
	stopRenewing, renewalDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(renewalDone)
		c.Session().RenewPeriodic(ttl, session, nil, stopRenewing)
	}()
	defer func() {
		close(stopRenewing)
		<-renewalDone
	}()
	l, err := newLocker(c, prefix, limit, timeout, api.LockOptions{Session: session, MonitorRetries: retries,
		MonitorRetryTime: e.pace.monitorRetry})
	if err != nil {
		return e.fail("Lock setup failed: %s", err)
	}

	say("Attempting lock acquisition")
	lost, err := l.acquire(shutdown.Done())
	switch {
	case lost == nil && (err == nil || shutdown.Err() != nil):
		return e.fail("Shutdown triggered or timeout during lock acquisition")
	case lost == nil:
		return e.fail("Lock acquisition failed: %s", err)
	}
	childCode := exitOK
	if shutdown.Err() != nil {
		e.fail("Shutdown triggered during lock acquisition")
	} else {
		childCode = superviseChild(e, fs, say, childArgs, shutdown, lost)
	}

	if err := l.release(); err != nil {
		return e.fail("Lock release failed: %s", err)
	}
	switch err := l.destroy(); {
	case err == l.inUse:
		say("Cleanup aborted, lock in use")
	case err != nil:
		return e.fail("Lock cleanup failed: %s", err)
	default:
		say("Cleanup succeeded")
	}
	if flagOf[bool](fs, "child-exit-code") {
		return childCode
	}
	return exitOK
}

// locker is what lock uses of an api.Lock or an api.Semaphore (their
// Lock/Acquire, Unlock/Release, Destroy and its error when the lock is in
// use).
type locker struct {
	acquire          func(stop <-chan struct{}) (<-chan struct{}, error)
	release, destroy func() error
	inUse            error
}

// newLocker sets up api.Lock on PREFIX/.lock for a limit of 1, else
// api.Semaphore on PREFIX; a timeout makes acquisition one attempt.
func newLocker(c *client, prefix string, limit int, timeout time.Duration, opts api.LockOptions) (locker, error) {
	if limit == 1 {
		opts.Key, opts.LockTryOnce, opts.LockWaitTime = path.Join(prefix, api.DefaultSemaphoreKey), timeout > 0, timeout
		l, err := c.LockOpts(&opts)
		if err != nil {
			return locker{}, err
		}
		return locker{acquire: l.Lock, release: l.Unlock, destroy: l.Destroy, inUse: api.ErrLockInUse}, nil
	}
	s, err := c.SemaphoreOpts(&api.SemaphoreOptions{Prefix: prefix, Limit: limit, Session: opts.Session,
		MonitorRetries: opts.MonitorRetries, MonitorRetryTime: opts.MonitorRetryTime, SemaphoreTryOnce: timeout > 0,
		SemaphoreWaitTime: timeout})
	if err != nil {
		return locker{}, err
	}
	return locker{acquire: s.Acquire, release: s.Release, destroy: s.Destroy, inUse: api.ErrSemaphoreInUse}, nil
}

// lockChildFailed is Consul's exit code, with -child-exit-code, of a lock
// whose child failed.
const lockChildFailed = 2

// superviseChild runs the child until it exits, or stops it once the lock
// is lost or the command is told to stop. It returns 2 if the child failed
// on its own, else 0.
func superviseChild(e *env, fs *flag.FlagSet, say func(string, ...any), args []string, shutdown context.Context,
	lost <-chan struct{}) int {
	say("Starting handler")
	cmd := childCommand(e, args, flagOf[bool](fs, "shell"))
	cmd.Env = append(os.Environ(), "CONSUL_LOCK_HELD=true", "BEACON_LOCK_HELD=true")
	cmd.Stdout, cmd.Stderr = e.stdout, e.stderr
	group := true
	if flagOf[bool](fs, "pass-stdin") {
		say("Stdin passed to handler process")
		// A child reading the terminal must stay in its foreground process
		// group; it is then stopped on its own, not with what it started.
		cmd.Stdin, group = e.stdin, !isTerminal(e.stdin)
	}
	ch, err := startChild(cmd, group)
	if err != nil {
		e.fail("Error starting handler: %s", err)
		say("Child terminated, releasing lock")
		return lockChildFailed
	}
	select {
	case <-ch.done:
		if ch.err != nil {
			e.fail("Error running handler: %s", ch.err)
		}
		say("Child terminated, releasing lock")
		if ch.err != nil {
			return lockChildFailed
		}
		return exitOK
	case <-shutdown.Done():
	case <-lost:
	}
	if shutdown.Err() != nil { // also when it made the monitor give the lock up
		say("Shutdown triggered, killing child")
	} else {
		say("Lock lost, killing child")
	}
	ch.stop(e, say)
	if ch.err != nil {
		e.fail("Error running handler: %s", ch.err)
	}
	return exitOK
}

// The children of lock and watch, and stopping on SIGINT or SIGTERM.

// childCommand is how Consul runs a child (agent/exec): through the shell
// ($SHELL, else /bin/sh) with -c and the arguments joined by spaces, or,
// with shell false, the arguments as they are.
func childCommand(e *env, args []string, shell bool) *exec.Cmd {
	if !shell {
		return exec.Command(args[0], args[1:]...)
	}
	return exec.Command(cmp.Or(e.getenv("SHELL"), "/bin/sh"), "-c", strings.Join(args, " "))
}

// childWaitDelay bounds how long a child's output is copied after it
// exited, when something it started keeps the pipe open.
const childWaitDelay = time.Second

// child is a started child process: group when it leads a process group
// of its own, so that a stop reaches whatever it started; done is closed
// once it exited and was waited for, with Wait's error in err.
type child struct {
	cmd   *exec.Cmd
	group bool
	done  chan struct{}
	err   error
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
func (ch *child) stop(e *env, say func(string, ...any)) {
	grace, pid := e.pace.killGrace, ch.cmd.Process.Pid
	say("Terminating child pid %d", pid)
	if err := ch.signal(syscall.SIGTERM); err != nil {
		e.fail("Failed to terminate %d: %v", pid, err)
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
		e.fail("Failed to kill %d: %v", pid, err)
	}
	<-ch.done
}

// isTerminal reports whether r is a terminal (a character device): a
// child that reads it must stay in the foreground process group.
func isTerminal(r io.Reader) bool {
	f, _ := r.(*os.File) // Stat of a nil *os.File fails
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
