package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// memberStatus is the status /v1/agent/members on a reports for node (0 when
// it does not list it).
func memberStatus(t testing.TB, a *Agent, node string) int {
	t.Helper()
	members, err := a.Client.Agent().Members(false)
	if err != nil {
		t.Fatalf("agent members on %s: %v", a.Opts.Node, err)
	}
	for _, m := range members {
		if m.Name == node {
			return m.Status
		}
	}
	return 0
}

// serfHealth is the status of node's serfHealth check in the catalog.
func serfHealth(t testing.TB, a *Agent, node string) string {
	t.Helper()
	checks, _, err := a.Client.Health().Node(node, nil)
	if err != nil {
		t.Fatalf("health of node %s: %v", node, err)
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" {
			return c.Status
		}
	}
	return ""
}

func TestMembershipDrivesTheCatalog(t *testing.T) {
	t.Parallel()
	server := StartAgent(t, Options{Node: "s1"})
	c1 := StartClient(t, "c1", []*Agent{server})
	c2 := StartClient(t, "c2", []*Agent{server})
	for _, c := range []*Agent{c1, c2} {
		if err := c.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: "web-" + c.Opts.Node, Name: "web", Address: "10.0.0." + c.Opts.Node[1:], Port: 80}); err != nil {
			t.Fatal(err)
		}
	}
	waitForAddrs(t, server, "web.service.consul.", dns.TypeA, "10.0.0.1", "10.0.0.2")

	// Members as Consul reports them; serfHealth passing for everyone; the
	// server carries the consul service.
	members, err := server.Client.Agent().Members(false)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, m := range members {
		if m.Status != 1 {
			t.Errorf("member %s has status %d, want 1 (alive)", m.Name, m.Status)
		}
		roles[m.Name] = m.Tags["role"]
	}
	if want := map[string]string{"s1": "consul", "c1": "node", "c2": "node"}; !mapsEqual(roles, want) {
		t.Errorf("members and roles = %v, want %v", roles, want)
	}
	for _, n := range []string{"s1", "c1", "c2"} {
		eventually(t, 10*time.Second, func() error {
			if st := serfHealth(t, server, n); st != "passing" {
				return fmt.Errorf("serfHealth of %s is %q", n, st)
			}
			return nil
		})
	}
	waitForAddrs(t, server, "consul.service.consul.", dns.TypeA, "127.0.0.1")

	// SIGKILL a client: gossip declares it failed, the leader turns its
	// serfHealth critical, its service leaves DNS.
	c1.Kill(t)
	killed := time.Now()
	waitForAddrs(t, server, "web.service.consul.", dns.TypeA, "10.0.0.2")
	removal := time.Since(killed)
	t.Logf("killed client's service left DNS %v after SIGKILL", removal.Round(time.Millisecond))
	eventually(t, 10*time.Second, func() error {
		if st := memberStatus(t, server, "c1"); st != 4 {
			return fmt.Errorf("members shows c1 with status %d, want 4 (failed)", st)
		}
		return nil
	})
	if st := serfHealth(t, server, "c1"); st != "critical" {
		t.Errorf("serfHealth of the killed c1 = %q, want critical", st)
	}
	// The node stays in the catalog (until reconnect_timeout), its service
	// too: only DNS and ?passing leave it out.
	if svcs, _, err := server.Client.Catalog().Service("web", "", nil); err != nil || len(svcs) != 2 {
		t.Errorf("catalog web after the kill = %d instances, %v; want both", len(svcs), err)
	}

	// It comes back: alive again, its service back in DNS.
	c1.Restart(t)
	waitForAddrs(t, server, "web.service.consul.", dns.TypeA, "10.0.0.1", "10.0.0.2")

	// A graceful leave removes the node and its services at once, and the
	// agent shuts down.
	if err := c2.Client.Agent().Leave(); err != nil {
		t.Fatalf("leave: %v", err)
	}
	left := time.Now()
	waitForAddrs(t, server, "web.service.consul.", dns.TypeA, "10.0.0.1")
	t.Logf("left client's service left DNS %v after the leave", time.Since(left).Round(time.Millisecond))
	eventually(t, 10*time.Second, func() error {
		nodes, _, err := server.Client.Catalog().Nodes(nil)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(nodes, func(n *api.Node) bool { return n.Node == "c2" }) {
			return fmt.Errorf("c2 is still in the catalog")
		}
		if st := memberStatus(t, server, "c2"); st != 3 {
			return fmt.Errorf("members shows c2 with status %d, want 3 (left)", st)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		if c2.Running() {
			return fmt.Errorf("c2 still runs after its leave")
		}
		return nil
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
