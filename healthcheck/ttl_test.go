package healthcheck

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
)

func TestTTLExpires(t *testing.T) {
	t.Parallel()
	const ttl = 200 * time.Millisecond
	m, rec := newTestMonitor(t, false)
	added := time.Now()
	if err := m.Add("ttl", TypeTTL, state.CheckDefinition{TTL: ttl.String()}, pass); err != nil {
		t.Fatal(err)
	}
	e := rec.waitStatus(t, "ttl", crit)
	if e.output != "TTL expired" {
		t.Errorf("output %q, want %q", e.output, "TTL expired")
	}
	if d := e.at.Sub(added); d < ttl {
		t.Errorf("expired after %s, before its TTL %s", d, ttl)
	}
}

// TestUpdateTTL: an update is notified before UpdateTTL returns and restarts
// the TTL; once expired the output keeps the last update's.
func TestUpdateTTL(t *testing.T) {
	t.Parallel()
	const ttl = 600 * time.Millisecond
	m, rec := newTestMonitor(t, false)
	if err := m.Add("ttl", TypeTTL, state.CheckDefinition{TTL: ttl.String()}, ""); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateTTL("ttl", pass, "first"); err != nil {
		t.Fatal(err)
	}
	if events := rec.of("ttl"); len(events) != 1 || events[0].status != pass || events[0].output != "first" {
		t.Fatalf("after UpdateTTL returned: %s, want passing %q", formatEvents(events), "first")
	}

	// Half a TTL later (pacing only: the assertion below holds however late
	// this runs), a second update must push the expiry a full TTL on.
	<-time.After(ttl / 2)
	resetAt := time.Now()
	if err := m.UpdateTTL("ttl", warn, "second"); err != nil {
		t.Fatal(err)
	}
	i, _ := rec.waitFor(t, "ttl", "warning second", func(e event) bool { return e.output == "second" })
	events := rec.waitCount(t, "ttl", i+2)
	expired := events[i+1]
	if want := "TTL expired (last output before timeout follows): second"; expired.status != crit || expired.output != want {
		t.Fatalf("after the update: %s %q, want critical %q", expired.status, expired.output, want)
	}
	if d := expired.at.Sub(resetAt); d < ttl {
		t.Fatalf("expired %s after the second update, before a full TTL (%s): the update did not restart it", d, ttl)
	}

	// An update after expiry brings it back and restarts the TTL.
	if err := m.UpdateTTL("ttl", pass, "back"); err != nil {
		t.Fatal(err)
	}
	if last := rec.of("ttl"); last[len(last)-1].output != "back" {
		t.Fatalf("after an update past expiry: %s", formatEvents(last))
	}
}

func TestUpdateTTLTruncatesOutput(t *testing.T) {
	t.Parallel()
	m, rec := newTestMonitor(t, false)
	if err := m.Add("ttl", TypeTTL, state.CheckDefinition{TTL: "1h"}, ""); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 5000)
	if err := m.UpdateTTL("ttl", pass, long); err != nil {
		t.Fatal(err)
	}
	want := long[:outputMaxSize] + " ... (captured 4096 of 5000 bytes)"
	if events := rec.of("ttl"); len(events) != 1 || events[0].output != want {
		t.Fatalf("events %s, want the output truncated", formatEvents(events))
	}
}

func TestUpdateTTLErrors(t *testing.T) {
	t.Parallel()
	m, _ := newTestMonitor(t, false)
	if err := m.Add("ttl", TypeTTL, state.CheckDefinition{TTL: "1h"}, ""); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, m, "tcp", TypeTCP, state.CheckDefinition{TCP: closedPort(t), Interval: "1h"})
	tests := []struct {
		name, id, status string
		wantIs           error
		wantErr          string
	}{
		{"unknown check", "nope", pass, ErrUnknownCheck, `unknown check ID "nope"`},
		{"not a TTL check", "tcp", pass, ErrNotTTL, `check "tcp" is a tcp check: not a TTL check`},
		{"invalid status", "ttl", "ok", ErrInvalidStatus, `status "ok": invalid status`},
		{"empty status", "ttl", "", ErrInvalidStatus, `status "": invalid status`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.UpdateTTL(tt.id, tt.status, "")
			if !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("UpdateTTL: %v, want %v containing %q", err, tt.wantIs, tt.wantErr)
			}
		})
	}
	m.Remove("ttl")
	if err := m.UpdateTTL("ttl", pass, ""); !errors.Is(err, ErrUnknownCheck) {
		t.Fatalf("UpdateTTL after Remove: %v, want ErrUnknownCheck", err)
	}
}
