package agent

import (
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/beacon-dns/beacon/corefile"
)

// The agent is one per process (DESIGN.md, Corefile): every discovery block
// and every reload gets the agent the first one started; a reload whose
// agent settings differ is refused whole, and the running agent keeps
// serving; only the final shutdown stops it.

// TestAcquireRefusesChangedAgentSettings: a reload (an Acquire while the
// agent runs) that changes any agent setting fails with an error naming the
// setting; nothing of the new configuration is applied, and the running
// agent keeps running, serving its API and committing writes. A block with
// the same agent settings, or with none, gets the running agent.
func TestAcquireRefusesChangedAgentSettings(t *testing.T) {
	c := newAgentConf(t, "n1")
	a := acquire(t, c.parse(t))

	// Values for the changed settings: another data_dir and free ports no
	// agent uses.
	other := newAgentConf(t, "n2")
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	changes := []struct {
		prop string
		edit func(*agentConf)
	}{
		{"data_dir", func(c *agentConf) { c.DataDir = other.DataDir }},
		{"node", func(c *agentConf) { c.Node = "n2" }},
		{"bind", func(c *agentConf) { c.Bind = "127.0.0.2" }},
		{"http", func(c *agentConf) { c.HTTP = other.HTTP }},
		{"rpc", func(c *agentConf) { c.RPC = other.RPC }},
		{"serf_lan", func(c *agentConf) { c.SerfLAN = other.SerfLAN }},
		{"serf_wan", func(c *agentConf) { c.SerfWAN = other.SerfWAN }},
		{"server", func(c *agentConf) { c.Client = true }},
		{"datacenter", func(c *agentConf) { c.Extra = append(c.Extra, "datacenter dc2") }},
		{"join", func(c *agentConf) { c.Join = []string{other.SerfLAN} }},
		{"encrypt", func(c *agentConf) { c.Extra = append(c.Extra, "encrypt "+key) }},
		{"enable_script_checks", func(c *agentConf) { c.Extra = append(c.Extra, "enable_script_checks") }},
	}
	for _, tc := range changes {
		t.Run(tc.prop, func(t *testing.T) {
			changed := c
			changed.Extra = append([]string(nil), c.Extra...)
			tc.edit(&changed)
			cfg := changed.parse(t)
			got, err := Acquire(cfg)
			if err == nil {
				t.Fatalf("Acquire with %s changed: accepted (agent %p; running %p), want refused", tc.prop, got, a)
			}
			if got != nil {
				t.Errorf("a refused Acquire returned agent %p, want nil", got)
			}
			msg := err.Error()
			if !strings.Contains(msg, "agent setting "+tc.prop+" (") || !strings.Contains(msg, "restart") {
				t.Errorf("error %q: want it to name the setting %q and say a restart changes it", msg, tc.prop)
			}
			if strings.Contains(msg, key) {
				t.Errorf("error %q shows the gossip key: it is logged", msg)
			}
		})
	}

	// Nothing of a refused configuration was applied: its data_dir was
	// not created, and its ports were not bound.
	if _, err := os.Stat(other.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused data_dir %s: %v, want it not created", other.DataDir, err)
	}
	portsFree(t, []string{other.HTTP, other.RPC, other.SerfLAN}, []string{other.SerfLAN})

	// The same agent settings (the DNS settings may change), or none at
	// all, get the running agent.
	same := c
	same.Extra = []string{"service_ttl * 30s", "only_passing"}
	if got, err := Acquire(same.parse(t)); err != nil || got != a {
		t.Errorf("Acquire with the same agent settings = %p, %v; want the running agent %p", got, err, a)
	}
	bare := parseBlock(t, "discovery {\n\tnode_ttl 10s\n}")
	if bare.AgentSet {
		t.Fatal("a block with no agent property has AgentSet")
	}
	if got, err := Acquire(bare); err != nil || got != a {
		t.Errorf("Acquire with no agent settings = %p, %v; want the running agent %p", got, err, a)
	}

	// The running agent still serves: its API answers as before, and a
	// write commits through its Raft server.
	if self := mustCall(t, http.MethodGet, c.HTTP, "/v1/agent/self", ""); !strings.Contains(self, `"NodeName":"n1"`) {
		t.Errorf("GET /v1/agent/self after the refused reloads: %s", self)
	}
	waitWritable(t, c.HTTP)
	mustCall(t, http.MethodPut, c.HTTP, "/v1/kv/after-refusal", "still-here")
	if v := mustCall(t, http.MethodGet, c.HTTP, "/v1/kv/after-refusal?raw", ""); v != "still-here" {
		t.Errorf("GET /v1/kv/after-refusal = %q", v)
	}
}

// TestAcquireIsASingleton: concurrent and later Acquires get the one running
// agent; ShutdownFinal stops it and may be called again; the next Acquire
// starts a fresh agent, on the same data_dir and ports.
func TestAcquireIsASingleton(t *testing.T) {
	c := newAgentConf(t, "n1")
	cfgs := make([]*corefile.Config, 4)
	for i := range cfgs {
		cfgs[i] = c.parse(t)
	}
	ownSingleton(t)
	if err := ShutdownFinal(); err != nil {
		t.Fatalf("ShutdownFinal with no agent running: %v", err)
	}

	// Concurrent first Acquires start one agent (a second start would
	// fail on the ports and the raft.db lock the first holds).
	got := make([]*Agent, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = Acquire(cfg)
		}()
	}
	wg.Wait()
	a := got[0]
	for i := range got {
		if errs[i] != nil || got[i] == nil || got[i] != a {
			t.Fatalf("concurrent Acquire %d = %p, %v; want the one agent (%p)", i, got[i], errs[i], a)
		}
	}
	if again, err := Acquire(c.parse(t)); err != nil || again != a {
		t.Fatalf("a later Acquire = %p, %v; want %p", again, err, a)
	}
	mustCall(t, http.MethodGet, c.HTTP, "/v1/agent/self", "")
	id := a.NodeID()

	if err := ShutdownFinal(); err != nil {
		t.Fatalf("ShutdownFinal: %v", err)
	}
	if _, _, err := call(http.MethodGet, c.HTTP, "/v1/agent/self", ""); !refused(err) {
		t.Fatalf("GET /v1/agent/self after ShutdownFinal: %v, want the connection refused", err)
	}
	if err := ShutdownFinal(); err != nil {
		t.Errorf("a second ShutdownFinal: %v", err)
	}

	b, err := Acquire(c.parse(t))
	if err != nil {
		t.Fatalf("Acquire after ShutdownFinal (same data_dir and ports): %v", err)
	}
	if b == a {
		t.Fatal("Acquire after ShutdownFinal returned the agent that was shut down")
	}
	if b.NodeID() != id {
		t.Errorf("node ID %s after the restart, want %s from data_dir", b.NodeID(), id)
	}
	mustCall(t, http.MethodGet, c.HTTP, "/v1/agent/self", "")
	if again, err := Acquire(c.parse(t)); err != nil || again != b {
		t.Errorf("Acquire after the restart = %p, %v; want the new agent %p", again, err, b)
	}
}
