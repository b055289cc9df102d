package adminapi

import (
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/consul/api"
)

// populate registers, through the official client and the catalog API:
//
//	web-1 (10.0.0.1, rack r1, zone a): web "web-1" tags v1,eu port 80, check web-1-http passing; serfHealth passing
//	web-2 (10.0.0.2, rack r2, zone a): web "web-2" tags v1,us port 8080, check web-2-http warning
//	db-1  (10.0.0.3, rack r1):         db  "db-1"  no tags, address 10.0.1.3, check db-1 critical
func populate(t *testing.T, ta *testAPI) {
	t.Helper()
	regs := []*api.CatalogRegistration{
		{
			Node: "web-1", Address: "10.0.0.1", ID: "11111111-1111-4111-8111-111111111111",
			TaggedAddresses: map[string]string{"lan": "10.0.0.1"},
			NodeMeta:        map[string]string{"rack": "r1", "zone": "a"},
			Service: &api.AgentService{ID: "web-1", Service: "web", Tags: []string{"v1", "eu"}, Port: 80,
				Meta: map[string]string{"version": "1"},
				TaggedAddresses: map[string]api.ServiceAddress{
					"lan": {Address: "10.0.0.1", Port: 80}}},
			Checks: api.HealthChecks{
				{CheckID: "web-1-http", Name: "web http", Status: api.HealthPassing, ServiceID: "web-1", Type: "http",
					Definition: api.HealthCheckDefinition{HTTP: "http://10.0.0.1/health"}},
				{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: api.HealthPassing, Node: "web-1"},
			},
		},
		{
			Node: "web-2", Address: "10.0.0.2", NodeMeta: map[string]string{"rack": "r2", "zone": "a"},
			Service: &api.AgentService{ID: "web-2", Service: "web", Tags: []string{"v1", "us"}, Port: 8080},
			Check:   &api.AgentCheck{CheckID: "web-2-http", Name: "web http", Status: api.HealthWarning, ServiceID: "web-2"},
		},
		{
			Node: "db-1", Address: "10.0.0.3", NodeMeta: map[string]string{"rack": "r1"},
			Service: &api.AgentService{ID: "db-1", Service: "db", Port: 5432, Address: "10.0.1.3"},
			Check:   &api.AgentCheck{CheckID: "db-1", Name: "db", Status: api.HealthCritical, ServiceID: "db-1"},
		},
	}
	for _, r := range regs {
		if _, err := ta.client.Catalog().Register(r, nil); err != nil {
			t.Fatalf("registering %s: %v", r.Node, err)
		}
	}
}

func TestCatalogRegisterAndReadWithOfficialClient(t *testing.T) {
	ta := newTestAPI(t)
	populate(t, ta)
	cat := ta.client.Catalog()

	dcs, err := cat.Datacenters()
	if err != nil || !reflect.DeepEqual(dcs, []string{testDC}) {
		t.Errorf("Datacenters = %v, %v", dcs, err)
	}

	nodes, meta, err := cat.Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	if !reflect.DeepEqual(names, []string{"db-1", "web-1", "web-2"}) {
		t.Errorf("Nodes = %v", names)
	}
	if meta.LastIndex == 0 || !meta.KnownLeader {
		t.Errorf("Nodes meta = %+v", meta)
	}
	n := nodes[1]
	if n.ID != "11111111-1111-4111-8111-111111111111" || n.Address != "10.0.0.1" || n.Datacenter != testDC ||
		n.Meta["rack"] != "r1" || n.TaggedAddresses["lan"] != "10.0.0.1" || n.CreateIndex == 0 || n.ModifyIndex == 0 {
		t.Errorf("node web-1 = %+v", n)
	}

	svcs, _, err := cat.Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(svcs["web"])
	if want := map[string][]string{"web": {"eu", "us", "v1"}, "db": {}}; !reflect.DeepEqual(svcs, want) {
		t.Errorf("Services = %v, want %v", svcs, want)
	}

	inst, _, err := cat.Service("web", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst) != 2 {
		t.Fatalf("Service(web) = %d instances", len(inst))
	}
	w1 := inst[0]
	if w1.Node != "web-1" || w1.Address != "10.0.0.1" || w1.Datacenter != testDC || w1.ServiceID != "web-1" ||
		w1.ServiceName != "web" || w1.ServicePort != 80 || !reflect.DeepEqual(w1.ServiceTags, []string{"v1", "eu"}) ||
		w1.ServiceMeta["version"] != "1" || w1.NodeMeta["rack"] != "r1" || w1.ID != n.ID ||
		w1.ServiceWeights != (api.Weights{Passing: 1, Warning: 1}) ||
		w1.ServiceTaggedAddresses["lan"] != (api.ServiceAddress{Address: "10.0.0.1", Port: 80}) ||
		w1.CreateIndex == 0 || w1.ModifyIndex == 0 {
		t.Errorf("Service(web)[0] = %+v", w1)
	}

	db, _, err := cat.Service("db", "", nil)
	if err != nil || len(db) != 1 || db[0].ServiceAddress != "10.0.1.3" || db[0].ServiceTags == nil {
		t.Errorf("Service(db) = %+v, %v (ServiceTags must be [] not null)", db, err)
	}

	cn, _, err := cat.Node("web-1", nil)
	if err != nil || cn == nil || cn.Node == nil {
		t.Fatalf("Node(web-1) = %+v, %v", cn, err)
	}
	as := cn.Services["web-1"]
	if cn.Node.Node != "web-1" || len(cn.Services) != 1 || as == nil || as.Service != "web" || as.Port != 80 ||
		as.Datacenter != testDC || as.Weights != (api.AgentWeights{Passing: 1, Warning: 1}) {
		t.Errorf("Node(web-1) = %+v, service %+v", cn.Node, as)
	}
	if cn, _, err := cat.Node("nope", nil); err != nil || cn != nil {
		t.Errorf("Node(nope) = %+v, %v; want nil, nil", cn, err)
	}
}

func TestCatalogServiceFilters(t *testing.T) {
	ta := newTestAPI(t)
	populate(t, ta)
	tests := []struct {
		query string
		want  []string // node/serviceID
	}{
		{"", []string{"web-1/web-1", "web-2/web-2"}},
		{"?tag=v1", []string{"web-1/web-1", "web-2/web-2"}},
		{"?tag=eu", []string{"web-1/web-1"}},
		{"?tag=EU", []string{"web-1/web-1"}},
		{"?tag=v1&tag=us", []string{"web-2/web-2"}},
		{"?tag=eu&tag=us", []string{}},
		{"?tag=nope", []string{}},
		{"?node-meta=rack:r1", []string{"web-1/web-1"}},
		{"?node-meta=zone:a", []string{"web-1/web-1", "web-2/web-2"}},
		{"?node-meta=zone:a&node-meta=rack:r2", []string{"web-2/web-2"}},
		{"?node-meta=rack:r9", []string{}},
		{"?node-meta=zone:a&tag=eu", []string{"web-1/web-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := ta.get("/v1/catalog/service/web" + tc.query)
			var out []*api.CatalogService
			mustOK(t, r, &out)
			if out == nil {
				t.Fatalf("body %q: want [] not null", r.body)
			}
			got := []string{}
			for _, s := range out {
				got = append(got, s.Node+"/"+s.ServiceID)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	// The official client's multi-tag call ANDs too.
	out, _, err := ta.client.Catalog().ServiceMultipleTags("web", []string{"v1", "eu"}, nil)
	if err != nil || len(out) != 1 || out[0].Node != "web-1" {
		t.Errorf("ServiceMultipleTags(v1, eu) = %+v, %v", out, err)
	}

	// node-meta on /v1/catalog/nodes.
	nodes, _, err := ta.client.Catalog().Nodes(&api.QueryOptions{NodeMeta: map[string]string{"rack": "r1"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	if !reflect.DeepEqual(names, []string{"db-1", "web-1"}) {
		t.Errorf("Nodes(rack=r1) = %v", names)
	}
	r := ta.get("/v1/catalog/nodes?node-meta=rack:none")
	if r.code != http.StatusOK || r.String() != "[]" {
		t.Errorf("nodes with no match: %d %q, want 200 []", r.code, r.body)
	}
	for _, path := range []string{"/v1/catalog/nodes?node-meta=rack", "/v1/catalog/service/web?node-meta=:x",
		"/v1/health/service/web?node-meta=novalue"} {
		if r := ta.get(path); r.code != http.StatusBadRequest || !strings.Contains(r.String(), "node-meta") {
			t.Errorf("GET %s = %d %q, want 400 naming node-meta", path, r.code, r.body)
		}
	}
	// A value may contain colons.
	ta.register(&state.RegisterRequest{Node: "ipv6", Address: "::1", NodeMeta: map[string]string{"addr": "fe80::1"}})
	r = ta.get("/v1/catalog/nodes?node-meta=addr:fe80::1")
	var ns []*api.Node
	mustOK(t, r, &ns)
	if len(ns) != 1 || ns[0].Node != "ipv6" {
		t.Errorf("node-meta value with colons: %q", r.body)
	}
}

func TestCatalogDeregister(t *testing.T) {
	ta := newTestAPI(t)
	populate(t, ta)
	cat := ta.client.Catalog()

	if _, err := cat.Deregister(&api.CatalogDeregistration{Node: "web-1", CheckID: "web-1-http"}, nil); err != nil {
		t.Fatal(err)
	}
	checks, _, _ := ta.client.Health().Node("web-1", nil)
	if len(checks) != 1 || checks[0].CheckID != state.SerfCheckID {
		t.Errorf("checks of web-1 after deregistering web-1-http = %+v", checks)
	}

	if _, err := cat.Deregister(&api.CatalogDeregistration{Node: "web-1", ServiceID: "web-1"}, nil); err != nil {
		t.Fatal(err)
	}
	inst, _, _ := cat.Service("web", "", nil)
	if len(inst) != 1 || inst[0].Node != "web-2" {
		t.Errorf("web after deregistering web-1's instance = %+v", inst)
	}

	r := ta.put("/v1/catalog/deregister", `{"Node":"web-2"}`)
	if r.code != http.StatusOK || r.String() != "true" {
		t.Errorf("deregister node = %d %q, want 200 true", r.code, r.body)
	}
	if cn, _, _ := cat.Node("web-2", nil); cn != nil {
		t.Error("web-2 still registered")
	}
	if inst, _, _ := cat.Service("web", "", nil); len(inst) != 0 {
		t.Errorf("web instances after deregistering its nodes = %+v", inst)
	}
	// Absent things deregister without error, as in Consul.
	for _, body := range []string{`{"Node":"ghost"}`, `{"Node":"db-1","ServiceID":"nope"}`, `{"Node":"db-1","CheckID":"nope"}`} {
		if r := ta.put("/v1/catalog/deregister", body); r.code != http.StatusOK {
			t.Errorf("deregister %s = %d %q, want 200", body, r.code, r.body)
		}
	}
}

func TestCatalogRegisterReturnsTrue(t *testing.T) {
	ta := newTestAPI(t)
	r := ta.put("/v1/catalog/register", `{"Node":"n1","Address":"10.0.0.1","Service":{"Service":"web"}}`)
	if r.code != http.StatusOK || r.String() != "true" {
		t.Fatalf("register = %d %q, want 200 true", r.code, r.body)
	}
	// Consul's defaults: ID from the name, weights 1/1, [] tags, {} meta.
	_, sns, _ := ta.agent.store.ServiceNodes(nil, "web", "")
	if len(sns) != 1 {
		t.Fatalf("instances = %d", len(sns))
	}
	svc := sns[0].Service
	if svc.ID != "web" || svc.Weights != (state.Weights{Passing: 1, Warning: 1}) || svc.Tags == nil || svc.Meta == nil ||
		sns[0].Node.Datacenter != testDC {
		t.Errorf("stored service = %+v (node dc %q)", svc, sns[0].Node.Datacenter)
	}
	// A check sent with a service belongs to it unless it names a node.
	r = ta.put("/v1/catalog/register", `{"Node":"n1","Address":"10.0.0.1","Service":{"Service":"db","ID":"db-1"},
		"Check":{"Name":"db alive","Status":"passing"}}`)
	if r.code != http.StatusOK {
		t.Fatalf("register with check = %d %q", r.code, r.body)
	}
	_, checks, _ := ta.agent.store.NodeChecks(nil, "n1")
	if len(checks) != 1 || checks[0].CheckID != "db alive" || checks[0].ServiceID != "db-1" || checks[0].ServiceName != "db" {
		t.Errorf("checks = %+v", checks)
	}
	// PUT only.
	if r := ta.do(http.MethodPost, "/v1/catalog/register", strings.NewReader(`{}`)); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/catalog/register = %d, want 405", r.code)
	}
}
