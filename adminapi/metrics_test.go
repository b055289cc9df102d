package adminapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/internal/telemetry"
	"github.com/beacon-dns/beacon/state"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// newMetricsAPI is the test API with the process's metrics set up first,
// as the agent sets them up before its API serves.
func newMetricsAPI(t *testing.T) *testAPI {
	t.Helper()
	if _, err := telemetry.Process(); err != nil {
		t.Fatal(err)
	}
	return newTestAPI(t)
}

// scrapeAPI reads /v1/agent/metrics?format=prometheus as Prometheus would.
func scrapeAPI(t *testing.T, ta *testAPI, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ta.ts.URL+"/v1/agent/metrics?format=prometheus", nil)
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	r := ta.send(req)
	if r.code != http.StatusOK {
		t.Fatalf("GET /v1/agent/metrics?format=prometheus: %d %s", r.code, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want Prometheus' text format", ct)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("parsing the exposition: %v\n%s", err, r.body)
	}
	return families
}

// withLabels returns the metric of f whose labels include want.
func withLabels(f *dto.MetricFamily, want map[string]string) *dto.Metric {
	if f == nil {
		return nil
	}
	for _, m := range f.Metric {
		n := 0
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n == len(want) {
			return m
		}
	}
	return nil
}

func TestAgentMetricsWithOfficialClient(t *testing.T) {
	ta := newMetricsAPI(t)
	info, err := ta.client.Agent().Metrics()
	if err != nil {
		t.Fatalf("Agent().Metrics(): %v", err)
	}
	if _, err := time.Parse("2006-01-02 15:04:05 -0700 MST", info.Timestamp); err != nil {
		t.Errorf("Timestamp %q is not go-metrics' interval time: %v", info.Timestamp, err)
	}
	if info.Gauges == nil || info.Points == nil || info.Counters == nil || info.Samples == nil {
		t.Errorf("a list is missing (Consul answers [] for none): %+v", info)
	}
}

// Every request is counted and timed by its route's pattern, method and
// code: never by its path, which a client picks.
func TestHTTPMetricsByRoute(t *testing.T) {
	ta := newMetricsAPI(t)
	ta.agent.registerSelf(t)
	before := scrapeAPI(t, ta, "")
	count := func(families map[string]*dto.MetricFamily, labels map[string]string) float64 {
		return withLabels(families["consul_api_http_requests"], labels).GetCounter().GetValue()
	}
	self := map[string]string{"method": "GET", "path": "v1_agent_self", "code": "200"}
	kvMissing := map[string]string{"method": "GET", "path": "v1_kv__", "code": "404"}
	unknown := map[string]string{"method": "GET", "path": "unknown", "code": "404"}
	for range 3 {
		mustOK(t, ta.get("/v1/agent/self"), nil)
	}
	for _, key := range []string{"a", "b/c", "d"} {
		if r := ta.get("/v1/kv/" + key); r.code != http.StatusNotFound {
			t.Fatalf("GET /v1/kv/%s: %d", key, r.code)
		}
	}
	ta.get("/v1/no/such/" + acl.NewUUID())
	if r := ta.do("BREW", "/v1/agent/self", nil); r.code != http.StatusMethodNotAllowed {
		t.Fatalf("BREW /v1/agent/self: %d", r.code)
	}

	after := scrapeAPI(t, ta, "")
	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{{self, 3}, {kvMissing, 3}, {unknown, 1}, {map[string]string{"method": "OTHER", "path": "unknown", "code": "405"}, 1}} {
		if got := count(after, tc.labels) - count(before, tc.labels); got != tc.want {
			t.Errorf("consul_api_http_requests%v grew by %v, want %v", tc.labels, got, tc.want)
		}
	}
	if m := withLabels(after["consul_api_http"], map[string]string{"method": "GET", "path": "v1_kv__"}); m.GetSummary().GetSampleCount() < 3 {
		t.Errorf("consul_api_http{GET v1_kv__} = %v, want at least 3 samples", m)
	}
	// Consul's pre-1.9 names: consul.http.GET.v1.kv._
	if f := after["consul_http_GET_v1_kv__"]; f == nil || f.Metric[0].GetSummary().GetSampleCount() < 3 {
		t.Errorf("consul_http_GET_v1_kv__ = %v", f)
	}
	for name, f := range after {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "path" && strings.Contains(l.GetValue(), "b_c") {
					t.Errorf("%s has a request's path as a label: %v", name, m)
				}
			}
		}
	}
}

// The metrics take agent:read of the agent's node, in both formats.
func TestAgentMetricsACL(t *testing.T) {
	if _, err := telemetry.Process(); err != nil {
		t.Fatal(err)
	}
	a := &aclAgent{fakeAgent: newFakeAgent(t)}
	ta := serveTestAPI(t, a.fakeAgent, a)
	store := ta.agent.store
	a.resolver = state.NewACLResolver(store, false)
	for i, tok := range []struct{ secret, rules string }{
		{"reader", `agent "` + testNode + `" { policy = "read" }`},
		{"other-node", `agent "elsewhere" { policy = "read" }`},
		{"kv-only", `key_prefix "" { policy = "write" }`},
	} {
		p := &acl.Policy{ID: acl.NewUUID(), Name: tok.secret, Rules: tok.rules}
		if err := store.ACLApply(uint64(2*i+1), &state.ACLRequest{Op: state.ACLPolicySet, Policy: p}); err != nil {
			t.Fatal(err)
		}
		token := &acl.Token{AccessorID: acl.NewUUID(), SecretID: tok.secret, Policies: []acl.PolicyLink{{ID: p.ID}}}
		if err := store.ACLApply(uint64(2*i+2), &state.ACLRequest{Op: state.ACLTokenSet, Token: token}); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{"/v1/agent/metrics", "/v1/agent/metrics?format=prometheus"} {
		for _, tc := range []struct {
			token string
			code  int
		}{{"", 403}, {"other-node", 403}, {"kv-only", 403}, {"nope", 403}, {"reader", 200}} {
			req, _ := http.NewRequest(http.MethodGet, ta.ts.URL+path, nil)
			req.Header.Set("X-Consul-Token", tc.token)
			if r := ta.send(req); r.code != tc.code {
				t.Errorf("GET %s with token %q: %d %s, want %d", path, tc.token, r.code, r, tc.code)
			}
		}
	}
	scrapeAPI(t, ta, "reader")
}

func TestRouteMetricNames(t *testing.T) {
	for pattern, want := range map[string]string{
		"GET /v1/agent/self":                       "v1_agent_self",
		"GET /v1/kv/{key...}":                      "v1_kv__",
		"GET /v1/catalog/service/{name}":           "v1_catalog_service__",
		"PUT /v1/agent/service/deregister/{id...}": "v1_agent_service_deregister__",
		"/ui/":                             "ui__",
		"GET example.com/v1/status/leader": "v1_status_leader",
	} {
		if got := newRouteMetric(pattern).label; got != want {
			t.Errorf("route %q: label %q, want %q", pattern, got, want)
		}
	}
}
