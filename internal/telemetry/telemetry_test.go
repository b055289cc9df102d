package telemetry

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads s's Prometheus exposition as a scraper would, holding every
// name to what Prometheus 2 accepts.
func scrape(t *testing.T, s *Sinks) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServePrometheus(rec, httptest.NewRequest(http.MethodGet, "/v1/agent/metrics?format=prometheus", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape Content-Type %q, want text/plain", ct)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return families
}

// labelled returns the metric of f whose labels are want, nil if none.
func labelled(f *dto.MetricFamily, want map[string]string) *dto.Metric {
	if f == nil {
		return nil
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		match := len(got) == len(want)
		for k, v := range want {
			match = match && got[k] == v
		}
		if match {
			return m
		}
	}
	return nil
}

// The in-memory sink answers in Consul's JSON shape, and the Prometheus
// sink with Consul's names, the declared metrics from the start.
func TestSinksInConsulsShapes(t *testing.T) {
	s, err := newSinks(false)
	if err != nil {
		t.Fatal(err)
	}
	s.metrics.IncrCounter([]string{"kvs", "writes"}, 2)
	s.metrics.SetGaugeWithLabels([]string{"state", "checks"}, 3, []metrics.Label{{Name: "status", Value: "critical"}})
	s.metrics.MeasureSince([]string{"raft", "commitTime"}, time.Now().Add(-5*time.Millisecond))
	s.EmitRuntimeStats()

	summary, err := s.Summary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(summary)
	if err != nil {
		t.Fatal(err)
	}
	var info api.MetricsInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatalf("the summary is not Consul's MetricsInfo: %v\n%s", err, b)
	}
	if _, err := time.Parse("2006-01-02 15:04:05 -0700 MST", info.Timestamp); err != nil {
		t.Errorf("Timestamp %q: %v", info.Timestamp, err)
	}
	gauge := func(name string) *api.GaugeValue {
		for i, g := range info.Gauges {
			if g.Name == name {
				return &info.Gauges[i]
			}
		}
		return nil
	}
	if g := gauge("consul.state.checks"); g == nil || g.Value != 3 || g.Labels["status"] != "critical" {
		t.Errorf("gauge consul.state.checks = %+v, want 3 with status critical", g)
	}
	if g := gauge("consul.runtime.num_goroutines"); g == nil || g.Value < 1 {
		t.Errorf("gauge consul.runtime.num_goroutines = %+v", g)
	}
	var counted, sampled bool
	for _, c := range info.Counters {
		counted = counted || (c.Name == "consul.kvs.writes" && c.Count == 1 && c.Sum == 2)
	}
	for _, c := range info.Samples {
		sampled = sampled || (c.Name == "consul.raft.commitTime" && c.Count == 1 && c.Max >= 5)
	}
	if !counted || !sampled {
		t.Errorf("counter consul.kvs.writes found %v, sample consul.raft.commitTime found %v: %s", counted, sampled, b)
	}

	families := scrape(t, s)
	if f := families["consul_raft_apply"]; f == nil || f.GetType() != dto.MetricType_COUNTER ||
		!strings.Contains(f.GetHelp(), "Raft") || f.Metric[0].GetCounter().GetValue() != 0 {
		t.Errorf("declared counter consul_raft_apply = %v, want 0 with its help", f)
	}
	if f := families["consul_raft_commitTime"]; f == nil || f.GetType() != dto.MetricType_SUMMARY ||
		f.Metric[0].GetSummary().GetSampleCount() != 1 {
		t.Errorf("summary consul_raft_commitTime = %v, want one sample", f)
	}
	if m := labelled(families["consul_state_checks"], map[string]string{"status": "critical"}); m == nil || m.GetGauge().GetValue() != 3 {
		t.Errorf("gauge consul_state_checks{status=critical} = %v, want 3", m)
	}
	if f := families["consul_kvs_writes"]; f == nil || f.Metric[0].GetCounter().GetValue() != 2 {
		t.Errorf("counter consul_kvs_writes = %v, want 2", f)
	}
	for name := range families {
		if !strings.HasPrefix(name, "consul_") {
			t.Errorf("metric %s lacks the consul prefix", name)
		}
	}
}

// The process's sinks are set up once, installed as go-metrics' global
// (where Raft, serf and memberlist emit), and registered on a registry of
// their own: CoreDNS's prometheus plugin serves the default one in the
// same process.
func TestProcessSinksAreTheGlobalOnce(t *testing.T) {
	// A collector of the default registry by a name the sinks also use:
	// the two registries never meet.
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "consul_raft_apply", Help: "not beacon's"})
	if err := prometheus.DefaultRegisterer.Register(clash); err != nil {
		t.Fatal(err)
	}
	defer prometheus.DefaultRegisterer.Unregister(clash)

	first, err := Process()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Process()
	if err != nil || again != first {
		t.Fatalf("Process again: %p, %v; want the same sinks %p", again, err, first)
	}
	// As raft emits, through the compat package's global.
	metrics.IncrCounter([]string{"raft", "apply"}, 1)
	if f := scrape(t, first)["consul_raft_apply"]; f == nil || f.Metric[0].GetCounter().GetValue() != 1 {
		t.Errorf("consul_raft_apply after a global increment = %v, want 1", f)
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "consul_raft_apply" && f.GetHelp() != "not beacon's" {
			t.Errorf("the default registry holds beacon's %s", f.GetName())
		}
	}
}
