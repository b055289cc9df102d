package raftstore

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// FSM applies committed Raft log entries to the state store. It is the only
// writer of the store.
type FSM struct {
	store  *Store
	logger hclog.Logger
	// applied is the index of the last command applied to the store. Raft's
	// own AppliedIndex moves when entries are handed to the FSM, before
	// they are applied, so reads that must see an index wait on this.
	applied atomic.Uint64
	// feed, on a server, keeps the latest commands for the client agents
	// that follow this server's state; nil on a client's own replica.
	feed *changeFeed
	// sessionTouched, when set, is told of every session created or
	// renewed, with its TTL: the leader's TTL timers follow it.
	sessionTouched func(id, ttl string)
}

var _ raft.BatchingFSM = (*FSM)(nil)

// AppliedIndex is the index of the last command the store reflects.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// NewFSM returns an FSM over store.
func NewFSM(store *Store, logger hclog.Logger) *FSM {
	return &FSM{store: store, logger: logger}
}

// Apply applies one committed entry. It returns nil or the error that made
// the command a no-op; Raft hands that back to whoever proposed it.
func (f *FSM) Apply(l *raft.Log) any {
	if f.feed != nil {
		// The store, the applied index and the feed move together, so a
		// feed snapshot (taken under the same lock) is exactly the state
		// at the index it names.
		f.feed.mu.Lock()
		defer f.feed.mu.Unlock()
	}
	resp, err := f.applyCommand(l.Index, l.Data)
	if err != nil {
		// An entry this binary cannot read must not be skipped silently: the
		// replicas would diverge. Stop, as Consul does.
		panic(err.Error())
	}
	f.applied.Store(l.Index)
	if f.feed != nil {
		f.feed.appendLocked(l.Index, l.Data)
	}
	return resp
}

// ApplyBatch applies entries committed together (raft.BatchingFSM), in
// order. Consecutive KV writes share one state store transaction, so a busy
// KV store pays for one commit and one round of watch notifications per
// batch rather than per write; every write keeps its own index. A KV write
// whose condition fails or that is refused changes nothing before it
// fails, so sharing the transaction cannot leak half a write. Other
// commands are applied one by one, as Apply does.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	if f.feed != nil {
		f.feed.mu.Lock()
		defer f.feed.mu.Unlock()
	}
	resps := make([]any, len(logs))
	var tx *memdb.Txn
	var inTx []*raft.Log // applied to tx, not yet visible
	publish := func(l *raft.Log) {
		f.applied.Store(l.Index)
		if f.feed != nil {
			f.feed.appendLocked(l.Index, l.Data)
		}
	}
	flush := func() {
		if tx != nil {
			tx.Commit()
			tx = nil
		}
		for _, l := range inTx {
			publish(l)
		}
		inTx = inTx[:0]
	}
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue // configuration changes reach the FSM only to be skipped
		}
		if t, decode, err := decodeHeader(l.Data); err == nil && t == KVSRequestType {
			var req KVSRequest
			if err := decode(&req); err != nil {
				resps[i] = fmt.Errorf("decoding %s: %w", KVSRequestType, err)
			} else {
				if tx == nil {
					tx = f.store.db.Load().Txn(true)
				}
				if ok, err := kvsApplyTxn(tx, l.Index, &req); err != nil {
					resps[i] = err
				} else {
					resps[i] = &CommandResult{OK: ok}
				}
			}
			inTx = append(inTx, l)
			continue
		}
		flush()
		resp, err := f.applyCommand(l.Index, l.Data)
		if err != nil {
			panic(err.Error()) // as in Apply
		}
		resps[i] = resp
		publish(l)
	}
	flush()
	return resps
}

// applyCommand applies one command at index idx. resp is what the command
// answers its proposer (nil or the error that made it a no-op); err means
// the entry cannot be read by this binary at all.
func (f *FSM) applyCommand(idx uint64, data []byte) (resp any, err error) {
	t, decode, err := decodeHeader(data)
	if err != nil {
		return nil, fmt.Errorf("raft log entry %d: %w", idx, err)
	}
	switch t {
	case RegisterRequestType:
		var req RegisterRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		return f.store.EnsureRegistration(idx, &req), nil
	case DeregisterRequestType:
		var req DeregisterRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		return f.store.Deregister(idx, &req), nil
	case KVSRequestType:
		var req KVSRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		ok, err := f.store.KVSApply(idx, &req)
		if err != nil {
			return err, nil
		}
		return &CommandResult{OK: ok}, nil
	case SessionRequestType:
		var req SessionRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		if err := f.store.SessionApply(idx, &req); err != nil {
			return err, nil
		}
		if f.sessionTouched != nil && (req.Op == SessionCreate || req.Op == SessionRenew) {
			ttl := req.Session.TTL
			if req.Op == SessionRenew {
				if _, s, err := f.store.GetSession(nil, req.Session.ID); err == nil && s != nil {
					ttl = s.TTL
				}
			}
			f.sessionTouched(req.Session.ID, ttl)
		}
		return nil, nil
	case TxnRequestType:
		var req TxnRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		return &CommandResult{Txn: f.store.TxnApply(idx, &req)}, nil
	}
	return nil, fmt.Errorf("raft log entry %d: unknown %s (written by a newer beacon?)", idx, t)
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
var snapshotTables = []string{tableNodes, tableServices, tableChecks, tableSessions, tableKVs, tableIndex}

// Snapshot captures the state at this point of the log; Persist writes it
// out later, off the FSM's goroutine, from the captured read transaction.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{tx: f.store.ReadTxn()}, nil
}

// feedSnapshot returns a read transaction of the whole state, the index it
// reflects and the feed generation it belongs to: what a client agent
// starts (or starts over) from.
func (f *FSM) feedSnapshot() (*memdb.Txn, uint64, uint64) {
	f.feed.mu.Lock()
	defer f.feed.mu.Unlock()
	return f.store.ReadTxn(), f.applied.Load(), f.feed.gen
}

type fsmSnapshot struct{ tx *memdb.Txn }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(s.tx, sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

func writeSnapshot(tx *memdb.Txn, w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Version: snapshotVersion}); err != nil {
		return fmt.Errorf("writing snapshot header: %w", err)
	}
	for _, table := range snapshotTables {
		it, err := tx.Get(table, "id")
		if err != nil {
			return fmt.Errorf("reading %s for snapshot: %w", table, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			row, err := marshalRow(table, raw)
			if err != nil {
				return err
			}
			if err := enc.Encode(snapshotRecord{Table: table, Row: row}); err != nil {
				return fmt.Errorf("writing snapshot: %w", err)
			}
		}
	}
	return bw.Flush()
}

// marshalRow encodes a row with the fields that JSON tags hide from the API
// (Service.Node) kept.
func marshalRow(table string, raw any) ([]byte, error) {
	var v any = raw
	if table == tableServices {
		svc := raw.(*Service)
		v = struct {
			Node string
			*Service
		}{svc.Node, svc}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s row: %w", table, err)
	}
	return b, nil
}

// Restore replaces the whole state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	if f.feed != nil {
		f.feed.mu.Lock()
		defer f.feed.mu.Unlock()
	}
	f.store.replace(db)
	f.applied.Store(f.store.LastIndex())
	if f.feed != nil {
		f.feed.resetLocked()
	}
	return nil
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
		if err := tx.Insert(rec.Table, row); err != nil {
			return nil, fmt.Errorf("restoring %s row: %w", rec.Table, err)
		}
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
