package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
)

// Errors of Add and UpdateTTL, for callers to map onto HTTP statuses.
var (
	// ErrUnknownCheck: no check of that ID runs here.
	ErrUnknownCheck = errors.New("unknown check")
	// ErrNotTTL: the check is not a TTL check, so it cannot be updated.
	ErrNotTTL = errors.New("not a TTL check")
	// ErrInvalidStatus: a status other than passing, warning or critical.
	ErrInvalidStatus = errors.New("invalid status (want passing, warning or critical)")
	// ErrScriptChecksDisabled: a script check on an agent without
	// enable_script_checks.
	ErrScriptChecksDisabled = errors.New("script checks are disabled on this agent; to enable them, set enable_script_checks")
	// ErrStopped: Add after Stop.
	ErrStopped = errors.New("health checks are stopped")
)

// Config for New.
type Config struct {
	// Logger gets the runners' logs; nil discards them.
	Logger hclog.Logger
	// Notify is called whenever a check's status or output changes, from
	// the check's goroutine and never concurrently for one check. Remove,
	// Add (of the same ID) and Stop wait for a running Notify to return, so
	// Notify must not wait for them, nor for anything held while they run.
	Notify func(checkID, status, output string)
	// EnableScriptChecks lets script (ScriptArgs) checks run; without it Add
	// refuses them.
	EnableScriptChecks bool

	// minInterval replaces MinInterval when set; only this package's tests
	// set it, to run checks faster than Consul allows.
	minInterval time.Duration
}

// Monitor runs the health checks of one agent. Its methods are safe for
// concurrent use.
type Monitor struct {
	logger        hclog.Logger
	notify        func(checkID, status, output string)
	enableScripts bool
	minInterval   time.Duration

	mu      sync.Mutex
	checks  map[string]*runner
	stopped bool

	// running counts the check goroutines still running, for the tests'
	// leak checks.
	running atomic.Int64
}

// runner is one running check.
type runner struct {
	id     string
	spec   spec
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has returned

	// ttlUpdates carries UpdateTTL calls to a TTL check's goroutine, which
	// alone notifies; nil for other checks.
	ttlUpdates chan ttlUpdate

	// The status and output last reported (at first the initial status),
	// touched only by the goroutine, to notify changes only.
	status, output string
}

type ttlUpdate struct {
	status, output string
	applied        chan struct{}
}

// New returns a Monitor that runs no checks yet.
func New(cfg Config) *Monitor {
	m := &Monitor{
		logger:        cfg.Logger,
		notify:        cfg.Notify,
		enableScripts: cfg.EnableScriptChecks,
		minInterval:   cfg.minInterval,
		checks:        make(map[string]*runner),
	}
	if m.logger == nil {
		m.logger = hclog.NewNullLogger()
	}
	if m.notify == nil {
		m.notify = func(string, string, string) {}
	}
	if m.minInterval <= 0 {
		m.minInterval = MinInterval
	}
	return m
}

// Add starts the check checkID of kind typ (TypeHTTP, TypeTCP, TypeTTL,
// TypeGRPC or TypeScript) with definition def, or replaces the one of that
// ID, stopping it first. initial is the check's status until its first
// result ("" means critical); it is not notified.
func (m *Monitor) Add(checkID, typ string, def state.CheckDefinition, initial string) error {
	if checkID == "" {
		return errors.New("check ID missing")
	}
	s, err := parseDefinition(typ, def)
	if err != nil {
		return fmt.Errorf("check %q: %w", checkID, err)
	}
	if typ == TypeScript && !m.enableScripts {
		return fmt.Errorf("check %q: %w", checkID, ErrScriptChecksDisabled)
	}
	if initial == "" {
		initial = state.HealthCritical
	}
	if !validStatus(initial) {
		return fmt.Errorf("check %q: initial status %q: %w", checkID, initial, ErrInvalidStatus)
	}
	if s.interval > 0 && s.interval < m.minInterval {
		m.logger.Warn("check has interval below minimum", "check", checkID,
			"interval", s.interval, "minimum_interval", m.minInterval)
		s.interval = m.minInterval
	}

	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{id: checkID, spec: s, ctx: ctx, cancel: cancel, done: make(chan struct{}), status: initial}
	if typ == TypeTTL {
		r.ttlUpdates = make(chan ttlUpdate)
	}

	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		cancel()
		return fmt.Errorf("check %q: %w", checkID, ErrStopped)
	}
	prev := m.checks[checkID]
	m.checks[checkID] = r
	if prev != nil {
		prev.cancel()
	}
	m.running.Add(1)
	go m.run(r, prev)
	m.mu.Unlock()

	if prev != nil {
		<-prev.done
	}
	return nil
}

// Remove stops the check checkID, if it runs, and waits until its goroutine
// has returned: it notifies nothing afterwards.
func (m *Monitor) Remove(checkID string) {
	m.mu.Lock()
	r := m.checks[checkID]
	delete(m.checks, checkID)
	m.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
}

// UpdateTTL sets a TTL check's status and output (truncated to 4 KiB) and
// restarts its TTL, as Consul's /v1/agent/check/pass|warn|fail|update do. It
// returns once the update is notified.
func (m *Monitor) UpdateTTL(checkID, status, output string) error {
	if !validStatus(status) {
		return fmt.Errorf("status %q: %w", status, ErrInvalidStatus)
	}
	m.mu.Lock()
	r := m.checks[checkID]
	m.mu.Unlock()
	if r == nil {
		return fmt.Errorf("%w ID %q", ErrUnknownCheck, checkID)
	}
	if r.ttlUpdates == nil {
		return fmt.Errorf("check %q is a %s check: %w", checkID, r.spec.typ, ErrNotTTL)
	}
	u := ttlUpdate{status: status, output: truncateTTLOutput(output), applied: make(chan struct{})}
	select {
	case r.ttlUpdates <- u:
	case <-r.done:
		// Removed or replaced in the meantime.
		return fmt.Errorf("%w ID %q", ErrUnknownCheck, checkID)
	}
	<-u.applied
	return nil
}

// Stop stops every check and waits until their goroutines have returned.
// Add fails afterwards.
func (m *Monitor) Stop() {
	m.mu.Lock()
	m.stopped = true
	runners := make([]*runner, 0, len(m.checks))
	for id, r := range m.checks {
		runners = append(runners, r)
		delete(m.checks, id)
	}
	m.mu.Unlock()
	for _, r := range runners {
		r.cancel()
	}
	for _, r := range runners {
		<-r.done
	}
}

func (m *Monitor) run(r *runner, prev *runner) {
	defer close(r.done)
	defer m.running.Add(-1)
	if prev != nil {
		// The replaced check finishes first, so that two runners never
		// notify for one check at once.
		<-prev.done
	}
	logger := m.logger.With("check", r.id)
	if r.spec.typ == TypeTTL {
		m.runTTL(r, logger)
		return
	}
	m.runInterval(r, logger)
}

// runInterval runs an interval check: first after a random stagger within
// the interval (so that an agent's checks, all added at start-up, spread
// out), then an interval after each run ends, so runs never overlap even
// when the timeout is longer than the interval (as in Consul).
func (m *Monitor) runInterval(r *runner, logger hclog.Logger) {
	check := newProbe(r.spec, logger)
	thresholds := newStatusHandler(r.spec.def.SuccessBeforePassing, r.spec.def.FailuresBeforeCritical)
	timer := time.NewTimer(randomStagger(r.spec.interval))
	defer timer.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-timer.C:
		}
		status, output := check(r.ctx)
		if r.ctx.Err() != nil {
			// Removed mid-run: the result tells of the cancellation, not
			// of the target.
			return
		}
		if thresholds.count(status) {
			m.report(r, logger, status, output)
		} else {
			logger.Warn("Check result has not reached its threshold", "result", status,
				"success_count", thresholds.successes, "success_threshold", thresholds.successBeforePassing,
				"failure_count", thresholds.failures, "failure_threshold", thresholds.failuresBeforeCritical)
		}
		timer.Reset(r.spec.interval)
	}
}

// runTTL runs a TTL check: critical once its TTL passes without an update.
func (m *Monitor) runTTL(r *runner, logger hclog.Logger) {
	timer := time.NewTimer(r.spec.ttl)
	defer timer.Stop()
	var lastOutput string
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-timer.C:
			logger.Warn("Check missed TTL, is now critical")
			m.report(r, logger, state.HealthCritical, ttlExpiredOutput(lastOutput))
		case u := <-r.ttlUpdates:
			lastOutput = u.output
			m.report(r, logger, u.status, u.output)
			timer.Reset(r.spec.ttl)
			close(u.applied)
		}
	}
}

// report notifies a result if it changes the check's status or output.
func (m *Monitor) report(r *runner, logger hclog.Logger, status, output string) {
	if status == r.status && output == r.output {
		return
	}
	if status != r.status {
		if status == state.HealthPassing {
			logger.Debug("Check status updated", "status", status)
		} else {
			logger.Warn("Check is now "+status, "output", output)
		}
	}
	r.status, r.output = status, output
	m.notify(r.id, status, output)
}

// randomStagger is a random duration in [0, interval), Consul's
// lib.RandomStagger.
func randomStagger(interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	return rand.N(interval)
}
