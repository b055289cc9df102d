package agent

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeAgent reads the agent's /v1/agent/metrics?format=prometheus.
func scrapeAgent(httpAddr string) (map[string]*dto.MetricFamily, error) {
	code, body, err := call(http.MethodGet, httpAddr, "/v1/agent/metrics?format=prometheus", "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/agent/metrics?format=prometheus: %d %q", code, body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	return parser.TextToMetricFamilies(strings.NewReader(body))
}

// metricValue is the value of the metric of name whose labels include
// labels: a counter's or gauge's value, a summary's sample count; ok is
// false when there is none.
func metricValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) (v float64, ok bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		n := 0
		for _, l := range m.Label {
			if want, ok := labels[l.GetName()]; ok && want == l.GetValue() {
				n++
			}
		}
		if n != len(labels) {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_SUMMARY:
			return float64(m.GetSummary().GetSampleCount()), true
		}
	}
	return 0, false
}

// A server and a client agent: what Raft, serf and memberlist emit reaches
// the process's sinks, beside the agent's own gauges and timers. Not
// parallel: the gauges are the process's, and another test's agents would
// set them too.
func TestMetricsOfServerAndClient(t *testing.T) {
	sc := newAgentConf(t, "s1")
	startAgent(t, sc)
	cc := newAgentConf(t, "c1")
	cc.Client = true
	cc.Join = []string{sc.SerfLAN}
	startAgent(t, cc)
	waitWritable(t, sc.HTTP)
	eventually(t, leaderTimeout, func() error {
		// A write through the client: forwarded, then streamed back to its
		// replica.
		code, body, err := call(http.MethodPut, cc.HTTP, "/v1/kv/metrics", "x")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("PUT /v1/kv/metrics through the client: %d %q, %v", code, body, err)
		}
		return nil
	})

	type want struct {
		name   string
		labels map[string]string
		min    float64
	}
	for _, w := range []want{
		// Raft's own, through go-metrics' global.
		{"consul_raft_apply", nil, 1},
		{"consul_raft_commitTime", nil, 1},
		{"consul_raft_state_leader", nil, 1},
		// serf's and memberlist's, labelled with the pool.
		{"consul_serf_member_join", map[string]string{"network": "lan"}, 1},
		{"consul_memberlist_probeNode", map[string]string{"network": "lan"}, 1},
		// The agent's.
		{"consul_serf_members", map[string]string{"network": "lan", "status": "alive"}, 2},
		{"consul_runtime_num_goroutines", nil, 1},
		{"consul_runtime_alloc_bytes", nil, 1},
		{"consul_kvs_apply", nil, 2},
		{"consul_catalog_register", nil, 1},
		{"consul_fsm_kvs", map[string]string{"op": "set"}, 1},
		{"consul_fsm_register", nil, 1},
		{"consul_agent_checks", map[string]string{"status": "critical"}, 0},
		{"consul_state_checks", map[string]string{"status": "passing"}, 0},
		{"consul_api_http_requests", map[string]string{"method": "PUT", "path": "v1_kv__", "code": "200"}, 2},
		// The change feed and the client's replica.
		{"consul_feed_entries", nil, 1},
		{"consul_feed_streams", nil, 1},
		{"consul_feed_snapshots_sent", nil, 1},
		{"consul_client_replica_resyncs", nil, 1},
		{"consul_client_replica_index_lag", nil, 0},
		{"consul_client_replica_staleness", nil, 0},
	} {
		eventually(t, 15*time.Second, func() error {
			families, err := scrapeAgent(sc.HTTP)
			if err != nil {
				return err
			}
			if v, ok := metricValue(families, w.name, w.labels); !ok || v < w.min {
				return fmt.Errorf("%s%v = %v (present %v), want at least %v", w.name, w.labels, v, ok, w.min)
			}
			return nil
		})
	}
}
