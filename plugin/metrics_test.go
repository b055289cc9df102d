package discovery

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetrics(t *testing.T) {
	cfg := testDNSConfig()
	// A zone of its own, new on every run: the counters are process-wide,
	// so neither other tests nor -count=N repeats may add to them.
	zone := "m" + strconv.FormatInt(time.Now().UnixNano(), 36) + ".test."
	cfg.Zones = []string{zone}
	d := New(testStore(t), cfg, testAgentConfig())
	query := func(name string, qtype uint16) {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		d.ServeDNS(context.Background(), rec, (&test.Case{Qname: name, Qtype: qtype}).Msg())
	}
	query("web.service."+zone, dns.TypeA)
	query("web.service."+zone, dns.TypeA)
	query("web.service."+zone, dns.TypeSRV)
	query("nosuch.service."+zone, dns.TypeMX)

	// No server in the context: the server label is empty.
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"requests A", counterValue(t, requestCount.WithLabelValues("", zone, "A")), 2},
		{"requests SRV", counterValue(t, requestCount.WithLabelValues("", zone, "SRV")), 1},
		{"requests other", counterValue(t, requestCount.WithLabelValues("", zone, "other")), 1},
		{"responses NOERROR", counterValue(t, responseCount.WithLabelValues("", zone, "NOERROR")), 3},
		{"responses NXDOMAIN", counterValue(t, responseCount.WithLabelValues("", zone, "NXDOMAIN")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	var m dto.Metric
	if err := requestDuration.WithLabelValues("", zone).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetHistogram().GetSampleCount(); got != 4 {
		t.Errorf("duration samples: %d, want 4", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
