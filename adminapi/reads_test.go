package adminapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/consul/api"
)

// readEndpoints are the read endpoints that support blocking queries and
// carry Consul's query metadata headers.
var readEndpoints = []string{
	"/v1/catalog/nodes",
	"/v1/catalog/services",
	"/v1/catalog/service/web",
	"/v1/catalog/node/n1",
	"/v1/health/service/web",
	"/v1/health/node/n1",
	"/v1/health/checks/web",
	"/v1/health/state/any",
	"/v1/agent/services",
}

func TestEmptyStoreAnswers(t *testing.T) {
	ta := newTestAPI(t)
	tests := []struct{ path, want string }{
		{"/v1/catalog/nodes", "[]"},
		{"/v1/catalog/services", "{}"},
		{"/v1/catalog/service/web", "[]"},
		{"/v1/catalog/node/n1", "null"}, // Consul: 200 null for an unknown node
		{"/v1/catalog/datacenters", `["dc1"]`},
		{"/v1/health/service/web", "[]"},
		{"/v1/health/service/web?passing", "[]"},
		{"/v1/health/node/n1", "[]"},
		{"/v1/health/checks/web", "[]"},
		{"/v1/health/state/any", "[]"},
		{"/v1/health/state/critical", "[]"},
		{"/v1/agent/services", "{}"},
		{"/v1/agent/checks", "{}"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := ta.get(tc.path)
			if r.code != http.StatusOK || r.String() != tc.want {
				t.Errorf("%d %q, want 200 %s", r.code, r.body, tc.want)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestQueryMetaHeaders(t *testing.T) {
	ta := newTestAPI(t)
	idx := ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Service: &state.Service{ID: "web", Service: "web"},
		Check:   &state.HealthCheck{CheckID: "c", Name: "c", ServiceID: "web", Status: state.HealthPassing}})
	for _, path := range readEndpoints {
		t.Run(path, func(t *testing.T) {
			r := ta.get(path)
			if r.code != http.StatusOK {
				t.Fatalf("%d %q", r.code, r.body)
			}
			if got := indexOf(t, r); got != idx {
				t.Errorf("X-Consul-Index = %d, want %d", got, idx)
			}
			if got := r.header.Get("X-Consul-KnownLeader"); got != "true" {
				t.Errorf("X-Consul-KnownLeader = %q", got)
			}
			if got := r.header.Get("X-Consul-LastContact"); got != "0" {
				t.Errorf("X-Consul-LastContact = %q", got)
			}
		})
	}

	// A follower's staleness, in milliseconds; "never" is reported as 0.
	for _, tc := range []struct {
		lc   time.Duration
		want string
	}{{1500 * time.Millisecond, "1500"}, {-1, "0"}} {
		ta.agent.mu.Lock()
		ta.agent.lastContact = tc.lc
		ta.agent.mu.Unlock()
		if got := ta.get("/v1/catalog/nodes").header.Get("X-Consul-LastContact"); got != tc.want {
			t.Errorf("LastContact %v: header %q, want %q", tc.lc, got, tc.want)
		}
	}

	// With no leader, ?stale still answers and says so.
	ta.agent.setLeader("")
	r := ta.get("/v1/catalog/nodes?stale")
	if r.code != http.StatusOK || r.header.Get("X-Consul-KnownLeader") != "false" {
		t.Errorf("stale read without leader = %d, KnownLeader %q", r.code, r.header.Get("X-Consul-KnownLeader"))
	}
}

func TestIndexNeverZero(t *testing.T) {
	ta := newTestAPI(t)
	for _, path := range readEndpoints {
		if got := ta.get(path).header.Get("X-Consul-Index"); got != "1" {
			t.Errorf("%s on an empty store: X-Consul-Index = %q, want 1 (0 disables blocking in clients)", path, got)
		}
	}
}

func TestStatusEndpoints(t *testing.T) {
	ta := newTestAPI(t)
	leader, err := ta.client.Status().Leader()
	if err != nil || leader != testLeader {
		t.Errorf("Leader() = %q, %v", leader, err)
	}
	peers, err := ta.client.Status().Peers()
	if err != nil || len(peers) != 1 || peers[0] != testLeader {
		t.Errorf("Peers() = %v, %v", peers, err)
	}

	ta.agent.setLeader("")
	ta.agent.mu.Lock()
	ta.agent.peers = nil
	ta.agent.mu.Unlock()
	if r := ta.get("/v1/status/leader"); r.code != http.StatusOK || r.String() != `""` {
		t.Errorf("leader with none = %d %q, want 200 \"\"", r.code, r.body)
	}
	if r := ta.get("/v1/status/peers"); r.code != http.StatusOK || r.String() != "[]" {
		t.Errorf("peers with none = %d %q, want 200 []", r.code, r.body)
	}
}

func TestUnknownRoutes(t *testing.T) {
	ta := newTestAPI(t)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/v1/nope", http.StatusNotFound},
		{http.MethodDelete, "/v1/catalog/nodes", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/catalog/register", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/agent/service/register", http.StatusMethodNotAllowed},
	} {
		if r := ta.do(tc.method, tc.path, nil); r.code != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, r.code, tc.want)
		}
	}
}

// TestShapesDecodeStrictly decodes every read's body into the official
// client's type with unknown fields rejected: a field beacon emits that
// Consul's shape lacks (a misspelt key, an internal field leaking out) is
// caught here, where the client itself would silently drop it.
func TestShapesDecodeStrictly(t *testing.T) {
	ta := newTestAPI(t)
	populate(t, ta)
	ta.agent.registerSelf(t)
	if err := ta.client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "r1", Name: "redis", Port: 6379,
		Check: &api.AgentServiceCheck{TTL: "10s"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		out  func() any
	}{
		{"/v1/catalog/nodes", func() any { return &[]*api.Node{} }},
		{"/v1/catalog/services", func() any { return &map[string][]string{} }},
		{"/v1/catalog/service/web", func() any { return &[]*api.CatalogService{} }},
		{"/v1/catalog/node/web-1", func() any { return &api.CatalogNode{} }},
		{"/v1/health/service/web", func() any { return &[]*api.ServiceEntry{} }},
		{"/v1/health/node/web-1", func() any { return &api.HealthChecks{} }},
		{"/v1/health/checks/web", func() any { return &api.HealthChecks{} }},
		{"/v1/health/state/any", func() any { return &api.HealthChecks{} }},
		{"/v1/agent/services", func() any { return &map[string]*api.AgentService{} }},
		{"/v1/agent/service/r1", func() any { return &api.AgentService{} }},
		// Consul's /v1/agent/checks carries ServiceTags (its docs show them),
		// which api.AgentCheck lacks; api.HealthCheck has every field.
		{"/v1/agent/checks", func() any { return &map[string]*api.HealthCheck{} }},
		{"/v1/catalog/datacenters", func() any { return &[]string{} }},
		{"/v1/status/leader", func() any { var s string; return &s }},
		{"/v1/status/peers", func() any { return &[]string{} }},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := ta.get(tc.path)
			if r.code != http.StatusOK {
				t.Fatalf("%d %q", r.code, r.body)
			}
			dec := json.NewDecoder(bytes.NewReader(r.body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tc.out()); err != nil {
				t.Errorf("decoding into the official type: %v\nbody %s", err, r.body)
			}
		})
	}
}
