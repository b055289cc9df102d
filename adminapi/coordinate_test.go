package adminapi

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/coordinate"
)

// registerNodes puts nodes in the catalog, each with a service web and a
// passing check on it.
func registerNodes(t *testing.T, ta *testAPI, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		ta.register(&state.RegisterRequest{Node: n, Address: "10.0.0.1",
			Service: &state.Service{ID: "web", Service: "web", Port: 80, Tags: []string{}, Meta: map[string]string{}},
			Check:   &state.HealthCheck{CheckID: "web", Name: "web", ServiceID: "web", Status: state.HealthPassing}})
	}
}

func updateCoord(t *testing.T, ta *testAPI, node string, c *coordinate.Coordinate) {
	t.Helper()
	if _, err := ta.client.Coordinate().Update(&api.CoordinateEntry{Node: node, Coord: c}, nil); err != nil {
		t.Fatalf("Coordinate().Update(%s): %v", node, err)
	}
}

func coordNodes(entries []*api.CoordinateEntry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Node+"@"+e.Segment)
	}
	return out
}

func TestCoordinateUpdateAndReadWithOfficialClient(t *testing.T) {
	ta := newTestAPI(t)
	ta.agent.registerSelf(t)
	// The agent is a server: it carries the consul service.
	ta.register(&state.RegisterRequest{Node: testNode, Address: testNodeAddr, SkipNodeUpdate: true,
		Service: &state.Service{ID: "consul", Service: "consul", Port: 8300}})
	registerNodes(t, ta, "n1", "n2")
	co := ta.client.Coordinate()

	entries, meta, err := co.Nodes(nil)
	if err != nil || len(entries) != 0 {
		t.Fatalf("Nodes before any update: %v, %v (want none)", entries, err)
	}
	if _, _, err := co.Node("n1", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Node without a coordinate: %v, want a 404", err)
	}

	updateCoord(t, ta, "n2", statetest.CoordAt(0.002))
	updateCoord(t, ta, "N1", statetest.CoordAt(0.001)) // node names are case-insensitive
	updateCoord(t, ta, testNode, statetest.CoordAt(0))
	// Consul takes an update for a node it does not know, and drops it.
	updateCoord(t, ta, "ghost", statetest.CoordAt(0.5))

	entries, meta2, err := co.Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := coordNodes(entries), []string{testNode + "@", "n1@", "n2@"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Nodes = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(entries[1].Coord, statetest.CoordAt(0.001)) {
		t.Errorf("n1's coordinate = %+v, want %+v", entries[1].Coord, statetest.CoordAt(0.001))
	}
	if meta2.LastIndex <= meta.LastIndex {
		t.Errorf("index %d after the updates, was %d", meta2.LastIndex, meta.LastIndex)
	}
	one, _, err := co.Node("n2", nil)
	if err != nil || len(one) != 1 || one[0].Node != "n2" || !reflect.DeepEqual(one[0].Coord, statetest.CoordAt(0.002)) {
		t.Errorf("Node(n2) = %+v, %v", one, err)
	}

	dcs, err := co.Datacenters()
	if err != nil || len(dcs) != 1 {
		t.Fatalf("Datacenters = %+v, %v", dcs, err)
	}
	if dcs[0].Datacenter != testDC || dcs[0].AreaID != "WAN" || len(dcs[0].Coordinates) != 1 ||
		dcs[0].Coordinates[0].Node != testNode+"."+testDC || !reflect.DeepEqual(dcs[0].Coordinates[0].Coord, statetest.CoordAt(0)) {
		t.Errorf("Datacenters = %+v, want the server %s.%s with its coordinate", dcs[0], testNode, testDC)
	}

	// ?segment= keeps one segment's: every coordinate is the default's.
	if r := ta.get("/v1/coordinate/nodes?segment=alpha"); r.code != http.StatusOK || r.String() != "[]" {
		t.Errorf("?segment=alpha: %d %s", r.code, r.body)
	}
	if r := ta.get("/v1/coordinate/node/n1?segment=alpha"); r.code != http.StatusNotFound {
		t.Errorf("node ?segment=alpha: %d %s, want 404", r.code, r.body)
	}

	// A blocking query wakes on an update.
	type result struct {
		entries []*api.CoordinateEntry
		meta    *api.QueryMeta
		err     error
	}
	done := make(chan result, 1)
	before := ta.inFlight()
	go func() {
		e, m, err := co.Nodes(&api.QueryOptions{WaitIndex: meta2.LastIndex, WaitTime: time.Minute})
		done <- result{e, m, err}
	}()
	waitInFlight(t, ta, before+1)
	updateCoord(t, ta, "n1", statetest.CoordAt(0.003))
	select {
	case r := <-done:
		if r.err != nil || r.meta.LastIndex <= meta2.LastIndex || len(r.entries) != 3 ||
			!reflect.DeepEqual(r.entries[1].Coord, statetest.CoordAt(0.003)) {
			t.Errorf("blocking Nodes = %+v, %+v, %v", r.entries, r.meta, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query did not wake")
	}

	// Deregistering a node deletes its coordinate.
	if _, err := ta.client.Catalog().Deregister(&api.CatalogDeregistration{Node: "n2"}, nil); err != nil {
		t.Fatal(err)
	}
	if entries, _, err := co.Nodes(nil); err != nil || !reflect.DeepEqual(coordNodes(entries), []string{testNode + "@", "n1@"}) {
		t.Errorf("Nodes after n2 left = %v, %v", coordNodes(entries), err)
	}
}

func TestCoordinateUpdateBadInput(t *testing.T) {
	vec := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("0.001,", n), ",") + "]" }
	coord := func(v string) string { return `{"Vec":` + v + `,"Error":1.5,"Adjustment":0,"Height":0.00001}` }
	valid := `{"Node":"n1","Coord":` + coord(vec(8)) + `}`
	runBadCases(t, "/v1/coordinate/update", []badCase{
		{"malformed", `{"Node":`, 400, "Request decode failed", false},
		{"not JSON", `hello`, 400, "Request decode failed", false},
		{"empty body", ``, 400, "Request decode failed", false},
		{"null body", `null`, 400, "missing node name", false},
		{"missing node", `{"Coord":` + coord(vec(8)) + `}`, 400, "missing node name", false},
		{"blank node", `{"Node":" ","Coord":` + coord(vec(8)) + `}`, 400, "missing node name", false},
		{"wrong type node", `{"Node":5,"Coord":` + coord(vec(8)) + `}`, 400, "Request decode failed", false},
		{"missing coordinate", `{"Node":"n1"}`, 400, "has no Coord", false},
		{"null coordinate", `{"Node":"n1","Coord":null}`, 400, "has no Coord", false},
		{"too few dimensions", `{"Node":"n1","Coord":` + coord(vec(3)) + `}`, 400, "3 dimensions, the cluster's coordinates have 8", false},
		{"too many dimensions", `{"Node":"n1","Coord":` + coord(vec(9)) + `}`, 400, "9 dimensions", false},
		{"no vector", `{"Node":"n1","Coord":{"Error":1.5}}`, 400, "0 dimensions", false},
		{"number out of range", `{"Node":"n1","Coord":` + coord("[1e400,0,0,0,0,0,0,0]") + `}`, 400, "Request decode failed", false},
		{"NaN spelled out", `{"Node":"n1","Coord":` + coord(`[NaN,0,0,0,0,0,0,0]`) + `}`, 400, "Request decode failed", false},
		{"string component", `{"Node":"n1","Coord":` + coord(`["0",0,0,0,0,0,0,0]`) + `}`, 400, "Request decode failed", false},
		{"trailing garbage", valid + ` x`, 400, "unexpected data after the JSON body", false},
	})
	// The store-level check behind the API's: numbers JSON cannot carry.
	for _, bad := range []float64{nan(), inf()} {
		c := statetest.CoordAt(0)
		c.Height = bad
		if err := state.ValidateCoordinate(&state.Coordinate{Node: "n1", Coord: c}); !errors.Is(err, state.ErrInvalidCoordinate) {
			t.Errorf("height %v: %v, want ErrInvalidCoordinate", bad, err)
		}
	}
	t.Run("other datacenter", func(t *testing.T) {
		ta := newTestAPI(t)
		seed(t, ta)
		before, applies := ta.state(), ta.agent.applyCount()
		if r := ta.put("/v1/coordinate/update?dc=dc9", valid); r.code != http.StatusInternalServerError ||
			!strings.Contains(r.String(), "No path to datacenter") {
			t.Errorf("?dc=dc9: %d %s", r.code, r.body)
		}
		ta.assertUnchanged(before, applies)
	})
	t.Run("GET", func(t *testing.T) {
		ta := newTestAPI(t)
		if r := ta.get("/v1/coordinate/update"); r.code != http.StatusMethodNotAllowed {
			t.Errorf("GET /v1/coordinate/update: %d, want 405", r.code)
		}
	})
}

func nan() float64 { z := 0.0; return z / z }
func inf() float64 { z := 0.0; return 1 / z }

// nearNames reads path and returns the order of the results' nodes.
func nearNames(t *testing.T, ta *testAPI, path string, nodeOf func(map[string]any) string) []string {
	t.Helper()
	var out []map[string]any
	mustOK(t, ta.get(path), &out)
	names := []string{}
	for _, e := range out {
		names = append(names, nodeOf(e))
	}
	return names
}

func TestNearSortsByEstimatedRTT(t *testing.T) {
	ta := newTestAPI(t)
	ta.agent.registerSelf(t)
	// Registered in name order; the coordinates put them in another.
	registerNodes(t, ta, "a-far", "b-none", "c-near", "d-mid", "e-none")
	updateCoord(t, ta, testNode, statetest.CoordAt(0))
	updateCoord(t, ta, "a-far", statetest.CoordAt(0.030))
	updateCoord(t, ta, "c-near", statetest.CoordAt(0.001))
	updateCoord(t, ta, "d-mid", statetest.CoordAt(0.010))

	field := func(name string) func(map[string]any) string {
		return func(e map[string]any) string { return e[name].(string) }
	}
	nested := func(e map[string]any) string { return e["Node"].(map[string]any)["Node"].(string) }
	reads := []struct {
		path   string
		nodeOf func(map[string]any) string
		all    bool // lists the agent's node too
	}{
		{"/v1/catalog/nodes", field("Node"), true},
		{"/v1/catalog/service/web", field("Node"), false},
		{"/v1/health/service/web", nested, false},
		{"/v1/health/checks/web", field("Node"), false},
		{"/v1/health/state/passing", field("Node"), true},
	}
	for _, rd := range reads {
		with := func(names ...string) []string {
			if rd.all {
				return names
			}
			return slicesWithout(names, testNode)
		}
		// Without ?near, by name; nodes without coordinates keep that order.
		if got, want := nearNames(t, ta, rd.path, rd.nodeOf), with("a-far", testNode, "b-none", "c-near", "d-mid", "e-none"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", rd.path, got, want)
		}
		if got, want := nearNames(t, ta, rd.path+"?near=_agent", rd.nodeOf), with(testNode, "c-near", "d-mid", "a-far", "b-none", "e-none"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s?near=_agent = %v, want %v", rd.path, got, want)
		}
		if got, want := nearNames(t, ta, rd.path+"?near=A-FAR", rd.nodeOf), with("a-far", "d-mid", "c-near", testNode, "b-none", "e-none"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s?near=A-FAR = %v, want %v", rd.path, got, want)
		}
		// A node without a coordinate, or unknown: Consul leaves the order.
		for _, near := range []string{"b-none", "nobody"} {
			if got, want := nearNames(t, ta, rd.path+"?near="+near, rd.nodeOf), with("a-far", testNode, "b-none", "c-near", "d-mid", "e-none"); !reflect.DeepEqual(got, want) {
				t.Errorf("%s?near=%s = %v, want %v", rd.path, near, got, want)
			}
		}
	}

	// The official client's Near option.
	nodes, _, err := ta.client.Catalog().Nodes(&api.QueryOptions{Near: "_agent"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	if want := []string{testNode, "c-near", "d-mid", "a-far", "b-none", "e-none"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Catalog().Nodes(Near: _agent) = %v, want %v", names, want)
	}
}

func slicesWithout(in []string, drop string) []string {
	out := []string{}
	for _, s := range in {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

func TestCoordinateACLs(t *testing.T) {
	ta, fake, apply := newACLTestAPI(t)
	policy := &acl.Policy{ID: acl.NewUUID(), Name: "coords",
		Rules: "node \"n1\" { policy = \"read\" }\nnode \"n2\" { policy = \"write\" }"}
	apply(&state.ACLRequest{Op: state.ACLPolicySet, Policy: policy})
	apply(&state.ACLRequest{Op: state.ACLTokenSet, Token: &acl.Token{AccessorID: acl.NewUUID(), SecretID: "ops",
		Policies: []acl.PolicyLink{{ID: policy.ID}}}})
	ta.agent.registerSelf(t)
	registerNodes(t, ta, "n1", "n2", "n3")
	for i, n := range []string{"n1", "n2", "n3"} {
		if _, err := fake.Apply(state.CoordinateBatchUpdateType, state.Coordinates{{Node: n, Coord: statetest.CoordAt(float64(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	as := func(token, method, path, body string) response {
		t.Helper()
		req, err := http.NewRequest(method, ta.ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Consul-Token", token)
		return ta.send(req)
	}

	r := as("ops", http.MethodGet, "/v1/coordinate/nodes", "")
	var entries []*api.CoordinateEntry
	mustOK(t, r, &entries)
	if got := coordNodes(entries); !reflect.DeepEqual(got, []string{"n1@", "n2@"}) || r.header.Get("X-Consul-Results-Filtered-By-ACLs") != "true" {
		t.Errorf("nodes with node:read on n1 and n2: %v, filtered header %q", got, r.header.Get("X-Consul-Results-Filtered-By-ACLs"))
	}
	if r := as("", http.MethodGet, "/v1/coordinate/nodes", ""); r.code != http.StatusOK || r.String() != "[]" {
		t.Errorf("anonymous nodes: %d %s, want []", r.code, r.body)
	}
	if r := as("ops", http.MethodGet, "/v1/coordinate/node/n1", ""); r.code != http.StatusOK {
		t.Errorf("node n1 with node:read: %d %s", r.code, r.body)
	}
	if r := as("ops", http.MethodGet, "/v1/coordinate/node/n3", ""); r.code != http.StatusForbidden {
		t.Errorf("node n3 without node:read: %d %s, want 403", r.code, r.body)
	}

	before, applies := ta.state(), fake.applyCount()
	body := func(node string) string {
		return `{"Node":"` + node + `","Coord":{"Vec":[0.5,0,0,0,0,0,0,0],"Error":1.5,"Height":0.00001}}`
	}
	for _, node := range []string{"n1", "n3"} { // read only, nothing
		if r := as("ops", http.MethodPut, "/v1/coordinate/update", body(node)); r.code != http.StatusForbidden {
			t.Errorf("update %s without node:write: %d %s, want 403", node, r.code, r.body)
		}
	}
	ta.assertUnchanged(before, applies)
	if r := as("ops", http.MethodPut, "/v1/coordinate/update", body("n2")); r.code != http.StatusOK {
		t.Errorf("update n2 with node:write: %d %s", r.code, r.body)
	}
	if _, coords, _ := fake.store.NodeCoordinates(nil, "n2"); len(coords) != 1 || coords[0].Coord.Vec[0] != 0.5 {
		t.Errorf("n2's coordinate after the update: %+v", coords)
	}
}
