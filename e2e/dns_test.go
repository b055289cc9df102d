package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// waitForAddrs polls an A (or AAAA) query until it answers exactly want.
func waitForAddrs(t testing.TB, a *Agent, name string, qtype uint16, want ...string) *dns.Msg {
	t.Helper()
	slices.Sort(want)
	var last *dns.Msg
	eventually(t, 10*time.Second, func() error {
		r, err := a.Exchange(question(name, qtype), "udp")
		if err != nil {
			return err
		}
		last = r
		if got := addrsOf(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, want) {
			return fmt.Errorf("%s %s: got %s %v, want NOERROR %v", dns.TypeToString[qtype], name, rcode(r), got, want)
		}
		return nil
	})
	return last
}

// expectNegative checks an NXDOMAIN or NODATA answer: rcode, no answer
// records, the zone's SOA in the authority section.
func expectNegative(t testing.TB, r *dns.Msg, wantRcode int) {
	t.Helper()
	q := r.Question[0]
	if r.Rcode != wantRcode {
		t.Errorf("%s %s: rcode %s, want %s\n%v", dns.TypeToString[q.Qtype], q.Name, rcode(r), dns.RcodeToString[wantRcode], r)
	}
	if len(r.Answer) != 0 {
		t.Errorf("%s %s: want no answer records, got %v", dns.TypeToString[q.Qtype], q.Name, r.Answer)
	}
	if soaOf(r.Ns) == nil {
		t.Errorf("%s %s: want the SOA in the authority section, got %v\n%v", dns.TypeToString[q.Qtype], q.Name, r.Ns, r)
	}
	if !r.Authoritative {
		t.Errorf("%s %s: AA bit not set on a negative answer from our zone", dns.TypeToString[q.Qtype], q.Name)
	}
}

// expectSRV checks an SRV answer with one record: its port, its target, and
// the target's address in the additional section.
func expectSRV(t testing.TB, r *dns.Msg, port uint16, target, targetAddr string) {
	t.Helper()
	q := r.Question[0]
	srvs := srvsOf(r.Answer)
	if r.Rcode != dns.RcodeSuccess || len(srvs) != 1 {
		t.Errorf("SRV %s: got %s with %d SRV records, want NOERROR with 1\n%v", q.Name, rcode(r), len(srvs), r)
		return
	}
	s := srvs[0]
	if s.Port != port {
		t.Errorf("SRV %s: port %d, want %d", q.Name, s.Port, port)
	}
	if !strings.EqualFold(s.Target, target) {
		t.Errorf("SRV %s: target %q, want %q", q.Name, s.Target, target)
	}
	var extra []string
	for _, rr := range r.Extra {
		if strings.EqualFold(rr.Header().Name, s.Target) {
			extra = append(extra, addrsOf([]dns.RR{rr})...)
		}
	}
	if !slices.Equal(extra, []string{targetAddr}) {
		t.Errorf("SRV %s: additional addresses of %s are %v, want [%s]\n%v", q.Name, s.Target, extra, targetAddr, r)
	}
}

func TestDNSServiceLookups(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379, Tags: []string{"primary"},
	})
	if err != nil {
		t.Fatalf("PUT /v1/agent/service/register: %v", err)
	}
	waitForAddrs(t, a, "redis.service.consul.", dns.TypeA, "10.0.0.5")

	t.Run("A", func(t *testing.T) {
		for _, name := range []string{
			"redis.service.consul.", "redis.service.dc1.", "redis.service.dc1.consul.",
			"primary.redis.service.consul.", "primary.redis.service.dc1.",
		} {
			for _, network := range []string{"udp", "tcp"} {
				r := a.QueryNet(t, name, dns.TypeA, network)
				if got := addrsOf(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"10.0.0.5"}) {
					t.Errorf("A %s over %s: got %s %v, want NOERROR [10.0.0.5]\n%v", name, network, rcode(r), got, r)
				}
				if !r.Authoritative {
					t.Errorf("A %s over %s: AA bit not set", name, network)
				}
			}
		}
	})
	t.Run("case-insensitive", func(t *testing.T) {
		r := a.Query(t, "Primary.REDIS.Service.Consul.", dns.TypeA)
		if got := addrsOf(r.Answer); !slices.Equal(got, []string{"10.0.0.5"}) {
			t.Errorf("A Primary.REDIS.Service.Consul.: got %s %v, want [10.0.0.5] (DNS names are case-insensitive)", rcode(r), got)
		}
	})
	t.Run("SRV", func(t *testing.T) {
		for _, name := range []string{
			"redis.service.consul.", "redis.service.dc1.", "primary.redis.service.consul.",
			"_redis._primary.service.consul.", "_redis._tcp.service.consul.",
		} {
			expectSRV(t, a.Query(t, name, dns.TypeSRV), 6379, "0a000005.addr.dc1.consul.", "10.0.0.5")
		}
	})
	t.Run("addr", func(t *testing.T) {
		r := a.Query(t, "0a000005.addr.dc1.consul.", dns.TypeA)
		if got := addrsOf(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"10.0.0.5"}) {
			t.Errorf("A 0a000005.addr.dc1.consul.: got %s %v, want NOERROR [10.0.0.5]\n%v", rcode(r), got, r)
		}
	})
	t.Run("unknown tag is NXDOMAIN", func(t *testing.T) {
		expectNegative(t, a.Query(t, "replica.redis.service.consul.", dns.TypeA), dns.RcodeNameError)
		expectNegative(t, a.Query(t, "_redis._replica.service.consul.", dns.TypeSRV), dns.RcodeNameError)
	})
	t.Run("AAAA of an IPv4-only service is NODATA", func(t *testing.T) {
		expectNegative(t, a.Query(t, "redis.service.consul.", dns.TypeAAAA), dns.RcodeSuccess)
	})
	t.Run("unknown names are NXDOMAIN", func(t *testing.T) {
		for _, name := range []string{
			"nosuch.service.consul.", "nosuch.service.dc1.", "nosuch.node.consul.",
			"whatever.consul.", "redis.nosuchtype.consul.",
		} {
			expectNegative(t, a.Query(t, name, dns.TypeA), dns.RcodeNameError)
		}
	})
	t.Run("node", func(t *testing.T) {
		for _, name := range []string{"n1.node.consul.", "n1.node.dc1.consul.", "n1.node.dc1."} {
			r := a.Query(t, name, dns.TypeA)
			if got := addrsOf(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"127.0.0.1"}) {
				t.Errorf("A %s: got %s %v, want NOERROR [127.0.0.1]\n%v", name, rcode(r), got, r)
			}
		}
	})
	t.Run("deregistered service disappears", func(t *testing.T) {
		if err := a.Client.Agent().ServiceDeregister("redis-1"); err != nil {
			t.Fatalf("PUT /v1/agent/service/deregister/redis-1: %v", err)
		}
		eventually(t, 10*time.Second, func() error {
			r, err := a.Exchange(question("redis.service.consul.", dns.TypeA), "udp")
			if err != nil {
				return err
			}
			if len(r.Answer) != 0 {
				return fmt.Errorf("A redis.service.consul. still answers %v after deregistration", addrsOf(r.Answer))
			}
			return nil
		})
	})
}

// TestDNSFollowsCatalogChanges: answers follow every kind of write at once,
// not only the first registration of a name: an address change, another
// instance, a removed instance, through both APIs, without checks involved.
func TestDNSFollowsCatalogChanges(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	agentReg := func(t *testing.T, id, addr string) {
		t.Helper()
		if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: "alpha", Address: addr, Port: 1}); err != nil {
			t.Fatalf("PUT /v1/agent/service/register %s: %v", id, err)
		}
	}
	catalogReg := func(t *testing.T, id, addr string) {
		t.Helper()
		if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "ext", Address: "10.0.9.1",
			Service: &api.AgentService{ID: id, Service: "beta", Address: addr, Port: 1}}, nil); err != nil {
			t.Fatalf("PUT /v1/catalog/register %s: %v", id, err)
		}
	}
	catalogDereg := func(t *testing.T, id string) {
		t.Helper()
		if _, err := a.Client.Catalog().Deregister(&api.CatalogDeregistration{Node: "ext", ServiceID: id}, nil); err != nil {
			t.Fatalf("PUT /v1/catalog/deregister %s: %v", id, err)
		}
	}
	// Each step is checked through DNS (which may cache) after it was
	// checked through the catalog, so a stale answer is the DNS side's.
	catalogHas := func(t *testing.T, name string, want ...string) {
		t.Helper()
		slices.Sort(want)
		svcs, _, err := a.Client.Catalog().Service(name, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range svcs {
			got = append(got, s.ServiceAddress)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("GET /v1/catalog/service/%s: %v, want %v", name, got, want)
		}
	}

	// The steps of each API build on each other: after a failure the rest
	// of that API's steps would only repeat it.
	type step struct {
		name string
		do   func(t *testing.T)
		svc  string
		want []string
	}
	run := func(steps []step) {
		for _, s := range steps {
			ok := t.Run(s.name, func(t *testing.T) {
				s.do(t)
				catalogHas(t, s.svc, s.want...)
				waitForAddrs(t, a, s.svc+".service.consul.", dns.TypeA, s.want...)
			})
			if !ok {
				return
			}
		}
	}
	run([]step{
		{"agent: first registration", func(t *testing.T) { agentReg(t, "a1", "10.0.0.21") }, "alpha", []string{"10.0.0.21"}},
		{"agent: address change", func(t *testing.T) { agentReg(t, "a1", "10.0.0.22") }, "alpha", []string{"10.0.0.22"}},
		{"agent: another instance", func(t *testing.T) { agentReg(t, "a2", "10.0.0.23") }, "alpha", []string{"10.0.0.22", "10.0.0.23"}},
		{"agent: instance removed", func(t *testing.T) {
			if err := a.Client.Agent().ServiceDeregister("a1"); err != nil {
				t.Fatal(err)
			}
		}, "alpha", []string{"10.0.0.23"}},
	})
	run([]step{
		{"catalog: first registration", func(t *testing.T) { catalogReg(t, "b1", "10.0.0.31") }, "beta", []string{"10.0.0.31"}},
		{"catalog: address change", func(t *testing.T) { catalogReg(t, "b1", "10.0.0.32") }, "beta", []string{"10.0.0.32"}},
		{"catalog: another instance", func(t *testing.T) { catalogReg(t, "b2", "10.0.0.33") }, "beta", []string{"10.0.0.32", "10.0.0.33"}},
		{"catalog: instance removed", func(t *testing.T) { catalogDereg(t, "b1") }, "beta", []string{"10.0.0.33"}},
	})
}

func TestDNSServiceWithoutAddressUsesNode(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "api-1", Name: "api", Port: 8080}); err != nil {
		t.Fatalf("PUT /v1/agent/service/register: %v", err)
	}
	waitForAddrs(t, a, "api.service.consul.", dns.TypeA, "127.0.0.1")
	expectSRV(t, a.Query(t, "api.service.consul.", dns.TypeSRV), 8080, "n1.node.dc1.consul.", "127.0.0.1")
	expectSRV(t, a.Query(t, "_api._tcp.service.dc1.", dns.TypeSRV), 8080, "n1.node.dc1.consul.", "127.0.0.1")
}

// TestDNSUDPTruncation: 60 instances do not fit in 512 bytes.
func TestDNSUDPTruncation(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	const n = 60
	var want []string
	for i := range n {
		ip := fmt.Sprintf("10.2.0.%d", i+1)
		want = append(want, ip)
		_, err := a.Client.Catalog().Register(&api.CatalogRegistration{
			Node: "bulk", Address: "10.9.0.1",
			Service: &api.AgentService{ID: fmt.Sprintf("web-%d", i), Service: "web", Address: ip, Port: 80},
		}, nil)
		if err != nil {
			t.Fatalf("PUT /v1/catalog/register web-%d: %v", i, err)
		}
	}
	slices.Sort(want)

	// Over TCP everything.
	eventually(t, 15*time.Second, func() error {
		r, err := a.Exchange(question("web.service.consul.", dns.TypeA), "tcp")
		if err != nil {
			return err
		}
		if got := addrsOf(r.Answer); !slices.Equal(got, want) {
			return fmt.Errorf("A web.service.consul. over TCP: got %d addresses (TC=%v), want all %d", len(got), r.Truncated, n)
		}
		if r.Truncated {
			return errors.New("A web.service.consul. over TCP: TC set")
		}
		return nil
	})

	// UDP without EDNS0: at most 512 bytes, TC set, some answers.
	raw, r := rawUDP(t, a, question("web.service.consul.", dns.TypeA))
	if len(raw) > dns.MinMsgSize {
		t.Errorf("A web.service.consul. over UDP without EDNS0: %d-byte response, want at most 512", len(raw))
	}
	small := len(addrsOf(r.Answer))
	if !r.Truncated {
		t.Errorf("A web.service.consul. over UDP without EDNS0: TC not set with %d of %d answers in %d bytes", small, n, len(raw))
	}
	if small == 0 || small >= n {
		t.Errorf("A web.service.consul. over UDP without EDNS0: %d answers, want some but fewer than %d", small, n)
	}

	t.Logf("UDP without EDNS0: %d of %d answers in %d bytes, TC=%v", small, n, len(raw), r.Truncated)

	// UDP with EDNS0 4096: all 60 fit (about 1 KB), so no TC.
	q := question("web.service.consul.", dns.TypeA)
	q.SetEdns0(4096, false)
	raw, r = rawUDP(t, a, q)
	if len(raw) > 4096 {
		t.Errorf("A web.service.consul. over UDP with EDNS0 4096: %d-byte response", len(raw))
	}
	big := addrsOf(r.Answer)
	if len(big) <= small {
		t.Errorf("A web.service.consul. with EDNS0 4096: %d answers, no more than the %d without EDNS0", len(big), small)
	}
	if !slices.Equal(big, want) || r.Truncated {
		t.Errorf("A web.service.consul. with EDNS0 4096: %d answers in %d bytes, TC=%v; want all %d without TC (they fit)", len(big), len(raw), r.Truncated, n)
	}
	if r.IsEdns0() == nil {
		t.Errorf("A web.service.consul. with EDNS0: the response carries no OPT record (RFC 6891 6.1.1)")
	}
}

// rawUDP sends m in one datagram and returns the reply datagram whole (a
// dns.Client would cut it at the size it advertised) and its parse.
func rawUDP(t testing.TB, a *Agent, m *dns.Msg) ([]byte, *dns.Msg) {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var reply []byte
	eventually(t, 5*time.Second, func() error { // a datagram may be lost
		c, err := net.Dial("udp", a.DNSAddr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(dnsTimeout))
		if _, err := c.Write(b); err != nil {
			return err
		}
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("UDP %s: %w", m.Question[0].Name, err)
		}
		reply = buf[:n]
		return nil
	})
	r := new(dns.Msg)
	if err := r.Unpack(reply); err != nil {
		t.Fatalf("UDP %s: unparseable %d-byte reply: %v", m.Question[0].Name, len(reply), err)
	}
	if r.Id != m.Id {
		t.Fatalf("UDP %s: reply ID %d, want %d", m.Question[0].Name, r.Id, m.Id)
	}
	return reply, r
}

// ---- garbage ----

// header builds a 12-byte DNS header.
func header(id, flags, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 12)
	for i, v := range []uint16{id, flags, qd, an, ns, ar} {
		binary.BigEndian.PutUint16(b[2*i:], v)
	}
	return b
}

// wireName encodes labels without any checks.
func wireName(labels ...string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

func qtail(qtype uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, qtype), dns.ClassINET)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// malformed are messages with a whole header that are not valid queries:
// a server that answers them at all must answer FORMERR.
func malformed() []struct {
	name, note string
	msg        []byte
} {
	const rd = 1 << 8
	consulA := cat(wireName("redis", "service", "consul"), qtail(dns.TypeA))
	hugeLabel := cat([]byte{100}, []byte(strings.Repeat("a", 100)), wireName("service", "consul"), qtail(dns.TypeA))
	l63 := strings.Repeat("b", 63)
	longName := cat(wireName(l63, l63, l63, l63, l63, "consul"), qtail(dns.TypeA)) // 390 octets > 255
	return []struct {
		name, note string
		msg        []byte
	}{
		// CoreDNS's own server answers this one SERVFAIL before any plugin
		// runs (miekg/dns reads a message that ends after its header as one
		// without a question); beacon carries CoreDNS unpatched, so this is
		// the one malformed message that is not FORMERR.
		{"header only, claims 1 question", servfailByCoreDNS, header(0x1001, rd, 1, 0, 0, 0)},
		{"claims 2 questions, carries 1", "", cat(header(0x1002, rd, 2, 0, 0, 0), consulA)},
		{"2 questions", "", cat(header(0x1003, rd, 2, 0, 0, 0), consulA, consulA)},
		{"no question", "", header(0x1004, rd, 0, 0, 0, 0)},
		{"claims 5 answers it does not carry", "", cat(header(0x1005, rd, 1, 5, 0, 0), consulA)},
		{"label of 100 bytes", "", cat(header(0x1006, rd, 1, 0, 0, 0), hugeLabel)},
		{"name of 390 octets", "", cat(header(0x1007, rd, 1, 0, 0, 0), longName)},
		{"compression pointer loop", "", cat(header(0x1008, rd, 1, 0, 0, 0), []byte{0xc0, 12}, qtail(dns.TypeA))},
		{"question cut short", "", cat(header(0x1009, rd, 1, 0, 0, 0), wireName("redis", "service", "consul"), []byte{0})},
		// Not here: a query whose ARCOUNT claims records that are not
		// there. miekg/dns deliberately reads it as the valid query it
		// carries (a count that runs past the end "is a lie"), as every
		// miekg-based server, Consul's included, does.
	}
}

// servfailByCoreDNS marks a malformed message that CoreDNS's server itself
// answers SERVFAIL, before the plugin chain.
const servfailByCoreDNS = "servfail-by-coredns"

func checkFormErr(t testing.TB, name, note string, sent, reply []byte) {
	t.Helper()
	r := new(dns.Msg)
	if err := r.Unpack(reply); err != nil {
		t.Errorf("%s: unparseable %d-byte reply: %v", name, len(reply), err)
		return
	}
	if id := binary.BigEndian.Uint16(sent); r.Id != id {
		t.Errorf("%s: reply ID %#x, want %#x", name, r.Id, id)
	}
	if !r.Response {
		t.Errorf("%s: reply without the QR bit", name)
	}
	if note == servfailByCoreDNS {
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: rcode %s, want SERVFAIL as CoreDNS's server answers it", name, rcode(r))
		}
		return
	}
	if r.Rcode != dns.RcodeFormatError {
		if note != "" {
			note = "\n(" + note + ")"
		}
		t.Errorf("%s: rcode %s, want FORMERR (DESIGN.md: FORMERR for a malformed DNS message)%s\n%v", name, rcode(r), note, r)
	}
}

// alive checks that the server still answers a normal query over UDP and
// TCP and the process has not exited.
func alive(t testing.TB, a *Agent, after string) {
	t.Helper()
	if !a.Running() {
		t.Fatalf("the agent exited after %s", after)
	}
	for _, network := range []string{"udp", "tcp"} {
		r, err := a.Exchange(question("redis.service.consul.", dns.TypeA), network)
		if err != nil {
			t.Fatalf("after %s, a normal query over %s fails: %v", after, network, err)
		}
		if got := addrsOf(r.Answer); !slices.Equal(got, []string{"10.0.0.5"}) {
			t.Fatalf("after %s, A redis.service.consul. over %s answers %s %v, want [10.0.0.5]", after, network, rcode(r), got)
		}
	}
}

func TestDNSGarbage(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379}); err != nil {
		t.Fatal(err)
	}
	waitForAddrs(t, a, "redis.service.consul.", dns.TypeA, "10.0.0.5")
	rng := rand.New(rand.NewPCG(2026, 1))
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	t.Run("UDP", func(t *testing.T) {
		c, err := net.Dial("udp", a.DNSAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Random datagrams and truncated headers: any reply, or none.
		for _, n := range []int{0, 1, 2, 5, 11, 12, 13, 30, 100, 511, 512, 513, 1500, 4096, 65000} {
			if _, err := c.Write(randomBytes(n)); err != nil {
				t.Fatalf("writing %d random bytes: %v", n, err)
			}
		}
		valid, _ := question("redis.service.consul.", dns.TypeA).Pack()
		for _, n := range []int{1, 2, 5, 11} {
			c.Write(valid[:n])
		}
		alive(t, a, "random and truncated UDP datagrams")

		answered := 0
		for _, m := range malformed() {
			mc, err := net.Dial("udp", a.DNSAddr)
			if err != nil {
				t.Fatal(err)
			}
			mc.Write(m.msg)
			mc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			buf := make([]byte, 65536)
			n, err := mc.Read(buf)
			mc.Close()
			if err == nil {
				answered++
				checkFormErr(t, "UDP "+m.name, m.note, m.msg, buf[:n])
			}
			alive(t, a, "UDP "+m.name)
		}
		t.Logf("%d of %d malformed UDP queries were answered", answered, len(malformed()))
	})

	t.Run("TCP", func(t *testing.T) {
		// Unframed random streams, lying length prefixes, empty frames.
		for _, stream := range [][]byte{
			randomBytes(1),
			randomBytes(3000),
			{0xff, 0xff, 1, 2, 3}, // claims 65535 bytes, sends 3, closes
			{0, 0, 0, 0, 0, 0},    // zero-length frames
			{0, 5, 1, 2, 3, 4, 5}, // a 5-byte message
			cat([]byte{0, 12}, randomBytes(12)),
			cat([]byte{0x01, 0x00}, randomBytes(256)),
		} {
			c, err := net.Dial("tcp", a.DNSAddr)
			if err != nil {
				t.Fatalf("connecting: %v", err)
			}
			c.Write(stream)
			c.Close()
		}
		alive(t, a, "random TCP streams")

		answered := 0
		for _, m := range malformed() {
			c, err := net.Dial("tcp", a.DNSAddr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write(cat(binary.BigEndian.AppendUint16(nil, uint16(len(m.msg))), m.msg))
			var l [2]byte
			if _, err := io.ReadFull(c, l[:]); err == nil {
				reply := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, reply); err != nil {
					t.Errorf("TCP %s: reply cut short: %v", m.name, err)
				} else {
					answered++
					checkFormErr(t, "TCP "+m.name, m.note, m.msg, reply)
				}
			}
			c.Close()
			alive(t, a, "TCP "+m.name)
		}
		t.Logf("%d of %d malformed TCP queries were answered", answered, len(malformed()))
	})
}

// TestDNSChaining: names outside our zones reach ordinary CoreDNS plugins in
// other server blocks, and with `fallthrough` names we do not have reach the
// next plugin of our own block.
func TestDNSChaining(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{
		Discovery:   []string{"fallthrough"},
		ServerBlock: []string{"whoami"},
		Blocks: []string{`example.test.:DNSPORT {
    bind 127.0.0.1
    template IN A example.test {
        answer "{{ .Name }} 60 IN A 192.0.2.7"
    }
}`},
	})
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379}); err != nil {
		t.Fatal(err)
	}

	t.Run("template block", func(t *testing.T) {
		r := a.Query(t, "www.example.test.", dns.TypeA)
		if got := addrsOf(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"192.0.2.7"}) {
			t.Errorf("A www.example.test.: got %s %v, want the template's 192.0.2.7\n%v", rcode(r), got, r)
		}
	})
	t.Run("root block whoami", func(t *testing.T) {
		for _, name := range []string{"example.org.", "consul.example.org.", "service.consul.org."} {
			r := a.Query(t, name, dns.TypeA)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || !slices.Equal(addrsOf(r.Extra), []string{"127.0.0.1"}) {
				t.Errorf("A %s: want whoami's reply (NOERROR, 127.0.0.1 in additional), got\n%v", name, r)
			}
		}
	})
	t.Run("our names are still ours", func(t *testing.T) {
		waitForAddrs(t, a, "redis.service.consul.", dns.TypeA, "10.0.0.5")
		waitForAddrs(t, a, "redis.service.dc1.", dns.TypeA, "10.0.0.5")
	})
	t.Run("fallthrough to the next plugin", func(t *testing.T) {
		r := a.Query(t, "nosuch.service.consul.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || !slices.Equal(addrsOf(r.Extra), []string{"127.0.0.1"}) {
			t.Errorf("A nosuch.service.consul. with fallthrough: want whoami's reply (NOERROR, 127.0.0.1 in additional), got\n%v", r)
		}
	})
}
