// Package statetest helps the tests of packages built on the state store:
// it reads a store's whole contents through its snapshot (so a test can
// assert that a refused write changed nothing, or that two stores agree),
// and builds the registrations tests commonly need.
//
// It is imported by tests only, and imports nothing of beacon but state.
package statetest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"sort"
	"testing"

	"github.com/beacon-dns/beacon/state"
)

// Table names as a snapshot holds them.
const (
	TableNodes    = "nodes"
	TableServices = "services"
	TableChecks   = "checks"
	TableSessions = "sessions"
	TableKVs      = "kvs"
	TableIndex    = "index"
)

// Tables returns every row of every table as its snapshot encoding, in
// index order: equal results mean equal contents.
func Tables(t testing.TB, s *state.Store) map[string][]json.RawMessage {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().Write(&buf); err != nil {
		t.Fatalf("snapshot of the store: %v", err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 64<<20)
	out := map[string][]json.RawMessage{}
	for first := true; sc.Scan(); first = false {
		if first {
			continue // the header
		}
		var rec struct {
			T string
			R json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("decoding a snapshot line %q: %v", sc.Text(), err)
		}
		out[rec.T] = append(out[rec.T], rec.R)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the snapshot: %v", err)
	}
	return out
}

// Indexes returns the Raft index of the last write to each table.
func Indexes(t testing.TB, s *state.Store) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, raw := range Tables(t, s)[TableIndex] {
		var e struct {
			Key   string
			Value uint64
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("decoding an index row %s: %v", raw, err)
		}
		out[e.Key] = e.Value
	}
	return out
}

// MustRegister applies req at idx or fails the test.
func MustRegister(t testing.TB, s *state.Store, idx uint64, req *state.RegisterRequest) {
	t.Helper()
	if err := s.EnsureRegistration(idx, req); err != nil {
		t.Fatalf("EnsureRegistration(%d, %s): %v", idx, req.Node, err)
	}
}

// MustDeregister applies req at idx or fails the test.
func MustDeregister(t testing.TB, s *state.Store, idx uint64, req *state.DeregisterRequest) {
	t.Helper()
	if err := s.Deregister(idx, req); err != nil {
		t.Fatalf("Deregister(%d, %+v): %v", idx, req, err)
	}
}

// NodeReq registers a node of dc1 at addr.
func NodeReq(name, addr string) *state.RegisterRequest {
	return &state.RegisterRequest{Datacenter: "dc1", Node: name, Address: addr}
}

// SvcReq registers node at addr with a service and optional checks.
func SvcReq(node, addr, id, name string, port int, tags []string, checks ...*state.HealthCheck) *state.RegisterRequest {
	r := NodeReq(node, addr)
	r.Service = &state.Service{ID: id, Service: name, Port: port, Tags: tags}
	r.Checks = checks
	return r
}

// GetNode returns the node, nil when there is none.
func GetNode(t testing.TB, s *state.Store, name string) *state.Node {
	t.Helper()
	_, n, err := s.GetNode(nil, name)
	if err != nil {
		t.Fatalf("GetNode(%q): %v", name, err)
	}
	return n
}

// GetService returns a node's service by ID, nil when there is none.
func GetService(t testing.TB, s *state.Store, node, id string) *state.Service {
	t.Helper()
	_, n, svcs, err := s.NodeServices(nil, node)
	if err != nil {
		t.Fatalf("NodeServices(%q): %v", node, err)
	}
	if n == nil {
		return nil
	}
	for _, svc := range svcs {
		if svc.ID == id {
			return svc
		}
	}
	return nil
}

// GetCheck returns a node's check by ID, nil when there is none.
func GetCheck(t testing.TB, s *state.Store, node, id string) *state.HealthCheck {
	t.Helper()
	_, checks, err := s.NodeChecks(nil, node)
	if err != nil {
		t.Fatalf("NodeChecks(%q): %v", node, err)
	}
	for _, c := range checks {
		if c.CheckID == id {
			return c
		}
	}
	return nil
}

// InstanceKeys names instances "node/serviceID", sorted.
func InstanceKeys(sns []state.ServiceNode) []string {
	out := []string{}
	for _, sn := range sns {
		out = append(out, sn.Node.Node+"/"+sn.Service.ID)
	}
	sort.Strings(out)
	return out
}
