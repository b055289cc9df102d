package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// clientSource is the RPC address of the server (or relay) a client
// agent follows, as its /v1/agent/self reports it.
func clientSource(t testing.TB, c *Agent) string {
	t.Helper()
	return consulStat(t, c, "source")
}

// serverAt returns the server whose RPC address is addr.
func serverAt(t testing.TB, servers []*Agent, addr string) *Agent {
	t.Helper()
	for _, s := range servers {
		if s.RPCAddr == addr {
			return s
		}
	}
	t.Fatalf("no server has RPC address %q", addr)
	return nil
}

func TestClientAgentForwardsFollowsAndFailsOver(t *testing.T) {
	t.Parallel()
	servers := StartCluster(t, 3)
	client := StartClient(t, "c1", servers)

	self, err := client.Client.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if self["Config"]["Server"] != false {
		t.Errorf("client's agent/self Config.Server = %v, want false", self["Config"]["Server"])
	}
	// Status and operator reads are passed on to the servers.
	peers, err := client.Client.Status().Peers()
	if err != nil || len(peers) != 3 {
		t.Errorf("status/peers on the client = %v, %v; want the 3 servers", peers, err)
	}
	conf, err := client.Client.Operator().RaftGetConfiguration(nil)
	if err != nil || len(conf.Servers) != 3 {
		t.Errorf("operator/raft/configuration on the client = %+v, %v; want 3 servers", conf, err)
	}

	// A service registered with the client agent: the write goes through a
	// server to the leader; the client's own DNS answers it at once (it
	// waits for its replica before acknowledging), every server's too.
	if err := client.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379}); err != nil {
		t.Fatalf("register on the client: %v", err)
	}
	if got := addrsOf(client.Query(t, "redis.service.consul.", dns.TypeA).Answer); !slices.Equal(got, []string{"10.0.0.5"}) {
		t.Errorf("client DNS right after its registration = %v, want [10.0.0.5]", got)
	}
	for _, s := range append([]*Agent{client}, servers...) {
		waitForAddrs(t, s, "redis.service.consul.", dns.TypeA, "10.0.0.5")
	}
	// The client answers for its own node too.
	waitForAddrs(t, client, "c1.node.consul.", dns.TypeA, "127.0.0.1")
	svcs, _, err := client.Client.Catalog().Service("redis", "", &api.QueryOptions{RequireConsistent: true})
	if err != nil || len(svcs) != 1 || svcs[0].Node != "c1" {
		t.Errorf("consistent catalog read on the client = %v, %v; want redis-1 on c1", svcs, err)
	}

	// A change made through a server reaches the client's DNS by the stream.
	register := func(a *Agent, node, addr string) {
		t.Helper()
		if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{
			Node: node, Address: addr, Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}, nil); err != nil {
			t.Fatalf("catalog register of %s through %s: %v", node, a.Opts.Node, err)
		}
	}
	start := time.Now()
	register(servers[0], "web-1", "10.0.1.1")
	waitForAddrs(t, client, "web.service.consul.", dns.TypeA, "10.0.1.1")
	t.Logf("a write through a server reached the client's DNS after %v", time.Since(start).Round(time.Millisecond))

	// Kill the server the client follows.
	src := clientSource(t, client)
	if src == "" {
		t.Fatal("the client reports no server it follows")
	}
	victim := serverAt(t, servers, src)
	victim.Kill(t)
	var alive []*Agent
	for _, s := range servers {
		if s != victim {
			alive = append(alive, s)
		}
	}
	// DNS on the client keeps answering from its replica, at once.
	if got := addrsOf(client.Query(t, "redis.service.consul.", dns.TypeA).Answer); !slices.Equal(got, []string{"10.0.0.5"}) {
		t.Errorf("client DNS right after its server %s was killed = %v, want [10.0.0.5]", victim.Opts.Node, got)
	}
	// Writes through the client reach the cluster through another server
	// (once a leader is there: the victim may have been the leader).
	eventually(t, 20*time.Second, func() error {
		return client.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: "redis-2", Name: "redis", Address: "10.0.0.6", Port: 6379})
	})
	waitForAddrs(t, client, "redis.service.consul.", dns.TypeA, "10.0.0.5", "10.0.0.6")
	// And the client follows another server now: changes made there arrive.
	register(alive[0], "web-2", "10.0.1.2")
	waitForAddrs(t, client, "web.service.consul.", dns.TypeA, "10.0.1.1", "10.0.1.2")
	eventually(t, 10*time.Second, func() error {
		if now := clientSource(t, client); now == src || now == "" {
			return fmt.Errorf("client still reports source %q", now)
		}
		return nil
	})
	if got := addrsOf(client.Query(t, "redis.service.consul.", dns.TypeA).Answer); len(got) != 2 {
		t.Errorf("client DNS after failover = %v, want both redis instances", got)
	}
	// The killed server comes back and catches up; the client's
	// registrations are in its replica too.
	victim.Restart(t)
	waitForAddrs(t, victim, "redis.service.consul.", dns.TypeA, "10.0.0.5", "10.0.0.6")
}

func TestClientAgentWithoutServers(t *testing.T) {
	t.Parallel()
	// A client whose join address leads nowhere: it starts, says it has no
	// leader, and its DNS refuses to answer from an empty replica.
	c := &Agent{Opts: Options{Node: "lonely", Datacenter: "dc1", Client: true}}
	c.Dir = t.TempDir()
	c.ConfPath, c.LogPath = c.Dir+"/Corefile", c.Dir+"/agent.log"
	t.Cleanup(func() { c.cleanup(t) })
	c.setPorts(allocatePorts(t))
	c.Opts.Join = []string{addr(freePort(t))}
	c.writeCorefile(t)
	if err := c.launch(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		_, err := c.Client.Status().Leader()
		return err
	})
	if leader, err := c.Client.Status().Leader(); err != nil || leader != "" {
		t.Errorf("status/leader on a client without servers = %q, %v; want \"\"", leader, err)
	}
	r, err := c.Exchange(question("redis.service.consul.", dns.TypeA), "udp")
	if err != nil {
		t.Fatalf("DNS on a client without servers: %v", err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("DNS on a client without a state = %s, want SERVFAIL", rcode(r))
	}
	_, err = c.Client.Catalog().Register(&api.CatalogRegistration{Node: "x", Address: "10.9.9.9"}, nil)
	if err == nil {
		t.Error("a write through a client without servers succeeded")
	}
}
