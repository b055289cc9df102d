package state_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/serf/coordinate"
)

// importBase is a consistent set of rows: a node with a service, a check
// of each kind, a session bound to the node check holding a lock, and a
// coordinate.
func importBase() *state.Builder {
	b := state.NewBuilder()
	b.AddNode(&state.Node{ID: "1f0e", Node: "n1", Address: "10.0.0.1", CreateIndex: 2, ModifyIndex: 3})
	b.AddService(&state.Service{Node: "n1", ID: "web-1", Service: "web", Tags: []string{"v1"}, Port: 80, CreateIndex: 4, ModifyIndex: 4})
	b.AddCheck(&state.HealthCheck{Node: "n1", CheckID: "serfHealth", Status: state.HealthPassing, CreateIndex: 3, ModifyIndex: 3})
	b.AddCheck(&state.HealthCheck{Node: "n1", CheckID: "web", ServiceID: "web-1", Status: state.HealthCritical, CreateIndex: 5, ModifyIndex: 6})
	b.AddSession(&state.Session{ID: "s1", Node: "n1", NodeChecks: []string{"serfHealth"}, TTL: "30s", CreateIndex: 7, ModifyIndex: 7})
	b.AddKV(&state.DirEntry{Key: "lock", Value: []byte{0, 1}, Session: "s1", LockIndex: 1, Flags: 9, CreateIndex: 8, ModifyIndex: 8})
	b.AddCoordinate(&state.Coordinate{Node: "N1", Coord: coordinate.NewCoordinate(coordinate.DefaultConfig())})
	return b
}

func TestBuilder(t *testing.T) {
	b := importBase()
	if b.RaiseIndex("prepared-queries-of-another-kind", 99) {
		t.Error("RaiseIndex took a table the store does not have")
	}
	if !b.RaiseIndex("kvs", 12) {
		t.Error("RaiseIndex refused the KV table")
	}
	st, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if idx, e, _ := st.KVGet(nil, "lock"); idx != 12 || e == nil || e.Session != "s1" || e.CreateIndex != 8 || e.Flags != 9 {
		t.Errorf("KVGet = %d, %+v", idx, e)
	}
	if st.LastIndex() != 12 {
		t.Errorf("LastIndex = %d", st.LastIndex())
	}
	_, checks, _ := st.NodeChecks(nil, "n1")
	for _, c := range checks {
		if c.CheckID == "web" && (c.ServiceName != "web" || len(c.ServiceTags) != 1) {
			t.Errorf("the service check does not carry its service's name and tags: %+v", c)
		}
	}
	if _, coords, _ := st.Coordinates(nil); len(coords) != 1 || coords[0].Node != "n1" {
		t.Errorf("coordinates = %+v", coords)
	}
	// What it built is what a snapshot restores.
	var buf bytes.Buffer
	if err := st.Snapshot().Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := state.ReadSnapshot(&buf); err != nil {
		t.Fatalf("the built state does not read back: %v", err)
	}
}

func TestBuilderRefusesInconsistentRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(*state.Builder)
		want string
	}{
		{"node twice", func(b *state.Builder) { b.AddNode(&state.Node{Node: "N1", Address: "x"}) }, `node "N1" appears twice`},
		{"node ID twice", func(b *state.Builder) { b.AddNode(&state.Node{ID: "1F0E", Node: "n2"}) }, `have the same ID`},
		{"service of no node", func(b *state.Builder) { b.AddService(&state.Service{Node: "n9", ID: "a", Service: "a"}) }, `node "n9", which does not exist`},
		{"service twice", func(b *state.Builder) { b.AddService(&state.Service{Node: "n1", ID: "web-1", Service: "web"}) }, "appears twice"},
		{"bad port", func(b *state.Builder) { b.AddService(&state.Service{Node: "n1", ID: "p", Service: "p", Port: 70000}) }, "port 70000"},
		{"check of no service", func(b *state.Builder) {
			b.AddCheck(&state.HealthCheck{Node: "n1", CheckID: "c", ServiceID: "nope", Status: state.HealthPassing})
		}, `of service "nope"`},
		{"check status", func(b *state.Builder) { b.AddCheck(&state.HealthCheck{Node: "n1", CheckID: "c"}) }, `status ""`},
		{"session on a critical check", func(b *state.Builder) {
			b.AddSession(&state.Session{ID: "s2", Node: "n1", ServiceChecks: []state.ServiceCheck{{ID: "web"}}})
		}, `"web", which is critical`},
		{"session TTL", func(b *state.Builder) { b.AddSession(&state.Session{ID: "s2", Node: "n1", TTL: "1s"}) }, "invalid Session TTL"},
		{"session behavior", func(b *state.Builder) { b.AddSession(&state.Session{ID: "s2", Node: "n1", Behavior: "explode"}) }, `behavior "explode"`},
		{"lock of no session", func(b *state.Builder) { b.AddKV(&state.DirEntry{Key: "k", Session: "s9"}) }, `session "s9", which does not exist`},
		{"key twice", func(b *state.Builder) { b.AddKV(&state.DirEntry{Key: "lock"}) }, `KV entry "lock" appears twice`},
		{"empty key", func(b *state.Builder) { b.AddKV(&state.DirEntry{}) }, "empty key"},
		{"coordinate of no node", func(b *state.Builder) {
			b.AddCoordinate(&state.Coordinate{Node: "n9", Coord: coordinate.NewCoordinate(coordinate.DefaultConfig())})
		}, `node "n9", which does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := importBase()
			tc.add(b)
			st, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), tc.want) || st != nil {
				t.Errorf("Build = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
