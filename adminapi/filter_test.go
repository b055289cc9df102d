package adminapi

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

// ?filter= with the official client's QueryOptions.Filter, on Consul's
// selectors, on every list endpoint that takes it; a bad expression or an
// unknown selector is a 400 with the parser's message, on an empty list
// too; ?node-meta= on /v1/catalog/services.
func TestFilterExpressions(t *testing.T) {
	ta := newTestAPI(t)
	populate(t, ta)
	q := func(expr string) *api.QueryOptions { return &api.QueryOptions{Filter: expr} }
	cat, health := ta.client.Catalog(), ta.client.Health()

	nodes, _, err := cat.Nodes(q(`Meta.rack == "r1"`))
	var names []string
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"db-1", "web-1"}) {
		t.Errorf("catalog nodes with Meta.rack == r1: %v, %v", names, err)
	}
	svc, _, err := cat.Service("web", "", q(`"us" in ServiceTags and NodeMeta.zone == "a"`))
	if err != nil || len(svc) != 1 || svc[0].ServiceID != "web-2" {
		t.Errorf("catalog service web filtered: %v, %v", svc, err)
	}
	services, _, err := cat.Services(q(`ServiceName == "db" or "eu" in ServiceTags`))
	if err != nil || len(services) != 2 || !slices.Equal(services["web"], []string{"eu", "v1"}) || services["db"] == nil {
		t.Errorf("catalog services filtered: %v, %v", services, err)
	}
	services, _, err = cat.Services(&api.QueryOptions{NodeMeta: map[string]string{"rack": "r2"}})
	if err != nil || len(services) != 1 || !slices.Equal(services["web"], []string{"us", "v1"}) {
		t.Errorf("catalog services with node-meta rack=r2: %v, %v", services, err)
	}
	entries, _, err := health.Service("web", "", false, q(`Service.Port == 8080`))
	if err != nil || len(entries) != 1 || entries[0].Service.ID != "web-2" {
		t.Errorf("health service web with Service.Port == 8080: %v, %v", entries, err)
	}
	checks, _, err := health.State("any", q(`Status == "critical"`))
	if err != nil || len(checks) != 1 || checks[0].CheckID != "db-1" {
		t.Errorf("health state any, critical only: %v, %v", checks, err)
	}

	if err := ta.client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "a1", Name: "api", Port: 1, Tags: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if err := ta.client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "a2", Name: "api", Port: 2}); err != nil {
		t.Fatal(err)
	}
	local, err := ta.client.Agent().ServicesWithFilter(`"x" in Tags`)
	if err != nil || len(local) != 1 || local["a1"] == nil {
		t.Errorf("agent services with a filter: %v, %v", local, err)
	}
	if _, err := ta.client.Agent().ChecksWithFilter(`Status == "passing"`); err != nil {
		t.Errorf("agent checks with a filter: %v", err)
	}

	for _, tc := range []struct{ expr, want string }{
		{`Meta.rack ==`, "Failed to create boolexpr evaluator"},
		{`NoSuchField == "x"`, "Failed to apply filter"},
	} {
		if _, _, err := cat.Nodes(q(tc.expr)); err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("catalog nodes with %q: %v", tc.expr, err)
		}
	}
	// An unknown selector on an empty answer is still refused.
	if _, _, err := cat.Service("nothing", "", q(`Nope == 1`)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("an unknown selector on an empty list: %v", err)
	}
	if _, err := ta.client.Agent().ChecksWithFilter(`Status ==`); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("agent checks with a bad filter: %v", err)
	}
}
