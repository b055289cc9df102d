package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// registerWeb registers instance id of service svc on its own node, with a
// service check of status and the given tags, node and service metadata.
func registerWeb(ta *testAPI, node, addr, svc, id, status string, tags []string, nodeMeta, svcMeta map[string]string) {
	ta.t.Helper()
	ta.register(&state.RegisterRequest{Node: node, Address: addr, NodeMeta: nodeMeta,
		Service: &state.Service{ID: id, Service: svc, Port: 80, Tags: tags, Meta: svcMeta},
		Check:   &state.HealthCheck{CheckID: "check-" + id, Name: id, ServiceID: id, Status: status}})
}

// entryNodes are the nodes of an execution's answer, sorted.
func entryNodes(entries []api.ServiceEntry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Node.Node)
	}
	sort.Strings(out)
	return out
}

// executeWith executes a query with query parameters the official client
// has no option for.
func executeWith(ta *testAPI, name, query string) *api.PreparedQueryExecuteResponse {
	ta.t.Helper()
	var res api.PreparedQueryExecuteResponse
	mustOK(ta.t, ta.get("/v1/query/"+name+"/execute?"+query), &res)
	return &res
}

func statusCode(err error) int {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// The official client's whole cycle: create, read, list, update, execute,
// delete.
func TestPreparedQueryCRUDWithOfficialClient(t *testing.T) {
	ta := newTestAPI(t)
	pq := ta.client.PreparedQuery()
	registerWeb(ta, "n1", "10.0.0.1", "redis", "redis-1", state.HealthPassing, []string{"primary"}, nil, nil)

	def := &api.PreparedQueryDefinition{Name: "my-query", Token: "t0k3n",
		Service: api.ServiceQuery{Service: "redis", Tags: []string{"primary", "!experimental"},
			Failover: api.QueryFailoverOptions{NearestN: 3, Datacenters: []string{"dc1", "dc2"}},
			NodeMeta: map[string]string{}, ServiceMeta: map[string]string{}},
		DNS: api.QueryDNSOptions{TTL: "10s"}}
	id, _, err := pq.Create(def, nil)
	if err != nil || len(id) != 36 {
		t.Fatalf("create: %q %v", id, err)
	}

	got, meta, err := pq.Get(id, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("get: %v %v", got, err)
	}
	def.ID = id
	if !reflect.DeepEqual(got[0], def) {
		t.Errorf("read back:\n%+v\nwant\n%+v", got[0], def)
	}
	if meta.LastIndex == 0 {
		t.Error("get without X-Consul-Index")
	}
	if _, _, err := pq.Get("my-query", nil); statusCode(err) != http.StatusNotFound {
		t.Errorf("get by name: %v, want 404 (a query is read by ID, as in Consul)", err)
	}

	list, _, err := pq.List(nil)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("list: %v %v", list, err)
	}

	def.Service.Service, def.Name = "redis", "renamed"
	def.Service.Tags = []string{"primary"}
	if _, err := pq.Update(def, nil); err != nil {
		t.Fatalf("update: %v", err)
	}
	if got, _, _ := pq.Get(id, nil); got[0].Name != "renamed" || !slices.Equal(got[0].Service.Tags, []string{"primary"}) {
		t.Errorf("after update: %+v", got[0])
	}

	for _, name := range []string{id, "renamed"} {
		res, _, err := pq.Execute(name, nil)
		if err != nil {
			t.Fatalf("execute %s: %v", name, err)
		}
		if res.Service != "redis" || res.Datacenter != testDC || res.Failovers != 0 || res.DNS.TTL != "10s" ||
			!slices.Equal(entryNodes(res.Nodes), []string{"n1"}) {
			t.Errorf("execute %s: %+v", name, res)
		}
		if e := res.Nodes[0]; e.Service.ID != "redis-1" || e.Service.Port != 80 || e.Node.Address != "10.0.0.1" || len(e.Checks) != 1 {
			t.Errorf("the entry: %+v %+v %+v", e.Node, e.Service, e.Checks)
		}
	}

	if _, err := pq.Delete(id, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, _, err := pq.Get(id, nil); statusCode(err) != http.StatusNotFound || !strings.Contains(err.Error(), "Query not found") {
		t.Errorf("get after delete: %v, want 404 Query not found", err)
	}
	if _, _, err := pq.Execute("renamed", nil); statusCode(err) != http.StatusNotFound {
		t.Errorf("execute after delete: %v, want 404", err)
	}
	if _, err := pq.Delete(id, nil); statusCode(err) != http.StatusNotFound {
		t.Errorf("delete of a deleted query: %v, want 404", err)
	}
	def.ID = id
	if _, err := pq.Update(def, nil); statusCode(err) != http.StatusNotFound {
		t.Errorf("update of a deleted query: %v, want 404", err)
	}
	if list, _, err := pq.List(nil); err != nil || list == nil || len(list) != 0 {
		t.Errorf("empty list: %v %v, want []", list, err)
	}
}

func TestPreparedQueryExecuteFilters(t *testing.T) {
	ta := newTestAPI(t)
	pq := ta.client.PreparedQuery()
	registerWeb(ta, "n1", "10.0.0.1", "web", "w1", state.HealthPassing, []string{"primary"}, map[string]string{"rack": "a"}, map[string]string{"v": "2"})
	registerWeb(ta, "n2", "10.0.0.2", "web", "w2", state.HealthWarning, []string{"primary", "canary"}, map[string]string{"rack": "b"}, nil)
	registerWeb(ta, "n3", "10.0.0.3", "web", "w3", state.HealthCritical, []string{"primary"}, nil, nil)
	registerWeb(ta, "n4", "10.0.0.4", "web", "w4", state.HealthPassing, nil, map[string]string{"rack": "a"}, nil)

	execute := func(svc api.ServiceQuery, q *api.QueryOptions) []string {
		t.Helper()
		svc.Service = "web"
		id, _, err := pq.Create(&api.PreparedQueryDefinition{Service: svc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, _, err := pq.Execute(id, q)
		if err != nil {
			t.Fatal(err)
		}
		return entryNodes(res.Nodes)
	}
	for _, tc := range []struct {
		name string
		svc  api.ServiceQuery
		want []string
	}{
		{"warning counts as healthy, critical does not", api.ServiceQuery{}, []string{"n1", "n2", "n4"}},
		{"only passing", api.ServiceQuery{OnlyPassing: true}, []string{"n1", "n4"}},
		{"ignored check", api.ServiceQuery{IgnoreCheckIDs: []string{"check-w3"}}, []string{"n1", "n2", "n3", "n4"}},
		{"tags", api.ServiceQuery{Tags: []string{"PRIMARY"}}, []string{"n1", "n2"}},
		{"negated tag", api.ServiceQuery{Tags: []string{"primary", "!canary"}}, []string{"n1"}},
		{"node meta", api.ServiceQuery{NodeMeta: map[string]string{"rack": "a"}}, []string{"n1", "n4"}},
		{"service meta", api.ServiceQuery{ServiceMeta: map[string]string{"v": "2"}}, []string{"n1"}},
	} {
		if got := execute(tc.svc, nil); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	// Without near, the answer is shuffled.
	id, _, _ := pq.Create(&api.PreparedQueryDefinition{Service: api.ServiceQuery{Service: "web"}}, nil)
	// ?limit= applies after the shuffle: any one of them.
	if res := executeWith(ta, id, "limit=1"); len(res.Nodes) != 1 {
		t.Errorf("?limit=1: %v", entryNodes(res.Nodes))
	}
	first := ""
	shuffled := false
	for i := 0; i < 50 && !shuffled; i++ {
		res, _, err := pq.Execute(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res.Nodes[0].Node.Node
		}
		shuffled = res.Nodes[0].Node.Node != first
	}
	if !shuffled {
		t.Error("50 executions put the same instance first: not shuffled")
	}

	for _, bad := range []string{"?limit=-1", "?limit=x", "?connect", "?connect=true"} {
		if r := ta.get("/v1/query/" + id + "/execute" + bad); r.code != http.StatusBadRequest {
			t.Errorf("execute%s: %d %s, want 400", bad, r.code, r.body)
		}
	}
	if r := ta.get("/v1/query/nosuch/execute"); r.code != http.StatusNotFound || r.String() != "Query not found" {
		t.Errorf("execute of no query: %d %q", r.code, r.body)
	}
}

// ?near= and the query's Near sort by estimated round trip time, the near
// node itself first; ?near= wins over Near.
func TestPreparedQueryNear(t *testing.T) {
	ta := newTestAPI(t)
	ta.agent.registerSelf(t)
	pq := ta.client.PreparedQuery()
	for i, n := range []string{"n1", "n2", "n3"} {
		registerWeb(ta, n, fmt.Sprintf("10.0.0.%d", i+1), "web", "w"+n, state.HealthPassing, nil, nil, nil)
	}
	for node, x := range map[string]float64{testNode: 0, "n1": 0.040, "n2": 0.010, "n3": 0.020} {
		if _, err := ta.agent.Apply(state.CoordinateBatchUpdateType, state.Coordinates{{Node: node, Coord: statetest.CoordAt(x)}}); err != nil {
			t.Fatal(err)
		}
	}
	order := func(res *api.PreparedQueryExecuteResponse) []string {
		var out []string
		for _, e := range res.Nodes {
			out = append(out, e.Node.Node)
		}
		return out
	}
	id, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "near-agent", Service: api.ServiceQuery{Service: "web", Near: "_agent"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		res, _, err := pq.Execute(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := order(res); !slices.Equal(got, []string{"n2", "n3", "n1"}) {
			t.Fatalf("Near _agent: %v, want n2 n3 n1", got)
		}
		res, _, err = pq.Execute("near-agent", &api.QueryOptions{Near: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := order(res); !slices.Equal(got, []string{"n1", "n3", "n2"}) {
			t.Fatalf("?near=n1: %v, want n1 n3 n2", got)
		}
		if res := executeWith(ta, "near-agent", "near=n1&limit=2"); !slices.Equal(order(res), []string{"n1", "n3"}) {
			t.Fatalf("?near=n1&limit=2: %v", order(res))
		}
	}
	// _ip: the node whose address the caller has (X-Forwarded-For here).
	ipq, _, err := pq.Create(&api.PreparedQueryDefinition{Service: api.ServiceQuery{Service: "web", Near: "_ip"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, ta.ts.URL+"/v1/query/"+ipq+"/execute", nil)
	req.Header.Set("X-Forwarded-For", "10.0.0.3, 192.0.2.1")
	r := ta.send(req)
	var res api.PreparedQueryExecuteResponse
	mustOK(t, r, &res)
	if got := order(&res); !slices.Equal(got, []string{"n3", "n2", "n1"}) {
		t.Errorf("Near _ip from 10.0.0.3: %v, want n3 n2 n1", got)
	}
}

func TestPreparedQueryTemplates(t *testing.T) {
	ta := newTestAPI(t)
	pq := ta.client.PreparedQuery()
	registerWeb(ta, "n1", "10.0.0.1", "mysql-customer", "db1", state.HealthPassing, []string{"primary"}, nil, nil)
	registerWeb(ta, "n2", "10.0.0.2", "mysql-customer", "db2", state.HealthPassing, []string{"replica"}, nil, nil)
	registerWeb(ta, "n3", "10.0.0.3", "web", "web1", state.HealthPassing, nil, nil, nil)
	registerWeb(ta, "n4", "10.0.0.4", "geo-db-customer-primary", "static1", state.HealthPassing, nil, nil, nil)

	catchAll, _, err := pq.Create(&api.PreparedQueryDefinition{Template: api.QueryTemplate{Type: "name_prefix_match"},
		Service: api.ServiceQuery{Service: "${name.full}"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "geo-db",
		Template: api.QueryTemplate{Type: "name_prefix_match", Regexp: `^geo-db-(.*?)-([^\-]+?)$`},
		Service:  api.ServiceQuery{Service: "mysql-${match(1)}", Tags: []string{"${match(2)}"}},
		DNS:      api.QueryDNSOptions{TTL: "7s"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, service string
		nodes         []string
	}{
		{"web", "web", []string{"n3"}},                                // the catch-all
		{"geo-db-customer-primary", "mysql-customer", []string{"n1"}}, // the longer prefix
		{"geo-db-customer-replica", "mysql-customer", []string{"n2"}},
		{"geo-db-customer-standby", "mysql-customer", []string{}}, // no instance tagged standby
		{"geo-dbx", "mysql-", []string{}},                         // the regexp does not match
		{"nosuch", "nosuch", []string{}},                          // the catch-all, for a service that is not there
		{"geo-db-customer-primary.eu", "mysql-customer", []string{}},
		// The prefix matches whatever the case, the regexp is the user's.
		{"GEO-db-customer-primary", "mysql-", []string{}},
	} {
		res, _, err := pq.Execute(tc.name, nil)
		if err != nil {
			t.Errorf("execute %q: %v", tc.name, err)
			continue
		}
		if res.Service != tc.service || !slices.Equal(entryNodes(res.Nodes), tc.nodes) {
			t.Errorf("execute %q: service %q nodes %v, want %q %v", tc.name, res.Service, entryNodes(res.Nodes), tc.service, tc.nodes)
		}
	}

	// A static query's exact name wins over every template.
	if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "geo-db-customer-primary",
		Service: api.ServiceQuery{Service: "geo-db-customer-primary"}}, nil); err != nil {
		t.Fatal(err)
	}
	if res, _, err := pq.Execute("geo-db-customer-primary", nil); err != nil || !slices.Equal(entryNodes(res.Nodes), []string{"n4"}) {
		t.Errorf("the static query over the template: %+v %v", res, err)
	}

	// Explain renders the template for the name.
	r := ta.get("/v1/query/geo-db-orders-replica/explain")
	var explained struct{ Query api.PreparedQueryDefinition }
	mustOK(t, r, &explained)
	if q := explained.Query; q.Name != "geo-db" || q.Service.Service != "mysql-orders" || !slices.Equal(q.Service.Tags, []string{"replica"}) ||
		q.DNS.TTL != "7s" || q.Template.Type != "name_prefix_match" {
		t.Errorf("explained: %+v", q)
	}
	if r := ta.get("/v1/query/" + catchAll + "/execute"); r.code != http.StatusBadRequest || !strings.Contains(r.String(), "by name") {
		t.Errorf("a template executed by its ID: %d %s, want 400", r.code, r.body)
	}
	if r := ta.get("/v1/query/" + catchAll); r.code != http.StatusOK {
		t.Errorf("a template read by its ID: %d %s", r.code, r.body)
	}
}

func TestPreparedQueryBadInput(t *testing.T) {
	ta := newTestAPI(t)
	seed(t, ta)
	pq := ta.client.PreparedQuery()
	existing, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "taken", Service: api.ServiceQuery{Service: "web"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pq.Create(&api.PreparedQueryDefinition{Template: api.QueryTemplate{Type: "name_prefix_match"},
		Service: api.ServiceQuery{Service: "${name.full}"}}, nil); err != nil {
		t.Fatal(err)
	}
	tooLargeMeta := `{"k":"` + strings.Repeat("v", state.MaxPreparedQueryBytes) + `"}`
	tags := `"` + strings.Repeat(`t","`, state.MaxPreparedQueryTags) + `t"`
	for _, tc := range []struct {
		name, method, path, body string
		wantCode                 int
		wantMsg                  string
		reachesRaft              bool
	}{
		{"malformed", "POST", "/v1/query", `{"Service":`, 400, "Request decode failed", false},
		{"not JSON", "POST", "/v1/query", `query`, 400, "Request decode failed", false},
		{"trailing data", "POST", "/v1/query", `{"Service":{"Service":"web"}} {}`, 400, "Request decode failed", false},
		{"wrong type", "POST", "/v1/query", `{"Service":{"Service":"web","Tags":"primary"}}`, 400, "Request decode failed", false},
		{"null", "POST", "/v1/query", `null`, 400, "Must provide a Service name", false},
		{"no service", "POST", "/v1/query", `{"Name":"x"}`, 400, "Must provide a Service name", false},
		{"ID given", "POST", "/v1/query", `{"ID":"` + existing + `","Service":{"Service":"web"}}`, 400, "ID must be empty", false},
		{"negative NearestN", "POST", "/v1/query", `{"Service":{"Service":"web","Failover":{"NearestN":-1}}}`, 400, "Bad NearestN", false},
		{"bad TTL", "POST", "/v1/query", `{"Service":{"Service":"web"},"DNS":{"TTL":"soon"}}`, 400, "Bad DNS TTL", false},
		{"bad template type", "POST", "/v1/query", `{"Name":"t","Template":{"Type":"regexp"},"Service":{"Service":"web"}}`, 400, "Bad Template.Type", false},
		{"bad regexp", "POST", "/v1/query", `{"Name":"t","Template":{"Type":"name_prefix_match","Regexp":"^(t"},"Service":{"Service":"web"}}`, 400, "Bad Regexp", false},
		{"long regexp", "POST", "/v1/query", `{"Name":"t","Template":{"Type":"name_prefix_match","Regexp":"` +
			strings.Repeat("a", state.MaxPreparedQueryRegexpBytes+1) + `"},"Service":{"Service":"web"}}`, 400, "Bad Regexp", false},
		{"bad interpolation", "POST", "/v1/query", `{"Name":"t","Template":{"Type":"name_prefix_match"},"Service":{"Service":"${name.fullest}"}}`, 400, "unknown variable", false},
		{"unterminated interpolation", "POST", "/v1/query", `{"Name":"t","Template":{"Type":"name_prefix_match"},"Service":{"Service":"${name.full"}}`, 400, "unterminated", false},
		{"too many tags", "POST", "/v1/query", `{"Service":{"Service":"web","Tags":[` + tags + `]}}`, 400, "tags", false},
		{"too large a definition", "POST", "/v1/query", `{"Service":{"Service":"web","ServiceMeta":` + tooLargeMeta + `}}`, 400, "bytes encoded", false},
		{"hidden token", "POST", "/v1/query", `{"Token":"<hidden>","Service":{"Service":"web"}}`, 400, "hidden token", false},
		{"connect", "POST", "/v1/query", `{"Service":{"Service":"web","Connect":true}}`, 400, "Connect", false},
		{"peer", "POST", "/v1/query", `{"Service":{"Service":"web","Failover":{"Targets":[{"Peer":"p"}]}}}`, 400, "peering", false},
		// Only the state knows these: the FSM refuses them.
		{"duplicate name", "POST", "/v1/query", `{"Name":"TAKEN","Service":{"Service":"web"}}`, 400, "aliases an existing query name", true},
		{"name is an ID", "POST", "/v1/query", `{"Name":"` + existing + `","Service":{"Service":"web"}}`, 400, "aliases an existing query ID", true},
		{"second catch-all", "POST", "/v1/query", `{"Template":{"Type":"name_prefix_match"},"Service":{"Service":"web"}}`, 400, "empty name", true},
		{"unknown session", "POST", "/v1/query", `{"Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","Service":{"Service":"web"}}`, 400, "invalid session", true},
		{"update: malformed", "PUT", "/v1/query/" + existing, `{`, 400, "Request decode failed", false},
		{"update: bad regexp", "PUT", "/v1/query/" + existing, `{"Name":"taken","Template":{"Type":"name_prefix_match","Regexp":"("},"Service":{"Service":"web"}}`, 400, "Bad Regexp", false},
		{"update: not there", "PUT", "/v1/query/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", `{"Service":{"Service":"web"}}`, 404, "Query not found", false},
		{"delete: not there", "DELETE", "/v1/query/nosuch", ``, 404, "Query not found", false},
		{"body too large", "POST", "/v1/query", `{"Name":"` + strings.Repeat("n", MaxBodyBytes) + `"}`, 413, "too large", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, applies := ta.state(), ta.agent.applyCount()
			r := ta.do(tc.method, tc.path, strings.NewReader(tc.body))
			if r.code != tc.wantCode || !strings.Contains(r.String(), tc.wantMsg) {
				t.Errorf("%d %q, want %d with %q", r.code, r.body, tc.wantCode, tc.wantMsg)
			}
			if tc.reachesRaft {
				applies = ta.agent.applyCount()
			}
			ta.assertUnchanged(before, applies)
		})
	}
}

// List and get block until the queries change.
func TestPreparedQueryBlocking(t *testing.T) {
	ta := newTestAPI(t)
	pq := ta.client.PreparedQuery()
	id, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "a", Service: api.ServiceQuery{Service: "web"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := pq.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, getMeta, err := pq.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
	}
	listed, got := make(chan result, 1), make(chan result, 1)
	go func() {
		list, _, err := pq.List(&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		listed <- result{len(list), err}
	}()
	go func() {
		qs, _, err := pq.Get(id, &api.QueryOptions{WaitIndex: getMeta.LastIndex, WaitTime: 30 * time.Second})
		n := 0
		if err == nil && qs[0].Service.Service == "db" {
			n = 1
		}
		got <- result{n, err}
	}()
	waitInFlight(t, ta, 2)
	select {
	case r := <-listed:
		t.Fatalf("the list returned before any change: %+v", r)
	default:
	}
	if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "b", Service: api.ServiceQuery{Service: "web"}}, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-listed; r.err != nil || r.n != 2 {
		t.Errorf("the blocked list woke with %+v, want 2 queries", r)
	}
	if _, err := pq.Update(&api.PreparedQueryDefinition{ID: id, Name: "a", Service: api.ServiceQuery{Service: "db"}}, nil); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || r.n != 1 {
		t.Errorf("the blocked get woke with %+v, want the updated query", r)
	}
}

func TestPreparedQueryACLs(t *testing.T) {
	ta, fake, apply := newACLTestAPI(t)
	token := func(secret, rules string) {
		t.Helper()
		p := &acl.Policy{ID: acl.NewUUID(), Name: "p-" + secret, Rules: rules}
		apply(&state.ACLRequest{Op: state.ACLPolicySet, Policy: p})
		apply(&state.ACLRequest{Op: state.ACLTokenSet, Token: &acl.Token{AccessorID: acl.NewUUID(), SecretID: secret,
			Policies: []acl.PolicyLink{{ID: p.ID}}}})
	}
	token("geo-admin", `query_prefix "geo-" { policy = "write" }  service_prefix "" { policy = "read" }  node_prefix "" { policy = "read" }`)
	token("reader", `query_prefix "" { policy = "read" }  service "web" { policy = "read" }  node "n1" { policy = "read" }`)
	token("nobody", ``)
	registerWeb(ta, "n1", "10.0.0.1", "web", "w1", state.HealthPassing, nil, nil, nil)
	registerWeb(ta, "n2", "10.0.0.2", "web", "w2", state.HealthPassing, nil, nil, nil)
	registerWeb(ta, "n3", "10.0.0.3", "db", "d1", state.HealthPassing, nil, nil, nil)

	as := func(secret, method, path, body string) response {
		t.Helper()
		req, err := http.NewRequest(method, ta.ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Consul-Token", secret)
		return ta.send(req)
	}
	create := func(secret, body string) (string, int) {
		t.Helper()
		r := as(secret, http.MethodPost, "/v1/query", body)
		var out struct{ ID string }
		if r.code == http.StatusOK {
			mustOK(t, r, &out)
		}
		return out.ID, r.code
	}

	// Writes: query:write on the name; a static query without one needs
	// nothing; the catch-all template needs write on every name.
	before, applies := ta.state(), fake.applyCount()
	if _, code := create("reader", `{"Name":"geo-web","Service":{"Service":"web"}}`); code != http.StatusForbidden {
		t.Errorf("create with query:read only: %d, want 403", code)
	}
	if _, code := create("geo-admin", `{"Template":{"Type":"name_prefix_match"},"Service":{"Service":"${name.full}"}}`); code != http.StatusForbidden {
		t.Errorf("a catch-all template with write on geo- only: %d, want 403", code)
	}
	ta.assertUnchanged(before, applies)
	geo, code := create("geo-admin", `{"Name":"geo-web","Service":{"Service":"web"}}`)
	if code != http.StatusOK {
		t.Fatalf("create with query:write: %d", code)
	}
	unnamed, code := create("nobody", `{"Service":{"Service":"web"}}`)
	if code != http.StatusOK {
		t.Fatalf("an unnamed query without permissions: %d", code)
	}
	captured, code := create("root", `{"Name":"captured","Token":"root","Service":{"Service":"db"}}`)
	if code != http.StatusOK {
		t.Fatalf("a query capturing a token: %d", code)
	}
	if r := as("geo-admin", http.MethodPut, "/v1/query/"+geo, `{"Name":"other","Service":{"Service":"web"}}`); r.code != http.StatusForbidden {
		t.Errorf("renaming out of the prefix it may write: %d, want 403", r.code)
	}
	if r := as("reader", http.MethodDelete, "/v1/query/"+geo, ""); r.code != http.StatusForbidden {
		t.Errorf("delete with query:read: %d, want 403", r.code)
	}

	// Reads: lists filtered; unnamed queries only for management; the
	// captured token shown to management only.
	var list []*api.PreparedQueryDefinition
	r := as("reader", http.MethodGet, "/v1/query", "")
	mustOK(t, r, &list)
	names := []string{}
	for _, q := range list {
		names = append(names, q.Name)
		if q.Name == "captured" && q.Token != state.RedactedToken {
			t.Errorf("the captured token shown to a reader: %q", q.Token)
		}
	}
	sort.Strings(names)
	if !slices.Equal(names, []string{"captured", "geo-web"}) || r.header.Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
		t.Errorf("reader's list: %v, filtered %q", names, r.header.Get("X-Consul-Results-Filtered-By-ACLs"))
	}
	mustOK(t, as("root", http.MethodGet, "/v1/query", ""), &list)
	if len(list) != 3 {
		t.Errorf("management's list: %d queries, want 3", len(list))
	}
	mustOK(t, as("root", http.MethodGet, "/v1/query/"+captured, ""), &list)
	if list[0].Token != "root" {
		t.Errorf("management reads the captured token as %q", list[0].Token)
	}
	if r := as("nobody", http.MethodGet, "/v1/query/"+geo, ""); r.code != http.StatusForbidden {
		t.Errorf("get of a named query without query:read: %d, want 403", r.code)
	}
	if r := as("nobody", http.MethodGet, "/v1/query/"+unnamed, ""); r.code != http.StatusOK {
		t.Errorf("get of an unnamed query by its ID: %d, want 200", r.code)
	}
	if r := as("nobody", http.MethodGet, "/v1/query/geo-web/explain", ""); r.code != http.StatusForbidden {
		t.Errorf("explain without query:read: %d, want 403", r.code)
	}
	if r := as("reader", http.MethodGet, "/v1/query/"+unnamed+"/explain", ""); r.code != http.StatusForbidden {
		t.Errorf("explain of an unnamed query without management: %d, want 403", r.code)
	}

	// Execution: no query permission needed; the instances filtered by the
	// caller's service and node read, or the captured token's.
	var res api.PreparedQueryExecuteResponse
	r = as("reader", http.MethodGet, "/v1/query/geo-web/execute", "")
	mustOK(t, r, &res)
	if got := entryNodes(res.Nodes); !slices.Equal(got, []string{"n1"}) || r.header.Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
		t.Errorf("reader's execution: %v, filtered %q", got, r.header.Get("X-Consul-Results-Filtered-By-ACLs"))
	}
	mustOK(t, as("nobody", http.MethodGet, "/v1/query/"+unnamed+"/execute", ""), &res)
	if len(res.Nodes) != 0 {
		t.Errorf("an execution by a token that may read nothing: %v", entryNodes(res.Nodes))
	}
	mustOK(t, as("nobody", http.MethodGet, "/v1/query/captured/execute", ""), &res)
	if got := entryNodes(res.Nodes); !slices.Equal(got, []string{"n3"}) {
		t.Errorf("an execution with the captured management token: %v, want n3", got)
	}

	// A captured token that no longer resolves: the execution is refused.
	dangling, code := create("root", `{"Name":"dangling","Token":"gone","Service":{"Service":"db"}}`)
	if code != http.StatusOK || dangling == "" {
		t.Fatalf("create: %d", code)
	}
	if r := as("root", http.MethodGet, "/v1/query/dangling/execute", ""); r.code != http.StatusForbidden {
		t.Errorf("execution with a captured token that does not resolve: %d %s, want 403", r.code, r.body)
	}
}

// fedAgent is the fake agent of one datacenter among several: it knows
// the datacenters nearest first and reaches their servers' APIs directly.
func (a *fedAgent) WANCoordinates() map[string]state.Coordinates { return nil }

type fedAgent struct {
	*fakeAgent
	dc  string
	dcs []string
	// apis are the other datacenters' APIs; one not there has no path.
	apis map[string]http.Handler
	// server is ServerAPI: a server's API on a client agent, nil on a
	// server.
	server http.Handler

	mu    sync.Mutex
	asked []string // the datacenters DatacenterAPI was asked for
}

var (
	_ ServerForwarder = (*fedAgent)(nil)
	_ Federation      = (*fedAgent)(nil)
)

func (a *fedAgent) Datacenter() string      { return a.dc }
func (a *fedAgent) Datacenters() []string   { return a.dcs }
func (a *fedAgent) ServerAPI() http.Handler { return a.server }

func (a *fedAgent) DatacenterAPI(dc string) http.Handler {
	a.mu.Lock()
	a.asked = append(a.asked, dc)
	a.mu.Unlock()
	if h, ok := a.apis[dc]; ok {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "No path to datacenter", http.StatusInternalServerError)
	})
}

func (a *fedAgent) askedFor() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.asked)
}

// newDatacenter serves a fake agent of datacenter dc knowing dcs.
func newDatacenter(t *testing.T, dc string, dcs ...string) (*fedAgent, *testAPI) {
	t.Helper()
	fed := &fedAgent{fakeAgent: newFakeAgent(t), dc: dc, dcs: dcs, apis: map[string]http.Handler{}}
	return fed, serveTestAPI(t, fed.fakeAgent, fed)
}

// Failover: no healthy instance here, the query runs in the datacenters
// its Failover names, nearest first, until one has instances; the answer
// says where they came from and how many were tried. The other datacenters
// execute the definition sent, without failing over again.
func TestPreparedQueryFailover(t *testing.T) {
	dc1, api1 := newDatacenter(t, "dc1", "dc1", "dc2", "dc3", "dc4")
	dc2, api2 := newDatacenter(t, "dc2", "dc2", "dc1", "dc3", "dc4")
	_, api3 := newDatacenter(t, "dc3", "dc3", "dc1", "dc2", "dc4")
	dc1.apis = map[string]http.Handler{"dc2": api2.srv.Handler(), "dc3": api3.srv.Handler()} // dc4 is unreachable
	dc2.apis = map[string]http.Handler{"dc3": api3.srv.Handler()}
	registerWeb(api1, "n1", "10.1.0.1", "web", "w1", state.HealthCritical, []string{"v2"}, nil, nil)
	registerWeb(api2, "n2", "10.2.0.1", "web", "w2", state.HealthPassing, []string{"v1"}, nil, nil)
	registerWeb(api3, "n3", "10.3.0.1", "web", "w3", state.HealthPassing, []string{"v2"}, nil, nil)
	registerWeb(api3, "n4", "10.3.0.2", "web", "w4", state.HealthPassing, []string{"v2"}, nil, nil)
	pq := api1.client.PreparedQuery()

	for _, tc := range []struct {
		name      string
		def       api.PreparedQueryDefinition
		wantDC    string
		wantNodes []string
		failovers int
	}{
		{"nearest", api.PreparedQueryDefinition{Service: api.ServiceQuery{Service: "web",
			Failover: api.QueryFailoverOptions{NearestN: 1}}}, "dc2", []string{"n2"}, 1},
		// The template is rendered here and sent: v2 only in dc3.
		{"template rendered before it is sent", api.PreparedQueryDefinition{Name: "tagged-",
			Template: api.QueryTemplate{Type: "name_prefix_match"},
			Service: api.ServiceQuery{Service: "web", Tags: []string{"${name.suffix}"},
				Failover: api.QueryFailoverOptions{NearestN: 3}}}, "dc3", []string{"n3", "n4"}, 2},
		// dc2 tried by NearestN is not tried again; dc9 is unknown; dc4
		// fails and is passed over, counted.
		{"explicit list", api.PreparedQueryDefinition{Name: "explicit", Service: api.ServiceQuery{Service: "web", Tags: []string{"v2"},
			Failover: api.QueryFailoverOptions{NearestN: 1, Datacenters: []string{"dc9", "dc1", "dc4", "dc2", "dc3"}}}}, "dc3", []string{"n3", "n4"}, 3},
		{"targets", api.PreparedQueryDefinition{Name: "targets", Service: api.ServiceQuery{Service: "web",
			Failover: api.QueryFailoverOptions{Targets: []api.QueryFailoverTarget{{Datacenter: "dc3"}, {Datacenter: "dc2"}}}}}, "dc3", []string{"n3", "n4"}, 1},
		{"nowhere", api.PreparedQueryDefinition{Name: "nowhere", Service: api.ServiceQuery{Service: "web", Tags: []string{"v9"},
			Failover: api.QueryFailoverOptions{NearestN: 2}}}, "dc3", []string{}, 2},
		{"no failover", api.PreparedQueryDefinition{Name: "local", Service: api.ServiceQuery{Service: "web"}}, "dc1", []string{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, _, err := pq.Create(&tc.def, nil)
			if err != nil {
				t.Fatal(err)
			}
			name := id
			if tc.def.Name == "tagged-" {
				name = "tagged-v2"
			}
			res, _, err := pq.Execute(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Datacenter != tc.wantDC || res.Failovers != tc.failovers || !slices.Equal(entryNodes(res.Nodes), tc.wantNodes) {
				t.Errorf("answer from %s after %d failovers: %v; want %s, %d, %v", res.Datacenter, res.Failovers,
					entryNodes(res.Nodes), tc.wantDC, tc.failovers, tc.wantNodes)
			}
			for _, e := range res.Nodes {
				if e.Service.Datacenter != tc.wantDC {
					t.Errorf("an entry's service says datacenter %q", e.Service.Datacenter)
				}
			}
		})
	}
	if asked := dc2.askedFor(); len(asked) != 0 {
		t.Errorf("dc2 failed over further, to %v", asked)
	}
	if slices.Contains(dc1.askedFor(), "dc9") || slices.Contains(dc1.askedFor(), "dc1") {
		t.Errorf("dc1 tried an unknown datacenter or itself: %v", dc1.askedFor())
	}

	// ?limit= applies in the other datacenter.
	if res := executeWith(api1, "explicit", "limit=1"); len(res.Nodes) != 1 || res.Datacenter != "dc3" {
		t.Errorf("?limit=1 through failover: %+v", res)
	}

	// DNS's way in: the same answer; a query of another datacenter is
	// executed there.
	dnsRes, err := api1.srv.ExecutePreparedQuery(context.Background(), "explicit", "")
	if err != nil || dnsRes.Datacenter != "dc3" || dnsRes.Failovers != 3 || len(dnsRes.Nodes) != 2 {
		t.Fatalf("ExecutePreparedQuery: %+v %v", dnsRes, err)
	}
	if sn := dnsRes.Nodes[0]; sn.Service.Node != sn.Node.Node || sn.Service.Port != 80 {
		t.Errorf("a failover instance read back: %+v on %+v", sn.Service, sn.Node)
	}
	if _, _, err := api2.client.PreparedQuery().Create(&api.PreparedQueryDefinition{Name: "in-dc2",
		Service: api.ServiceQuery{Service: "web"}}, nil); err != nil {
		t.Fatal(err)
	}
	dnsRes, err = api1.srv.ExecutePreparedQuery(context.Background(), "in-dc2", "dc2")
	if err != nil || dnsRes.Datacenter != "dc2" || len(dnsRes.Nodes) != 1 || dnsRes.Nodes[0].Node.Node != "n2" {
		t.Errorf("ExecutePreparedQuery in dc2: %+v %v", dnsRes, err)
	}
	if _, err := api1.srv.ExecutePreparedQuery(context.Background(), "nosuch", "dc2"); !errors.Is(err, state.ErrQueryNotFound) {
		t.Errorf("a query dc2 does not have: %v, want ErrQueryNotFound", err)
	}
	if _, err := api1.srv.ExecutePreparedQuery(context.Background(), "in-dc2", "dc4"); err == nil {
		t.Error("an unreachable datacenter answered")
	}
	if _, err := api1.srv.ExecutePreparedQuery(context.Background(), "nosuch", ""); !errors.Is(err, state.ErrQueryNotFound) {
		t.Errorf("a query that is not there: %v, want ErrQueryNotFound", err)
	}
}

// A client agent's replica holds queries without their captured tokens:
// it has a server answer the reads that show definitions, and execute a
// query that captured a token; it executes the others itself.
func TestPreparedQueryOnClientAgent(t *testing.T) {
	server, serverAPI := newDatacenter(t, "dc1", "dc1")
	client := &fedAgent{fakeAgent: newFakeAgent(t), dc: "dc1", dcs: []string{"dc1"}, server: serverAPI.srv.Handler()}
	clientAPI := serveTestAPI(t, client.fakeAgent, client)
	for _, ta := range []*testAPI{serverAPI, clientAPI} {
		registerWeb(ta, "n1", "10.0.0.1", "web", "w1", state.HealthPassing, nil, nil, nil)
	}
	both := func(op string, q *state.PreparedQuery) {
		t.Helper()
		for i, a := range []*fedAgent{server, client} {
			c := *q
			if i == 1 && c.Token != "" {
				c.Token = state.RedactedToken
			}
			if _, err := a.Apply(state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: op, Query: &c}); err != nil {
				t.Fatal(err)
			}
		}
	}
	const capturedID, plainID = "8f246b77-f3e1-ff88-5b48-8ec93abf3e05", "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
	both(state.PreparedQueryCreate, &state.PreparedQuery{ID: capturedID, Name: "captured", Token: "secret",
		Service: state.ServiceQuery{Service: "web"}})
	both(state.PreparedQueryCreate, &state.PreparedQuery{ID: plainID, Name: "plain", Service: state.ServiceQuery{Service: "web"}})

	list, _, err := clientAPI.client.PreparedQuery().Get(capturedID, nil)
	if err != nil || len(list) != 1 || list[0].Token != "secret" {
		t.Errorf("a read through the client agent: %+v %v, want the server's (with ACLs off, the token shown)", list, err)
	}
	if r := clientAPI.get("/v1/query/captured/explain"); !strings.Contains(r.String(), `"Token":"secret"`) {
		t.Errorf("explain through the client agent: %s", r.body)
	}
	// An instance only the server's store has tells whose execution the
	// answer is.
	registerWeb(serverAPI, "n9", "10.0.0.9", "web", "w9", state.HealthPassing, nil, nil, nil)
	res, _, err := clientAPI.client.PreparedQuery().Execute("captured", &api.QueryOptions{Near: "_agent"})
	if err != nil || !slices.Equal(entryNodes(res.Nodes), []string{"n1", "n9"}) {
		t.Fatalf("a query with a captured token executed through the client agent: %+v %v, want the server's answer", res, err)
	}
	// A query without a token is executed by the client agent itself:
	// deleted on the server only, it still answers there.
	if _, err := server.Apply(state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryDelete,
		Query: &state.PreparedQuery{ID: plainID}}); err != nil {
		t.Fatal(err)
	}
	if res, _, err := clientAPI.client.PreparedQuery().Execute("plain", nil); err != nil || !slices.Equal(entryNodes(res.Nodes), []string{"n1"}) {
		t.Errorf("the client agent's own execution: %+v %v", res, err)
	}
	if _, err := server.Apply(state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryDelete,
		Query: &state.PreparedQuery{ID: capturedID}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := clientAPI.client.PreparedQuery().Execute("captured", nil); statusCode(err) != http.StatusNotFound {
		t.Errorf("the server's answer passed on: %v, want its 404", err)
	}
}

func TestFailoverDatacenters(t *testing.T) {
	known := []string{"dc1", "dc3", "dc2", "dc4"} // nearest first
	for _, tc := range []struct {
		fo   state.QueryFailoverOptions
		want []string
	}{
		{state.QueryFailoverOptions{}, nil},
		{state.QueryFailoverOptions{NearestN: 2}, []string{"dc3", "dc2"}},
		{state.QueryFailoverOptions{NearestN: 9}, []string{"dc3", "dc2", "dc4"}},
		{state.QueryFailoverOptions{NearestN: 1, Datacenters: []string{"dc4", "dc3", "dc1", "dc5", "dc4"}}, []string{"dc3", "dc4"}},
		{state.QueryFailoverOptions{Targets: []state.QueryFailoverTarget{{Datacenter: "dc4"}, {Datacenter: "dc9"}, {Datacenter: "dc2"}}},
			[]string{"dc4", "dc2"}},
	} {
		if got := failoverDatacenters(tc.fo, "dc1", known); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.fo, got, tc.want)
		}
	}
}
