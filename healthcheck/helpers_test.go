package healthcheck

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// waitTimeout bounds every wait of these tests; results normally arrive in
// milliseconds, the margin is for loaded CI machines.
const waitTimeout = 15 * time.Second

// testInterval is the interval of the tests' checks (the test monitors
// lower the minimum to allow it).
const testInterval = "20ms"

type event struct {
	id, status, output string
	at                 time.Time
}

// recorder collects a Monitor's notifications and lets tests wait for them.
type recorder struct {
	mu     sync.Mutex
	events []event
	wake   chan struct{} // closed and replaced on each event
}

func newRecorder() *recorder {
	return &recorder{wake: make(chan struct{})}
}

func (r *recorder) notify(id, status, output string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{id: id, status: status, output: output, at: time.Now()})
	close(r.wake)
	r.wake = make(chan struct{})
}

// of returns the events of check id so far.
func (r *recorder) of(id string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if e.id == id {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until check id has had an event that match accepts and
// returns it with its index among the check's events.
func (r *recorder) waitFor(t *testing.T, id string, what string, match func(event) bool) (int, event) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		wake := r.wake
		n := 0
		for _, e := range r.events {
			if e.id != id {
				continue
			}
			if match(e) {
				r.mu.Unlock()
				return n, e
			}
			n++
		}
		r.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("check %q: no event %s within %s; events: %s", id, what, waitTimeout, formatEvents(r.of(id)))
		}
	}
}

// waitStatus waits for check id to be notified with status.
func (r *recorder) waitStatus(t *testing.T, id, status string) event {
	t.Helper()
	_, e := r.waitFor(t, id, "with status "+status, func(e event) bool { return e.status == status })
	return e
}

// waitCount waits until check id has had n events and returns them all.
func (r *recorder) waitCount(t *testing.T, id string, n int) []event {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		wake := r.wake
		r.mu.Unlock()
		if events := r.of(id); len(events) >= n {
			return events
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("check %q: not %d events within %s; events: %s", id, n, waitTimeout, formatEvents(r.of(id)))
		}
	}
}

func formatEvents(events []event) string {
	if len(events) == 0 {
		return "none"
	}
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "\n  %s %q", e.status, e.output)
	}
	return b.String()
}

// newTestMonitor returns a Monitor with a lowered minimum interval that
// reports to the returned recorder, and stops it when the test ends.
func newTestMonitor(t *testing.T, enableScripts bool) (*Monitor, *recorder) {
	t.Helper()
	rec := newRecorder()
	m := New(Config{Notify: rec.notify, EnableScriptChecks: enableScripts, minInterval: 10 * time.Millisecond})
	t.Cleanup(m.Stop)
	return m, rec
}

func mustAdd(t *testing.T, m *Monitor, id, typ string, def state.CheckDefinition) {
	t.Helper()
	if def.Interval == "" && typ != TypeTTL {
		def.Interval = testInterval
	}
	if err := m.Add(id, typ, def, ""); err != nil {
		t.Fatalf("Add(%q): %v", id, err)
	}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitTimeout)
		}
		time.Sleep(5 * time.Millisecond) // polling pace, not synchronisation
	}
}
