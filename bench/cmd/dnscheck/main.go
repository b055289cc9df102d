// Command dnscheck checks, before the DNS benchmark measures anything, that
// the servers under test give equivalent answers: for a sample of services it
// asks <svc>.service.consul and <svc>.service.file.test for A and SRV and
// compares the answers (addresses; SRV priority, weight, port and target with
// the zone suffix removed; the targets' A records in the additional section).
// It also asks whoami.test. It prints the size of each kind of response, so
// the benchmark compares like with like, and exits non-zero on a mismatch.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "127.0.0.1:8600", "DNS server address")
	services := flag.Int("services", 1000, "services registered (svc0000 …)")
	sample := flag.Int("sample", 50, "services to check, spread over the range")
	instances := flag.Int("instances", 3, "expected instances per service")
	consul := flag.String("consul", "service.consul.", "suffix of the discovery names")
	file := flag.String("file", "service.file.test.", "suffix of the zone-file names")
	whoami := flag.String("whoami", "whoami.test.", "a name the whoami plugin answers")
	show := flag.String("show", "", "print the full responses for this service (e.g. svc0000) and exit")
	flag.Parse()

	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if *show != "" {
		for _, q := range []struct {
			name string
			qt   uint16
		}{{*show + "." + *consul, dns.TypeA}, {*show + "." + *file, dns.TypeA},
			{*show + "." + *consul, dns.TypeSRV}, {*show + "." + *file, dns.TypeSRV}, {*whoami, dns.TypeA}} {
			m, n, err := query(c, *server, q.name, q.qt)
			if err != nil {
				fmt.Printf(";; %s %s: %v\n", q.name, dns.TypeToString[q.qt], err)
				continue
			}
			m.Id = 0
			fmt.Printf(";; %s %s: %d bytes\n%s\n", q.name, dns.TypeToString[q.qt], n, m)
		}
		return
	}
	bad := 0
	sizes := map[string]int{}
	step := max(*services / *sample, 1)
	for s := 0; s < *services; s += step {
		svc := fmt.Sprintf("svc%04d", s)
		for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
			tn := dns.TypeToString[qt]
			a, na, err := query(c, *server, svc+"."+*consul, qt)
			if err != nil {
				fmt.Printf("MISMATCH %s %s discovery: %v\n", svc, tn, err)
				bad++
				continue
			}
			b, nb, err := query(c, *server, svc+"."+*file, qt)
			if err != nil {
				fmt.Printf("MISMATCH %s %s file: %v\n", svc, tn, err)
				bad++
				continue
			}
			sizes["discovery "+tn] = max(sizes["discovery "+tn], na)
			sizes["file "+tn] = max(sizes["file "+tn], nb)
			ka, kb := canon(a, "consul."), canon(b, "file.test.")
			if len(a.Answer) != *instances {
				fmt.Printf("MISMATCH %s %s: discovery gave %d answers, want %d\n", svc, tn, len(a.Answer), *instances)
				bad++
			} else if !slices.Equal(ka, kb) {
				fmt.Printf("MISMATCH %s %s:\n  discovery %v\n  file      %v\n", svc, tn, ka, kb)
				bad++
			}
		}
	}
	if m, n, err := query(c, *server, *whoami, dns.TypeA); err != nil || len(m.Extra) == 0 {
		fmt.Printf("MISMATCH whoami: %v (extra %d)\n", err, len(m.Extra))
		bad++
	} else {
		sizes["whoami A"] = n
	}
	for _, k := range []string{"discovery A", "file A", "discovery SRV", "file SRV", "whoami A"} {
		fmt.Printf("response size %-14s %4d bytes\n", k, sizes[k])
	}
	if bad > 0 {
		fmt.Printf("dnscheck: %d mismatches\n", bad)
		os.Exit(1)
	}
	fmt.Printf("dnscheck: discovery and file answers agree for %d services (A and SRV)\n", (*services+step-1)/step)
}

func query(c *dns.Client, server, name string, qt uint16) (*dns.Msg, int, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qt)
	// No EDNS0, as dnsperf sends by default: answers must fit in 512 bytes.
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return nil, 0, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return r, 0, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	if r.Truncated {
		return r, 0, fmt.Errorf("truncated")
	}
	buf, err := r.Pack()
	if err != nil {
		return r, 0, err
	}
	return r, len(buf), nil
}

// canon renders answer and additional records without owner names, TTLs and
// the zone suffix, sorted, so the two zones' answers compare equal.
func canon(m *dns.Msg, zone string) []string {
	var out []string
	for _, sec := range []struct {
		name string
		rrs  []dns.RR
	}{{"an", m.Answer}, {"ad", m.Extra}} {
		for _, rr := range sec.rrs {
			switch v := rr.(type) {
			case *dns.A:
				owner := ""
				if sec.name == "ad" {
					owner = strings.TrimSuffix(strings.ToLower(v.Hdr.Name), zone) + " "
				}
				out = append(out, fmt.Sprintf("%s %sA %s", sec.name, owner, v.A))
			case *dns.SRV:
				out = append(out, fmt.Sprintf("%s SRV %d %d %d %s", sec.name, v.Priority, v.Weight, v.Port,
					strings.TrimSuffix(strings.ToLower(v.Target), zone)))
			case *dns.OPT:
			default:
				out = append(out, sec.name+" "+dns.TypeToString[rr.Header().Rrtype])
			}
		}
	}
	slices.Sort(out)
	return out
}
