package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/beacon-dns/beacon/acl"
	"github.com/hashicorp/go-memdb"
)

// A snapshot of the whole state is what the FSM persists for Raft, what a
// server streams to a client agent that starts over, and what a snapshot
// archive holds as state.bin: one JSON document per line, a header, then
// every row of every table as {"T": table, "R": row}.

// Snapshot is the state at one point, captured without blocking writers.
type Snapshot struct{ tx *memdb.Txn }

// Snapshot captures the store's current state.
func (s *Store) Snapshot() *Snapshot { return &Snapshot{tx: s.ReadTxn()} }

// Write writes the snapshot to w.
func (sn *Snapshot) Write(w io.Writer) error { return writeSnapshot(sn.tx, w, snapshotTables, false) }

// WriteForReplica writes the snapshot without the ACL tables, and with the
// tokens prepared queries captured replaced by RedactedToken: what a
// server streams to a client agent, whose replica holds no secrets (it
// resolves tokens through the servers, and has a server execute a query
// that captured one).
func (sn *Snapshot) WriteForReplica(w io.Writer) error {
	return writeSnapshot(sn.tx, w, replicaTables, true)
}

// ReadSnapshot decodes a snapshot into a new store of its own; Restore
// installs it in a live one.
func ReadSnapshot(r io.Reader) (*Store, error) {
	db, err := readSnapshot(r)
	if err != nil {
		return nil, err
	}
	return newStore(db), nil
}

// Restore replaces the store's contents with src's and wakes every blocking
// query, which reads again. src must not be used afterwards.
func (s *Store) Restore(src *Store) { s.replace(src.db.Load()) }

// TableRows is the row count of one table.
type TableRows struct {
	Table string
	Rows  int
}

// TableRows counts the rows of each table, in snapshot order.
func (s *Store) TableRows() []TableRows {
	tx := s.ReadTxn()
	out := make([]TableRows, 0, len(snapshotTables))
	for _, table := range snapshotTables {
		n := 0
		_ = eachRow(tx, table, func(any) error { n++; return nil })
		out = append(out, TableRows{Table: table, Rows: n})
	}
	return out
}

// snapshotRecord is one line of a snapshot: a table name and a row.
type snapshotRecord struct {
	Table string          `json:"T"`
	Row   json.RawMessage `json:"R"`
}

type snapshotHeader struct {
	Version int `json:"Version"`
}

const snapshotVersion = 1

// snapshotTables are written in this order; restore inserts in the same
// order, so nodes exist before the services that refer to them.
// Coordinates and prepared queries came later: they are listed last but
// for the indexes, so that `snapshot inspect` lists the older tables as it
// did.
var snapshotTables = []string{tableNodes, tableServices, tableChecks, tableSessions, tableKVs,
	tableACLPolicies, tableACLTokens, tableCoordinates, tablePreparedQueries, tableAutopilot, tableIndex}

// replicaTables are snapshotTables but the ACL tables.
var replicaTables = slices.DeleteFunc(slices.Clone(snapshotTables), func(t string) bool {
	return t == tableACLPolicies || t == tableACLTokens
})

func writeSnapshot(tx *memdb.Txn, w io.Writer, tables []string, forReplica bool) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Version: snapshotVersion}); err != nil {
		return fmt.Errorf("writing snapshot header: %w", err)
	}
	for _, table := range tables {
		err := eachRow(tx, table, func(raw any) error {
			row, err := marshalRow(table, raw, forReplica)
			if err != nil {
				return err
			}
			if err := enc.Encode(snapshotRecord{Table: table, Row: row}); err != nil {
				return fmt.Errorf("writing snapshot: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}

// eachRow calls fn with every row of table in key order, stopping at its
// first error. The services table's rows are the instances, by node then
// ID, as they were when each was a row of its own.
func eachRow(tx *memdb.Txn, table string, fn func(any) error) error {
	if table == tableServices {
		var err error
		if lerr := eachService(tx, func(svc *Service) bool { err = fn(svc); return err == nil }); lerr != nil {
			return lerr
		}
		return err
	}
	it, err := tx.Get(table, "id")
	if err != nil {
		return fmt.Errorf("reading %s: %w", table, err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if err := fn(raw); err != nil {
			return err
		}
	}
	return nil
}

// marshalRow encodes a row with the fields that JSON tags hide from the API
// (Service.Node) kept; for a replica, without the secrets of its rows.
func marshalRow(table string, raw any, forReplica bool) ([]byte, error) {
	var v any = raw
	switch table {
	case tableServices:
		svc := raw.(*Service)
		v = struct {
			Node string
			*Service
		}{svc.Node, svc}
	case tablePreparedQueries:
		if q := raw.(*PreparedQuery); forReplica && q.Token != "" {
			redacted := *q
			redacted.Token = RedactedToken
			v = &redacted
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s row: %w", table, err)
	}
	return b, nil
}

func readSnapshot(r io.Reader) (*memdb.MemDB, error) {
	db, err := memdb.NewMemDB(stateSchema())
	if err != nil {
		return nil, fmt.Errorf("state schema: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReader(r))
	var hdr snapshotHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("reading snapshot header: %w", err)
	}
	if hdr.Version != snapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is not one this beacon reads", hdr.Version)
	}
	tx := db.Txn(true)
	defer tx.Abort()
	services := newServiceRows()
	for {
		var rec snapshotRecord
		if err := dec.Decode(&rec); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading snapshot: %w", err)
		}
		row, err := unmarshalRow(rec)
		if err != nil {
			return nil, err
		}
		if svc, ok := row.(*Service); ok {
			services.add(svc)
			continue
		}
		if err := tx.Insert(rec.Table, row); err != nil {
			return nil, fmt.Errorf("restoring %s row: %w", rec.Table, err)
		}
	}
	if err := services.insert(tx); err != nil {
		return nil, fmt.Errorf("restoring services: %w", err)
	}
	tx.Commit()
	return db, nil
}

func unmarshalRow(rec snapshotRecord) (any, error) {
	var row any
	switch rec.Table {
	case tableNodes:
		row = new(Node)
	case tableServices:
		var v struct {
			Node string
			Service
		}
		if err := json.Unmarshal(rec.Row, &v); err != nil {
			return nil, fmt.Errorf("decoding snapshot service: %w", err)
		}
		v.Service.Node = v.Node
		return &v.Service, nil
	case tableChecks:
		row = new(HealthCheck)
	case tableSessions:
		row = new(Session)
	case tableKVs:
		row = new(DirEntry)
	case tableACLPolicies:
		row = new(acl.Policy)
	case tableACLTokens:
		row = new(acl.Token)
	case tableCoordinates:
		row = new(Coordinate)
	case tableAutopilot:
		row = new(autopilotRow)
	case tablePreparedQueries:
		row = new(PreparedQuery)
	case tableIndex:
		row = new(indexEntry)
	default:
		return nil, fmt.Errorf("snapshot has rows of unknown table %q", rec.Table)
	}
	if err := json.Unmarshal(rec.Row, row); err != nil {
		return nil, fmt.Errorf("decoding snapshot %s row: %w", rec.Table, err)
	}
	return row, nil
}
