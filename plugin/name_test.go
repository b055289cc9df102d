package discovery

import (
	"net/netip"
	"testing"
)

func TestParse(t *testing.T) {
	d := New(nil, testDNSConfig(), testAgentConfig())
	domain, dc1 := d.zones[zoneIndex(t, d, "consul.")], d.zones[zoneIndex(t, d, "dc1.")]
	tests := []struct {
		z    *zone
		rest string
		want parsedName
	}{
		{domain, "", parsedName{kind: kindApex}},
		{domain, "ns", parsedName{kind: kindNS}},
		{dc1, "ns", parsedName{}},
		{domain, "web.service", parsedName{kind: kindService, name: "web"}},
		{domain, "Web.SERVICE", parsedName{kind: kindService, name: "Web"}},
		{domain, "web.service.dc1", parsedName{kind: kindService, name: "web", dc: "dc1"}},
		{domain, "v1.web.service.dc1", parsedName{kind: kindService, name: "web", tag: "v1", dc: "dc1"}},
		{domain, "_web._tcp.service", parsedName{kind: kindService, name: "web"}},
		{domain, "_web._UDP.service", parsedName{kind: kindService, name: "web"}},
		{domain, "_web._v1.service.dc1", parsedName{kind: kindService, name: "web", tag: "v1", dc: "dc1"}},
		{domain, "_web.v1.service", parsedName{kind: kindService, name: "v1", tag: "_web"}},
		{domain, "a.b.web.service", parsedName{}},
		{domain, "service", parsedName{}},
		{domain, "service.dc1", parsedName{}},
		{domain, "web.dc1", parsedName{}},
		{domain, "web\\.x.service", parsedName{}},
		{domain, "n1.node", parsedName{kind: kindNode, name: "n1"}},
		{domain, "host.example.node.dc1", parsedName{kind: kindNode, name: "host.example", dc: "dc1"}},
		{domain, "0a000001.addr.dc1", parsedName{kind: kindAddr, name: "0a000001", dc: "dc1"}},
		{domain, "x.0a000001.addr", parsedName{}},
		{domain, "q.query", parsedName{kind: kindQuery, name: "q"}},
		{dc1, "web.service", parsedName{kind: kindService, name: "web", dc: "dc1"}},
		{dc1, "web.service.dc1", parsedName{}},
		{dc1, "n1.node", parsedName{kind: kindNode, name: "n1", dc: "dc1"}},
	}
	for _, tt := range tests {
		t.Run(tt.z.name+"/"+tt.rest, func(t *testing.T) {
			if got := d.parse(tt.z, tt.rest); got != tt.want {
				t.Errorf("parse(%q) = %+v, want %+v", tt.rest, got, tt.want)
			}
		})
	}
}

func zoneIndex(t *testing.T, d *Discovery, name string) int {
	t.Helper()
	for i, z := range d.zones {
		if z.name == name {
			return i
		}
	}
	t.Fatalf("no zone %s", name)
	return -1
}

func TestAddrEncoding(t *testing.T) {
	tests := []struct {
		ip, hex string
	}{
		{"10.0.1.2", "0a000102"},
		{"255.255.255.255", "ffffffff"},
		{"2001:db8::6", "20010db8000000000000000000000006"},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.ip)
		if got := addrName(ip, ".dc1.consul."); got != tt.hex+".addr.dc1.consul." {
			t.Errorf("addrName(%s) = %s", ip, got)
		}
		if got, ok := decodeAddr(tt.hex); !ok || got != ip {
			t.Errorf("decodeAddr(%s) = %v, %v", tt.hex, got, ok)
		}
	}
	for _, bad := range []string{"", "0a0001", "0a00010g", "0a0001020", "20010db800000000000000000000000"} {
		if ip, ok := decodeAddr(bad); ok {
			t.Errorf("decodeAddr(%q) = %v, want failure", bad, ip)
		}
	}
}

func TestParseReverse(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for not an address
	}{
		{"1.0.0.10.in-addr.arpa.", "10.0.0.1"},
		{"1.0.0.10.IN-ADDR.ARPA.", "10.0.0.1"},
		{"255.255.255.255.in-addr.arpa.", "255.255.255.255"},
		{"0.10.in-addr.arpa.", ""},
		{"256.0.0.10.in-addr.arpa.", ""},
		{"01.0.0.10.in-addr.arpa.", ""},
		{"a.0.0.10.in-addr.arpa.", ""},
		{"1.1.0.0.10.in-addr.arpa.", ""},
		{"6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "2001:db8::6"},
		{"6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6.arpa.", "2001:db8::6"},
		{"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "2001:db8::"},
		{"8.b.d.0.1.0.0.2.ip6.arpa.", ""},
		{"66.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", ""},
		{"example.org.", ""},
	}
	for _, tt := range tests {
		ip, ok := parseReverse(tt.name)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != tt.want {
			t.Errorf("parseReverse(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
