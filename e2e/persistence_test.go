package e2e

import (
	"testing"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// TestPersistenceAcrossSIGKILL: what was acknowledged through either API
// survives a SIGKILL and a restart on the same data_dir.
func TestPersistenceAcrossSIGKILL(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379, Tags: []string{"primary"},
	}); err != nil {
		t.Fatalf("PUT /v1/agent/service/register redis-1: %v", err)
	}
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "api-1", Name: "api", Port: 8080}); err != nil {
		t.Fatalf("PUT /v1/agent/service/register api-1: %v", err)
	}
	if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{
		Node: "db-node", Address: "10.0.2.1",
		Service: &api.AgentService{ID: "db-1", Service: "db", Port: 5432},
	}, nil); err != nil {
		t.Fatalf("PUT /v1/catalog/register db-1: %v", err)
	}
	// Killed straight after the acknowledgements, without waiting for DNS.
	a.Kill(t)
	a.Restart(t)

	waitForAddrs(t, a, "redis.service.consul.", dns.TypeA, "10.0.0.5")
	waitForAddrs(t, a, "primary.redis.service.dc1.", dns.TypeA, "10.0.0.5")
	waitForAddrs(t, a, "api.service.consul.", dns.TypeA, "127.0.0.1")
	waitForAddrs(t, a, "db.service.consul.", dns.TypeA, "10.0.2.1")
	waitForAddrs(t, a, "db-node.node.consul.", dns.TypeA, "10.0.2.1")

	svcs, err := a.Client.Agent().Services()
	if err != nil {
		t.Fatalf("GET /v1/agent/services: %v", err)
	}
	r := svcs["redis-1"]
	if r == nil || r.Service != "redis" || r.Address != "10.0.0.5" || r.Port != 6379 {
		t.Errorf("GET /v1/agent/services after restart: redis-1 is %+v, want redis 10.0.0.5:6379", r)
	}
	if svcs["api-1"] == nil {
		t.Errorf("GET /v1/agent/services after restart: api-1 missing; have %v", keys(svcs))
	}
	if svcs["db-1"] != nil {
		t.Errorf("GET /v1/agent/services after restart: lists db-1, which was registered in the catalog for another node")
	}

	// And once more, with a service removed before the kill.
	if err := a.Client.Agent().ServiceDeregister("api-1"); err != nil {
		t.Fatalf("PUT /v1/agent/service/deregister/api-1: %v", err)
	}
	a.Kill(t)
	a.Restart(t)
	waitForAddrs(t, a, "redis.service.consul.", dns.TypeA, "10.0.0.5")
	expectNegative(t, a.Query(t, "api.service.consul.", dns.TypeA), dns.RcodeNameError)
	svcs, err = a.Client.Agent().Services()
	if err != nil {
		t.Fatalf("GET /v1/agent/services: %v", err)
	}
	if svcs["api-1"] != nil || svcs["redis-1"] == nil {
		t.Errorf("GET /v1/agent/services after the second restart: %v, want redis-1 and not api-1", keys(svcs))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
