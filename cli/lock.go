package cli

import (
	"flag"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// `lock` is Consul's command/lock: it holds a lock (-n 1) or a semaphore
// slot (-n > 1) on a KV prefix while a child runs, with Consul's api.Lock
// and api.Semaphore on the same keys (PREFIX/.lock, and a contender key
// per holder), so beacon and Consul clients exclude each other. What is
// its own is the supervision of the child: stopped when the lock is lost
// or the command interrupted.

// defaultMonitorRetries is how many 500s (or network errors) in a row the
// monitor of a held lock rides out before taking it for lost.
const defaultMonitorRetries = 3

// pacing is the timing of lock and watch; tests make it faster.
type pacing struct {
	// monitorRetry is the pause before the monitor of a held lock retries
	// a failed read (Consul's lock command waits 1s).
	monitorRetry time.Duration
	// killGrace is how long a child has between SIGTERM and SIGKILL.
	killGrace time.Duration
	// sessionTTL is the TTL of the lock's session, renewed every half of
	// it.
	sessionTTL string
}

var defaultPacing = pacing{monitorRetry: time.Second, killGrace: 5 * time.Second, sessionTTL: api.DefaultLockSessionTTL}

// pacing is e.pace with the defaults where it sets none.
func (e *env) pacing() pacing {
	p := e.pace
	if p.monitorRetry <= 0 {
		p.monitorRetry = defaultPacing.monitorRetry
	}
	if p.killGrace <= 0 {
		p.killGrace = defaultPacing.killGrace
	}
	if p.sessionTTL == "" {
		p.sessionTTL = defaultPacing.sessionTTL
	}
	return p
}

var lockCommand = &command{
	name:     "lock",
	synopsis: "Execute a command holding a lock",
	help:     "beacon lock [options] PREFIX CHILD...",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("child-exit-code", false, "Exit 2 if the child process exited with an error if this is true, "+
			"otherwise this doesn't propagate an error from the child. The default value is false.")
		fs.Int("n", 1, "Optional limit on the number of concurrent lock holders. The underlying implementation "+
			"switches from a lock to a semaphore when the value is greater than 1. The default value is 1.")
		fs.Int("monitor-retry", defaultMonitorRetries, "Number of times to retry if the agent returns a 500 error "+
			"while monitoring the lock. This allows riding out brief periods of unavailability without causing "+
			"leader elections, but increases the amount of time required to detect a lost lock in some cases. The "+
			"default value is 3, with a 1s wait between retries. Set this value to 0 to disable retires.")
		fs.String("name", "", "Optional name to associate with the lock session. It not provided, one is generated "+
			"based on the provided child command.")
		fs.Bool("pass-stdin", false, "Pass stdin to the child process.")
		fs.Bool("shell", true, "Use a shell to run the command (can set a custom shell via the SHELL environment variable).")
		timeout := fs.Duration("timeout", 0, "Maximum amount of time to wait to acquire the lock, specified as a "+
			"duration like \"1s\" or \"3h\". The default value is 0.")
		fs.Bool("verbose", false, "Enable verbose (debugging) output.")
		fs.DurationVar(timeout, "try", 0, "DEPRECATED. Use -timeout instead.")
		serverFlags(fs, false)
	},
	run: runLock,
}

func runLock(e *env, fs *flag.FlagSet, args []string) int {
	stdout, stderr := sharedOutputs(e)
	ui := consulUI{stdout, stderr}
	limit, retries, timeout := flagOf[int](fs, "n"), flagOf[int](fs, "monitor-retry"), flagOf[time.Duration](fs, "timeout")
	verbose := flagOf[bool](fs, "verbose")
	say := func(format string, args ...any) {
		if verbose {
			ui.info(format, args...)
		}
	}
	if limit <= 0 {
		return ui.error("Lock holder limit must be positive")
	}
	if len(args) < 2 {
		return ui.error("Key prefix and child command must be specified")
	}
	prefix := strings.TrimPrefix(args[0], "/")
	childArgs := args[1:]
	if timeout < 0 {
		return ui.error("Timeout must be positive")
	}
	name := flagString(fs, "name")
	if name == "" {
		name = fmt.Sprintf("Consul lock for '%s' at '%s'", strings.Join(childArgs, " "), prefix)
	}
	if retries < 0 {
		return ui.error("Number for 'monitor-retry' must be >= 0")
	}

	shutdown, stopListening := shutdownContext(e)
	defer stopListening()
	c, err := newClient(e, fs, clientOptions{abort: shutdown})
	if err != nil {
		return usageErr(e, "%v", err)
	}
	defer c.close()
	if _, err := c.Agent().Self(); err != nil {
		return ui.error("Error querying Consul agent: %s", decoded("/v1/agent/self", err))
	}
	pace := e.pacing()
	behavior := ""
	if limit == 1 {
		say("Setting up lock at path: %s", path.Join(prefix, api.DefaultSemaphoreKey))
	} else {
		say("Setting up semaphore (limit %d) at prefix: %s", limit, prefix)
		behavior = api.SessionBehaviorDelete // a contender key goes with its holder
	}
	session, err := startSession(c, name, pace.sessionTTL, behavior)
	if err != nil {
		return ui.error("Lock acquisition failed: failed to create session: %s", err)
	}
	defer session.end()
	l, err := newLocker(c, prefix, limit, session.id, retries, pace.monitorRetry, timeout)
	if err != nil {
		return ui.error("Lock setup failed: %s", err)
	}

	say("Attempting lock acquisition")
	lost, err := l.acquire(shutdown.Done())
	if lost == nil {
		if err == nil || shutdown.Err() != nil {
			return ui.error("Shutdown triggered or timeout during lock acquisition")
		}
		return ui.error("Lock acquisition failed: %s", err)
	}
	childCode := exitOK
	if shutdown.Err() != nil {
		ui.error("Shutdown triggered during lock acquisition")
	} else {
		childCode = superviseChild(e, fs, ui, say, childArgs, shutdown.Done(), lost)
	}

	if err := l.release(); err != nil {
		return ui.error("Lock release failed: %s", err)
	}
	if err := l.destroy(); err != nil {
		if err != l.inUse {
			return ui.error("Lock cleanup failed: %s", err)
		}
		say("Cleanup aborted, lock in use")
	} else {
		say("Cleanup succeeded")
	}
	if flagOf[bool](fs, "child-exit-code") {
		return childCode
	}
	return exitOK
}

// locker is what lock uses of an api.Lock or an api.Semaphore.
type locker struct {
	// acquire blocks until the lock is held, and returns a channel closed
	// once it is lost; nil with no error once stop closed or (with
	// -timeout) the time ran out.
	acquire func(stop <-chan struct{}) (<-chan struct{}, error)
	// release gives the lock up; destroy removes its key unless another
	// holds it, when it fails with inUse.
	release, destroy func() error
	inUse            error
}

// newLocker sets up api.Lock on PREFIX/.lock for a limit of 1, else
// api.Semaphore on PREFIX, held with session. A timeout makes acquisition
// one attempt of that long.
func newLocker(c *client, prefix string, limit int, session string, monitorRetries int, monitorRetry,
	timeout time.Duration) (locker, error) {
	if limit == 1 {
		l, err := c.LockOpts(&api.LockOptions{Key: path.Join(prefix, api.DefaultSemaphoreKey), Session: session,
			MonitorRetries: monitorRetries, MonitorRetryTime: monitorRetry, LockTryOnce: timeout > 0, LockWaitTime: timeout})
		if err != nil {
			return locker{}, err
		}
		return locker{acquire: l.Lock, release: l.Unlock, destroy: l.Destroy, inUse: api.ErrLockInUse}, nil
	}
	s, err := c.SemaphoreOpts(&api.SemaphoreOptions{Prefix: prefix, Limit: limit, Session: session,
		MonitorRetries: monitorRetries, MonitorRetryTime: monitorRetry, SemaphoreTryOnce: timeout > 0,
		SemaphoreWaitTime: timeout})
	if err != nil {
		return locker{}, err
	}
	return locker{acquire: s.Acquire, release: s.Release, destroy: s.Destroy, inUse: api.ErrSemaphoreInUse}, nil
}

// lockSession is the session a lock is held with. api.Lock would make its
// own and end it in the background, perhaps after the command is gone;
// this one ends before the command does.
type lockSession struct {
	id string
	// stopRenewing ends the renewal, which then destroys the session and
	// closes renewed.
	stopRenewing, renewed chan struct{}
}

// startSession creates a session with Consul's settings for a lock (a
// behavior of "" is the agent's default, release) and renews it every half
// TTL, as api.Lock does.
func startSession(c *client, name, ttl, behavior string) (*lockSession, error) {
	id, _, err := c.Session().Create(&api.SessionEntry{Name: name, TTL: ttl, Behavior: behavior}, nil)
	if err != nil {
		return nil, err
	}
	s := &lockSession{id: id, stopRenewing: make(chan struct{}), renewed: make(chan struct{})}
	go func() {
		defer close(s.renewed)
		// It ends on its own once a TTL passed without a renewal or the
		// session is gone.
		c.Session().RenewPeriodic(ttl, id, nil, s.stopRenewing)
	}()
	return s, nil
}

// end destroys the session and waits until it is.
func (s *lockSession) end() {
	close(s.stopRenewing)
	<-s.renewed
}

// lockChildFailed is Consul's exit code, with -child-exit-code, of a lock
// whose child failed.
const lockChildFailed = 2

// superviseChild runs the child while the lock is held: until it exits, or
// the lock is lost or the command told to stop, when it is stopped
// (SIGTERM, then SIGKILL after the grace period). It returns 2 if the
// child failed on its own, else 0.
func superviseChild(e *env, fs *flag.FlagSet, ui consulUI, say func(string, ...any), args []string,
	shutdown, lost <-chan struct{}) int {
	say("Starting handler")
	cmd := childCommand(e, args, flagOf[bool](fs, "shell"))
	cmd.Env = append(os.Environ(), "CONSUL_LOCK_HELD=true", "BEACON_LOCK_HELD=true")
	group := true
	if flagOf[bool](fs, "pass-stdin") {
		say("Stdin passed to handler process")
		cmd.Stdin = e.stdinReader()
		// A child reading the terminal must stay in its foreground
		// process group; it is then stopped on its own, not with what
		// it started.
		group = !isTerminal(e.stdin)
	}
	cmd.Stdout, cmd.Stderr = ui.stdout, ui.stderr
	ch, err := startChild(cmd, group)
	if err != nil {
		ui.error("Error starting handler: %s", err)
		say("Child terminated, releasing lock")
		return lockChildFailed
	}
	select {
	case <-ch.done:
	case <-shutdown:
	case <-lost:
	}
	if !isClosed(ch.done) {
		if isClosed(shutdown) {
			say("Shutdown triggered, killing child")
		} else {
			say("Lock lost, killing child")
		}
		ch.stop(e.pacing().killGrace, ui, say)
		if ch.err != nil {
			ui.error("Error running handler: %s", ch.err)
		}
		return exitOK
	}
	if ch.err != nil {
		ui.error("Error running handler: %s", ch.err)
	}
	say("Child terminated, releasing lock")
	if ch.err != nil {
		return lockChildFailed
	}
	return exitOK
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
