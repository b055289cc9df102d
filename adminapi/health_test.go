package adminapi

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/consul/api"
)

func TestHealthServiceWithOfficialClient(t *testing.T) {
	ta := newTestAPI(t)
	populate(t, ta)

	entries, meta, err := ta.client.Health().Service("web", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if meta.LastIndex == 0 || !meta.KnownLeader {
		t.Errorf("meta = %+v", meta)
	}
	if len(entries) != 2 {
		t.Fatalf("entries = %d", len(entries))
	}
	e := entries[0]
	if e.Node == nil || e.Node.Node != "web-1" || e.Node.Address != "10.0.0.1" || e.Node.Meta["rack"] != "r1" {
		t.Errorf("entry node = %+v", e.Node)
	}
	if e.Service == nil || e.Service.ID != "web-1" || e.Service.Service != "web" || e.Service.Port != 80 ||
		!reflect.DeepEqual(e.Service.Tags, []string{"v1", "eu"}) || e.Service.Datacenter != testDC ||
		e.Service.Weights != (api.AgentWeights{Passing: 1, Warning: 1}) {
		t.Errorf("entry service = %+v", e.Service)
	}
	ids := map[string]*api.HealthCheck{}
	for _, c := range e.Checks {
		ids[c.CheckID] = c
	}
	hc := ids["web-1-http"]
	if len(e.Checks) != 2 || ids[state.SerfCheckID] == nil || hc == nil {
		t.Fatalf("entry checks = %+v", e.Checks)
	}
	if hc.Node != "web-1" || hc.Status != api.HealthPassing || hc.ServiceID != "web-1" || hc.ServiceName != "web" ||
		!reflect.DeepEqual(hc.ServiceTags, []string{"v1", "eu"}) || hc.Type != "http" ||
		hc.Definition.HTTP != "http://10.0.0.1/health" || hc.CreateIndex == 0 {
		t.Errorf("check = %+v", hc)
	}
	if got := e.Checks.AggregatedStatus(); got != api.HealthPassing {
		t.Errorf("aggregated status = %s", got)
	}

	// ?passing drops web-2 (warning); db (critical) is never passing.
	passing, _, err := ta.client.Health().Service("web", "", true, nil)
	if err != nil || len(passing) != 1 || passing[0].Service.ID != "web-1" {
		t.Errorf("passing web = %+v, %v", passing, err)
	}
	if db, _, _ := ta.client.Health().Service("db", "", true, nil); len(db) != 0 {
		t.Errorf("passing db = %+v, want none", db)
	}
	if db, _, _ := ta.client.Health().Service("db", "", false, nil); len(db) != 1 {
		t.Errorf("all db = %+v, want the critical instance too", db)
	}
}

func TestHealthServiceFilters(t *testing.T) {
	ta := newTestAPI(t)
	populate(t, ta)
	// web-3 has no checks at all: its Checks must be [] and it is passing.
	ta.register(&state.RegisterRequest{Node: "web-3", Address: "10.0.0.4",
		Service: &state.Service{ID: "web-3", Service: "web", Tags: []string{"eu"}}})

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"web-1/web-1", "web-2/web-2", "web-3/web-3"}},
		{"?passing", []string{"web-1/web-1", "web-3/web-3"}},
		{"?passing=true", []string{"web-1/web-1", "web-3/web-3"}},
		{"?passing=1", []string{"web-1/web-1", "web-3/web-3"}},
		{"?passing=false", []string{"web-1/web-1", "web-2/web-2", "web-3/web-3"}},
		{"?tag=eu", []string{"web-1/web-1", "web-3/web-3"}},
		{"?tag=v1&tag=us", []string{"web-2/web-2"}},
		{"?tag=eu&passing", []string{"web-1/web-1", "web-3/web-3"}},
		{"?tag=us&passing", []string{}},
		{"?node-meta=rack:r2", []string{"web-2/web-2"}},
		{"?node-meta=zone:a&passing", []string{"web-1/web-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := ta.get("/v1/health/service/web" + tc.query)
			var out []*api.ServiceEntry
			mustOK(t, r, &out)
			if out == nil {
				t.Fatalf("body %q: want [] not null", r.body)
			}
			got := []string{}
			for _, e := range out {
				got = append(got, e.Node.Node+"/"+e.Service.ID)
				if e.Checks == nil {
					t.Errorf("%s: Checks is null, want []", e.Service.ID)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHealthNodeChecksState(t *testing.T) {
	ta := newTestAPI(t)
	populate(t, ta)
	h := ta.client.Health()

	node, _, err := h.Node("web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := healthIDs(node); !reflect.DeepEqual(got, []string{"web-1/" + state.SerfCheckID, "web-1/web-1-http"}) {
		t.Errorf("Health().Node(web-1) = %v", got)
	}

	svcChecks, _, err := h.Checks("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := healthIDs(svcChecks); !reflect.DeepEqual(got, []string{"web-1/web-1-http", "web-2/web-2-http"}) {
		t.Errorf("Health().Checks(web) = %v", got)
	}

	tests := []struct {
		state string
		want  []string
	}{
		{api.HealthAny, []string{"db-1/db-1", "web-1/" + state.SerfCheckID, "web-1/web-1-http", "web-2/web-2-http"}},
		{api.HealthPassing, []string{"web-1/" + state.SerfCheckID, "web-1/web-1-http"}},
		{api.HealthWarning, []string{"web-2/web-2-http"}},
		{api.HealthCritical, []string{"db-1/db-1"}},
	}
	for _, tc := range tests {
		got, _, err := h.State(tc.state, nil)
		if err != nil {
			t.Fatalf("State(%s): %v", tc.state, err)
		}
		if ids := healthIDs(got); !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("State(%s) = %v, want %v", tc.state, ids, tc.want)
		}
	}
	for _, bad := range []string{"bogus", "Passing", "maintenance"} {
		if r := ta.get("/v1/health/state/" + bad); r.code != http.StatusBadRequest || len(r.body) == 0 {
			t.Errorf("state %s = %d %q, want 400 with a message", bad, r.code, r.body)
		}
	}
}

func healthIDs(checks api.HealthChecks) []string {
	out := []string{}
	for _, c := range checks {
		out = append(out, c.Node+"/"+c.CheckID)
	}
	return out
}
