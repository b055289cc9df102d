package state

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/serf/coordinate"
)

// Network coordinates, as Consul keeps them: every agent's serf Vivaldi
// coordinate in the LAN pool, sent to the servers now and then and
// committed in batches (CoordinateBatchUpdateType), one row per node and
// network segment. A row exists only for a node of the catalog, and goes
// with it when the node is deregistered. The HTTP API sorts by the round
// trip times they estimate (?near=) and serves them under /v1/coordinate.

const tableCoordinates = "coordinates"

// Coordinate is a node's network coordinate in one network segment
// (Consul's structs.Coordinate and api.CoordinateEntry; beacon, as
// Consul's community edition, has the default segment "" only, and keeps
// the field so that the shapes match).
type Coordinate struct {
	Node    string                 `json:"Node"`
	Segment string                 `json:"Segment"`
	Coord   *coordinate.Coordinate `json:"Coord"`
}

// Coordinates is a batch of coordinate updates: the body of a
// CoordinateBatchUpdateType command, and what the coordinate reads return.
type Coordinates []*Coordinate

// CoordinateDimensionality is the dimensionality of every coordinate the
// cluster uses: serf's default Vivaldi configuration, which the gossip
// pools run with.
var CoordinateDimensionality = int(coordinate.DefaultConfig().Dimensionality)

// ErrInvalidCoordinate is wrapped by the errors of a coordinate that cannot
// be stored: missing, with a NaN or infinite component, or of another
// dimensionality than the cluster's (distances to it would be undefined).
// It is an ErrInvalidRegistration too, so it crosses the server port as
// one and the HTTP API answers it with 400.
var ErrInvalidCoordinate error = invalidCoordinate{}

type invalidCoordinate struct{}

func (invalidCoordinate) Error() string        { return "invalid coordinate" }
func (invalidCoordinate) Is(target error) bool { return target == ErrInvalidRegistration }

// ValidateCoordinate checks an update as Consul's servers do (valid
// numbers, the cluster's dimensionality) and that it names a node.
func ValidateCoordinate(c *Coordinate) error {
	switch {
	case c == nil:
		return fmt.Errorf("%w: the update is null", ErrInvalidCoordinate)
	case strings.TrimSpace(c.Node) == "":
		return fmt.Errorf("%w: missing node name", ErrInvalidCoordinate)
	case c.Coord == nil:
		return fmt.Errorf("%w: node %q has no Coord", ErrInvalidCoordinate, c.Node)
	case !c.Coord.IsValid():
		return fmt.Errorf("%w: node %q: a component is NaN or infinite", ErrInvalidCoordinate, c.Node)
	case len(c.Coord.Vec) != CoordinateDimensionality:
		return fmt.Errorf("%w: node %q: %d dimensions, the cluster's coordinates have %d",
			ErrInvalidCoordinate, c.Node, len(c.Coord.Vec), CoordinateDimensionality)
	}
	return nil
}

// RTT is the round trip time a and b estimate between their nodes, in
// seconds; +Inf when either is missing or they are not comparable, so
// that a node without a coordinate sorts after every node with one (as
// Consul's lib.ComputeDistance has it).
func RTT(a, b *coordinate.Coordinate) float64 {
	if a == nil || b == nil || !a.IsValid() || !b.IsValid() || !a.IsCompatibleWith(b) {
		return math.Inf(1)
	}
	return a.DistanceTo(b).Seconds()
}

// coordinateIDIndex indexes coordinates by (node, segment), the node
// case-insensitively as the node table does. (A memdb.CompoundIndex of two
// string fields cannot: it keys an empty segment, the usual one,
// differently when it reads a row and when it looks one up.)
type coordinateIDIndex struct{}

func (coordinateIDIndex) FromObject(obj any) (bool, []byte, error) {
	c, ok := obj.(*Coordinate)
	if !ok {
		return false, nil, fmt.Errorf("coordinate id index: unexpected %T", obj)
	}
	return true, nodeServiceKey(c.Node, c.Segment), nil
}

func (coordinateIDIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("coordinate id index: want node and segment, got %d arguments", len(args))
	}
	node, ok1 := args[0].(string)
	segment, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, errors.New("coordinate id index: arguments must be strings")
	}
	return nodeServiceKey(node, segment), nil
}

func coordinatesTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableCoordinates, Indexes: map[string]*memdb.IndexSchema{
		"id":   {Name: "id", Unique: true, Indexer: coordinateIDIndex{}},
		"node": {Name: "node", Indexer: &memdb.StringFieldIndex{Field: "Node", Lowercase: true}},
	}}
}

// CoordinateBatchUpdate applies a batch of coordinate updates at Raft index
// idx, in one transaction. As in Consul, an update for a node the catalog
// does not have is skipped (the node may have been deregistered while the
// update waited in its batch), and so is one ValidateCoordinate refuses
// (the servers refuse those before they batch them): one bad update does
// not cost the batch's others. An update equal to the stored coordinate
// writes nothing, so blocking queries on coordinates wake only for changes.
func (s *Store) CoordinateBatchUpdate(idx uint64, updates Coordinates) error {
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	changed := false
	for _, c := range updates {
		if ValidateCoordinate(c) != nil {
			continue
		}
		raw, err := tx.First(tableNodes, "id", c.Node)
		if err != nil {
			return fmt.Errorf("node lookup: %w", err)
		}
		if raw == nil {
			continue
		}
		// The catalog's spelling of the node: one row per node, however
		// an update spells it.
		row := &Coordinate{Node: raw.(*Node).Node, Segment: c.Segment, Coord: c.Coord.Clone()}
		old, err := tx.First(tableCoordinates, "id", row.Node, row.Segment)
		if err != nil {
			return fmt.Errorf("coordinate lookup: %w", err)
		}
		if old != nil && reflect.DeepEqual(old.(*Coordinate), row) {
			continue
		}
		if err := tx.Insert(tableCoordinates, row); err != nil {
			return fmt.Errorf("inserting coordinate: %w", err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	if err := setIndex(tx, idx, tableCoordinates); err != nil {
		return err
	}
	tx.Commit()
	return nil
}

// deleteNodeCoordinatesTxn deletes a deregistered node's coordinates.
func deleteNodeCoordinatesTxn(tx *memdb.Txn, idx uint64, node string) error {
	n, err := tx.DeleteAll(tableCoordinates, "node", node)
	if err != nil {
		return fmt.Errorf("deleting coordinates of node: %w", err)
	}
	if n == 0 {
		return nil
	}
	return setIndex(tx, idx, tableCoordinates)
}

// Coordinates returns every coordinate, sorted by node then segment.
func (s *Store) Coordinates(ws memdb.WatchSet) (uint64, Coordinates, error) {
	return s.coordinatesBy(ws, "id")
}

// NodeCoordinates returns the coordinates of one node, one per segment.
func (s *Store) NodeCoordinates(ws memdb.WatchSet, node string) (uint64, Coordinates, error) {
	return s.coordinatesBy(ws, "node", node)
}

func (s *Store) coordinatesBy(ws memdb.WatchSet, index string, args ...any) (uint64, Coordinates, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableCoordinates)
	it, err := tx.Get(tableCoordinates, index, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("coordinate lookup: %w", err)
	}
	watch(ws, it.WatchCh())
	var out Coordinates
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Coordinate))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Segment < out[j].Segment
	})
	return idx, out, nil
}

// CoordinateLookup finds nodes' coordinates in the default segment.
type CoordinateLookup map[string]*coordinate.Coordinate

// Of is node's coordinate (its name matched case-insensitively, as the
// catalog matches node names), nil when it has none.
func (l CoordinateLookup) Of(node string) *coordinate.Coordinate { return l[strings.ToLower(node)] }

// LANCoordinates reads every coordinate of the default segment at once:
// what ?near= sorts by, one read per request.
func (s *Store) LANCoordinates() CoordinateLookup {
	tx := s.ReadTxn()
	out := CoordinateLookup{}
	it, err := tx.Get(tableCoordinates, "id")
	if err != nil {
		return out
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if c := raw.(*Coordinate); c.Segment == "" {
			out[strings.ToLower(c.Node)] = c.Coord
		}
	}
	return out
}
