package discovery

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/beacon-dns/beacon/state"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// storeQueries executes prepared queries as the agent would without ACLs
// or sorting: from the store for this datacenter, from a table for the
// others (as a failover's or another datacenter's answer comes back).
type storeQueries struct {
	store  *state.Store
	remote map[string]*state.PreparedQueryExecuteResponse

	mu    sync.Mutex
	asked []string
}

func (f *storeQueries) ExecutePreparedQuery(_ context.Context, idOrName, dc string) (*state.PreparedQueryExecuteResponse, error) {
	f.mu.Lock()
	f.asked = append(f.asked, idOrName+"@"+dc)
	f.mu.Unlock()
	if dc != "" && dc != "dc1" {
		resp, ok := f.remote[dc]
		if !ok {
			return nil, state.ErrNoPathToDC
		}
		return resp, nil
	}
	_, q, err := f.store.PreparedQueryResolve(idOrName)
	if err != nil {
		return nil, err
	}
	if q.Service.Failover.NearestN > 0 {
		return f.remote["dc2"], nil // the failover's answer
	}
	_, nodes, err := f.store.PreparedQueryInstances(nil, q)
	if err != nil {
		return nil, err
	}
	return &state.PreparedQueryExecuteResponse{Service: q.Service.Service, Nodes: nodes, DNS: q.DNS, Datacenter: "dc1"}, nil
}

func mustCreateQuery(t *testing.T, s *state.Store, idx uint64, q *state.PreparedQuery) {
	t.Helper()
	if err := s.PreparedQueryApply(idx, &state.PreparedQueryRequest{Op: state.PreparedQueryCreate, Query: q}); err != nil {
		t.Fatalf("creating query %q: %v", q.Name, err)
	}
}

func TestPreparedQueryDNS(t *testing.T) {
	s := testStore(t)
	mustCreateQuery(t, s, 100, &state.PreparedQuery{ID: "8f246b77-f3e1-ff88-5b48-8ec93abf3e05", Name: "web-q",
		Service: state.ServiceQuery{Service: "web"}, DNS: state.QueryDNSOptions{TTL: "15s"}})
	mustCreateQuery(t, s, 101, &state.PreparedQuery{ID: "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", Name: "primary-",
		Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch},
		Service:  state.ServiceQuery{Service: "${name.suffix}", Tags: []string{"primary"}}})
	mustCreateQuery(t, s, 102, &state.PreparedQuery{ID: "11111111-2222-3333-4444-555555555555",
		Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch},
		Service:  state.ServiceQuery{Service: "${name.full}"}})
	mustCreateQuery(t, s, 103, &state.PreparedQuery{ID: "22222222-3333-4444-5555-666666666666", Name: "elsewhere",
		Service: state.ServiceQuery{Service: "web", Failover: state.QueryFailoverOptions{NearestN: 1}}})
	dc2 := &state.PreparedQueryExecuteResponse{Service: "web", Datacenter: "dc2", DNS: state.QueryDNSOptions{TTL: "3s"},
		Nodes: []state.ServiceNode{
			{Node: &state.Node{Node: "far1", Address: "10.2.0.1"}, Service: &state.Service{Node: "far1", ID: "w", Service: "web", Port: 8080}},
			{Node: &state.Node{Node: "far2", Address: "10.2.0.2"}, Service: &state.Service{Node: "far2", ID: "w", Service: "web", Port: 8080,
				Address: "10.2.1.2"}},
		}}
	queries := &storeQueries{store: s, remote: map[string]*state.PreparedQueryExecuteResponse{"dc2": dc2}}
	d := New(s, testDNSConfig(), testAgentConfig())
	d.Queries = queries
	soa := []dns.RR{test.SOA(consulSOA)}
	runCases(t, d, []test.Case{
		// The query's DNS TTL; n3's serfHealth is critical: left out.
		{Qname: "web-q.query.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("web-q.query.consul. 15 IN A 10.0.0.1"),
			test.A("web-q.query.consul. 15 IN A 10.0.1.2"),
		}},
		{Qname: "WEB-Q.query.dc1.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("WEB-Q.query.dc1.consul. 15 IN A 10.0.0.1"),
			test.A("WEB-Q.query.dc1.consul. 15 IN A 10.0.1.2"),
		}},
		{Qname: "web-q.query.dc1.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("web-q.query.dc1. 15 IN SRV 1 1 80 n1.node.dc1.consul."),
			test.SRV("web-q.query.dc1. 15 IN SRV 1 5 81 0a000102.addr.dc1.consul."),
		}, Extra: []dns.RR{
			test.A("n1.node.dc1.consul. 15 IN A 10.0.0.1"),
			test.A("0a000102.addr.dc1.consul. 15 IN A 10.0.1.2"),
		}},
		// By ID.
		{Qname: "8f246b77-f3e1-ff88-5b48-8ec93abf3e05.query.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("8f246b77-f3e1-ff88-5b48-8ec93abf3e05.query.consul. 15 IN A 10.0.0.1"),
			test.A("8f246b77-f3e1-ff88-5b48-8ec93abf3e05.query.consul. 15 IN A 10.0.1.2"),
		}},
		// Templates: the longest prefix, else the catch-all; without a DNS
		// TTL the service's ("*": 5 s, web: 30 s).
		{Qname: "primary-db.query.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("primary-db.query.consul. 5 IN A 10.0.0.1"),
		}},
		{Qname: "primary-web.query.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("primary-web.query.consul. 30 IN A 10.0.0.1"),
		}},
		{Qname: "v6svc.query.consul.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.AAAA("v6svc.query.consul. 5 IN AAAA 2001:db8::6"),
		}},
		{Qname: "v6svc.query.consul.", Qtype: dns.TypeA, Ns: soa},
		{Qname: "web.query.consul.", Qtype: dns.TypeTXT, Ns: soa},
		// No healthy instance, or no such service: NXDOMAIN.
		{Qname: "api.query.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "primary-api.query.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		// Another datacenter's answer (a failover's, or .query.<dc>): its
		// TTL, SRV targets in its datacenter.
		{Qname: "elsewhere.query.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("elsewhere.query.consul. 3 IN A 10.2.0.1"),
			test.A("elsewhere.query.consul. 3 IN A 10.2.1.2"),
		}},
		{Qname: "anything.query.dc2.consul.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("anything.query.dc2.consul. 3 IN SRV 1 1 8080 far1.node.dc2.consul."),
			test.SRV("anything.query.dc2.consul. 3 IN SRV 1 1 8080 0a020102.addr.dc2.consul."),
		}, Extra: []dns.RR{
			test.A("far1.node.dc2.consul. 3 IN A 10.2.0.1"),
			test.A("0a020102.addr.dc2.consul. 3 IN A 10.2.1.2"),
		}},
		// A datacenter the execution cannot reach: SERVFAIL.
		{Qname: "web-q.query.dc9.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeServerFailure, Ns: soa},
	})
	queries.mu.Lock()
	defer queries.mu.Unlock()
	for _, want := range []string{"web-q@", "web-q@dc1", "anything@dc2", "web-q@dc9"} {
		if !slices.Contains(queries.asked, want) {
			t.Errorf("no execution of %s (the names are executed in lowercase): %v", want, queries.asked)
		}
	}
}

// notFoundQueries knows no query.
type notFoundQueries struct{}

func (notFoundQueries) ExecutePreparedQuery(context.Context, string, string) (*state.PreparedQueryExecuteResponse, error) {
	return nil, state.ErrQueryNotFound
}

// failingQueries fails every execution.
type failingQueries struct{}

func (failingQueries) ExecutePreparedQuery(context.Context, string, string) (*state.PreparedQueryExecuteResponse, error) {
	return nil, errors.New("the servers are away")
}

func TestPreparedQueryDNSErrors(t *testing.T) {
	soa := []dns.RR{test.SOA(consulSOA)}
	for name, tc := range map[string]struct {
		queries PreparedQueries
		rcode   int
	}{
		"no executor":     {nil, dns.RcodeNameError},
		"no such query":   {notFoundQueries{}, dns.RcodeNameError},
		"execution fails": {failingQueries{}, dns.RcodeServerFailure},
	} {
		t.Run(name, func(t *testing.T) {
			d := New(testStore(t), testDNSConfig(), testAgentConfig())
			d.Queries = tc.queries
			runCases(t, d, []test.Case{
				{Qname: "web.query.consul.", Qtype: dns.TypeA, Rcode: tc.rcode, Ns: soa},
			})
		})
	}
}
