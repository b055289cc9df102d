package state_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// The instances live in two tables of groups (by node, by service name)
// that every write keeps in step. This test applies random registrations,
// renames and deregistrations, with node and service names in several
// cases, and after each one checks every read against a plain map of the
// instances; that a snapshot taken before the write still shows the old
// contents (the groups are copied, not changed in place); and, now and
// then, that the store's snapshot restores the same reads.
func TestServiceGroupsFollowEveryWrite(t *testing.T) {
	nodes := []string{"n1", "N1", "n2", "node-3"}
	names := []string{"web", "Web", "api", "db", "svc", "\u017fvc"} // "ſvc": EqualFold to "svc", ToLower not
	ids := []string{"a", "b", "web", "c"}
	model := map[string]modelInstance{} // lowercased node "/" ID
	key := func(node, id string) string { return strings.ToLower(node) + "/" + id }

	rng := rand.New(rand.NewPCG(1, 2))
	s := state.NewStore()
	for idx := uint64(1); idx <= 600; idx++ {
		before := statetest.Snapshot(t, s)
		frozen := s.Snapshot()
		node, id := nodes[rng.IntN(len(nodes))], ids[rng.IntN(len(ids))]
		var op string
		switch r := rng.IntN(10); {
		case r < 7:
			name := names[rng.IntN(len(names))]
			op = fmt.Sprintf("register %s/%s as %s", node, id, name)
			statetest.MustRegister(t, s, idx, statetest.SvcReq(node, "10.0.0.1", id, name, 80+rng.IntN(3), nil))
			model[key(node, id)] = modelInstance{node, id, name}
		case r < 9:
			op = fmt.Sprintf("deregister %s/%s", node, id)
			statetest.MustDeregister(t, s, idx, &state.DeregisterRequest{Node: node, ServiceID: id})
			delete(model, key(node, id))
		default:
			op = "deregister node " + node
			statetest.MustDeregister(t, s, idx, &state.DeregisterRequest{Node: node})
			for k := range model {
				if strings.HasPrefix(k, strings.ToLower(node)+"/") {
					delete(model, k)
				}
			}
		}

		var old bytes.Buffer
		if err := frozen.Write(&old); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(old.Bytes(), before) {
			t.Fatalf("after %s, a snapshot taken before it shows other contents:\nbefore %s\nnow    %s", op, before, old.Bytes())
		}
		checkServiceReads(t, op, s, model, names, nodes)
		if idx%50 == 0 {
			statetest.AssertRestorable(t, s)
			back, err := state.ReadSnapshot(bytes.NewReader(statetest.Snapshot(t, s)))
			if err != nil {
				t.Fatal(err)
			}
			checkServiceReads(t, op+" (restored)", back, model, names, nodes)
		}
	}
}

// modelInstance is an instance as the test registered it.
type modelInstance struct{ node, id, name string }

// checkServiceReads compares the store's reads of services with model.
func checkServiceReads(t *testing.T, op string, s *state.Store, model map[string]modelInstance, names, nodes []string) {
	t.Helper()
	// The model's instances, as "node/id" keys by service name (any case).
	want := map[string][]string{}
	exact := map[string]bool{}
	for k, in := range model {
		want[strings.ToLower(in.name)] = append(want[strings.ToLower(in.name)], k)
		exact[in.name] = true
	}
	for _, name := range append(names, "WEB", "none") {
		w := want[strings.ToLower(name)]
		slices.Sort(w)
		_, sns, err := s.ServiceNodes(nil, name, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := lowerKeys(sns); !slices.Equal(got, w) {
			t.Fatalf("after %s, ServiceNodes(%q) = %v, want %v", op, name, got, w)
		}
		if got := lowerKeys(s.HealthyInstances(nil, name, "", false)); !slices.Equal(got, w) {
			t.Fatalf("after %s, HealthyInstances(%q) = %v, want %v", op, name, got, w)
		}
	}
	_, svcs, err := s.Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	var gotNames, wantNames []string
	for name := range svcs {
		gotNames = append(gotNames, name)
	}
	for name := range exact {
		wantNames = append(wantNames, name)
	}
	slices.Sort(gotNames)
	slices.Sort(wantNames)
	if !slices.Equal(gotNames, wantNames) {
		t.Fatalf("after %s, Services() = %v, want %v", op, gotNames, wantNames)
	}
	for _, node := range nodes {
		var w []string
		for k := range model {
			if strings.HasPrefix(k, strings.ToLower(node)+"/") {
				w = append(w, strings.TrimPrefix(k, strings.ToLower(node)+"/"))
			}
		}
		slices.Sort(w)
		_, n, list, err := s.NodeServices(nil, node)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, svc := range list {
			got = append(got, svc.ID)
		}
		if n != nil && !slices.Equal(got, w) { // sorted by ID, as a node's listing is
			t.Fatalf("after %s, NodeServices(%q) = %v, want %v", op, node, got, w)
		}
	}
	rows := 0
	for _, tr := range s.TableRows() {
		if tr.Table == "services" {
			rows = tr.Rows
		}
	}
	if rows != len(model) {
		t.Fatalf("after %s, TableRows counts %d services, want %d", op, rows, len(model))
	}
}

// lowerKeys names instances "node/ID" with the node lowercased, sorted.
func lowerKeys(sns []state.ServiceNode) []string {
	out := []string{}
	for _, sn := range sns {
		out = append(out, strings.ToLower(sn.Service.Node)+"/"+sn.Service.ID)
	}
	slices.Sort(out)
	return out
}
