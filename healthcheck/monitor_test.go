package healthcheck

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
)

func TestParseDefinition(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		def     state.CheckDefinition
		wantErr string // "" for valid
	}{
		{"http", TypeHTTP, state.CheckDefinition{HTTP: "http://127.0.0.1:8080/health", Interval: "10s"}, ""},
		{"https with method", TypeHTTP, state.CheckDefinition{HTTP: "https://svc.local/h", Method: "POST", Interval: "1s", Timeout: "2s"}, ""},
		{"tcp", TypeTCP, state.CheckDefinition{TCP: "localhost:22", Interval: "5s"}, ""},
		{"tcp ipv6", TypeTCP, state.CheckDefinition{TCP: "[::1]:22", Interval: "5s"}, ""},
		{"grpc", TypeGRPC, state.CheckDefinition{GRPC: "127.0.0.1:9000", Interval: "5s"}, ""},
		{"grpc service", TypeGRPC, state.CheckDefinition{GRPC: "127.0.0.1:9000/my.Service", Interval: "5s"}, ""},
		{"ttl", TypeTTL, state.CheckDefinition{TTL: "30s"}, ""},
		{"script", TypeScript, state.CheckDefinition{ScriptArgs: []string{"/bin/true"}, Interval: "10s"}, ""},
		{"interval below minimum is raised, not refused", TypeTCP, state.CheckDefinition{TCP: "a:1", Interval: "10ms"}, ""},
		{"thresholds", TypeHTTP, state.CheckDefinition{HTTP: "http://a/", Interval: "1s", SuccessBeforePassing: 2, FailuresBeforeCritical: 3}, ""},

		{"unknown type", "docker", state.CheckDefinition{Interval: "10s"}, `unknown check type "docker"`},
		{"missing interval", TypeHTTP, state.CheckDefinition{HTTP: "http://a/"}, "checks need an Interval > 0"},
		{"zero interval", TypeTCP, state.CheckDefinition{TCP: "a:1", Interval: "0s"}, "checks need an Interval > 0"},
		{"bad interval", TypeTCP, state.CheckDefinition{TCP: "a:1", Interval: "ten seconds"}, `invalid Interval: time: invalid duration "ten seconds"`},
		{"negative interval", TypeTCP, state.CheckDefinition{TCP: "a:1", Interval: "-1s"}, `Interval "-1s" must not be negative`},
		{"bad timeout", TypeTCP, state.CheckDefinition{TCP: "a:1", Interval: "1s", Timeout: "5"}, "invalid Timeout"},
		{"interval and ttl", TypeTTL, state.CheckDefinition{TTL: "10s", Interval: "10s"}, "both Interval and TTL are set"},
		{"missing ttl", TypeTTL, state.CheckDefinition{}, "TTL must be > 0 for TTL checks"},
		{"missing url", TypeHTTP, state.CheckDefinition{Interval: "1s"}, "HTTP must be the URL to check"},
		{"bad url", TypeHTTP, state.CheckDefinition{HTTP: "http://a b/", Interval: "1s"}, "invalid HTTP check"},
		{"not http url", TypeHTTP, state.CheckDefinition{HTTP: "ftp://a/", Interval: "1s"}, "the scheme must be http or https"},
		{"url without host", TypeHTTP, state.CheckDefinition{HTTP: "http:///health", Interval: "1s"}, "the URL has no host"},
		{"bad method", TypeHTTP, state.CheckDefinition{HTTP: "http://a/", Method: "GE T", Interval: "1s"}, "invalid method"},
		{"missing tcp address", TypeTCP, state.CheckDefinition{Interval: "1s"}, "TCP must be the host:port"},
		{"tcp without port", TypeTCP, state.CheckDefinition{TCP: "localhost", Interval: "1s"}, `invalid TCP "localhost"`},
		{"grpc without port", TypeGRPC, state.CheckDefinition{GRPC: "localhost/svc", Interval: "1s"}, `invalid GRPC "localhost"`},
		{"script without args", TypeScript, state.CheckDefinition{Interval: "1s"}, "ScriptArgs must name the program"},
		{"negative success threshold", TypeTCP, state.CheckDefinition{TCP: "a:1", Interval: "1s", SuccessBeforePassing: -1}, "SuccessBeforePassing -1 must not be negative"},
		{"negative failure threshold", TypeTCP, state.CheckDefinition{TCP: "a:1", Interval: "1s", FailuresBeforeCritical: -2}, "FailuresBeforeCritical -2 must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDefinition(tt.typ, tt.def)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseDefinition: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("parseDefinition: no error, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("parseDefinition: %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultTimeouts(t *testing.T) {
	tests := []struct {
		typ  string
		def  state.CheckDefinition
		want time.Duration
	}{
		{TypeHTTP, state.CheckDefinition{HTTP: "http://a/", Interval: "1s"}, 10 * time.Second},
		{TypeTCP, state.CheckDefinition{TCP: "a:1", Interval: "1s"}, 10 * time.Second},
		{TypeGRPC, state.CheckDefinition{GRPC: "a:1", Interval: "1s"}, 10 * time.Second},
		{TypeScript, state.CheckDefinition{ScriptArgs: []string{"true"}, Interval: "1s"}, 30 * time.Second},
		{TypeHTTP, state.CheckDefinition{HTTP: "http://a/", Interval: "1s", Timeout: "1m"}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.def.Timeout, func(t *testing.T) {
			s, err := parseDefinition(tt.typ, tt.def)
			if err != nil {
				t.Fatal(err)
			}
			if s.timeout != tt.want {
				t.Errorf("timeout = %s, want %s", s.timeout, tt.want)
			}
		})
	}
}

func TestAddRefuses(t *testing.T) {
	stopped := New(Config{})
	stopped.Stop()
	noScripts := New(Config{})
	t.Cleanup(noScripts.Stop)
	tcp := state.CheckDefinition{TCP: "127.0.0.1:1", Interval: "1s"}

	tests := []struct {
		name    string
		m       *Monitor
		id, typ string
		def     state.CheckDefinition
		initial string
		wantIs  error
		wantErr string
	}{
		{"script checks disabled", noScripts, "s", TypeScript,
			state.CheckDefinition{ScriptArgs: []string{"true"}, Interval: "1s"}, "",
			ErrScriptChecksDisabled, `check "s": script checks are disabled on this agent`},
		{"invalid definition", noScripts, "h", TypeHTTP, state.CheckDefinition{HTTP: "http://a/"}, "",
			nil, `check "h": script, HTTP, TCP and gRPC checks need an Interval > 0`},
		{"invalid initial status", noScripts, "t", TypeTCP, tcp, "ok",
			ErrInvalidStatus, `check "t": initial status "ok"`},
		{"missing ID", noScripts, "", TypeTCP, tcp, "", nil, "check ID missing"},
		{"after Stop", stopped, "t", TypeTCP, tcp, "", ErrStopped, `check "t": health checks are stopped`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Add(tt.id, tt.typ, tt.def, tt.initial)
			if err == nil {
				t.Fatal("Add: no error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Add: %v, want errors.Is %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Add: %q, want it to contain %q", err, tt.wantErr)
			}
			if n := tt.m.running.Load(); n != 0 {
				t.Errorf("%d check goroutines running after a refused Add", n)
			}
		})
	}
}

// TestIntervalBelowMinimumRaised checks Consul's behaviour: an interval
// under the minimum runs at the minimum, with a warning.
func TestIntervalBelowMinimumRaised(t *testing.T) {
	var logs bytes.Buffer
	var logsMu sync.Mutex
	logger := hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&logsMu, &logs}, Level: hclog.Warn})
	m := New(Config{Logger: logger})
	t.Cleanup(m.Stop)
	if err := m.Add("fast", TypeTCP, state.CheckDefinition{TCP: "127.0.0.1:1", Interval: "10ms"}, ""); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	interval := m.checks["fast"].spec.interval
	m.mu.Unlock()
	if interval != MinInterval {
		t.Errorf("interval = %s, want the minimum %s", interval, MinInterval)
	}
	logsMu.Lock()
	defer logsMu.Unlock()
	if !strings.Contains(logs.String(), "check has interval below minimum") {
		t.Errorf("no warning logged; logs:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// countingServer answers 200 with the number of the request, so that every
// run of a check against it changes its output (and is notified).
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, hits.Add(1))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestNotifyOnlyOnChange(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "same")
	}))
	t.Cleanup(srv.Close)
	m, rec := newTestMonitor(t, false)
	mustAdd(t, m, "web", TypeHTTP, state.CheckDefinition{HTTP: srv.URL})
	rec.waitStatus(t, "web", pass)
	// The fifth request starts after the fourth run's result was handled.
	waitUntil(t, "five runs", func() bool { return hits.Load() >= 5 })
	if events := rec.of("web"); len(events) != 1 {
		t.Fatalf("%d notifications for unchanged results, want 1: %s", len(events), formatEvents(events))
	}
}

// TestInitialStatusNotNotified: a first result equal to the initial status
// (and empty output, as the caller had) is no change.
func TestInitialStatusIsTheBaseline(t *testing.T) {
	t.Parallel()
	m, rec := newTestMonitor(t, false)
	if err := m.Add("ttl", TypeTTL, state.CheckDefinition{TTL: "1h"}, pass); err != nil {
		t.Fatal(err)
	}
	if err := m.UpdateTTL("ttl", pass, ""); err != nil {
		t.Fatal(err)
	}
	if events := rec.of("ttl"); len(events) != 0 {
		t.Fatalf("notified %s for an update equal to the initial status", formatEvents(events))
	}
	if err := m.UpdateTTL("ttl", pass, "now with output"); err != nil {
		t.Fatal(err)
	}
	if events := rec.of("ttl"); len(events) != 1 || events[0].output != "now with output" {
		t.Fatalf("events %s, want the output change", formatEvents(events))
	}
}

func TestRemoveStopsNotifying(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t)
	m, rec := newTestMonitor(t, false)
	mustAdd(t, m, "removed", TypeHTTP, state.CheckDefinition{HTTP: srv.URL})
	mustAdd(t, m, "clock", TypeHTTP, state.CheckDefinition{HTTP: srv.URL})
	rec.waitCount(t, "removed", 2)

	m.Remove("removed")
	after := len(rec.of("removed"))
	if n := m.running.Load(); n != 1 {
		t.Fatalf("%d check goroutines running after Remove, want 1 (clock)", n)
	}
	// Several more runs of the other check: the removed one had time to
	// notify, had it still been running.
	clock := len(rec.of("clock"))
	rec.waitCount(t, "clock", clock+3)
	if n := len(rec.of("removed")); n != after {
		t.Fatalf("removed check notified %d times after Remove returned", n-after)
	}
	m.Remove("removed") // removing twice, or an unknown ID, is harmless
	m.Remove("never-added")
}

func TestAddReplacesCheck(t *testing.T) {
	t.Parallel()
	oldSrv, oldHits := countingServer(t)
	newSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "new target", http.StatusServiceUnavailable)
	}))
	t.Cleanup(newSrv.Close)
	m, rec := newTestMonitor(t, false)
	mustAdd(t, m, "web", TypeHTTP, state.CheckDefinition{HTTP: oldSrv.URL})
	rec.waitStatus(t, "web", pass)

	mustAdd(t, m, "web", TypeHTTP, state.CheckDefinition{HTTP: newSrv.URL})
	hitsAtReplace := oldHits.Load()
	if n := m.running.Load(); n != 1 {
		t.Fatalf("%d check goroutines after replacing the check, want 1", n)
	}
	e := rec.waitStatus(t, "web", crit)
	want := fmt.Sprintf("HTTP GET %s: 503 Service Unavailable Output: new target\n", newSrv.URL)
	if e.output != want {
		t.Fatalf("output %q, want %q", e.output, want)
	}
	clockSrv, _ := countingServer(t)
	mustAdd(t, m, "clock", TypeHTTP, state.CheckDefinition{HTTP: clockSrv.URL})
	rec.waitCount(t, "clock", 3)
	if extra := oldHits.Load() - hitsAtReplace; extra != 0 {
		t.Fatalf("the replaced check kept running: %d requests after Add returned", extra)
	}
}

// TestRemoveCancelsRunningCheck: Remove does not wait for a hanging target
// (the timeout is long); the request is cancelled.
func TestRemoveCancelsRunningCheck(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
		cancelled <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	m, rec := newTestMonitor(t, false)
	mustAdd(t, m, "hang", TypeHTTP, state.CheckDefinition{HTTP: srv.URL, Timeout: "1h"})
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("the check never reached the server")
	}
	start := time.Now()
	m.Remove("hang")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Remove took %s with a request running", d)
	}
	select {
	case <-cancelled:
	case <-time.After(waitTimeout):
		t.Fatal("the running request was not cancelled")
	}
	if events := rec.of("hang"); len(events) != 0 {
		t.Fatalf("a cancelled run was notified: %s", formatEvents(events))
	}
}
