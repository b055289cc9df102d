package discovery

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// asciiUpper upper-cases ASCII letters only, as DNS case folding does.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

func foldEqual(a, b parsedName) bool {
	return a.kind == b.kind && strings.EqualFold(a.name, b.name) && strings.EqualFold(a.tag, b.tag) &&
		strings.EqualFold(a.dc, b.dc)
}

// FuzzParseName: any labels before a zone take apart into pieces of
// themselves, in the shape their kind promises; case does not change the
// reading; and a name built from the pieces, as the answers hand names out,
// reads back the same.
func FuzzParseName(f *testing.F) {
	d := New(nil, testDNSConfig(), testAgentConfig())
	var domain, dc1 *zone
	for _, z := range d.zones {
		switch z.name {
		case "consul.":
			domain = z
		case "dc1.":
			dc1 = z
		}
	}
	f.Fuzz(func(t *testing.T, rest string) {
		// ServeDNS passes the labels of a wire name: no empty label.
		if strings.HasPrefix(rest, ".") || strings.HasSuffix(rest, ".") || strings.Contains(rest, "..") {
			return
		}
		for _, z := range []*zone{domain, dc1} {
			p := d.parse(z, rest)
			parts := []string{p.name, p.tag}
			if z.kind == zoneDomain {
				parts = append(parts, p.dc) // a datacenter zone's own name is not in rest
			}
			for _, part := range parts {
				if !strings.Contains(rest, part) {
					t.Fatalf("parse(%s, %q) = %+v: %q is not part of the name", z.name, rest, p, part)
				}
			}
			if p.kind != kindNone && strings.Contains(rest, `\`) {
				t.Fatalf("parse(%s, %q) = %+v: escaped names are never ours", z.name, rest, p)
			}
			switch p.kind {
			case kindNone, kindApex, kindNS:
				if p != (parsedName{kind: p.kind}) {
					t.Fatalf("parse(%s, %q) = %+v: pieces without a name", z.name, rest, p)
				}
			case kindService:
				if p.name == "" || strings.Contains(p.name, ".") || strings.Contains(p.tag, ".") {
					t.Fatalf("parse(%s, %q) = %+v: a service is one label, its tag another", z.name, rest, p)
				}
			case kindAddr:
				if strings.Contains(p.name, ".") {
					t.Fatalf("parse(%s, %q) = %+v: an address is one label", z.name, rest, p)
				}
			}
			if p.kind != kindNone && p.kind != kindApex && p.kind != kindNS && p.name == "" {
				t.Fatalf("parse(%s, %q) = %+v: no name", z.name, rest, p)
			}
			if z.kind == zoneDC && p.kind > kindNS && p.dc != z.dc {
				t.Fatalf("parse(%s, %q) = %+v: the zone names datacenter %q", z.name, rest, p, z.dc)
			}
			if z.kind == zoneDomain && strings.Contains(p.dc, ".") {
				t.Fatalf("parse(%s, %q) = %+v: a datacenter is one label", z.name, rest, p)
			}
			if up := d.parse(z, asciiUpper(rest)); !foldEqual(up, p) {
				t.Fatalf("parse(%s) of %q = %+v, of its upper case %+v", z.name, rest, p, up)
			}

			var built string
			switch p.kind {
			case kindService:
				built = p.name + ".service"
			case kindNode:
				built = p.name + ".node"
			case kindAddr:
				built = p.name + ".addr"
			case kindQuery:
				built = p.name + ".query"
			default:
				continue
			}
			if z.kind == zoneDomain && p.dc != "" {
				built += "." + p.dc
			}
			want := p
			want.tag = ""
			if back := d.parse(z, built); back != want {
				t.Fatalf("parse(%s, %q) = %+v, but %q, built from it, reads %+v", z.name, rest, p, built, back)
			}
		}
	})
}

// FuzzReverseName: a reverse name or a <hex>.addr label decodes to an
// address only when it is that address's own name (in any case).
func FuzzReverseName(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		if ip, ok := parseReverse(name); ok {
			want, err := dns.ReverseAddr(ip.String())
			if err != nil || !strings.EqualFold(want, name) {
				t.Fatalf("parseReverse(%q) = %s, whose reverse name is %q", name, ip, want)
			}
		}
		if ip, ok := decodeAddr(name); ok {
			if want := strings.TrimSuffix(addrName(ip, ""), ".addr"); !strings.EqualFold(want, name) {
				t.Fatalf("decodeAddr(%q) = %s, whose label is %q", name, ip, want)
			}
		}
	})
}

// FuzzServeDNS: any message miekg/dns unpacks is answered with a reply to
// its question that packs (so the server can send it), or handed to the
// next plugin, or left to the server with an error rcode (FORMERR for a
// malformed question section); asked again, the answer is the same.
func FuzzServeDNS(f *testing.F) {
	d := New(testStore(f), testDNSConfig(), testAgentConfig())
	var nextCalled bool
	d.Next = test.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		nextCalled = true
		return dns.RcodeSuccess, nil
	})
	f.Fuzz(func(t *testing.T, wire []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(wire); err != nil {
			return // the server answers or drops it; the plugin never sees it
		}
		first, firstNext := serveOnce(t, d, req, &nextCalled)
		again, againNext := serveOnce(t, d, req, &nextCalled)
		if firstNext != againNext || !slices.Equal(first, again) {
			t.Fatalf("asked twice, answered differently:\n%q (next %v)\n%q (next %v)", first, firstNext, again, againNext)
		}
	})
}

// serveOnce serves req, checks the reply, and returns it in a comparable
// form: the rcode and the sorted records of each section.
func serveOnce(t *testing.T, d *Discovery, req *dns.Msg, nextCalled *bool) ([]string, bool) {
	t.Helper()
	*nextCalled = false
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, err := d.ServeDNS(context.Background(), rec, req)
	if err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	if *nextCalled {
		return nil, true
	}
	if len(req.Question) == 0 && rcode != dns.RcodeFormatError {
		t.Fatalf("no question: rcode %s, want FORMERR", dns.RcodeToString[rcode])
	}
	resp := rec.Msg
	if resp == nil {
		switch rcode {
		case dns.RcodeFormatError, dns.RcodeNotImplemented, dns.RcodeRefused:
		default:
			t.Fatalf("nothing written, rcode %s: the server would answer nothing sensible", dns.RcodeToString[rcode])
		}
		return []string{dns.RcodeToString[rcode]}, false
	}
	if rcode != dns.RcodeSuccess {
		t.Fatalf("wrote a reply and returned rcode %s: the server would write another", dns.RcodeToString[rcode])
	}
	q := req.Question[0]
	if resp.Id != req.Id || !resp.Response || len(resp.Question) != 1 || resp.Question[0] != q {
		t.Fatalf("reply does not answer the query:\n%v", resp)
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		t.Fatalf("reply rcode %s", dns.RcodeToString[resp.Rcode])
	}
	for _, rr := range resp.Answer {
		if rr.Header().Name != q.Name {
			t.Fatalf("answer %v is not owned by the question's name %q", rr, q.Name)
		}
	}
	if len(resp.Answer) == 0 && (len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != dns.TypeSOA) {
		t.Fatalf("an empty answer without the zone's SOA:\n%v", resp)
	}
	if _, err := resp.Pack(); err != nil {
		t.Fatalf("reply does not pack: %v\n%v", err, resp)
	}
	out := []string{dns.RcodeToString[resp.Rcode]}
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
		rrs := make([]string, len(sec))
		for i, rr := range sec {
			rrs[i] = rr.String()
		}
		slices.Sort(rrs)
		out = append(append(out, rrs...), "--")
	}
	return out, false
}
