package discovery

import (
	"context"
	"sync"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	requestCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "discovery",
		Name:      "requests_total",
		Help:      "Counter of queries for names in the discovery plugin's zones, by zone and query type.",
	}, []string{"server", "zone", "type"})

	responseCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "discovery",
		Name:      "responses_total",
		Help:      "Counter of responses of the discovery plugin, by zone and response code.",
	}, []string{"server", "zone", "rcode"})

	requestDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: "discovery",
		Name:      "request_duration_seconds",
		Buckets:   plugin.TimeBuckets,
		Help:      "Histogram of the time the discovery plugin takes to answer, by zone.",
	}, []string{"server", "zone"})
)

// The query types and response codes that get their own label value; the
// rest are counted as "other", so a client cannot grow the label set.
var (
	typeLabels  = [...]string{"A", "AAAA", "SRV", "PTR", "TXT", "SOA", "NS", "ANY", "other"}
	rcodeLabels = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other"}
)

func typeIndex(qtype uint16) int {
	switch qtype {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	case dns.TypeSRV:
		return 2
	case dns.TypePTR:
		return 3
	case dns.TypeTXT:
		return 4
	case dns.TypeSOA:
		return 5
	case dns.TypeNS:
		return 6
	case dns.TypeANY:
		return 7
	}
	return len(typeLabels) - 1
}

func rcodeIndex(rcode int) int {
	if rcode >= 0 && rcode < len(rcodeLabels)-1 {
		return rcode // NOERROR..REFUSED are rcodes 0..5
	}
	return len(rcodeLabels) - 1
}

// metricsCache holds, per server address, the metric children resolved
// once. Looking them up by label values on every query would hash the
// labels and take the vector's read lock, which every query shares.
type metricsCache struct {
	zones []string
	// servers maps a *dnsserver.Server (a pointer: no allocation, a cheap
	// hash) to its *serverMetrics; byAddr a server address to the same,
	// for the servers a reload replaces.
	servers sync.Map
	byAddr  sync.Map
}

type serverMetrics struct {
	requests  [][len(typeLabels)]prometheus.Counter // by zone index
	responses [][len(rcodeLabels)]prometheus.Counter
	duration  []prometheus.Observer
}

func (c *metricsCache) init(zones []*zone) {
	c.zones = make([]string, len(zones))
	for i, z := range zones {
		c.zones[i] = z.name
	}
}

// forServer returns the metrics of the server handling ctx's query.
func (c *metricsCache) forServer(ctx context.Context) *serverMetrics {
	s, _ := ctx.Value(dnsserver.Key{}).(*dnsserver.Server)
	if m, ok := c.servers.Load(s); ok {
		return m.(*serverMetrics)
	}
	addr := ""
	if s != nil {
		addr = s.Addr
	}
	if m, ok := c.byAddr.Load(addr); ok {
		c.servers.Store(s, m)
		return m.(*serverMetrics)
	}
	m := &serverMetrics{
		requests:  make([][len(typeLabels)]prometheus.Counter, len(c.zones)),
		responses: make([][len(rcodeLabels)]prometheus.Counter, len(c.zones)),
		duration:  make([]prometheus.Observer, len(c.zones)),
	}
	for i, z := range c.zones {
		for j, t := range typeLabels {
			m.requests[i][j] = requestCount.WithLabelValues(addr, z, t)
		}
		for j, rc := range rcodeLabels {
			m.responses[i][j] = responseCount.WithLabelValues(addr, z, rc)
		}
		m.duration[i] = requestDuration.WithLabelValues(addr, z)
	}
	// A concurrent first query may have stored an equivalent set: the
	// children are the same either way.
	actual, _ := c.byAddr.LoadOrStore(addr, m)
	c.servers.Store(s, actual)
	return actual.(*serverMetrics)
}

func (m *serverMetrics) request(zone int, qtype uint16) {
	m.requests[zone][typeIndex(qtype)].Inc()
}

func (m *serverMetrics) response(zone, rcode int, start time.Time) {
	m.responses[zone][rcodeIndex(rcode)].Inc()
	m.duration[zone].Observe(time.Since(start).Seconds())
}
