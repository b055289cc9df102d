package discovery

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/corefile"
	"github.com/beacon-dns/beacon/state"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// testStore is the catalog the table tests run against.
//
//	n1 10.0.0.1 (meta rack=r1, env=prod)  web(80, primary v1)  db(5432, warning)  api(critical)  multi x2
//	n2 10.0.0.2                            web(81, own 10.0.1.2, weight 5)  db(5432)  api(critical)
//	n3 10.0.0.3, serfHealth critical       web(80)
//	n6 2001:db8::6                         v6svc(443)  mixed(1)
//	n1                                     ext(8080, address ext.example.com)  mixed(1)
func testStore(t testing.TB) *state.Store {
	t.Helper()
	s := state.NewStore()
	idx := uint64(0)
	reg := func(req *state.RegisterRequest) {
		t.Helper()
		idx++
		if req.Check == nil && req.Checks == nil {
			req.Checks = []*state.HealthCheck{{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}}
		}
		if err := s.EnsureRegistration(idx, req); err != nil {
			t.Fatalf("register %s: %v", req.Node, err)
		}
	}
	reg(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1", NodeMeta: map[string]string{"rack": "r1", "env": "prod"}})
	reg(&state.RegisterRequest{Node: "n2", Address: "10.0.0.2"})
	reg(&state.RegisterRequest{Node: "n3", Address: "10.0.0.3", Checks: []*state.HealthCheck{
		{CheckID: state.SerfCheckID, Status: state.HealthCritical}}})
	reg(&state.RegisterRequest{Node: "n6", Address: "2001:db8::6"})

	svc := func(node string, s *state.Service, status string) {
		t.Helper()
		var checks []*state.HealthCheck
		if status != "" {
			checks = []*state.HealthCheck{{CheckID: "service:" + s.ID, ServiceID: s.ID, Status: status}}
		}
		reg(&state.RegisterRequest{Node: node, SkipNodeUpdate: true, Service: s, Checks: checks})
	}
	svc("n1", &state.Service{ID: "web1", Service: "web", Port: 80, Tags: []string{"primary", "v1"}}, state.HealthPassing)
	svc("n2", &state.Service{ID: "web2", Service: "web", Port: 81, Tags: []string{"v1"}, Address: "10.0.1.2",
		Weights: state.Weights{Passing: 5, Warning: 1}}, state.HealthPassing)
	svc("n3", &state.Service{ID: "web3", Service: "web", Port: 80}, state.HealthPassing)
	svc("n1", &state.Service{ID: "db1", Service: "db", Port: 5432, Tags: []string{"primary"}}, state.HealthWarning)
	svc("n2", &state.Service{ID: "db2", Service: "db", Port: 5432}, state.HealthPassing)
	svc("n1", &state.Service{ID: "api1", Service: "api", Port: 9000}, state.HealthCritical)
	svc("n2", &state.Service{ID: "api2", Service: "api", Port: 9000}, state.HealthCritical)
	svc("n6", &state.Service{ID: "v6", Service: "v6svc", Port: 443}, "")
	svc("n1", &state.Service{ID: "ext", Service: "ext", Port: 8080, Address: "ext.example.com"}, "")
	svc("n1", &state.Service{ID: "multi1", Service: "multi", Port: 1}, "")
	svc("n1", &state.Service{ID: "multi2", Service: "multi", Port: 2}, "")
	svc("n1", &state.Service{ID: "mixed1", Service: "mixed", Port: 1}, "")
	svc("n6", &state.Service{ID: "mixed6", Service: "mixed", Port: 1}, "")
	return s
}

// serve asks d name and type, and returns the answer it wrote.
func serve(t testing.TB, d *Discovery, name string, qtype uint16) *dns.Msg {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := d.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(name, qtype)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rec.Msg
}

func testDNSConfig() corefile.DNSConfig {
	return corefile.DNSConfig{
		Zones:       []string{"consul.", "dc1.", "in-addr.arpa.", "ip6.arpa."},
		NodeTTL:     10 * time.Second,
		ServiceTTL:  map[string]time.Duration{"web": 30 * time.Second, "*": 5 * time.Second},
		NegativeTTL: 60 * time.Second,
	}
}

func testAgentConfig() corefile.AgentConfig {
	return corefile.AgentConfig{Datacenter: "dc1", Domain: "consul.", Node: "n1"}
}

// sortedCase returns tc with its sections in test.SortAndCheck's order, so
// the tables can list records in reading order.
func sortedCase(tc test.Case) test.Case {
	for _, sec := range [][]dns.RR{tc.Answer, tc.Ns, tc.Extra} {
		sort.Sort(test.RRSet(sec))
	}
	return tc
}

const (
	consulSOA = "consul. 60 IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 60"
	dc1SOA    = "dc1. 60 IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 60"
	arpaSOA   = "in-addr.arpa. 60 IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 60"
)

func runCases(t *testing.T, d *Discovery, cases []test.Case) {
	t.Helper()
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.Qname, dns.TypeToString[tc.Qtype]), func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if _, err := d.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
				t.Fatalf("ServeDNS: %v", err)
			}
			if rec.Msg == nil {
				t.Fatal("no response written")
			}
			if !rec.Msg.Authoritative {
				t.Error("AA bit not set")
			}
			if err := test.SortAndCheck(rec.Msg, sortedCase(tc)); err != nil {
				t.Fatalf("%v\n%s", err, rec.Msg)
			}
		})
	}
}

func TestServeDNS(t *testing.T) {
	d := New(testStore(t), testDNSConfig(), testAgentConfig())
	soa := []dns.RR{test.SOA(consulSOA)}
	runCases(t, d, []test.Case{
		// Services: the critical node n3 is left out; web2 has its own address.
		{Qname: "web.service.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("web.service.consul. 30 IN A 10.0.0.1"),
			test.A("web.service.consul. 30 IN A 10.0.1.2"),
		}},
		{Qname: "web.service.dc1.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("web.service.dc1.consul. 30 IN A 10.0.0.1"),
			test.A("web.service.dc1.consul. 30 IN A 10.0.1.2"),
		}},
		// Case-insensitive, and the owner keeps the client's case.
		{Qname: "WEB.Service.CONSUL.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("WEB.Service.CONSUL. 30 IN A 10.0.0.1"),
			test.A("WEB.Service.CONSUL. 30 IN A 10.0.1.2"),
		}},
		// The datacenter name used as a zone.
		{Qname: "web.service.dc1.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("web.service.dc1. 30 IN A 10.0.0.1"),
			test.A("web.service.dc1. 30 IN A 10.0.1.2"),
		}},
		// Tag filter, both forms.
		{Qname: "primary.web.service.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("primary.web.service.consul. 30 IN A 10.0.0.1"),
		}},
		{Qname: "_web._primary.service.consul.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("_web._primary.service.consul. 30 IN SRV 1 1 80 n1.node.dc1.consul."),
		}, Extra: []dns.RR{
			test.A("n1.node.dc1.consul. 30 IN A 10.0.0.1"),
		}},
		{Qname: "nosuchtag.web.service.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		// SRV: node target with the node's address, or <hex>.addr target
		// for an instance with its own address.
		{Qname: "web.service.consul.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("web.service.consul. 30 IN SRV 1 1 80 n1.node.dc1.consul."),
			test.SRV("web.service.consul. 30 IN SRV 1 5 81 0a000102.addr.dc1.consul."),
		}, Extra: []dns.RR{
			test.A("n1.node.dc1.consul. 30 IN A 10.0.0.1"),
			test.A("0a000102.addr.dc1.consul. 30 IN A 10.0.1.2"),
		}},
		// RFC 2782: _tcp and _udp filter nothing.
		{Qname: "_web._tcp.service.consul.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("_web._tcp.service.consul. 30 IN SRV 1 1 80 n1.node.dc1.consul."),
			test.SRV("_web._tcp.service.consul. 30 IN SRV 1 5 81 0a000102.addr.dc1.consul."),
		}, Extra: []dns.RR{
			test.A("n1.node.dc1.consul. 30 IN A 10.0.0.1"),
			test.A("0a000102.addr.dc1.consul. 30 IN A 10.0.1.2"),
		}},
		{Qname: "_web._udp.service.dc1.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("_web._udp.service.dc1. 30 IN SRV 1 1 80 n1.node.dc1.consul."),
			test.SRV("_web._udp.service.dc1. 30 IN SRV 1 5 81 0a000102.addr.dc1.consul."),
		}, Extra: []dns.RR{
			test.A("n1.node.dc1.consul. 30 IN A 10.0.0.1"),
			test.A("0a000102.addr.dc1.consul. 30 IN A 10.0.1.2"),
		}},
		// A warning check is still healthy; the "*" TTL applies.
		{Qname: "db.service.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("db.service.consul. 5 IN A 10.0.0.1"),
			test.A("db.service.consul. 5 IN A 10.0.0.2"),
		}},
		// All instances critical: NXDOMAIN, as Consul.
		{Qname: "api.service.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "nosuch.service.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		// Family mismatch and other types: NODATA.
		{Qname: "web.service.consul.", Qtype: dns.TypeAAAA, Ns: soa},
		{Qname: "web.service.consul.", Qtype: dns.TypeTXT, Ns: soa},
		{Qname: "web.service.consul.", Qtype: dns.TypeMX, Ns: soa},
		{Qname: "v6svc.service.consul.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.AAAA("v6svc.service.consul. 5 IN AAAA 2001:db8::6"),
		}},
		{Qname: "v6svc.service.consul.", Qtype: dns.TypeA, Ns: soa},
		{Qname: "v6svc.service.consul.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("v6svc.service.consul. 5 IN SRV 1 1 443 n6.node.dc1.consul."),
		}, Extra: []dns.RR{
			test.AAAA("n6.node.dc1.consul. 5 IN AAAA 2001:db8::6"),
		}},
		{Qname: "mixed.service.consul.", Qtype: dns.TypeANY, Answer: []dns.RR{
			test.A("mixed.service.consul. 5 IN A 10.0.0.1"),
			test.AAAA("mixed.service.consul. 5 IN AAAA 2001:db8::6"),
		}},
		// Two instances on one node: one A record, two SRV, one glue record.
		{Qname: "multi.service.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("multi.service.consul. 5 IN A 10.0.0.1"),
		}},
		{Qname: "multi.service.consul.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("multi.service.consul. 5 IN SRV 1 1 1 n1.node.dc1.consul."),
			test.SRV("multi.service.consul. 5 IN SRV 1 1 2 n1.node.dc1.consul."),
		}, Extra: []dns.RR{
			test.A("n1.node.dc1.consul. 5 IN A 10.0.0.1"),
		}},
		// A hostname address: the SRV target is the hostname, no glue; A is a CNAME.
		{Qname: "ext.service.consul.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("ext.service.consul. 5 IN SRV 1 1 8080 ext.example.com."),
		}},
		{Qname: "ext.service.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.CNAME("ext.service.consul. 5 IN CNAME ext.example.com."),
		}},

		// Nodes.
		{Qname: "n1.node.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("n1.node.consul. 10 IN A 10.0.0.1"),
		}, Extra: []dns.RR{
			test.TXT(`n1.node.consul. 10 IN TXT "env=prod"`),
			test.TXT(`n1.node.consul. 10 IN TXT "rack=r1"`),
		}},
		{Qname: "N2.node.dc1.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("N2.node.dc1.consul. 10 IN A 10.0.0.2"),
		}},
		{Qname: "n2.node.dc1.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("n2.node.dc1. 10 IN A 10.0.0.2"),
		}},
		{Qname: "n1.node.consul.", Qtype: dns.TypeTXT, Answer: []dns.RR{
			test.TXT(`n1.node.consul. 10 IN TXT "env=prod"`),
			test.TXT(`n1.node.consul. 10 IN TXT "rack=r1"`),
		}},
		{Qname: "n2.node.consul.", Qtype: dns.TypeTXT, Ns: soa},
		{Qname: "n1.node.consul.", Qtype: dns.TypeAAAA, Ns: soa},
		{Qname: "n6.node.consul.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.AAAA("n6.node.consul. 10 IN AAAA 2001:db8::6"),
		}},
		// A node's own failing check does not hide it from node lookups (as Consul).
		{Qname: "n3.node.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("n3.node.consul. 10 IN A 10.0.0.3"),
		}},
		{Qname: "nosuch.node.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},

		// Encoded addresses.
		{Qname: "0a000102.addr.dc1.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("0a000102.addr.dc1.consul. 10 IN A 10.0.1.2"),
		}},
		{Qname: "20010db8000000000000000000000006.addr.dc1.consul.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.AAAA("20010db8000000000000000000000006.addr.dc1.consul. 10 IN AAAA 2001:db8::6"),
		}},
		{Qname: "0a000102.addr.dc1.consul.", Qtype: dns.TypeAAAA, Ns: soa},
		{Qname: "0a0001zz.addr.dc1.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "0a00010.addr.dc1.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},

		// Prepared queries without the agent to execute them (query_test.go
		// has them); other datacenters are not served yet.
		{Qname: "q1.query.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "web.service.dc2.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		// Names that are no form of ours.
		{Qname: "foo.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "a.b.web.service.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "service.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "web.dc1.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: soa},
		{Qname: "web.service.dc1.dc1.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(dc1SOA)}},

		// The apex.
		{Qname: "consul.", Qtype: dns.TypeSOA, Answer: soa},
		{Qname: "consul.", Qtype: dns.TypeNS, Answer: []dns.RR{
			test.NS("consul. 10 IN NS ns.consul."),
		}, Extra: []dns.RR{
			test.A("ns.consul. 10 IN A 10.0.0.1"),
		}},
		{Qname: "dc1.", Qtype: dns.TypeSOA, Answer: []dns.RR{test.SOA(dc1SOA)}},
		{Qname: "consul.", Qtype: dns.TypeA, Ns: soa},
		{Qname: "ns.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("ns.consul. 10 IN A 10.0.0.1"),
		}},

		// Reverse lookups: nodes and services with the address.
		{Qname: "1.0.0.10.in-addr.arpa.", Qtype: dns.TypePTR, Answer: []dns.RR{
			test.PTR("1.0.0.10.in-addr.arpa. 10 IN PTR n1.node.dc1.consul."),
		}},
		{Qname: "2.1.0.10.in-addr.arpa.", Qtype: dns.TypePTR, Answer: []dns.RR{
			test.PTR("2.1.0.10.in-addr.arpa. 30 IN PTR web.service.dc1.consul."),
		}},
		{Qname: "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", Qtype: dns.TypePTR, Answer: []dns.RR{
			test.PTR("6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 10 IN PTR n6.node.dc1.consul."),
		}},
		{Qname: "1.0.0.10.in-addr.arpa.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(arpaSOA)}},
		{Qname: "9.9.9.10.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(arpaSOA)}},
		{Qname: "0.10.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(arpaSOA)}},
	})
}

func TestOnlyPassing(t *testing.T) {
	cfg := testDNSConfig()
	cfg.OnlyPassing = true
	d := New(testStore(t), cfg, testAgentConfig())
	runCases(t, d, []test.Case{
		// db1 has a warning check: gone with only_passing.
		{Qname: "db.service.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("db.service.consul. 5 IN A 10.0.0.2"),
		}},
		{Qname: "primary.db.service.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(consulSOA)}},
	})
}

func TestDefaultTTLs(t *testing.T) {
	cfg := testDNSConfig()
	cfg.NodeTTL, cfg.ServiceTTL, cfg.NegativeTTL = 0, nil, 0
	d := New(testStore(t), cfg, testAgentConfig())
	runCases(t, d, []test.Case{
		{Qname: "web.service.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("web.service.consul. 0 IN A 10.0.0.1"),
			test.A("web.service.consul. 0 IN A 10.0.1.2"),
		}},
		{Qname: "n2.node.consul.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("n2.node.consul. 0 IN A 10.0.0.2"),
		}},
		{Qname: "nosuch.service.consul.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{
			test.SOA("consul. 0 IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0"),
		}},
	})
}

// TestSOAFields checks what SortAndCheck does not: the SOA's mailbox,
// minimum and TTL.
func TestSOAFields(t *testing.T) {
	d := New(testStore(t), testDNSConfig(), testAgentConfig())
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	d.ServeDNS(context.Background(), rec, (&test.Case{Qname: "nosuch.service.consul.", Qtype: dns.TypeA}).Msg())
	if len(rec.Msg.Ns) != 1 {
		t.Fatalf("want one SOA in authority, got %v", rec.Msg.Ns)
	}
	soa, ok := rec.Msg.Ns[0].(*dns.SOA)
	if !ok {
		t.Fatalf("authority is %T", rec.Msg.Ns[0])
	}
	if soa.Hdr.Name != "consul." || soa.Ns != "ns.consul." || soa.Mbox != "hostmaster.consul." || soa.Minttl != 60 || soa.Hdr.Ttl != 60 || soa.Serial == 0 {
		t.Errorf("unexpected SOA %v", soa)
	}
}

func TestShuffleAndLimit(t *testing.T) {
	s := state.NewStore()
	const n = 20
	for i := 1; i <= n; i++ {
		err := s.EnsureRegistration(uint64(i), &state.RegisterRequest{
			Node: fmt.Sprintf("node%d", i), Address: fmt.Sprintf("10.1.0.%d", i),
			Service: &state.Service{ID: "big", Service: "big", Port: 80},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	query := func(d *Discovery) []string {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		d.ServeDNS(context.Background(), rec, (&test.Case{Qname: "big.service.consul.", Qtype: dns.TypeA}).Msg())
		var out []string
		for _, rr := range rec.Msg.Answer {
			out = append(out, rr.(*dns.A).A.String())
		}
		return out
	}

	d := New(s, testDNSConfig(), testAgentConfig())
	first := query(d)
	if len(first) != n {
		t.Fatalf("want %d answers, got %d", n, len(first))
	}
	shuffled := false
	for i := 0; i < 20 && !shuffled; i++ {
		next := query(d)
		shuffled = fmt.Sprint(next) != fmt.Sprint(first)
	}
	if !shuffled {
		t.Error("20 answers came back in the same order 21 times: not shuffled")
	}

	cfg := testDNSConfig()
	cfg.ARecordLimit = 3
	d = New(s, cfg, testAgentConfig())
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		got := query(d)
		if len(got) != 3 {
			t.Fatalf("a_record_limit 3: got %d answers", len(got))
		}
		for _, a := range got {
			seen[a] = true
		}
	}
	if len(seen) <= 3 {
		t.Errorf("a_record_limit always picked the same %d addresses", len(seen))
	}
}

// TestTruncation runs a large answer through the ScrubWriter CoreDNS wraps
// every writer in: over UDP without EDNS it must come back truncated, with TC.
func TestTruncation(t *testing.T) {
	s := state.NewStore()
	const n = 100
	for i := 1; i <= n; i++ {
		err := s.EnsureRegistration(uint64(i), &state.RegisterRequest{
			Node: fmt.Sprintf("node%d", i), Address: fmt.Sprintf("10.1.%d.%d", i/256, i%256),
			Service: &state.Service{ID: "big", Service: "big", Port: 80},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	d := New(s, testDNSConfig(), testAgentConfig())
	for _, qtype := range []uint16{dns.TypeA, dns.TypeSRV} {
		req := (&test.Case{Qname: "big.service.consul.", Qtype: qtype}).Msg()
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := d.ServeDNS(context.Background(), request.NewScrubWriter(req, rec), req); err != nil {
			t.Fatal(err)
		}
		if !rec.Msg.Truncated {
			t.Errorf("%s: TC not set", dns.TypeToString[qtype])
		}
		if l := rec.Msg.Len(); l > dns.MinMsgSize {
			t.Errorf("%s: UDP answer is %d bytes, more than %d", dns.TypeToString[qtype], l, dns.MinMsgSize)
		}
		// Over TCP everything is sent.
		rec = dnstest.NewRecorder(&test.ResponseWriter{TCP: true})
		d.ServeDNS(context.Background(), request.NewScrubWriter(req, rec), req)
		if rec.Msg.Truncated || len(rec.Msg.Answer) != n {
			t.Errorf("%s over TCP: truncated %v, %d answers", dns.TypeToString[qtype], rec.Msg.Truncated, len(rec.Msg.Answer))
		}
	}
}

// nextMarker is a next plugin that answers with a recognisable rcode.
func nextMarker(called *bool) test.HandlerFunc {
	return func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		*called = true
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeYXDomain)
		w.WriteMsg(m)
		return dns.RcodeYXDomain, nil
	}
}

func TestNextAndFallthrough(t *testing.T) {
	tests := []struct {
		name     string
		zones    []string // nil: testDNSConfig's
		fall     []string // nil: no fallthrough
		qname    string
		qtype    uint16
		wantNext bool
	}{
		{"outside zone", nil, nil, "example.org.", dns.TypeA, true},
		{"zone suffix but not a label boundary", nil, nil, "xconsul.", dns.TypeA, true},
		{"reverse zone not listed", []string{"consul."}, nil, "1.0.0.10.in-addr.arpa.", dns.TypePTR, true},
		{"nxdomain without fallthrough", nil, nil, "nosuch.service.consul.", dns.TypeA, false},
		{"nxdomain with fallthrough", nil, []string{}, "nosuch.service.consul.", dns.TypeA, true},
		{"answer with fallthrough", nil, []string{}, "web.service.consul.", dns.TypeA, false},
		{"nodata with fallthrough", nil, []string{}, "web.service.consul.", dns.TypeAAAA, false},
		{"fallthrough for another zone", nil, []string{"in-addr.arpa."}, "nosuch.service.consul.", dns.TypeA, false},
		{"reverse miss with reverse fallthrough", nil, []string{"in-addr.arpa."}, "9.9.9.10.in-addr.arpa.", dns.TypePTR, true},
		{"reverse hit with reverse fallthrough", nil, []string{"in-addr.arpa."}, "1.0.0.10.in-addr.arpa.", dns.TypePTR, false},
		{"other datacenter with fallthrough", nil, []string{}, "web.service.dc2.consul.", dns.TypeA, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testDNSConfig()
			if tt.zones != nil {
				cfg.Zones = tt.zones
			}
			if tt.fall != nil {
				cfg.Fall.SetZonesFromArgs(tt.fall)
			}
			d := New(testStore(t), cfg, testAgentConfig())
			called := false
			d.Next = nextMarker(&called)
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			d.ServeDNS(context.Background(), rec, (&test.Case{Qname: tt.qname, Qtype: tt.qtype}).Msg())
			if called != tt.wantNext {
				t.Errorf("next plugin called: %v, want %v; response %v", called, tt.wantNext, rec.Msg)
			}
		})
	}
}

func TestZones(t *testing.T) {
	tests := []struct {
		zones []string
		qname string
		want  int // rcode written, or -1 for passed to next
	}{
		// A parent of the domain: only the domain is ours.
		{[]string{"."}, "web.service.consul.", dns.RcodeSuccess},
		{[]string{"."}, "example.org.", -1},
		{[]string{"."}, "web.service.dc1.", -1},
		// dc1.consul. on its own is the datacenter's zone.
		{[]string{"dc1.consul."}, "web.service.dc1.consul.", dns.RcodeSuccess},
		{[]string{"dc1.consul."}, "web.service.consul.", -1},
		// Another multi-label zone is an alternative domain.
		{[]string{"disco.example."}, "web.service.disco.example.", dns.RcodeSuccess},
		{[]string{"disco.example."}, "web.service.dc1.disco.example.", dns.RcodeSuccess},
		// A datacenter zone for another datacenter answers nothing yet.
		{[]string{"dc2."}, "web.service.dc2.", dns.RcodeNameError},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.zones, tt.qname), func(t *testing.T) {
			cfg := testDNSConfig()
			cfg.Zones = tt.zones
			d := New(testStore(t), cfg, testAgentConfig())
			called := false
			d.Next = nextMarker(&called)
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			d.ServeDNS(context.Background(), rec, (&test.Case{Qname: tt.qname, Qtype: dns.TypeA}).Msg())
			switch {
			case tt.want == -1 && !called:
				t.Errorf("answered %v, want next plugin", rec.Msg)
			case tt.want != -1 && called:
				t.Errorf("passed to next plugin, want rcode %s", dns.RcodeToString[tt.want])
			case tt.want != -1 && rec.Msg.Rcode != tt.want:
				t.Errorf("rcode %s, want %s", dns.RcodeToString[rec.Msg.Rcode], dns.RcodeToString[tt.want])
			}
		})
	}
}

func TestAltDomainTargets(t *testing.T) {
	cfg := testDNSConfig()
	cfg.Zones = []string{"disco.example."}
	d := New(testStore(t), cfg, testAgentConfig())
	runCases(t, d, []test.Case{
		{Qname: "primary.web.service.disco.example.", Qtype: dns.TypeSRV, Answer: []dns.RR{
			test.SRV("primary.web.service.disco.example. 30 IN SRV 1 1 80 n1.node.dc1.disco.example."),
		}, Extra: []dns.RR{
			test.A("n1.node.dc1.disco.example. 30 IN A 10.0.0.1"),
		}},
	})
}

func TestBadQueries(t *testing.T) {
	d := New(testStore(t), testDNSConfig(), testAgentConfig())
	twoQuestions := (&test.Case{Qname: "web.service.consul.", Qtype: dns.TypeA}).Msg()
	twoQuestions.Question = append(twoQuestions.Question, dns.Question{Name: "db.service.consul.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	chaos := (&test.Case{Qname: "web.service.consul.", Qtype: dns.TypeTXT}).Msg()
	chaos.Question[0].Qclass = dns.ClassCHAOS
	update := (&test.Case{Qname: "consul.", Qtype: dns.TypeSOA}).Msg()
	update.Opcode = dns.OpcodeUpdate
	axfr := (&test.Case{Qname: "consul.", Qtype: dns.TypeAXFR}).Msg()
	empty := new(dns.Msg)

	tests := []struct {
		name string
		msg  *dns.Msg
		want int
	}{
		{"two questions", twoQuestions, dns.RcodeFormatError},
		{"no question", empty, dns.RcodeFormatError},
		{"chaos class", chaos, dns.RcodeRefused},
		{"update", update, dns.RcodeNotImplemented},
		{"zone transfer", axfr, dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, err := d.ServeDNS(context.Background(), rec, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if rcode != tt.want {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[rcode], dns.RcodeToString[tt.want])
			}
			if rec.Msg != nil {
				t.Errorf("wrote %v; the server writes error responses", rec.Msg)
			}
		})
	}
}

func TestReady(t *testing.T) {
	d := New(testStore(t), testDNSConfig(), testAgentConfig())
	if !d.Ready() {
		t.Error("without a readiness function the handler is ready")
	}
	d.Readiness = func() bool { return false }
	if d.Ready() {
		t.Error("Ready ignores the agent's readiness")
	}
}

// With ACLs on, DNS answers what the authorizer (the agent's default
// token) may read, and NXDOMAIN for the rest, as Consul does.
func TestACLs(t *testing.T) {
	rules, err := acl.ParseRules(`service "web" { policy = "read" }
node "n1" { policy = "read" }`)
	if err != nil {
		t.Fatal(err)
	}
	authz := acl.NewAuthorizer(acl.DenyAll(), rules)
	d := New(testStore(t), testDNSConfig(), testAgentConfig())
	t.Cleanup(func() { d.shutdown() })
	d.Authorizer = func() *acl.Authorizer { return authz }
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"web.service.consul.", dns.TypeA, dns.RcodeSuccess},
		{"_web._tcp.service.consul.", dns.TypeSRV, dns.RcodeSuccess},
		{"db.service.consul.", dns.TypeA, dns.RcodeNameError},
		{"api.service.dc1.", dns.TypeA, dns.RcodeNameError},
		{"n1.node.consul.", dns.TypeA, dns.RcodeSuccess},
		{"n2.node.consul.", dns.TypeA, dns.RcodeNameError},
		{"consul.", dns.TypeSOA, dns.RcodeSuccess},
	} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := d.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(tc.name, tc.qtype)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rec.Msg.Rcode != tc.rcode {
			t.Errorf("%s %s: %s, want %s", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[rec.Msg.Rcode], dns.RcodeToString[tc.rcode])
		}
	}
	ask := func(name string, qtype uint16) *dns.Msg { t.Helper(); return serve(t, d, name, qtype) }
	answers := func(m *dns.Msg) []string {
		var out []string
		for _, rr := range m.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				out = append(out, rr.A.String())
			case *dns.PTR:
				out = append(out, rr.Ptr)
			}
		}
		slices.Sort(out)
		return out
	}
	// Instances on nodes the token may not read are left out (web2 is
	// on n2), and so are names in PTR answers.
	if got := answers(ask("web.service.consul.", dns.TypeA)); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Errorf("web with node n1 readable only: %v", got)
	}
	if got := answers(ask("1.0.0.10.in-addr.arpa.", dns.TypePTR)); !slices.Equal(got, []string{"n1.node.dc1.consul."}) {
		t.Errorf("PTR of n1: %v", got)
	}
	if m := ask("2.0.0.10.in-addr.arpa.", dns.TypePTR); m.Rcode != dns.RcodeNameError {
		t.Errorf("PTR of n2, which the token may not read: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
	}
	// A new authorizer (tokens or policies changed) is not answered from
	// entries built for the old one.
	wider, _ := acl.ParseRules(`service "web" { policy = "read" }
node_prefix "" { policy = "read" }`)
	authz = acl.NewAuthorizer(acl.DenyAll(), wider)
	if got := answers(ask("web.service.consul.", dns.TypeA)); !slices.Equal(got, []string{"10.0.0.1", "10.0.1.2"}) {
		t.Errorf("web with every node readable: %v", got)
	}

	// ACLs off: the authorizer is nil, everything known answers.
	d.Authorizer = func() *acl.Authorizer { return nil }
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	d.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("db.service.consul.", dns.TypeA))
	if rec.Msg.Rcode != dns.RcodeSuccess {
		t.Errorf("db with ACLs off: %s", dns.RcodeToString[rec.Msg.Rcode])
	}
}
