package discovery

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/beacon-dns/beacon/state"
)

// fakeRemote is another datacenter's catalog, counting the requests made.
type fakeRemote struct {
	calls   atomic.Int64
	down    atomic.Bool
	release chan struct{} // when set, requests wait for it
}

func (f *fakeRemote) RemoteServiceInstances(_ context.Context, dc, name, tag string) ([]state.ServiceNode, error) {
	f.calls.Add(1)
	if f.release != nil {
		<-f.release
	}
	if f.down.Load() {
		return nil, errors.New("no path to datacenter")
	}
	if dc != "dc2" || name != "web" {
		return nil, nil
	}
	passing := []*state.HealthCheck{{CheckID: "serfHealth", Status: state.HealthPassing}}
	critical := []*state.HealthCheck{{CheckID: "serfHealth", Status: state.HealthCritical}}
	out := []state.ServiceNode{
		{Node: &state.Node{Node: "r1", Address: "10.2.0.1"}, Service: &state.Service{ID: "web", Service: "web", Port: 80,
			Weights: state.Weights{Passing: 1}}, Checks: passing},
		{Node: &state.Node{Node: "r2", Address: "10.2.0.2"}, Service: &state.Service{ID: "web", Service: "web", Port: 80}, Checks: critical},
	}
	if tag != "" {
		return nil, nil
	}
	return out, nil
}

func (f *fakeRemote) RemoteNode(_ context.Context, dc, name string) (*state.Node, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, errors.New("no path to datacenter")
	}
	if dc == "dc2" && name == "r1" {
		return &state.Node{Node: "r1", Address: "10.2.0.1"}, nil
	}
	return nil, nil
}

func TestRemoteDatacenter(t *testing.T) {
	d := New(testStore(t), testDNSConfig(), testAgentConfig())
	t.Cleanup(func() { d.shutdown() })
	remote := &fakeRemote{}
	d.Remote = remote
	ask := func(name string, qtype uint16) *dns.Msg { t.Helper(); return serve(t, d, name, qtype) }
	soa := []dns.RR{test.SOA(consulSOA)}
	for _, tc := range []test.Case{
		{Qname: "web.service.dc2.consul.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("web.service.dc2.consul. 30 IN A 10.2.0.1")}},
		{Qname: "_web._tcp.service.dc2.consul.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_web._tcp.service.dc2.consul. 30 IN SRV 1 1 80 r1.node.dc2.consul.")},
			Extra:  []dns.RR{test.A("r1.node.dc2.consul. 30 IN A 10.2.0.1")}},
		{Qname: "r1.node.dc2.consul.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("r1.node.dc2.consul. 10 IN A 10.2.0.1")}},
		{Qname: "db.service.dc2.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "primary.web.service.dc2.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "nope.node.dc2.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "0a020001.addr.dc2.consul.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("0a020001.addr.dc2.consul. 10 IN A 10.2.0.1")}},
	} {
		m := ask(tc.Qname, tc.Qtype)
		if err := test.SortAndCheck(m, sortedCase(tc)); err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
		}
	}

	// Answers are reused for a couple of seconds: asking again costs no
	// request; concurrent misses of one name share one.
	before := remote.calls.Load()
	ask("web.service.dc2.consul.", dns.TypeA)
	if n := remote.calls.Load() - before; n != 0 {
		t.Errorf("a repeated name made %d requests within the cache's time", n)
	}
	remote.release = make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ask("api.service.dc3.consul.", dns.TypeA)
		}()
	}
	for remote.calls.Load() == before { // until one request is in flight
		runtime.Gosched()
	}
	close(remote.release)
	wg.Wait()
	remote.release = nil
	if n := remote.calls.Load() - before; n != 1 {
		t.Errorf("8 concurrent misses made %d requests, want 1", n)
	}

	// An unreachable datacenter is SERVFAIL; local names still answer.
	remote.down.Store(true)
	if m := ask("cache.service.dc2.consul.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("an unreachable datacenter: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if m := ask("web.service.consul.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Errorf("a local name with another datacenter down: %s", dns.RcodeToString[m.Rcode])
	}

	// Another datacenter's name as a zone of its own (web.service.dc2.).
	remote.down.Store(false)
	cfg := testDNSConfig()
	cfg.Zones = append(cfg.Zones, "dc2.")
	dz := New(testStore(t), cfg, testAgentConfig())
	t.Cleanup(func() { dz.shutdown() })
	dz.Remote = remote
	if m := serve(t, dz, "web.service.dc2.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("web.service.dc2. in a dc2 zone: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}

	// Without a RemoteCatalog, other datacenters are NXDOMAIN.
	d.Remote = nil
	if m := ask("other.service.dc9.consul.", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("no remote catalog: %s", dns.RcodeToString[m.Rcode])
	}
}
