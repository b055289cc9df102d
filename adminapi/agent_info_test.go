package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

// introspectAgent is the fake agent with the endpoints about itself, and
// ACLs when its resolver is set.
type introspectAgent struct {
	*aclAgent
	mu        sync.Mutex
	reloadErr error
	reloads   int
}

var _ Introspection = (*introspectAgent)(nil)

func (a *introspectAgent) Build() BuildInfo {
	return BuildInfo{Version: "0.1.0-dev", Revision: "0123456789ab", BuildDate: "2026-01-02T03:04:05Z", SDK: "1.34.5"}
}

func (a *introspectAgent) HostInfo() HostInfo {
	return HostInfo{Memory: map[string]any{"total": 1024}, CPU: []map[string]any{{"cores": 2}},
		Host: map[string]any{"hostname": "h1"}, Disk: map[string]any{"path": "/tmp/beacon"}, CollectionTime: 42,
		Errors: []string{"cpu: unreadable"}}
}

func (a *introspectAgent) ReloadConfig() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reloads++
	return a.reloadErr
}

func (a *introspectAgent) reloadCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reloads
}

// logBuffer is a log a running handler writes while the test reads it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newIntrospectAPI serves the API of an introspectAgent whose logger, at
// INFO and writing to the returned buffer, takes monitors' sinks.
func newIntrospectAPI(t *testing.T) (*testAPI, *introspectAgent, hclog.InterceptLogger, *logBuffer) {
	t.Helper()
	fake := newFakeAgent(t)
	agent := &introspectAgent{aclAgent: &aclAgent{fakeAgent: fake}}
	stderr := &logBuffer{}
	logs := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "beacon", Level: hclog.Info, Output: stderr})
	return serveTestAPIWithLogger(t, fake, agent, logs.Named("http")), agent, logs, stderr
}

func TestAgentSelfComplete(t *testing.T) {
	ta := newTestAPI(t)
	r := ta.get("/v1/agent/self")
	var self map[string]json.RawMessage
	mustOK(t, r, &self)
	for _, key := range []string{"Config", "DebugConfig", "Coord", "Member", "Stats", "Meta", "xDS"} {
		if _, ok := self[key]; !ok {
			t.Errorf("/v1/agent/self has no %s: %s", key, r.body)
		}
	}
	if string(self["xDS"]) != "null" {
		t.Errorf("xDS = %s, want null", self["xDS"])
	}
	var cfg map[string]any
	if err := json.Unmarshal(self["Config"], &cfg); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"Datacenter": testDC, "NodeName": testNode, "NodeID": testNodeID, "Server": true,
		"Version": "0.1.0", "Revision": "0123456789ab", "BuildDate": "2026-01-02T03:04:05Z"} {
		if cfg[key] != want {
			t.Errorf("Config.%s = %v, want %v", key, cfg[key], want)
		}
	}
	// The official client reads the coordinate and the member as Consul's.
	got, err := ta.client.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if vec, _ := got["Coord"]["Vec"].([]any); len(vec) != 8 {
		t.Errorf("Coord = %v, want an 8-dimensional coordinate", got["Coord"])
	}
	if got["Member"]["Name"] != testNode || got["Member"]["Port"] != float64(8301) {
		t.Errorf("Member = %v", got["Member"])
	}
	if got["DebugConfig"]["EncryptKey"] != "hidden" {
		t.Errorf("DebugConfig = %v", got["DebugConfig"])
	}
}

func TestAgentVersion(t *testing.T) {
	ta, _, _, _ := newIntrospectAPI(t)
	v, err := ta.client.Agent().Version()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"SDK": "1.34.5", "HumanVersion": "v0.1.0-dev", "BuildDate": "2026-01-02T03:04:05Z", "FIPS": ""}
	if fmt.Sprint(v) != fmt.Sprint(want) {
		t.Errorf("/v1/agent/version = %v, want %v", v, want)
	}
	// An agent without the introspection endpoints does not serve them.
	plain := newTestAPI(t)
	for _, path := range []string{"/v1/agent/version", "/v1/agent/host"} {
		if r := plain.get(path); r.code != http.StatusNotFound {
			t.Errorf("GET %s without introspection: %d %q, want 404", path, r.code, r.body)
		}
	}
}

func TestAgentHost(t *testing.T) {
	ta, _, _, _ := newIntrospectAPI(t)
	host, err := ta.client.Agent().Host()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"Memory", "CPU", "Host", "Disk", "CollectionTime", "Errors"} {
		if _, ok := host[key]; !ok {
			t.Errorf("/v1/agent/host has no %s: %v", key, host)
		}
	}
	if errs, _ := host["Errors"].([]any); len(errs) != 1 || errs[0] != "cpu: unreadable" {
		t.Errorf("Errors = %v", host["Errors"])
	}
}

func TestAgentReload(t *testing.T) {
	ta, agent, _, _ := newIntrospectAPI(t)
	if err := ta.client.Agent().Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	agent.mu.Lock()
	agent.reloadErr = errors.New(`reloading the Corefile: plugin/discovery: agent setting data_dir cannot change`)
	agent.mu.Unlock()
	err := ta.client.Agent().Reload()
	if err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "data_dir cannot change") {
		t.Errorf("failed reload: %v, want a 500 that says why", err)
	}
	if r := ta.get("/v1/agent/reload"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/agent/reload: %d, want 405", r.code)
	}
	if n := agent.reloadCount(); n != 2 {
		t.Errorf("%d reloads, want 2", n)
	}
}

// The agent's endpoints about itself take Consul's permissions: self and
// monitor agent:read, reload agent:write, host operator:read; version none.
func TestAgentInfoACLs(t *testing.T) {
	ta, agent, _, _ := newIntrospectAPI(t)
	store := ta.agent.store
	agent.resolver = state.NewACLResolver(store, false)
	index := uint64(0)
	apply := func(req *state.ACLRequest) {
		t.Helper()
		index++
		if err := store.ACLApply(index, req); err != nil {
			t.Fatal(err)
		}
	}
	token := func(secret, rules string) {
		t.Helper()
		p := &acl.Policy{ID: acl.NewUUID(), Name: "p-" + secret, Rules: rules}
		apply(&state.ACLRequest{Op: state.ACLPolicySet, Policy: p})
		apply(&state.ACLRequest{Op: state.ACLTokenSet, Token: &acl.Token{AccessorID: acl.NewUUID(), SecretID: secret,
			Policies: []acl.PolicyLink{{ID: p.ID}}}})
	}
	token("agent-read", `agent "`+testNode+`" { policy = "read" }`)
	token("agent-write", `agent_prefix "" { policy = "write" }`)
	token("operator-read", `operator = "read"`)

	do := func(method, path, secret string) int {
		req, err := http.NewRequest(method, ta.ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Consul-Token", secret)
		resp, err := ta.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // a monitor let in streams: its status is all this needs
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path string
		allowed      []string
	}{
		{http.MethodGet, "/v1/agent/self", []string{"agent-read", "agent-write"}},
		{http.MethodGet, "/v1/agent/monitor", []string{"agent-read", "agent-write"}},
		{http.MethodPut, "/v1/agent/reload", []string{"agent-write"}},
		{http.MethodGet, "/v1/agent/host", []string{"operator-read"}},
		{http.MethodGet, "/v1/agent/version", []string{"", "agent-read", "agent-write", "operator-read"}},
	} {
		for _, secret := range []string{"", "agent-read", "agent-write", "operator-read"} {
			want := http.StatusForbidden
			for _, s := range tc.allowed {
				if s == secret {
					want = http.StatusOK
				}
			}
			if got := do(tc.method, tc.path, secret); got != want {
				t.Errorf("%s %s with token %q: %d, want %d", tc.method, tc.path, secret, got, want)
			}
		}
	}
	if n := agent.reloadCount(); n != 1 {
		t.Errorf("%d reloads, want 1 (the allowed one)", n)
	}
	waitIdle(t, ta)
}

// waitIdle waits until no request is in the API's handler: the monitors
// the test opened have seen their clients go.
func waitIdle(t *testing.T, ta *testAPI) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ta.inFlight() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still in the handler", ta.inFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// monitor opens a monitor through the official client; stop ends it and
// waits for the client's reader.
func monitor(t *testing.T, ta *testAPI, level string, logJSON bool) (lines <-chan string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopCh := make(chan struct{})
	open := ta.client.Agent().Monitor
	if logJSON {
		open = ta.client.Agent().MonitorJSON
	}
	ch, err := open(level, stopCh, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		cancel()
		t.Fatalf("monitor: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(stopCh)
			cancel()
			for range ch { // until the client's reader closes it
			}
		})
	}
	t.Cleanup(stop)
	return ch, stop
}

// nextLine waits for the monitor's next line.
func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case l := <-lines:
		if l == "" {
			t.Fatal("the monitor stream ended")
		}
		return l
	case <-timer.C:
		t.Fatal("no log line within 10s")
		return ""
	}
}

func TestAgentMonitor(t *testing.T) {
	ta, _, logs, stderr := newIntrospectAPI(t)

	t.Run("lines at the monitor's level, beyond the agent's", func(t *testing.T) {
		lines, stop := monitor(t, ta, "debug", false)
		logs.Debug("looking closely", "detail", 7)
		logs.Named("gossip").Info("member joined", "member", "n2")
		if l := nextLine(t, lines); !strings.Contains(l, "[DEBUG] beacon: looking closely: detail=7") {
			t.Errorf("first line %q", l)
		}
		if l := nextLine(t, lines); !strings.Contains(l, "[INFO]  beacon.gossip: member joined: member=n2") {
			t.Errorf("second line %q", l)
		}
		stop()
		// stderr kept its own level: the debug line is not there.
		if out := stderr.String(); strings.Contains(out, "looking closely") || !strings.Contains(out, "member joined") {
			t.Errorf("stderr changed with the monitor:\n%s", out)
		}
	})

	t.Run("a higher level leaves lines out", func(t *testing.T) {
		lines, stop := monitor(t, ta, "WARN", false)
		defer stop()
		logs.Info("not for this monitor")
		logs.Warn("for this monitor")
		if l := nextLine(t, lines); !strings.Contains(l, "[WARN]  beacon: for this monitor") {
			t.Errorf("first line %q, want the warning alone", l)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		lines, stop := monitor(t, ta, "info", true)
		defer stop()
		logs.Info("as json", "key", "value")
		var entry map[string]any
		if l := nextLine(t, lines); json.Unmarshal([]byte(l), &entry) != nil || entry["@message"] != "as json" ||
			entry["key"] != "value" || entry["@level"] != "info" {
			t.Errorf("line %q, want hclog's JSON", l)
		}
	})

	t.Run("bad level", func(t *testing.T) {
		r := ta.get("/v1/agent/monitor?loglevel=loud")
		if r.code != http.StatusBadRequest || !strings.Contains(r.String(), "Unknown log level: loud") {
			t.Errorf("loglevel=loud: %d %q, want 400", r.code, r.body)
		}
	})

	// Every monitor above ended when its client went.
	waitIdle(t, ta)
	logs.Info("after the monitors") // no sink left to write to
}

// A monitor's queue never blocks the logger: past its bound lines are
// dropped and counted.
func TestLogTapDropsRatherThanBlocks(t *testing.T) {
	tap := newLogTap(2)
	for i := range 5 {
		line := []byte(fmt.Sprintf("line %d\n", i))
		if n, err := tap.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		line[0] = 'X' // the logger reuses its buffer: the tap keeps a copy
	}
	if got := string(<-tap.lines) + string(<-tap.lines); got != "line 0\nline 1\n" {
		t.Errorf("queued %q", got)
	}
	if n := tap.dropped.Load(); n != 3 {
		t.Errorf("dropped %d, want 3", n)
	}
}

func TestCatalogServicesNodeMeta(t *testing.T) {
	ta := newTestAPI(t)
	for _, n := range []struct {
		node, rack string
		svcs       []*state.Service
	}{
		{"web-1", "r1", []*state.Service{{ID: "web", Service: "web", Tags: []string{"b", "a"}}, {ID: "log", Service: "log"}}},
		{"web-2", "r2", []*state.Service{{ID: "web", Service: "web", Tags: []string{"c"}}, {ID: "db", Service: "db"}}},
	} {
		for _, svc := range n.svcs {
			ta.register(&state.RegisterRequest{Node: n.node, Address: "10.0.0.1", NodeMeta: map[string]string{"rack": n.rack},
				Service: svc})
		}
	}
	services, _, err := ta.client.Catalog().Services(&api.QueryOptions{NodeMeta: map[string]string{"rack": "r1"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(services) != "map[log:[] web:[a b]]" {
		t.Errorf("services on rack r1: %v", services)
	}
	all, _, err := ta.client.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(all) != "map[db:[] log:[] web:[a b c]]" {
		t.Errorf("every service: %v", all)
	}
	if r := ta.get("/v1/catalog/services?node-meta=rack"); r.code != http.StatusBadRequest {
		t.Errorf("node-meta without a value: %d %q, want 400", r.code, r.body)
	}
}
