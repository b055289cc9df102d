package adminapi

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/consul/api"
)

func TestAgentServiceLifecycleWithOfficialClient(t *testing.T) {
	ta := newTestAPI(t)
	ta.agent.registerSelf(t)
	agent := ta.client.Agent()

	reg := &api.AgentServiceRegistration{
		ID: "redis-1", Name: "redis", Tags: []string{"primary"}, Port: 6379, Address: "10.0.0.7",
		Meta:            map[string]string{"version": "7"},
		TaggedAddresses: map[string]api.ServiceAddress{"lan": {Address: "10.0.0.7", Port: 6379}},
		Weights:         &api.AgentWeights{Passing: 10, Warning: 1},
		Check:           &api.AgentServiceCheck{TTL: "30s", Status: api.HealthPassing, Notes: "ttl"},
		Checks: api.AgentServiceChecks{
			{Name: "redis tcp", TCP: "10.0.0.7:6379", Interval: "10s", Timeout: "1s"},
		},
	}
	if err := agent.ServiceRegister(reg); err != nil {
		t.Fatalf("ServiceRegister: %v", err)
	}

	svcs, err := agent.Services()
	if err != nil {
		t.Fatal(err)
	}
	s := svcs["redis-1"]
	if len(svcs) != 1 || s == nil {
		t.Fatalf("Services = %+v", svcs)
	}
	if s.ID != "redis-1" || s.Service != "redis" || s.Port != 6379 || s.Address != "10.0.0.7" ||
		!reflect.DeepEqual(s.Tags, []string{"primary"}) || s.Meta["version"] != "7" || s.Datacenter != testDC ||
		s.Weights != (api.AgentWeights{Passing: 10, Warning: 1}) ||
		s.TaggedAddresses["lan"] != (api.ServiceAddress{Address: "10.0.0.7", Port: 6379}) {
		t.Errorf("agent service = %+v", s)
	}

	one, _, err := agent.Service("redis-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if one.ID != "redis-1" || one.ContentHash == "" {
		t.Errorf("Service(redis-1) = %+v", one)
	}
	r := ta.get("/v1/agent/service/redis-1")
	if h := r.header.Get("X-Consul-ContentHash"); h == "" || h != one.ContentHash {
		t.Errorf("X-Consul-ContentHash = %q, body hash %q", h, one.ContentHash)
	}
	if _, _, err := agent.Service("nope", nil); err == nil {
		t.Error("Service(nope) did not fail")
	}
	if r := ta.get("/v1/agent/service/nope"); r.code != http.StatusNotFound {
		t.Errorf("GET unknown agent service = %d, want 404", r.code)
	}

	checks, err := agent.Checks()
	if err != nil {
		t.Fatal(err)
	}
	ttl, tcp := checks["service:redis-1:1"], checks["service:redis-1:2"]
	if len(checks) != 2 || ttl == nil || tcp == nil {
		t.Fatalf("Checks = %+v (want service:redis-1:1 and :2)", checks)
	}
	if ttl.Node != testNode || ttl.Status != api.HealthPassing || ttl.ServiceID != "redis-1" || ttl.ServiceName != "redis" ||
		ttl.Type != "ttl" || ttl.Notes != "ttl" || ttl.Name != "Service 'redis' check" {
		t.Errorf("TTL check = %+v", ttl)
	}
	if tcp.Status != api.HealthCritical || tcp.Type != "tcp" || tcp.Name != "redis tcp" || tcp.Definition.TCP != "10.0.0.7:6379" ||
		tcp.Definition.IntervalDuration.String() != "10s" || tcp.Definition.TimeoutDuration.String() != "1s" {
		t.Errorf("TCP check = %+v (definition %+v)", tcp, tcp.Definition)
	}

	// The catalog has it too, on the agent's node.
	inst, _, err := ta.client.Catalog().Service("redis", "", nil)
	if err != nil || len(inst) != 1 || inst[0].Node != testNode || inst[0].Address != testNodeAddr ||
		inst[0].ServiceAddress != "10.0.0.7" {
		t.Fatalf("catalog redis = %+v, %v", inst, err)
	}
	entries, _, _ := ta.client.Health().Service("redis", "", false, nil)
	if len(entries) != 1 || len(entries[0].Checks) != 3 { // serfHealth + 2
		t.Errorf("health redis = %+v", entries)
	}

	if err := agent.ServiceDeregister("redis-1"); err != nil {
		t.Fatalf("ServiceDeregister: %v", err)
	}
	if svcs, _ := agent.Services(); len(svcs) != 0 {
		t.Errorf("Services after deregister = %+v", svcs)
	}
	if inst, _, _ := ta.client.Catalog().Service("redis", "", nil); len(inst) != 0 {
		t.Errorf("catalog redis after deregister = %+v", inst)
	}
	if _, checks, _ := ta.agent.store.ServiceChecks(nil, "redis"); len(checks) != 0 {
		t.Errorf("catalog checks after deregister = %+v", checks)
	}
	r = ta.put("/v1/agent/service/deregister/redis-1", nil)
	if r.code != http.StatusNotFound || !strings.Contains(r.String(), "redis-1") {
		t.Errorf("deregister unknown = %d %q, want 404 naming it", r.code, r.body)
	}
}

func TestAgentServiceRegisterDefaults(t *testing.T) {
	ta := newTestAPI(t)
	ta.agent.registerSelf(t)
	r := ta.put("/v1/agent/service/register", `{"Name":"web","Check":{"HTTP":"http://localhost/","Interval":"5s"}}`)
	if r.code != http.StatusOK {
		t.Fatalf("register = %d %q", r.code, r.body)
	}
	svcs := ta.agent.LocalServices()
	if len(svcs) != 1 {
		t.Fatalf("local services = %+v", svcs)
	}
	s := svcs[0]
	if s.ID != "web" || s.Tags == nil || s.Meta == nil || s.Weights != (state.Weights{Passing: 1, Warning: 1}) {
		t.Errorf("defaults: %+v", s)
	}
	checks := ta.agent.LocalChecks()
	if len(checks) != 1 || checks[0].CheckID != "service:web" || checks[0].Status != state.HealthCritical ||
		checks[0].Type != "http" {
		t.Errorf("default check = %+v", checks)
	}

	// IDs with slashes route to the deregister handler intact.
	if r := ta.put("/v1/agent/service/register", `{"Name":"x","ID":"team/x"}`); r.code != http.StatusOK {
		t.Fatalf("register team/x = %d %q", r.code, r.body)
	}
	if r := ta.get("/v1/agent/service/team/x"); r.code != http.StatusOK {
		t.Errorf("GET team/x = %d %q", r.code, r.body)
	}
	if r := ta.put("/v1/agent/service/deregister/team/x", nil); r.code != http.StatusOK {
		t.Errorf("deregister team/x = %d %q", r.code, r.body)
	}
}

func TestAgentSelf(t *testing.T) {
	ta := newTestAPI(t)
	self, err := ta.client.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	cfg, member := self["Config"], self["Member"]
	if cfg["NodeName"] != testNode || cfg["Datacenter"] != testDC || cfg["NodeID"] != testNodeID || cfg["Server"] != true {
		t.Errorf("Config = %v", cfg)
	}
	if member["Name"] != testNode || member["Addr"] != testNodeAddr || member["Port"] != float64(8301) {
		t.Errorf("Member = %v", member)
	}
	if tags, _ := member["Tags"].(map[string]any); tags["role"] != "consul" || tags["dc"] != testDC {
		t.Errorf("Member.Tags = %v", member["Tags"])
	}
	name, err := ta.client.Agent().NodeName()
	if err != nil || name != testNode {
		t.Errorf("NodeName() = %q, %v", name, err)
	}
}

func TestAgentChecksAndServicesEmpty(t *testing.T) {
	ta := newTestAPI(t)
	for _, path := range []string{"/v1/agent/services", "/v1/agent/checks"} {
		r := ta.get(path)
		if r.code != http.StatusOK || r.String() != "{}" {
			t.Errorf("GET %s = %d %q, want 200 {}", path, r.code, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s Content-Type = %q", path, ct)
		}
	}
}
