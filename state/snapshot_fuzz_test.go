package state_test

import (
	"bytes"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/serf/coordinate"
)

// FuzzReadSnapshot: any bytes are an error or a store; a store read from a
// snapshot answers reads without panicking, and its own snapshot reads back
// into the same contents (what a restore installs is what the next
// snapshot carries on).
func FuzzReadSnapshot(f *testing.F) {
	s := state.NewStore()
	reg := statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, []string{"v1"},
		&state.HealthCheck{CheckID: "web", Name: "web", ServiceID: "web-1", Status: state.HealthPassing})
	reg.NodeMeta = map[string]string{"rack": "r1"}
	statetest.MustRegister(f, s, 1, reg)
	statetest.MustRegister(f, s, 2, statetest.NodeReq("n2", "2001:db8::2"))
	const sess = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
	if err := s.SessionApply(3, &state.SessionRequest{Op: state.SessionCreate,
		Session: state.Session{ID: sess, Node: "n1", TTL: "30s"}}); err != nil {
		f.Fatal(err)
	}
	if _, err := s.KVSApply(4, &state.KVSRequest{Op: state.KVLock, DirEnt: state.DirEntry{Key: "lock", Value: []byte("x"), Session: sess}}); err != nil {
		f.Fatal(err)
	}
	if err := s.CoordinateBatchUpdate(5, state.Coordinates{{Node: "n1", Coord: coordinate.NewCoordinate(coordinate.DefaultConfig())}}); err != nil {
		f.Fatal(err)
	}
	for i, q := range []*state.PreparedQuery{
		{ID: "8f246b77-f3e1-ff88-5b48-8ec93abf3e05", Name: "web-primary", Session: sess, Token: "t",
			Service: state.ServiceQuery{Service: "web", Tags: []string{"v1", "!v2"}, NodeMeta: map[string]string{"rack": "r1"}},
			DNS:     state.QueryDNSOptions{TTL: "5s"}},
		{ID: "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", Name: "geo-",
			Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch, Regexp: `^geo-(\w+)$`},
			Service:  state.ServiceQuery{Service: "${match(1)}", Failover: state.QueryFailoverOptions{NearestN: 1}}},
	} {
		if err := s.PreparedQueryApply(uint64(6+i), &state.PreparedQueryRequest{Op: state.PreparedQueryCreate, Query: q}); err != nil {
			f.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := s.Snapshot().Write(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := state.ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		if st == nil {
			t.Fatal("ReadSnapshot returned no store and no error")
		}
		// Every read the API and DNS make, over whatever was restored.
		_, nodes, _ := st.Nodes(nil)
		for _, n := range nodes {
			st.NodeServices(nil, n.Node)
			st.NodeChecks(nil, n.Node)
			st.Sessions(nil, n.Node)
			st.NodesByAddress(n.Address)
		}
		_, services, _ := st.Services(nil)
		for name, tags := range services {
			st.ServiceNodes(nil, name, "")
			st.HealthyInstances(nil, name, "", true)
			for _, tag := range tags {
				st.ServiceNodes(nil, name, tag)
			}
			st.ServiceChecks(nil, name)
		}
		st.ChecksInState(nil, state.HealthAny)
		st.KVKeys(nil, "", "/")
		st.Sessions(nil, "")
		st.TableRows()
		st.LastIndex()
		_, queries, _ := st.PreparedQueries(nil)
		for _, q := range queries {
			st.PreparedQueryGet(nil, q.ID)
			for _, name := range []string{q.ID, q.Name, q.Name + "-web"} {
				if _, r, err := st.PreparedQueryResolve(name); err == nil {
					st.PreparedQueryInstances(nil, r)
				}
			}
		}
		_, coords, _ := st.Coordinates(nil)
		lan := st.LANCoordinates()
		for _, a := range coords {
			st.NodeCoordinates(nil, a.Node)
			for _, b := range coords {
				state.RTT(a.Coord, b.Coord)
				state.RTT(lan.Of(a.Node), b.Coord)
			}
		}

		var snap, again bytes.Buffer
		if err := st.Snapshot().Write(&snap); err != nil {
			t.Fatalf("writing the restored store's snapshot: %v", err)
		}
		back, err := state.ReadSnapshot(bytes.NewReader(snap.Bytes()))
		if err != nil {
			t.Fatalf("the restored store's snapshot does not read back: %v", err)
		}
		if err := back.Snapshot().Write(&again); err != nil {
			t.Fatal(err)
		}
		// Equal snapshots, equal contents: rows are written in index order.
		if !bytes.Equal(again.Bytes(), snap.Bytes()) {
			t.Fatalf("a second round trip changed the contents:\nfirst  %s\nsecond %s", snap.Bytes(), again.Bytes())
		}
	})
}
