package gossip

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The WAN pool: servers of several datacenters, named <node>.<dc>, each
// finding the servers of every datacenter; client agents cannot start one.
func TestWANPoolSpansDatacenters(t *testing.T) {
	start := func(name, dc string) *Pool {
		t.Helper()
		cfg := testConfig(name, RoleServer)
		cfg.Datacenter = dc
		p, err := NewWAN(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Shutdown() })
		return p
	}
	a, b, c := start("s1", "dc1"), start("s1", "dc2"), start("s2", "dc2")
	if got := a.LocalMember().Name; got != "s1.dc1" {
		t.Errorf("WAN name %q, want s1.dc1", got)
	}
	for _, p := range []*Pool{b, c} {
		if _, err := p.Join([]string{fmt.Sprintf("127.0.0.1:%d", a.localPort)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "every server in every view", func() bool {
		for _, p := range []*Pool{a, b, c} {
			byDC := p.ServersByDatacenter()
			if len(byDC["dc1"]) != 1 || len(byDC["dc2"]) != 2 {
				return false
			}
		}
		return true
	})
	var names []string
	for _, m := range a.ServersByDatacenter()["dc2"] {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"s1.dc2", "s2.dc2"}) {
		t.Errorf("dc2's servers as dc1 sees them: %v", names)
	}
	if rpc := a.ServersByDatacenter()["dc2"][0].RPCAddr; rpc == "" {
		t.Error("a WAN member does not carry its RPC address")
	}

	if _, err := NewWAN(testConfig("c1", RoleClient)); err == nil {
		t.Error("a client agent started a WAN pool")
	}
}
