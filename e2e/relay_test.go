package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// consulStat is a figure of the consul section of an agent's
// /v1/agent/self Stats.
func consulStat(t testing.TB, a *Agent, key string) string {
	t.Helper()
	self, err := a.Client.Agent().Self()
	if err != nil {
		t.Fatalf("agent self on %s: %v", a.Opts.Node, err)
	}
	v, _ := self["Stats"]["consul"].(map[string]any)[key].(string)
	return v
}

// waitStat waits until every agent's consul stat key reads want.
func waitStat(t testing.TB, timeout time.Duration, key, want string, agents ...*Agent) {
	t.Helper()
	eventually(t, timeout, func() error {
		for _, a := range agents {
			if got := consulStat(t, a, key); got != want {
				return fmt.Errorf("%s reports %s %q, want %q", a.Opts.Node, key, got, want)
			}
		}
		return nil
	})
}

// TestRelayCarriesClientAgents: client agents follow a relay (a client
// agent with `relay`) rather than the server, which then streams to the
// relay alone; what is written through the server or through a client
// reaches every client's DNS through it. When the relay is killed the
// clients resume on the server from their own index, and once it is back
// they move to it again.
func TestRelayCarriesClientAgents(t *testing.T) {
	t.Parallel()
	servers := StartCluster(t, 1)
	server := servers[0]
	join := []string{addr(server.Ports.SerfLAN)}
	relay := StartAgent(t, Options{Node: "relay", Client: true, Join: join, Discovery: []string{"relay"}})
	leaves := []*Agent{StartClient(t, "c1", servers), StartClient(t, "c2", servers)}

	// The clients move to the relay (at once if gossip listed it when they
	// started, within 15 s otherwise).
	waitStat(t, 45*time.Second, "source", relay.RPCAddr, leaves...)
	waitStat(t, 10*time.Second, "streams", "2", relay)
	waitStat(t, 10*time.Second, "streams", "1", server)
	if got := consulStat(t, relay, "source"); got != server.RPCAddr {
		t.Errorf("the relay follows %q, want the server %q", got, server.RPCAddr)
	}

	// A write through the server reaches the clients' DNS through the relay.
	if _, err := server.Client.Catalog().Register(&api.CatalogRegistration{Node: "web-1", Address: "10.0.1.1",
		Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range leaves {
		waitForAddrs(t, c, "web.service.consul.", dns.TypeA, "10.0.1.1")
	}
	// A client reads its own write through the relay at once.
	if err := leaves[0].Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379}); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(leaves[0].Query(t, "redis.service.consul.", dns.TypeA).Answer); !slices.Equal(got, []string{"10.0.0.5"}) {
		t.Errorf("client DNS right after its registration through the relay = %v, want [10.0.0.5]", got)
	}
	waitForAddrs(t, leaves[1], "redis.service.consul.", dns.TypeA, "10.0.0.5")
	snapshots := consulStat(t, leaves[0], "snapshots")

	// The relay dies: the clients resume on the server, from their index.
	relay.Kill(t)
	if _, err := server.Client.Catalog().Register(&api.CatalogRegistration{Node: "web-2", Address: "10.0.1.2",
		Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range leaves {
		waitForAddrs(t, c, "web.service.consul.", dns.TypeA, "10.0.1.1", "10.0.1.2")
	}
	waitStat(t, 10*time.Second, "source", server.RPCAddr, leaves...)
	if got := consulStat(t, leaves[0], "snapshots"); got != snapshots {
		t.Errorf("c1 installed snapshots %s → %s moving to the server; want it to resume", snapshots, got)
	}

	// The relay comes back: the clients move to it again.
	relay.Restart(t)
	waitStat(t, 45*time.Second, "source", relay.RPCAddr, leaves...)
	if _, err := server.Client.Catalog().Register(&api.CatalogRegistration{Node: "web-3", Address: "10.0.1.3",
		Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range leaves {
		waitForAddrs(t, c, "web.service.consul.", dns.TypeA, "10.0.1.1", "10.0.1.2", "10.0.1.3")
	}
	waitStat(t, 10*time.Second, "streams", "1", server)
}
