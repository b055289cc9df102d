package e2e

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// Two datacenters federated through the WAN pool: each server learns the
// other's servers, and any request with ?dc= is answered there, from a
// server or a client agent of the other datacenter, blocking queries
// included. An unknown datacenter, or one whose servers are gone, fails
// fast with Consul's errors.
func TestFederation(t *testing.T) {
	t.Parallel()
	s1 := StartAgent(t, Options{Node: "s1", Datacenter: "dc1"})
	s2 := StartAgent(t, Options{Node: "s2", Datacenter: "dc2",
		Discovery: []string{"join_wan " + addr(s1.Ports.SerfWAN)}})
	c1 := StartClient(t, "c1", []*Agent{s1})

	for _, a := range []*Agent{s1, c1, s2} {
		eventually(t, 20*time.Second, func() error {
			dcs, err := a.Client.Catalog().Datacenters()
			if err != nil || len(dcs) != 2 || dcs[0] != a.Opts.Datacenter || !slices.Contains(dcs, "dc2") {
				return fmt.Errorf("datacenters on %s: %v, %v", a.Opts.Node, dcs, err)
			}
			return nil
		})
	}
	wan, err := s1.Client.Agent().Members(true)
	var names []string
	for _, m := range wan {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"s1.dc1", "s2.dc2"}) {
		t.Errorf("WAN members on s1: %v, %v", names, err)
	}
	if wan, err := c1.Client.Agent().Members(true); err != nil || len(wan) != 0 {
		t.Errorf("WAN members on a client agent: %d, %v; want none", len(wan), err)
	}
	out, err := exec.Command(beaconBin, "members", "-wan", "-http-addr="+s2.HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "s1.dc1") || !strings.Contains(string(out), "s2.dc2") {
		t.Errorf("beacon members -wan: %v\n%s", err, out)
	}

	// Writes and reads for dc2 made in dc1, from the client agent.
	dc2 := &api.WriteOptions{Datacenter: "dc2"}
	if _, err := c1.Client.KV().Put(&api.KVPair{Key: "where", Value: []byte("dc2")}, dc2); err != nil {
		t.Fatalf("KV put with ?dc=dc2 through a dc1 client agent: %v", err)
	}
	if pair, _, err := s2.Client.KV().Get("where", nil); err != nil || pair == nil || string(pair.Value) != "dc2" {
		t.Errorf("the key written for dc2, read on dc2's server: %v, %v", pair, err)
	}
	if pair, _, _ := s1.Client.KV().Get("where", nil); pair != nil {
		t.Error("the key written for dc2 is in dc1")
	}
	if _, err := s2.Client.Catalog().Register(&api.CatalogRegistration{Node: "web-node-1", Address: "10.2.0.1",
		Service: &api.AgentService{ID: "web-1", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatal(err)
	}
	q := &api.QueryOptions{Datacenter: "dc2"}
	entries, meta, err := c1.Client.Health().Service("web", "", true, q)
	if err != nil || len(entries) != 1 || entries[0].Node.Datacenter != "dc2" {
		t.Fatalf("dc2's web through a dc1 client agent: %v, %v", entries, err)
	}

	// A blocking query for dc2 wakes on dc2's change.
	woke := make(chan error, 1)
	go func() {
		entries, _, err := c1.Client.Health().Service("web", "", true,
			&api.QueryOptions{Datacenter: "dc2", WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		if err == nil && len(entries) != 2 {
			err = fmt.Errorf("woke with %d instances, want 2", len(entries))
		}
		woke <- err
	}()
	if _, err := s2.Client.Catalog().Register(&api.CatalogRegistration{Node: "web-node-2", Address: "10.2.0.2",
		Service: &api.AgentService{ID: "web-2", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Errorf("blocking query for dc2: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a blocking query for dc2 did not wake on dc2's write")
	}

	// DNS on dc1's agents answers dc2's names by asking dc2.
	for _, a := range []*Agent{c1, s1} {
		eventually(t, 10*time.Second, func() error {
			r := a.Query(t, "web.service.dc2.consul.", dns.TypeA)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
				return fmt.Errorf("DNS web.service.dc2.consul on %s: %s %v", a.Opts.Node, dns.RcodeToString[r.Rcode], r.Answer)
			}
			return nil
		})
	}
	if r := c1.Query(t, "web-node-1.node.dc2.consul.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("DNS of a dc2 node on a dc1 client agent: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if r := c1.Query(t, "db.service.dc2.consul.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("DNS of a service dc2 does not have: %s", dns.RcodeToString[r.Rcode])
	}

	// A user event for dc2 is fired there, not here.
	if _, _, err := c1.Client.Event().Fire(&api.UserEvent{Name: "deploy"}, dc2); err != nil {
		t.Fatalf("firing an event into dc2 from a dc1 client agent: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		if evs, _, err := s2.Client.Event().List("deploy", nil); err != nil || len(evs) != 1 {
			return fmt.Errorf("events on dc2's server: %d, %v", len(evs), err)
		}
		return nil
	})
	if evs, _, _ := s1.Client.Event().List("deploy", nil); len(evs) != 0 {
		t.Errorf("the event for dc2 reached dc1 (%d)", len(evs))
	}

	// An unknown datacenter is Consul's error at once.
	start := time.Now()
	if _, _, err := c1.Client.KV().Get("where", &api.QueryOptions{Datacenter: "nowhere"}); err == nil ||
		!strings.Contains(err.Error(), "No path to datacenter") || time.Since(start) > 2*time.Second {
		t.Errorf("a read for an unknown datacenter: %v after %v", err, time.Since(start))
	}

	// WAN coordinates: each datacenter's servers, and rtt -wan between
	// them, once the WAN pool has probed.
	eventually(t, 30*time.Second, func() error {
		dcs, err := c1.Client.Coordinate().Datacenters()
		if err != nil || len(dcs) != 2 || len(dcs[0].Coordinates) != 1 || len(dcs[1].Coordinates) != 1 {
			return fmt.Errorf("coordinate datacenters: %+v, %v", dcs, err)
		}
		out, err := exec.Command(beaconBin, "rtt", "-wan", "-http-addr="+s1.HTTPAddr, "s2.dc2").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Estimated s2.dc2 <-> s1.dc1 rtt:") {
			return fmt.Errorf("beacon rtt -wan: %v: %s", err, out)
		}
		return nil
	})

	// dc2's servers gone: requests for dc2 fail fast; dc1 goes on.
	s2.Kill(t)
	start = time.Now()
	if _, _, err := c1.Client.KV().Get("where", q); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("a read for dc2 with its servers gone: %v after %v", err, time.Since(start))
	}
	if _, err := c1.Client.KV().Put(&api.KVPair{Key: "here", Value: []byte("dc1")}, nil); err != nil {
		t.Errorf("dc1 with dc2 gone: %v", err)
	}
	// DNS: dc2's names turn SERVFAIL (once the answers kept for a couple
	// of seconds are gone), each answered well within a resolver's
	// timeout; dc1's names answer.
	eventually(t, 15*time.Second, func() error {
		start := time.Now()
		r := c1.Query(t, "web.service.dc2.consul.", dns.TypeA)
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("a dc2 name with dc2 gone took %v", took)
		}
		if r.Rcode != dns.RcodeServerFailure {
			return fmt.Errorf("web.service.dc2.consul with dc2 gone: %s", dns.RcodeToString[r.Rcode])
		}
		return nil
	})
	if r := c1.Query(t, "c1.node.consul.", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("a dc1 name with dc2 gone: %s", dns.RcodeToString[r.Rcode])
	}
}
