package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// `lock` is Consul's command/lock: it holds a lock (-n 1) or a semaphore
// slot (-n > 1) on a KV prefix while a child runs. The lock and the
// semaphore are Consul's api.Lock and api.Semaphore algorithms, on the same
// keys with the same flags and session settings, so beacon and Consul
// clients contend with each other correctly.

const (
	// lockFlagValue and semaphoreFlagValue mark a key as a lock's or a
	// semaphore's (Consul's api.LockFlagValue and SemaphoreFlagValue), so
	// the two are not mixed up on one prefix.
	lockFlagValue      uint64 = 0x2ddccbc058a50c18
	semaphoreFlagValue uint64 = 0xe0f69a2baa414de0
	// semaphoreKey is the key under the prefix both use (the lock too, so
	// that a lock and a semaphore on one prefix conflict).
	semaphoreKey = ".lock"
	// defaultMonitorRetries is how many 500s (or network errors) in a row
	// the monitor of a held lock rides out before taking it for lost.
	defaultMonitorRetries = 3
)

var (
	errLockConflict      = consulError("Existing key does not match lock use")
	errLockInUse         = consulError("Lock in use")
	errSemaphoreConflict = consulError("Existing key does not match semaphore use")
	errSemaphoreInUse    = consulError("Semaphore in use")
)

// pacing is the timing of lock and watch. The defaults are Consul's.
type pacing struct {
	// lockWait is how long one blocking read of the lock waits
	// (api.DefaultLockWaitTime).
	lockWait time.Duration
	// lockRetry is the pause after an acquisition failed to a lock-delay
	// (api.DefaultLockRetryTime).
	lockRetry time.Duration
	// monitorRetry is the pause before the monitor retries a failed read.
	monitorRetry time.Duration
	// killGrace is how long a child has between SIGTERM and SIGKILL.
	killGrace time.Duration
	// sessionTTL is the TTL of the lock's session; it is renewed every
	// half of it.
	sessionTTL string
	// watchRetry is the base of watch's backoff after an error (it grows
	// with the square of the failures), watchMaxBackoff its cap.
	watchRetry, watchMaxBackoff time.Duration
}

var defaultPacing = pacing{lockWait: 15 * time.Second, lockRetry: 5 * time.Second, monitorRetry: time.Second,
	killGrace: 5 * time.Second, sessionTTL: "15s", watchRetry: 5 * time.Second, watchMaxBackoff: 180 * time.Second}

// pacing is e.pace with Consul's values where it sets none.
func (e *env) pacing() pacing {
	p, d := e.pace, defaultPacing
	for _, f := range []struct{ v, def *time.Duration }{
		{&p.lockWait, &d.lockWait}, {&p.lockRetry, &d.lockRetry}, {&p.monitorRetry, &d.monitorRetry},
		{&p.killGrace, &d.killGrace}, {&p.watchRetry, &d.watchRetry}, {&p.watchMaxBackoff, &d.watchMaxBackoff},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if p.sessionTTL == "" {
		p.sessionTTL = d.sessionTTL
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
	limit, retries, timeout := flagInt(fs, "n"), flagInt(fs, "monitor-retry"), flagDuration(fs, "timeout")
	verbose := flagBool(fs, "verbose")
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

	c, err := newClient(e, fs, false)
	if err != nil {
		return usageErr(e, "%v", err)
	}
	defer c.close()
	var self map[string]json.RawMessage
	if _, err := c.query("/v1/agent/self", nil, readOpts{}, &self); err != nil {
		return ui.error("Error querying Consul agent: %s", err)
	}

	shutdown, stopSignals := shutdownSignals(e)
	defer stopSignals()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := lockBase{c: c, ctx: ctx, dc: flagString(fs, "datacenter"), sessionName: name, pace: e.pacing(),
		monitorRetries: retries}
	base.wait = base.pace.lockWait
	if timeout > 0 {
		base.oneshot, base.wait = true, timeout
	}
	var l locker
	if limit == 1 {
		key := path.Join(prefix, semaphoreKey)
		say("Setting up lock at path: %s", key)
		l = &keyLock{lockBase: base, key: key}
	} else {
		say("Setting up semaphore (limit %d) at prefix: %s", limit, prefix)
		if prefix == "" {
			return ui.error("Lock setup failed: missing prefix")
		}
		l = &semaphore{lockBase: base, prefix: prefix, limit: limit}
	}

	say("Attempting lock acquisition")
	lost, err := l.acquire(shutdown)
	if lost == nil {
		if err == nil {
			return ui.error("Shutdown triggered or timeout during lock acquisition")
		}
		return ui.error("Lock acquisition failed: %s", err)
	}

	childCode := exitOK
	select {
	case <-shutdown:
		ui.error("Shutdown triggered during lock acquisition")
	default:
		childCode = superviseChild(e, fs, ui, say, childArgs, shutdown, lost)
	}

	if err := l.release(); err != nil {
		return ui.error("Lock release failed: %s", err)
	}
	if err := l.destroy(); err != nil {
		if err != l.inUse() {
			return ui.error("Lock cleanup failed: %s", err)
		}
		say("Cleanup aborted, lock in use")
	} else {
		say("Cleanup succeeded")
	}
	if flagBool(fs, "child-exit-code") {
		return childCode
	}
	return exitOK
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
	cmd := childCommand(e, args, flagBool(fs, "shell"))
	cmd.Env = append(os.Environ(), "CONSUL_LOCK_HELD=true", "BEACON_LOCK_HELD=true")
	group := true
	if flagBool(fs, "pass-stdin") {
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
	childErr := make(chan error, 1)
	go func() {
		<-ch.done
		if ch.err != nil {
			ui.error("Error running handler: %s", ch.err)
		}
		childErr <- ch.err
	}()

	select {
	case <-shutdown:
		say("Shutdown triggered, killing child")
	case <-lost:
		say("Lock lost, killing child")
	case err := <-childErr:
		say("Child terminated, releasing lock")
		if err != nil {
			return lockChildFailed
		}
		return exitOK
	}

	pid := cmd.Process.Pid
	say("Terminating child pid %d", pid)
	if err := ch.signal(syscall.SIGTERM); err != nil {
		ui.error("Failed to terminate %d: %v", pid, err)
	}
	grace := time.NewTimer(e.pacing().killGrace)
	defer grace.Stop()
	select {
	case <-childErr:
		say("Child terminated")
		return exitOK
	case <-grace.C:
		say("Child did not exit after grace period of %v", e.pacing().killGrace)
	}
	say("Killing child pid %d", pid)
	if err := ch.signal(syscall.SIGKILL); err != nil {
		ui.error("Failed to kill %d: %v", pid, err)
	}
	<-childErr
	return exitOK
}

// locker is a lock or a semaphore.
type locker interface {
	// acquire blocks until the lock is held, and returns a channel closed
	// once it is lost; nil with no error when stop closed or (with
	// -timeout) the time ran out.
	acquire(stop <-chan struct{}) (<-chan struct{}, error)
	// release gives the lock up, and ends the session.
	release() error
	// destroy removes the lock's key if no one holds it.
	destroy() error
	// inUse is destroy's error when someone does.
	inUse() error
}

// lockBase is what a lock and a semaphore share: the client, the session
// and its renewal, the monitor.
type lockBase struct {
	c   *client
	ctx context.Context
	dc  string
	// sessionName names the session; oneshot (-timeout) makes wait the
	// whole time acquisition may take, else it is one read's wait.
	sessionName    string
	oneshot        bool
	wait           time.Duration
	monitorRetries int
	pace           pacing

	session *lockSession
	// stopMonitor ends the monitor, monitoring says it ended.
	stopMonitor context.CancelFunc
	monitorDone chan struct{}
}

func (b *lockBase) query() url.Values {
	q := url.Values{}
	if b.dc != "" {
		q.Set("dc", b.dc)
	}
	return q
}

// stopCtx is b.ctx, also done once stop closes.
func (b *lockBase) stopCtx(stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(b.ctx)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// nextWait is the wait of the next read while acquiring: with -timeout
// what is left of it, and false once it is over (after the first attempt).
func (b *lockBase) nextWait(start time.Time, attempts int) (time.Duration, bool) {
	if !b.oneshot || attempts == 0 {
		return b.wait, true
	}
	elapsed := time.Since(start)
	if elapsed > b.wait {
		return 0, false
	}
	return b.wait - elapsed, true
}

// monitor runs check (a consistent read of the lock, blocking on the index
// it is given) until the lock is no longer ours, then closes lost. Errors
// that may pass (a 500, the network) are retried monitorRetries times in a
// row, a pause apart, as Consul's monitor does.
func (b *lockBase) monitor(check func(ctx context.Context, index uint64) (uint64, bool, error)) <-chan struct{} {
	lost := make(chan struct{})
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	b.stopMonitor, b.monitorDone = cancel, done
	go func() {
		defer close(done)
		defer close(lost)
		var index uint64
		retries := b.monitorRetries
		for {
			next, ours, err := check(ctx, index)
			if err != nil {
				if ctx.Err() != nil || retries <= 0 || !retryable(err) {
					return
				}
				retries--
				index = 0
				t := time.NewTimer(b.pace.monitorRetry)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
				continue
			}
			if !ours {
				return
			}
			index, retries = next, b.monitorRetries
		}
	}()
	return lost
}

// endMonitor stops the monitor and waits for it.
func (b *lockBase) endMonitor() {
	if b.stopMonitor != nil {
		b.stopMonitor()
		<-b.monitorDone
		b.stopMonitor = nil
	}
}

// lockSession is the session a lock is held with, renewed in the
// background until it ends.
type lockSession struct {
	c  *client
	id string
	q  url.Values
	// ctx ends the renewal (and a renewal under way), done says it ended.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// startSession creates the session with Consul's settings for a lock
// (behavior "" is the server's default, release) and starts renewing it.
func (b *lockBase) startSession(behavior string) error {
	body := map[string]any{"Name": b.sessionName, "TTL": b.pace.sessionTTL}
	if behavior != "" {
		body["Behavior"] = behavior
	}
	answer, err := b.c.write(b.ctx, http.MethodPut, "/v1/session/create", b.query(), nil, "", body)
	if err != nil {
		return err
	}
	var out struct{ ID string }
	if err := json.Unmarshal(answer, &out); err != nil {
		return fmt.Errorf("decoding the agent's answer to /v1/session/create: %w", err)
	}
	ttl, err := time.ParseDuration(b.pace.sessionTTL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(b.ctx)
	s := &lockSession{c: b.c, id: out.ID, q: b.query(), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go s.renew(ttl)
	b.session = s
	return nil
}

// renew is Consul's Session.RenewPeriodic: renew every half TTL (the TTL
// the agent answers with), every second after a failure, and give up once
// a whole TTL passed without a renewal or the session is gone.
func (s *lockSession) renew(ttl time.Duration) {
	defer close(s.done)
	wait, last := ttl/2, time.Now()
	for time.Since(last) <= ttl {
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		resp, cancel, err := s.c.do(request{method: http.MethodPut, path: "/v1/session/renew/" + s.id, query: s.q,
			ctx: s.ctx, allow404: true})
		if err != nil {
			wait = time.Second
			continue
		}
		var entries []struct{ TTL string }
		gone := resp.StatusCode == http.StatusNotFound
		if !gone {
			json.NewDecoder(resp.Body).Decode(&entries)
		}
		resp.Body.Close()
		cancel()
		if gone {
			return
		}
		if len(entries) > 0 {
			if d, err := time.ParseDuration(entries[0].TTL); err == nil && d > 0 {
				ttl = d
			}
		}
		wait, last = ttl/2, time.Now()
	}
}

// endSession stops renewing and destroys the session.
func (b *lockBase) endSession() {
	s := b.session
	if s == nil {
		return
	}
	b.session = nil
	s.cancel()
	<-s.done
	b.c.write(context.Background(), http.MethodPut, "/v1/session/destroy/"+s.id, s.q, nil, "", nil)
}

// keyLock is api.Lock on one key.
type keyLock struct {
	lockBase
	key  string
	held bool
}

func (l *keyLock) inUse() error { return errLockInUse }

func (l *keyLock) get(ctx context.Context, index uint64, wait time.Duration, consistent bool) (*kvPair, queryMeta, error) {
	return getKV(l.c, l.key, readOpts{ctx: ctx, index: index, wait: wait, consistent: consistent, dc: l.dc})
}

func (l *keyLock) write(op, session string) (bool, error) {
	q := l.query()
	q.Set("flags", strconv.FormatUint(lockFlagValue, 10))
	q.Set(op, session)
	return putKV(l.c, l.key, q, nil)
}

func (l *keyLock) acquire(stop <-chan struct{}) (lost <-chan struct{}, err error) {
	if err := l.startSession(""); err != nil {
		return nil, fmt.Errorf("failed to create session: %v", err)
	}
	defer func() {
		if !l.held {
			l.endSession()
		}
	}()
	ctx, cancel := l.stopCtx(stop)
	defer cancel()
	// stopped turns an error that stop caused into giving up.
	stopped := func(err error) (<-chan struct{}, error) {
		if isClosed(stop) {
			return nil, nil
		}
		return nil, err
	}

	start := time.Now()
	var index uint64
	for attempts := 0; ; attempts++ {
		if isClosed(stop) {
			return nil, nil
		}
		wait, ok := l.nextWait(start, attempts)
		if !ok {
			return nil, nil
		}
		pair, meta, err := l.get(ctx, index, wait, false)
		if err != nil {
			return stopped(fmt.Errorf("failed to read lock: %v", err))
		}
		if pair != nil && pair.Flags != lockFlagValue {
			return nil, errLockConflict
		}
		if pair != nil && pair.Session == l.session.id {
			break
		}
		if pair != nil && pair.Session != "" {
			index = meta.index
			continue
		}
		locked, err := l.write("acquire", l.session.id)
		if err != nil {
			return stopped(fmt.Errorf("failed to acquire lock: %v", err))
		}
		if locked {
			break
		}
		// Find out why: held by another, or a lock-delay in effect.
		pair, meta, err = l.get(ctx, 0, wait, false)
		if err != nil {
			return stopped(err)
		}
		if pair != nil && pair.Session != "" {
			index = meta.index
			continue
		}
		index = 0
		t := time.NewTimer(l.pace.lockRetry)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return nil, nil
		}
	}

	id := l.session.id
	l.held = true
	return l.monitor(func(ctx context.Context, index uint64) (uint64, bool, error) {
		pair, meta, err := l.get(ctx, index, 0, true)
		return meta.index, err == nil && pair != nil && pair.Session == id, err
	}), nil
}

func (l *keyLock) release() error {
	l.held = false
	l.endMonitor()
	defer l.endSession()
	if _, err := l.write("release", l.session.id); err != nil {
		return fmt.Errorf("failed to release lock: %v", err)
	}
	return nil
}

func (l *keyLock) destroy() error {
	pair, _, err := l.get(l.ctx, 0, 0, false)
	if err != nil {
		return fmt.Errorf("failed to read lock: %v", err)
	}
	if pair == nil {
		return nil
	}
	if pair.Flags != lockFlagValue {
		return errLockConflict
	}
	if pair.Session != "" {
		return errLockInUse
	}
	q := l.query()
	q.Set("cas", strconv.FormatUint(pair.ModifyIndex, 10))
	removed, err := l.c.writeBool(l.ctx, http.MethodDelete, kvPath(l.key), q, nil)
	if err != nil {
		return fmt.Errorf("failed to remove lock: %v", err)
	}
	if !removed {
		return errLockInUse
	}
	return nil
}

// semaphore is api.Semaphore: a slot among limit holders, recorded in the
// prefix's .lock key, each holder with a contender key of its session.
type semaphore struct {
	lockBase
	prefix string
	limit  int
	held   bool
}

// semaphoreLock is the value of the .lock key.
type semaphoreLock struct {
	// Limit is the number of holders every contender agreed on.
	Limit int
	// Holders is the set of the holders' sessions.
	Holders map[string]bool
}

func (s *semaphore) inUse() error { return errSemaphoreInUse }

func (s *semaphore) lockKey() string { return path.Join(s.prefix, semaphoreKey) }

func (s *semaphore) list(ctx context.Context, index uint64, wait time.Duration, consistent bool) ([]*kvPair, queryMeta, error) {
	return listKV(s.c, s.prefix, readOpts{ctx: ctx, index: index, wait: wait, consistent: consistent, dc: s.dc})
}

// findLock is the .lock pair among pairs, or an empty one.
func (s *semaphore) findLock(pairs []*kvPair) *kvPair {
	key := s.lockKey()
	for _, p := range pairs {
		if p.Key == key {
			return p
		}
	}
	return &kvPair{Flags: semaphoreFlagValue}
}

func (s *semaphore) decodeLock(pair *kvPair) (*semaphoreLock, error) {
	if pair == nil || pair.Value == nil {
		return &semaphoreLock{Limit: s.limit, Holders: map[string]bool{}}, nil
	}
	var l semaphoreLock
	if err := json.Unmarshal(pair.Value, &l); err != nil {
		return nil, fmt.Errorf("lock decoding failed: %v", err)
	}
	if l.Holders == nil {
		l.Holders = map[string]bool{}
	}
	return &l, nil
}

// casLock writes l to the .lock key if it is still at index.
func (s *semaphore) casLock(l *semaphoreLock, index uint64) (bool, error) {
	enc, err := json.Marshal(l)
	if err != nil {
		return false, fmt.Errorf("lock encoding failed: %v", err)
	}
	q := s.query()
	q.Set("flags", strconv.FormatUint(semaphoreFlagValue, 10))
	q.Set("cas", strconv.FormatUint(index, 10))
	return putKV(s.c, s.lockKey(), q, enc)
}

// pruneDeadHolders drops the holders whose session holds no key under the
// prefix (a contender key goes with its session).
func pruneDeadHolders(l *semaphoreLock, pairs []*kvPair) {
	alive := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		if p.Session != "" {
			alive[p.Session] = true
		}
	}
	for h := range l.Holders {
		if !alive[h] {
			delete(l.Holders, h)
		}
	}
}

func (s *semaphore) acquire(stop <-chan struct{}) (<-chan struct{}, error) {
	if err := s.startSession("delete"); err != nil {
		return nil, fmt.Errorf("failed to create session: %v", err)
	}
	defer func() {
		if !s.held {
			s.endSession()
		}
	}()
	id := s.session.id
	q := s.query()
	q.Set("flags", strconv.FormatUint(semaphoreFlagValue, 10))
	q.Set("acquire", id)
	if made, err := putKV(s.c, path.Join(s.prefix, id), q, nil); err != nil || !made {
		return nil, fmt.Errorf("failed to make contender entry: %v", err)
	}
	ctx, cancel := s.stopCtx(stop)
	defer cancel()

	start := time.Now()
	var index uint64
	for attempts := 0; ; attempts++ {
		if isClosed(stop) {
			return nil, nil
		}
		wait, ok := s.nextWait(start, attempts)
		if !ok {
			return nil, nil
		}
		pairs, meta, err := s.list(ctx, index, wait, false)
		if err != nil {
			if isClosed(stop) {
				return nil, nil
			}
			return nil, fmt.Errorf("failed to read prefix: %v", err)
		}
		lockPair := s.findLock(pairs)
		if lockPair.Flags != semaphoreFlagValue {
			return nil, errSemaphoreConflict
		}
		l, err := s.decodeLock(lockPair)
		if err != nil {
			return nil, err
		}
		if l.Limit != s.limit {
			return nil, fmt.Errorf("semaphore limit conflict (lock: %d, local: %d)", l.Limit, s.limit)
		}
		pruneDeadHolders(l, pairs)
		if len(l.Holders) >= l.Limit {
			index = meta.index
			continue
		}
		l.Holders[id] = true
		set, err := s.casLock(l, lockPair.ModifyIndex)
		if err != nil {
			if isClosed(stop) {
				return nil, nil
			}
			return nil, fmt.Errorf("failed to update lock: %v", err)
		}
		if set {
			break
		}
		// Another contender changed the lock first: read it again (the
		// index moved, so the read does not block).
	}

	s.held = true
	return s.monitor(func(ctx context.Context, index uint64) (uint64, bool, error) {
		pairs, meta, err := s.list(ctx, index, 0, true)
		if err != nil {
			return 0, false, err
		}
		l, err := s.decodeLock(s.findLock(pairs))
		if err != nil {
			return 0, false, nil // undecodable: the slot is not known to be ours
		}
		pruneDeadHolders(l, pairs)
		return meta.index, l.Holders[id], nil
	}), nil
}

func (s *semaphore) release() error {
	s.held = false
	s.endMonitor()
	defer s.endSession()
	id := s.session.id
	for {
		pair, _, err := getKV(s.c, s.lockKey(), readOpts{ctx: s.ctx, dc: s.dc})
		if err != nil {
			return err
		}
		if pair == nil {
			pair = &kvPair{}
		}
		l, err := s.decodeLock(pair)
		if err != nil {
			return err
		}
		if !l.Holders[id] {
			break
		}
		delete(l.Holders, id)
		set, err := s.casLock(l, pair.ModifyIndex)
		if err != nil {
			return fmt.Errorf("failed to update lock: %v", err)
		}
		if set {
			break
		}
	}
	if _, err := s.c.writeBool(s.ctx, http.MethodDelete, kvPath(path.Join(s.prefix, id)), s.query(), nil); err != nil {
		return err
	}
	return nil
}

func (s *semaphore) destroy() error {
	pairs, _, err := s.list(s.ctx, 0, 0, false)
	if err != nil {
		return fmt.Errorf("failed to read prefix: %v", err)
	}
	lockPair := s.findLock(pairs)
	if lockPair.ModifyIndex == 0 {
		return nil
	}
	if lockPair.Flags != semaphoreFlagValue {
		return errSemaphoreConflict
	}
	l, err := s.decodeLock(lockPair)
	if err != nil {
		return err
	}
	pruneDeadHolders(l, pairs)
	if len(l.Holders) > 0 {
		return errSemaphoreInUse
	}
	q := s.query()
	q.Set("cas", strconv.FormatUint(lockPair.ModifyIndex, 10))
	removed, err := s.c.writeBool(s.ctx, http.MethodDelete, kvPath(s.lockKey()), q, nil)
	if err != nil {
		return fmt.Errorf("failed to remove semaphore: %v", err)
	}
	if !removed {
		return errSemaphoreInUse
	}
	return nil
}
