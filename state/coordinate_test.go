package state_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/serf/coordinate"
)

func coordKeys(cs state.Coordinates) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Node+"@"+c.Segment)
	}
	return out
}

func mustCoordinates(t *testing.T, s *state.Store) (uint64, state.Coordinates) {
	t.Helper()
	idx, cs, err := s.Coordinates(nil)
	if err != nil {
		t.Fatal(err)
	}
	return idx, cs
}

func TestCoordinateBatchUpdate(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.NodeReq("n1", "10.0.0.1"))
	statetest.MustRegister(t, s, 2, statetest.NodeReq("n2", "10.0.0.2"))

	wrongDims := &coordinate.Coordinate{Vec: []float64{1, 2, 3}}
	notFinite := statetest.CoordAt(0)
	notFinite.Adjustment = math.Inf(-1)
	err := s.CoordinateBatchUpdate(3, state.Coordinates{
		{Node: "n1", Coord: statetest.CoordAt(0.001)},
		{Node: "N2", Segment: "alpha", Coord: statetest.CoordAt(0.002)}, // the catalog's spelling is kept
		{Node: "n2", Coord: statetest.CoordAt(0.003)},
		{Node: "ghost", Coord: statetest.CoordAt(0.004)}, // not in the catalog: skipped
		{Node: "n1", Segment: "bad", Coord: wrongDims},
		{Node: "n1", Segment: "inf", Coord: notFinite},
		{Node: "n1", Segment: "none"},
		nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	idx, cs := mustCoordinates(t, s)
	if want := []string{"n1@", "n2@", "n2@alpha"}; idx != 3 || !reflect.DeepEqual(coordKeys(cs), want) {
		t.Fatalf("Coordinates = %d %v, want 3 %v", idx, coordKeys(cs), want)
	}
	if !reflect.DeepEqual(cs[0].Coord, statetest.CoordAt(0.001)) || !reflect.DeepEqual(cs[2].Coord, statetest.CoordAt(0.002)) {
		t.Errorf("stored %+v, %+v", cs[0].Coord, cs[2].Coord)
	}
	if idx, n2, err := s.NodeCoordinates(nil, "N2"); err != nil || idx != 3 || !reflect.DeepEqual(coordKeys(n2), []string{"n2@", "n2@alpha"}) {
		t.Errorf("NodeCoordinates(N2) = %d %v %v", idx, coordKeys(n2), err)
	}
	if lan := s.LANCoordinates(); len(lan) != 2 || !reflect.DeepEqual(lan.Of("N1"), statetest.CoordAt(0.001)) || lan.Of("ghost") != nil {
		t.Errorf("LANCoordinates = %v", lan)
	}

	// The same coordinates again change nothing, and wake no one.
	ws := memdb.NewWatchSet()
	if _, _, err := s.Coordinates(ws); err != nil {
		t.Fatal(err)
	}
	if err := s.CoordinateBatchUpdate(4, state.Coordinates{{Node: "n1", Coord: statetest.CoordAt(0.001)}}); err != nil {
		t.Fatal(err)
	}
	if idx, _ := mustCoordinates(t, s); idx != 3 {
		t.Errorf("index %d after an update that changed nothing, want 3", idx)
	}
	if !ws.Watch(time.After(20 * time.Millisecond)) {
		t.Error("an update that changed nothing woke a blocking query")
	}
	// A changed one does, and moves the index.
	if err := s.CoordinateBatchUpdate(5, state.Coordinates{{Node: "n1", Coord: statetest.CoordAt(0.005)}}); err != nil {
		t.Fatal(err)
	}
	if ws.Watch(time.After(5 * time.Second)) {
		t.Error("a changed coordinate did not wake the blocking query")
	}
	if idx, cs := mustCoordinates(t, s); idx != 5 || !reflect.DeepEqual(cs[0].Coord, statetest.CoordAt(0.005)) {
		t.Errorf("after the change: %d %+v", idx, cs[0].Coord)
	}
	// A batch with nothing to store writes nothing.
	if err := s.CoordinateBatchUpdate(6, state.Coordinates{{Node: "ghost", Coord: statetest.CoordAt(1)}}); err != nil {
		t.Fatal(err)
	}
	if idx, _ := mustCoordinates(t, s); idx != 5 {
		t.Errorf("index %d after a batch of unknown nodes, want 5", idx)
	}
}

func TestDeregisteringANodeDeletesItsCoordinates(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.SvcReq("n1", "10.0.0.1", "web", "web", 80, nil))
	statetest.MustRegister(t, s, 2, statetest.NodeReq("n2", "10.0.0.2"))
	if err := s.CoordinateBatchUpdate(3, state.Coordinates{{Node: "n1", Coord: statetest.CoordAt(0.001)},
		{Node: "n1", Segment: "alpha", Coord: statetest.CoordAt(0.002)}, {Node: "n2", Coord: statetest.CoordAt(0.003)}}); err != nil {
		t.Fatal(err)
	}
	// A service's deregistration leaves the node's coordinate alone.
	statetest.MustDeregister(t, s, 4, &state.DeregisterRequest{Node: "n1", ServiceID: "web"})
	if idx, cs := mustCoordinates(t, s); idx != 3 || len(cs) != 3 {
		t.Fatalf("after a service left: %d %v", idx, coordKeys(cs))
	}
	ws := memdb.NewWatchSet()
	if _, _, err := s.NodeCoordinates(ws, "n1"); err != nil {
		t.Fatal(err)
	}
	statetest.MustDeregister(t, s, 5, &state.DeregisterRequest{Node: "N1"})
	if idx, cs := mustCoordinates(t, s); idx != 5 || !reflect.DeepEqual(coordKeys(cs), []string{"n2@"}) {
		t.Errorf("after n1 left: %d %v, want 5 [n2@]", idx, coordKeys(cs))
	}
	if ws.Watch(time.After(5 * time.Second)) {
		t.Error("deleting n1's coordinates did not wake a blocking query on them")
	}
	// A node without coordinates leaves the coordinates' index alone.
	statetest.MustRegister(t, s, 6, statetest.NodeReq("n3", "10.0.0.3"))
	statetest.MustDeregister(t, s, 7, &state.DeregisterRequest{Node: "n3"})
	if idx, _ := mustCoordinates(t, s); idx != 5 {
		t.Errorf("coordinates' index %d after a node without any left, want 5", idx)
	}
	// A node registered again under the name starts without one.
	statetest.MustRegister(t, s, 8, statetest.NodeReq("n1", "10.0.0.1"))
	if _, cs, _ := s.NodeCoordinates(nil, "n1"); len(cs) != 0 {
		t.Errorf("n1 registered again has coordinates %v", coordKeys(cs))
	}
}

func TestCoordinatesSnapshotRoundTrip(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.NodeReq("n1", "10.0.0.1"))
	statetest.MustRegister(t, s, 2, statetest.NodeReq("n2", "10.0.0.2"))
	odd := statetest.CoordAt(-0.000123456789)
	odd.Error, odd.Adjustment, odd.Height = 0.33333333333333331, -1e-7, 0.00011
	if err := s.CoordinateBatchUpdate(3, state.Coordinates{{Node: "n1", Coord: odd},
		{Node: "n2", Segment: "alpha", Coord: statetest.CoordAt(0.002)}}); err != nil {
		t.Fatal(err)
	}
	statetest.AssertRestorable(t, s)
	back, err := state.ReadSnapshot(bytes.NewReader(statetest.Snapshot(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	_, want := mustCoordinates(t, s)
	idx, got := mustCoordinates(t, back)
	if idx != 3 || !reflect.DeepEqual(got, want) {
		t.Errorf("restored coordinates %d %+v, want 3 %+v", idx, got, want)
	}
	if n := len(statetest.Tables(t, back)[statetest.TableCoordinates]); n != 2 {
		t.Errorf("restored snapshot has %d coordinate rows, want 2", n)
	}
	var rows int
	for _, tr := range back.TableRows() {
		if tr.Table == statetest.TableCoordinates {
			rows = tr.Rows
		}
	}
	if rows != 2 {
		t.Errorf("TableRows counts %d coordinates, want 2", rows)
	}
	// Restored rows keep their indexes: deregistration still finds them.
	statetest.MustDeregister(t, back, 4, &state.DeregisterRequest{Node: "n2"})
	if _, cs := mustCoordinates(t, back); !reflect.DeepEqual(coordKeys(cs), []string{"n1@"}) {
		t.Errorf("after n2 left the restored store: %v", coordKeys(cs))
	}
}

func TestValidateCoordinateAndRTT(t *testing.T) {
	for name, c := range map[string]*state.Coordinate{
		"nil":           nil,
		"no node":       {Coord: statetest.CoordAt(0)},
		"no coordinate": {Node: "n1"},
		"NaN":           {Node: "n1", Coord: &coordinate.Coordinate{Vec: make([]float64, 8), Error: math.NaN()}},
		"infinite":      {Node: "n1", Coord: &coordinate.Coordinate{Vec: []float64{math.Inf(1), 0, 0, 0, 0, 0, 0, 0}}},
		"2 dimensions":  {Node: "n1", Coord: &coordinate.Coordinate{Vec: []float64{0, 0}}},
	} {
		err := state.ValidateCoordinate(c)
		if !errors.Is(err, state.ErrInvalidCoordinate) || !errors.Is(err, state.ErrInvalidRegistration) {
			t.Errorf("%s: %v, want an ErrInvalidCoordinate (an ErrInvalidRegistration)", name, err)
		}
	}
	if err := state.ValidateCoordinate(&state.Coordinate{Node: "n1", Coord: statetest.CoordAt(1)}); err != nil {
		t.Errorf("valid coordinate: %v", err)
	}

	a, b := statetest.CoordAt(0), statetest.CoordAt(0.010)
	want := 0.010 + 2*coordinate.DefaultConfig().HeightMin
	if got := state.RTT(a, b); math.Abs(got-want) > 1e-12 {
		t.Errorf("RTT = %v, want %v", got, want)
	}
	for name, pair := range map[string][2]*coordinate.Coordinate{
		"missing":      {a, nil},
		"incompatible": {a, {Vec: []float64{0, 0}}},
		"NaN":          {a, {Vec: make([]float64, 8), Height: math.NaN()}},
	} {
		if got := state.RTT(pair[0], pair[1]); !math.IsInf(got, 1) {
			t.Errorf("RTT %s = %v, want +Inf", name, got)
		}
	}
}
