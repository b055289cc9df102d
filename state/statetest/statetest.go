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
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/serf/coordinate"
)

// Table names as a snapshot holds them.
const (
	TableNodes       = "nodes"
	TableServices    = "services"
	TableChecks      = "checks"
	TableSessions    = "sessions"
	TableKVs         = "kvs"
	TableCoordinates = "coordinates"
	TableQueries     = "prepared-queries"
	TableIndex       = "index"
)

// Tables returns every row of every table as its snapshot encoding, in
// index order: equal results mean equal contents.
func Tables(t testing.TB, s *state.Store) map[string][]json.RawMessage {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(Snapshot(t, s)))
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

// Snapshot is the store's whole contents in its snapshot encoding.
func Snapshot(t testing.TB, s *state.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().Write(&buf); err != nil {
		t.Fatalf("writing a snapshot: %v", err)
	}
	return buf.Bytes()
}

// AssertRestorable fails unless the store's snapshot reads back into the
// same contents: an accepted write must not leave the store in a state a
// follower or client replica restoring its snapshot would not have.
func AssertRestorable(t testing.TB, s *state.Store) {
	t.Helper()
	snap := Snapshot(t, s)
	back, err := state.ReadSnapshot(bytes.NewReader(snap))
	if err != nil {
		t.Fatalf("the store's snapshot does not read back: %v", err)
	}
	if again := Snapshot(t, back); !bytes.Equal(again, snap) {
		t.Fatalf("the store's snapshot restores other contents:\nstore    %s\nrestored %s", snap, again)
	}
}

// AssertUTF8 fails unless every string the store holds is valid UTF-8: its
// snapshot is JSON, which carries nothing else, so a replica restoring the
// snapshot would hold other keys and names than the replicas that applied
// the log.
func AssertUTF8(t testing.TB, s *state.Store) {
	t.Helper()
	_, nodes, _ := s.Nodes(nil)
	contents := []any{nodes}
	for _, n := range nodes {
		_, _, svcs, _ := s.NodeServices(nil, n.Node)
		_, checks, _ := s.NodeChecks(nil, n.Node)
		contents = append(contents, svcs, checks)
	}
	_, sessions, _ := s.Sessions(nil, "")
	_, kvs, _ := s.KVList(nil, "")
	_, coords, _ := s.Coordinates(nil)
	_, queries, _ := s.PreparedQueries(nil)
	contents = append(contents, sessions, kvs, coords, queries)
	if bad, ok := invalidUTF8(reflect.ValueOf(contents)); ok {
		t.Fatalf("the store holds %q, which is not UTF-8: its snapshot would restore it as %q", bad, strings.ToValidUTF8(bad, "\uFFFD"))
	}
}

// invalidUTF8 returns the first string in v, exported fields and map keys
// included, that is not valid UTF-8.
func invalidUTF8(v reflect.Value) (string, bool) {
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return v.String(), true
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return invalidUTF8(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				if s, ok := invalidUTF8(v.Field(i)); ok {
					return s, true
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false // bytes: base64 in JSON
		}
		for i := 0; i < v.Len(); i++ {
			if s, ok := invalidUTF8(v.Index(i)); ok {
				return s, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if s, ok := invalidUTF8(it.Key()); ok {
				return s, true
			}
			if s, ok := invalidUTF8(it.Value()); ok {
				return s, true
			}
		}
	}
	return "", false
}

// CoordAt is a network coordinate x seconds along the first axis: the
// round trip estimated between CoordAt(a) and CoordAt(b) is |a-b| plus
// both heights.
func CoordAt(x float64) *coordinate.Coordinate {
	c := coordinate.NewCoordinate(coordinate.DefaultConfig())
	c.Vec[0] = x
	return c
}
