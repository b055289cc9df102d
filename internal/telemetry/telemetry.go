package telemetry

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	metrics "github.com/hashicorp/go-metrics/compat"
	metricsprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Prefix is the service name go-metrics puts before every key: Consul's,
// so that consul.raft.commitTime and the like are where Consul's tools
// look for them.
const Prefix = "consul"

const (
	// inmemInterval and inmemRetain are Consul's in-memory aggregation:
	// 10 s intervals, kept for a minute.
	inmemInterval = 10 * time.Second
	inmemRetain   = time.Minute
	// prometheusRetention is how long the Prometheus sink keeps a series
	// nothing updates. Long, because a counter that vanishes and comes
	// back reads as a reset to Prometheus; label values are bounded, so
	// keeping them costs little. The declared metrics (definitions.go)
	// never go.
	prometheusRetention = time.Hour
)

// Sinks are the metrics sinks of one go-metrics instance.
type Sinks struct {
	metrics    *metrics.Metrics
	inmem      *metrics.InmemSink
	prometheus http.Handler

	// runtimeMu serializes EmitRuntimeStats: go-metrics keeps the count of
	// GC runs it last reported without a lock of its own, and every agent
	// of a test process emits.
	runtimeMu sync.Mutex
}

var (
	processOnce  sync.Once
	processSinks *Sinks
	processErr   error
)

// Process returns the process's sinks. The first call sets them up and
// installs them as go-metrics' global, where Raft, serf and memberlist
// emit; later calls (another agent of a test process, a Corefile reload,
// the HTTP API) get the same ones, so nothing is registered twice.
func Process() (*Sinks, error) {
	processOnce.Do(func() {
		processSinks, processErr = newSinks(true)
	})
	return processSinks, processErr
}

// newSinks builds the sinks; global installs them as go-metrics' global
// (tests build private ones).
func newSinks(global bool) (*Sinks, error) {
	inmem := metrics.NewInmemSink(inmemInterval, inmemRetain)
	registry := prometheus.NewRegistry()
	opts := metricsprom.PrometheusOpts{
		Expiration: prometheusRetention,
		Registerer: registry,
		Name:       "beacon_go_metrics",
	}
	opts.GaugeDefinitions, opts.SummaryDefinitions, opts.CounterDefinitions = definitions()
	promSink, err := metricsprom.NewPrometheusSinkFrom(opts)
	if err != nil {
		return nil, fmt.Errorf("setting up the Prometheus metrics sink: %w", err)
	}
	cfg := &metrics.Config{
		ServiceName: Prefix,
		// Consul prefixes gauges with the host name unless told not to;
		// Prometheus users turn that off (the scrape target says the
		// host), and so does beacon.
		EnableHostname: false,
		// go-metrics' own runtime collector is a goroutine that never
		// stops; the agent emits the same stats (EmitRuntimeStats) from a
		// loop that ends with it.
		EnableRuntimeMetrics: false,
		TimerGranularity:     time.Millisecond,
		ProfileInterval:      time.Second,
		FilterDefault:        true,
	}
	fanout := metrics.FanoutSink{inmem, promSink}
	newMetrics := metrics.New
	if global {
		newMetrics = metrics.NewGlobal
	}
	m, err := newMetrics(cfg, fanout)
	if err != nil {
		return nil, fmt.Errorf("setting up metrics: %w", err)
	}
	return &Sinks{
		metrics: m,
		inmem:   inmem,
		// A metric that fails to gather (a name Prometheus refuses) must
		// not take the others with it.
		prometheus: promhttp.HandlerFor(registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}),
	}, nil
}

// Summary is Consul's /v1/agent/metrics: the metrics of the last finished
// interval (of the current one during the first).
func (s *Sinks) Summary() (metrics.MetricsSummary, error) {
	v, err := s.inmem.DisplayMetrics(nil, nil)
	if err != nil {
		return metrics.MetricsSummary{}, fmt.Errorf("reading the in-memory metrics: %w", err)
	}
	summary, ok := v.(metrics.MetricsSummary)
	if !ok {
		return metrics.MetricsSummary{}, fmt.Errorf("reading the in-memory metrics: unexpected %T", v)
	}
	return summary, nil
}

// ServePrometheus answers a scrape in Prometheus' exposition format.
func (s *Sinks) ServePrometheus(w http.ResponseWriter, r *http.Request) {
	s.prometheus.ServeHTTP(w, r)
}

// EmitRuntimeStats sets the consul.runtime.* gauges (goroutines, heap,
// GC) from the Go runtime, as Consul does every second.
func (s *Sinks) EmitRuntimeStats() {
	s.runtimeMu.Lock()
	defer s.runtimeMu.Unlock()
	s.metrics.EmitRuntimeStats()
}
