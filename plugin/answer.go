package discovery

import (
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/miekg/dns"
)

// serviceTTL is the TTL of answers about service name.
func (d *Discovery) serviceTTL(name string) uint32 {
	if len(d.svcTTL) > 0 {
		if ttl, ok := d.svcTTL[strings.ToLower(name)]; ok {
			return ttl
		}
	}
	return d.svcTTLDefault
}

// service answers <svc>.service and its tag and RFC 2782 forms, with the
// instances on nodes authz may read (all of them when it is nil).
func (d *Discovery) service(rep *reply, z *zone, q dns.Question, name, tag string, authz *acl.Authorizer) {
	d.answerService(rep, q, d.lookup(z, name, tag, authz))
}

// answerService answers q with the instances of entry e; nil is no
// healthy instance, which Consul answers NXDOMAIN.
func (d *Discovery) answerService(rep *reply, q dns.Question, e *serviceEntry) {
	m := &rep.msg
	if e == nil {
		m.Rcode = dns.RcodeNameError
		return
	}
	switch q.Qtype {
	case dns.TypeA:
		d.serviceAddresses(rep, q, e, true, false)
	case dns.TypeAAAA:
		d.serviceAddresses(rep, q, e, false, true)
	case dns.TypeANY:
		d.serviceAddresses(rep, q, e, true, true)
	case dns.TypeSRV:
		serviceSRV(m, q, e)
	}
	// Any other type: the name exists, so NODATA.
}

// serviceAddresses answers A, AAAA or ANY with records of the entry's
// IPv4 addresses (with v4) and IPv6 addresses (with v6), shuffled and
// capped at a_record_limit.
func (d *Discovery) serviceAddresses(rep *reply, q dns.Question, e *serviceEntry, v4, v6 bool) {
	m := &rep.msg
	var n4, n6 int
	if v4 {
		n4 = e.n4
	}
	if v6 {
		n6 = (len(e.ips) - 4*e.n4) / 16
	}
	n := n4 + n6
	if n == 0 {
		if e.host != "" {
			// Only hostnames: point at one, as Consul does.
			m.Answer = []dns.RR{cname(q.Name, e.host, e.ttl)}
		}
		return // otherwise a family mismatch: NODATA
	}
	var (
		rrs []dns.RR
		as  []dns.A
	)
	if n6 == 0 && n <= inlineAnswers {
		rrs, as = rep.rr[:n:n], rep.a[:n:n]
	} else {
		rrs, as = make([]dns.RR, n), make([]dns.A, n4)
	}
	for i := range as {
		as[i] = dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: e.ttl},
			A: net.IP(e.ips[4*i : 4*i+4 : 4*i+4])}
		rrs[i] = &as[i]
	}
	if n6 > 0 {
		aaaas := make([]dns.AAAA, n6)
		v6s := e.ips[4*e.n4:]
		for i := range aaaas {
			aaaas[i] = dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: e.ttl},
				AAAA: net.IP(v6s[16*i : 16*i+16 : 16*i+16])}
			rrs[n4+i] = &aaaas[i]
		}
	}
	// Fisher-Yates on math/rand/v2's per-thread source.
	for i := n - 1; i > 0; i-- {
		j := rand.IntN(i + 1)
		rrs[i], rrs[j] = rrs[j], rrs[i]
	}
	if d.aLimit > 0 && n > d.aLimit {
		rrs = rrs[:d.aLimit:d.aLimit]
	}
	m.Answer = rrs
}

// serviceSRV answers SRV: one record per instance, shuffled, the targets'
// addresses in the additional section.
func serviceSRV(m *dns.Msg, q dns.Question, e *serviceEntry) {
	a := e.srvAnswer()
	srvs := make([]dns.SRV, len(a.srv))
	m.Answer = make([]dns.RR, len(a.srv))
	for i, s := range a.srv {
		srvs[i] = dns.SRV{
			Hdr:      dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: e.ttl},
			Priority: 1,
			Weight:   s.weight,
			Port:     s.port,
			Target:   s.target,
		}
		m.Answer[i] = &srvs[i]
	}
	shuffle(len(m.Answer), func(i, j int) { m.Answer[i], m.Answer[j] = m.Answer[j], m.Answer[i] })
	if len(a.glueIPs) > 0 {
		m.Extra = appendAddrRRs(make([]dns.RR, 0, len(a.glueIPs)), "", a.glueNames, a.glueIPs, e.ttl)
	}
}

// srvTarget is where an SRV record points: the service's own address
// encoded as <hex>.addr, its hostname, or its node.
func srvTarget(suffix string, svc *state.Service, node *state.Node) (string, netip.Addr, bool) {
	if svc.Address != "" {
		ip, err := netip.ParseAddr(svc.Address)
		if err != nil {
			return dns.Fqdn(svc.Address), netip.Addr{}, false
		}
		ip = ip.Unmap().WithZone("")
		return addrName(ip, suffix), ip, true
	}
	target := node.Node + ".node" + suffix
	ip, err := netip.ParseAddr(node.Address)
	if err != nil {
		return target, netip.Addr{}, false
	}
	return target, ip.Unmap().WithZone(""), true
}

// addrName encodes ip as <hex>.addr<suffix>: 8 hex digits for IPv4, 32 for
// IPv6.
func addrName(ip netip.Addr, suffix string) string {
	const digits = "0123456789abcdef"
	var raw []byte
	if ip.Is4() {
		b := ip.As4()
		raw = b[:]
	} else {
		b := ip.As16()
		raw = b[:]
	}
	var sb strings.Builder
	sb.Grow(2*len(raw) + len(".addr") + len(suffix))
	for _, c := range raw {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&0xf])
	}
	sb.WriteString(".addr")
	sb.WriteString(suffix)
	return sb.String()
}

// decodeAddr is the inverse of addrName's hex part.
func decodeAddr(h string) (netip.Addr, bool) {
	if len(h) != 8 && len(h) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return netip.Addr{}, false
	}
	if len(h) == 8 {
		return netip.AddrFrom4([4]byte(b[:4])), true
	}
	return netip.AddrFrom16(b), true
}

// wantFamily reports whether ip answers a query of type qtype.
func wantFamily(qtype uint16, ip netip.Addr) bool {
	switch qtype {
	case dns.TypeA:
		return ip.Is4()
	case dns.TypeAAAA:
		return ip.Is6()
	}
	return qtype == dns.TypeANY
}

// shuffle is Fisher-Yates on math/rand/v2's top-level source, which is
// per-thread: no lock shared by concurrent queries.
func shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, rand.IntN(i+1))
	}
}

// appendAddrRRs appends an A or AAAA record per ip, owned by name, or by
// names[i] when names is not nil. The records and their address bytes
// share a few allocations rather than two per record.
func appendAddrRRs(dst []dns.RR, name string, names []string, ips []netip.Addr, ttl uint32) []dns.RR {
	n4 := 0
	for _, ip := range ips {
		if ip.Is4() {
			n4++
		}
	}
	n6 := len(ips) - n4
	var (
		as    []dns.A
		aaaas []dns.AAAA
		raw   = make([]byte, 4*n4+16*n6)
	)
	if n4 > 0 {
		as = make([]dns.A, n4)
	}
	if n6 > 0 {
		aaaas = make([]dns.AAAA, n6)
	}
	for i, ip := range ips {
		owner := name
		if names != nil {
			owner = names[i]
		}
		if ip.Is4() {
			b := ip.As4()
			copy(raw, b[:])
			a := &as[0]
			as = as[1:]
			a.Hdr = dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}
			a.A = net.IP(raw[:4:4])
			raw = raw[4:]
			dst = append(dst, a)
			continue
		}
		b := ip.As16()
		copy(raw, b[:])
		a := &aaaas[0]
		aaaas = aaaas[1:]
		a.Hdr = dns.RR_Header{Name: owner, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}
		a.AAAA = net.IP(raw[:16:16])
		raw = raw[16:]
		dst = append(dst, a)
	}
	return dst
}

func cname(name, target string, ttl uint32) dns.RR {
	return &dns.CNAME{
		Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
		Target: dns.Fqdn(target),
	}
}

// hostRRs answers A, AAAA or ANY for one address: the record of the
// matching family, a CNAME when it is a hostname, nothing otherwise.
func hostRRs(dst []dns.RR, q dns.Question, address string, ttl uint32) []dns.RR {
	ip, err := netip.ParseAddr(address)
	if err != nil {
		if address == "" {
			return dst
		}
		return append(dst, cname(q.Name, address, ttl))
	}
	ip = ip.Unmap().WithZone("")
	if !wantFamily(q.Qtype, ip) {
		return dst
	}
	return appendAddrRRs(dst, q.Name, nil, []netip.Addr{ip}, ttl)
}

// nodeLookup answers <node>.node: its address, and its metadata as TXT.
func (d *Discovery) nodeLookup(m *dns.Msg, q dns.Question, name string) {
	_, node, err := d.store.GetNode(nil, name)
	if err != nil {
		node = nil
	}
	d.answerNode(m, q, node)
}

// answerNode answers q with node's address and metadata; nil is NXDOMAIN.
func (d *Discovery) answerNode(m *dns.Msg, q dns.Question, node *state.Node) {
	if node == nil {
		m.Rcode = dns.RcodeNameError
		return
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		m.Answer = hostRRs(nil, q, node.Address, d.nodeTTL)
		if len(m.Answer) > 0 {
			// As Consul, the metadata rides along in the additional section.
			m.Extra = metaTXT(q.Name, node.Meta, d.nodeTTL)
		}
	case dns.TypeANY:
		m.Answer = hostRRs(nil, q, node.Address, d.nodeTTL)
		m.Answer = append(m.Answer, metaTXT(q.Name, node.Meta, d.nodeTTL)...)
	case dns.TypeTXT:
		m.Answer = metaTXT(q.Name, node.Meta, d.nodeTTL)
	}
}

// metaTXT is one TXT record per metadata key, sorted by key, as
// key=value (RFC 1464), or the bare value for Consul's rfc1035- keys.
func metaTXT(name string, meta map[string]string, ttl uint32) []dns.RR {
	if len(meta) == 0 {
		return nil
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]dns.RR, 0, len(keys))
	for _, k := range keys {
		txt := meta[k]
		if !strings.HasPrefix(k, "rfc1035-") {
			txt = rfc1464Key(k) + "=" + txt
		}
		out = append(out, &dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
			Txt: []string{txt},
		})
	}
	return out
}

// rfc1464Key escapes the characters RFC 1464 reserves in a key.
func rfc1464Key(k string) string {
	if !strings.ContainsAny(k, "`= ") {
		return k
	}
	var sb strings.Builder
	for i := 0; i < len(k); i++ {
		if c := k[i]; c == '`' || c == '=' || c == ' ' {
			sb.WriteByte('`')
		}
		sb.WriteByte(k[i])
	}
	return sb.String()
}

// addr answers <hex>.addr.
func (d *Discovery) addr(m *dns.Msg, q dns.Question, h string) {
	ip, ok := decodeAddr(h)
	if !ok {
		m.Rcode = dns.RcodeNameError
		return
	}
	if wantFamily(q.Qtype, ip) {
		m.Answer = appendAddrRRs(nil, q.Name, nil, []netip.Addr{ip}, d.nodeTTL)
	}
}

// apex answers the zone's own name: SOA and NS.
func (d *Discovery) apex(m *dns.Msg, z *zone, q dns.Question) {
	switch q.Qtype {
	case dns.TypeSOA:
		soa := z.soa
		soa.Hdr.Name = q.Name
		m.Answer = []dns.RR{&soa}
	case dns.TypeNS:
		m.Answer = []dns.RR{d.ns(q.Name)}
		m.Extra = d.nsGlue()
	case dns.TypeANY:
		soa := z.soa
		soa.Hdr.Name = q.Name
		m.Answer = []dns.RR{&soa, d.ns(q.Name)}
	}
}

func (d *Discovery) ns(owner string) dns.RR {
	return &dns.NS{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: d.nodeTTL}, Ns: d.nsName}
}

// nsGlue is the address of ns.<domain>: the agent's own node.
func (d *Discovery) nsGlue() []dns.RR {
	_, node, err := d.store.GetNode(nil, d.node)
	if err != nil || node == nil {
		return nil
	}
	out := hostRRs(nil, dns.Question{Name: d.nsName, Qtype: dns.TypeA}, node.Address, d.nodeTTL)
	return hostRRs(out, dns.Question{Name: d.nsName, Qtype: dns.TypeAAAA}, node.Address, d.nodeTTL)
}

// nameServer answers ns.<domain>, the name our SOA and NS records give.
func (d *Discovery) nameServer(m *dns.Msg, _ *zone, q dns.Question) {
	_, node, err := d.store.GetNode(nil, d.node)
	if err != nil || node == nil {
		return // the name exists, the agent's node is not registered yet: NODATA
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeANY:
		m.Answer = hostRRs(nil, q, node.Address, d.nodeTTL)
	}
}

// reverse answers PTR queries in a reverse zone with the nodes and the
// services that have the address, those authz may read (all when nil).
func (d *Discovery) reverse(m *dns.Msg, z *zone, q dns.Question, rest string, authz *acl.Authorizer) {
	if rest == "" {
		d.apex(m, z, q)
		return
	}
	ip, ok := parseReverse(q.Name)
	if !ok {
		m.Rcode = dns.RcodeNameError
		return
	}
	addr := ip.String()
	nodes := d.store.NodesByAddress(addr)
	svcs := d.store.ServicesByAddress(addr)
	if authz != nil {
		nodes = slices.DeleteFunc(nodes, func(n *state.Node) bool { return !authz.NodeRead(n.Node) })
		svcs = slices.DeleteFunc(svcs, func(s *state.Service) bool { return !authz.ServiceRead(s.Service) })
	}
	if len(nodes) == 0 && len(svcs) == 0 {
		m.Rcode = dns.RcodeNameError
		return
	}
	if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
		return
	}
	ptr := func(target string, ttl uint32) dns.RR {
		return &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: target}
	}
	for _, n := range nodes {
		m.Answer = append(m.Answer, ptr(n.Node+".node"+z.suffix, d.nodeTTL))
	}
	var done []string // a service with several instances on the address: one PTR
	for _, s := range svcs {
		if slices.ContainsFunc(done, func(n string) bool { return strings.EqualFold(n, s.Service) }) {
			continue
		}
		done = append(done, s.Service)
		m.Answer = append(m.Answer, ptr(s.Service+".service"+z.suffix, d.serviceTTL(s.Service)))
	}
}

// parseReverse decodes a name under in-addr.arpa (4 decimal labels) or
// ip6.arpa (32 nibble labels); partial names are not addresses.
func parseReverse(name string) (netip.Addr, bool) {
	const v4, v6 = ".in-addr.arpa.", ".ip6.arpa."
	n := len(name)
	switch {
	case n > len(v4) && strings.EqualFold(name[n-len(v4):], v4):
		labels := strings.Split(name[:n-len(v4)], ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			if len(l) == 0 || len(l) > 3 || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			v := 0
			for j := 0; j < len(l); j++ {
				if l[j] < '0' || l[j] > '9' {
					return netip.Addr{}, false
				}
				v = v*10 + int(l[j]-'0')
			}
			if v > 255 {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	case n > len(v6) && strings.EqualFold(name[n-len(v6):], v6):
		labels := name[:n-len(v6)]
		if len(labels) != 63 {
			return netip.Addr{}, false
		}
		// One nibble a label, the first label the last nibble.
		var nibbles [32]byte
		for i := 0; i < 32; i++ {
			if i > 0 && labels[2*i-1] != '.' {
				return netip.Addr{}, false
			}
			nibbles[31-i] = labels[2*i]
		}
		var b [16]byte
		if _, err := hex.Decode(b[:], nibbles[:]); err != nil {
			return netip.Addr{}, false
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
