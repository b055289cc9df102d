package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/coordinate"
)

func TestCoordinateBatcher(t *testing.T) {
	var b coordinateBatcher
	if got := b.take(); len(got) != 0 {
		t.Fatalf("empty batcher took %d batches", len(got))
	}
	// The latest update of a node wins, whatever the case of its name.
	for i := range coordinateUpdateMaxPending {
		if err := b.queue(state.Coordinates{{Node: fmt.Sprintf("n%04d", i), Coord: statetest.CoordAt(0)}}); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if err := b.queue(state.Coordinates{{Node: "N0007", Coord: statetest.CoordAt(0.5)}}); err != nil {
		t.Errorf("a newer update of a held node: %v", err)
	}
	// A new node beyond the limit is refused, and so is its whole command.
	err := b.queue(state.Coordinates{{Node: "n0001", Coord: statetest.CoordAt(0.25)}, {Node: "late", Coord: statetest.CoordAt(0)}})
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("an update beyond the limit: %v, want the rate limit", err)
	}
	// An invalid update refuses the command, as a bad request.
	err = b.queue(state.Coordinates{{Node: "n0002", Coord: statetest.CoordAt(0.25)}, {Node: "n0003", Coord: &coordinate.Coordinate{Vec: []float64{math.NaN()}}}})
	if !errors.Is(err, state.ErrInvalidCoordinate) || !errors.Is(err, state.ErrInvalidRegistration) {
		t.Errorf("an invalid update: %v, want ErrInvalidCoordinate", err)
	}
	batches := b.take()
	if len(batches) != coordinateUpdateMaxBatches {
		t.Fatalf("%d batches, want %d", len(batches), coordinateUpdateMaxBatches)
	}
	seen := map[string]*coordinate.Coordinate{}
	for _, batch := range batches {
		if len(batch) != coordinateUpdateBatchSize {
			t.Errorf("a batch of %d updates, want %d", len(batch), coordinateUpdateBatchSize)
		}
		for _, c := range batch {
			seen[strings.ToLower(c.Node)] = c.Coord
		}
	}
	if len(seen) != coordinateUpdateMaxPending || seen["n0007"].Vec[0] != 0.5 || seen["n0001"].Vec[0] != 0 || seen["n0002"].Vec[0] != 0 {
		t.Errorf("took %d nodes' updates (n0007 %v, n0001 %v, n0002 %v)", len(seen), seen["n0007"].Vec[0], seen["n0001"].Vec[0], seen["n0002"].Vec[0])
	}
	if got := b.take(); len(got) != 0 {
		t.Errorf("a second take found %d batches", len(got))
	}
}

func TestFSMAppliesCoordinateBatches(t *testing.T) {
	s := state.NewStore()
	f := NewFSM(s, nil)
	if resp := applyCmd(t, f, 1, state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1")); resp != nil {
		t.Fatal(resp)
	}
	if resp := applyCmd(t, f, 2, state.CoordinateBatchUpdateType, state.Coordinates{
		{Node: "n1", Coord: statetest.CoordAt(0.001)}, {Node: "ghost", Coord: statetest.CoordAt(0.002)}}); resp != nil {
		t.Fatalf("Apply(coordinates) = %v", resp)
	}
	if idx, cs, _ := s.Coordinates(nil); idx != 2 || len(cs) != 1 || cs[0].Node != "n1" || cs[0].Coord.Vec[0] != 0.001 {
		t.Fatalf("coordinates after Apply: %d %+v", idx, cs)
	}
	if f.AppliedIndex() != 2 {
		t.Errorf("applied index %d, want 2", f.AppliedIndex())
	}
	// A body that does not decode is refused and changes nothing.
	before := statetest.Snapshot(t, s)
	resp := f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand,
		Data: append([]byte{byte(state.CoordinateBatchUpdateType), encodingV1}, `{"Node":"n1"}`...)})
	if err, ok := resp.(error); !ok || !strings.Contains(err.Error(), "decoding coordinate batch update") {
		t.Errorf("Apply of a malformed batch = %v, want a decoding error", resp)
	}
	if after := statetest.Snapshot(t, s); !bytes.Equal(after, before) {
		t.Errorf("a refused batch changed the store:\n%s", after)
	}
	// A node's deregistration takes its coordinate.
	if resp := applyCmd(t, f, 4, state.DeregisterRequestType, &state.DeregisterRequest{Node: "n1"}); resp != nil {
		t.Fatal(resp)
	}
	if idx, cs, _ := s.Coordinates(nil); idx != 4 || len(cs) != 0 {
		t.Errorf("coordinates after n1 left: %d %+v", idx, cs)
	}
}

// coordinateEntries reads the log after index from and returns the
// coordinate batches committed there.
func coordinateEntries(t *testing.T, s *Server, from uint64) []state.Coordinates {
	t.Helper()
	var out []state.Coordinates
	for i := from + 1; i <= s.raft.LastIndex(); i++ {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			t.Fatalf("reading log entry %d: %v", i, err)
		}
		if l.Type != raft.LogCommand || state.MessageType(l.Data[0]) != state.CoordinateBatchUpdateType {
			continue
		}
		_, decode, err := decodeHeader(l.Data)
		if err != nil {
			t.Fatal(err)
		}
		var batch state.Coordinates
		if err := decode(&batch); err != nil {
			t.Fatal(err)
		}
		out = append(out, batch)
	}
	return out
}

// Agents' updates reach the leader one by one and are committed in a few
// batches: not an entry per update.
func TestServerBatchesCoordinateUpdates(t *testing.T) {
	store := state.NewStore()
	srv, _ := startServer(t, t.TempDir(), freeAddr(t), store)
	const nodes = 200
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < nodes; i += 8 {
				if _, err := srv.Apply(state.RegisterRequestType, statetest.NodeReq(fmt.Sprintf("n%03d", i), "10.0.0.1"), 10*time.Second); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	start := srv.raft.LastIndex()
	for i := range nodes {
		if _, err := srv.Apply(state.CoordinateBatchUpdateType,
			state.Coordinates{{Node: fmt.Sprintf("n%03d", i), Coord: statetest.CoordAt(float64(i) / 1000)}}, 5*time.Second); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	// An invalid update is refused as a bad request, not queued.
	_, err := srv.Apply(state.CoordinateBatchUpdateType,
		state.Coordinates{{Node: "n000", Coord: &coordinate.Coordinate{Vec: []float64{1}}}}, 5*time.Second)
	if !errors.Is(err, state.ErrInvalidRegistration) {
		t.Errorf("an update of the wrong dimensionality: %v, want ErrInvalidRegistration", err)
	}
	srv.flushCoordinates() // the period's flush may have taken some already
	batches := coordinateEntries(t, srv, start)
	total := 0
	for _, b := range batches {
		if len(b) > coordinateUpdateBatchSize {
			t.Errorf("a batch of %d updates, more than %d", len(b), coordinateUpdateBatchSize)
		}
		total += len(b)
	}
	// Two batches, three when the period's flush came in the middle.
	if len(batches) > 3 || total != nodes {
		t.Errorf("%d updates were committed in %d log entries; want %d in at most 3", total, len(batches), nodes)
	}
	_, cs, _ := store.Coordinates(nil)
	if len(cs) != nodes || cs[nodes-1].Node != fmt.Sprintf("n%03d", nodes-1) || cs[nodes-1].Coord.Vec[0] != float64(nodes-1)/1000 {
		t.Errorf("the store holds %d coordinates, want %d", len(cs), nodes)
	}
}

// An update sent to a follower is queued by the leader, committed with its
// next batch and replicated.
func TestClusterCoordinateUpdateThroughFollower(t *testing.T) {
	servers, stores := startCluster(t, 3)
	var leader, follower *Server
	var followerStore *state.Store
	for i, s := range servers {
		if s.IsLeader() {
			leader = s
		} else {
			follower, followerStore = s, stores[i]
		}
	}
	if _, err := follower.Apply(state.RegisterRequestType, statetest.NodeReq("c1", "10.0.0.9"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.Apply(state.CoordinateBatchUpdateType, state.Coordinates{{Node: "c1", Coord: statetest.CoordAt(0.004)}}, 5*time.Second); err != nil {
		t.Fatalf("update through a follower: %v", err)
	}
	_, err := follower.Apply(state.CoordinateBatchUpdateType, state.Coordinates{{Node: "c1"}}, 5*time.Second)
	if !errors.Is(err, state.ErrInvalidRegistration) || !strings.Contains(err.Error(), "invalid coordinate") {
		t.Errorf("an invalid update through a follower: %v, want the leader's invalid coordinate", err)
	}
	leader.flushCoordinates()
	waitFor(t, 10*time.Second, "the coordinate on the follower", func() bool {
		_, cs, _ := followerStore.NodeCoordinates(nil, "c1")
		return len(cs) == 1 && cs[0].Coord.Vec[0] == 0.004
	})
}
