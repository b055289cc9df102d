package discovery

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetrics(t *testing.T) {
	cfg := testDNSConfig()
	// A zone of its own, new on every run: the counts are process-wide,
	// so neither other tests nor -count=N repeats may add to them.
	zone := "m" + strconv.FormatInt(time.Now().UnixNano(), 36) + ".test."
	cfg.Zones = []string{zone}
	cfg.Fall.SetZonesFromArgs([]string{"fall." + zone})
	d := New(testStore(t), cfg, testAgentConfig())
	d.Next = test.NextHandler(dns.RcodeNameError, nil)
	other := &dnsserver.Server{Addr: "dns://:5300"}
	query := func(ctx context.Context, name string, qtype uint16) {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		d.ServeDNS(ctx, rec, (&test.Case{Qname: name, Qtype: qtype}).Msg())
	}
	for range 200 {
		query(context.Background(), "web.service."+zone, dns.TypeA)
	}
	query(context.Background(), "web.service."+zone, dns.TypeSRV)
	query(context.Background(), "nosuch.service."+zone, dns.TypeMX)
	query(context.Background(), "nosuch.fall."+zone, dns.TypeA) // passed on
	query(context.WithValue(context.Background(), dnsserver.Key{}, other), "web.service."+zone, dns.TypeAAAA)

	got := gatherCounts(t)
	for _, c := range []struct {
		name   string
		labels string
		want   float64
	}{
		// No server in the context: the server label is empty.
		{"coredns_discovery_requests_total", "|" + zone + "|A", 201},
		{"coredns_discovery_requests_total", "|" + zone + "|SRV", 1},
		{"coredns_discovery_requests_total", "|" + zone + "|other", 1},
		{"coredns_discovery_requests_total", "|" + zone + "|AAAA", 0},
		{"coredns_discovery_responses_total", "|" + zone + "|NOERROR", 201},
		{"coredns_discovery_responses_total", "|" + zone + "|NXDOMAIN", 1},
		{"coredns_discovery_responses_total", "|" + zone + "|SERVFAIL", 0},
		{"coredns_discovery_requests_total", "dns://:5300|" + zone + "|AAAA", 1},
		{"coredns_discovery_requests_total", "dns://:5300|" + zone + "|A", 0},
		{"coredns_discovery_responses_total", "dns://:5300|" + zone + "|NOERROR", 1},
	} {
		v, ok := got[c.name+"{"+c.labels+"}"]
		if !ok {
			t.Errorf("%s{%s} not exported", c.name, c.labels)
		} else if v != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	// Every label value is exported from the first query on, so a rate()
	// over a new value starts at 0, not at its first increment.
	var n int
	for k := range got {
		if strings.Contains(k, "|"+zone+"|") {
			n++
		}
	}
	if want := 2 * (len(typeLabels) + len(rcodeLabels)); n != want {
		t.Errorf("%d series for the zone, want %d (every type and rcode, on two servers)", n, want)
	}
}

// gatherCounts reads the plugin's series from the default registry, as
// the prometheus plugin serves them, keyed "name{server|zone|type-or-rcode}".
func gatherCounts(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]float64)
	for _, f := range families {
		if f.GetName() != "coredns_discovery_requests_total" && f.GetName() != "coredns_discovery_responses_total" {
			continue
		}
		if f.GetType() != dto.MetricType_COUNTER {
			t.Fatalf("%s is a %v, want a counter", f.GetName(), f.GetType())
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			last := labels["type"] + labels["rcode"]
			got[f.GetName()+"{"+labels["server"]+"|"+labels["zone"]+"|"+last+"}"] = m.GetCounter().GetValue()
		}
	}
	return got
}
