package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/hashicorp/raft"
)

// FSM applies committed Raft log entries to the state store. It is the only
// writer of the store.
type FSM struct {
	store  *state.Store
	logger hclog.Logger
	// applied is the index of the last command applied to the store. Raft's
	// own AppliedIndex moves when entries are handed to the FSM, before
	// they are applied, so reads that must see an index wait on this.
	applied atomic.Uint64
	// feed, on a server or a relay, keeps the latest commands for the
	// client agents that follow its state; nil on other clients' replicas.
	feed *changeFeed
	// sessionTouched, when set, is told of every session created or
	// renewed, with its TTL: the leader's TTL timers follow it.
	sessionTouched func(id, ttl string)
}

var _ raft.BatchingFSM = (*FSM)(nil)

// AppliedIndex is the index of the last command the store reflects.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// NewFSM returns an FSM over store.
func NewFSM(store *state.Store, logger hclog.Logger) *FSM {
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
	var batch *state.KVSBatch
	var inTx []*raft.Log // applied to batch, not yet visible
	publish := func(l *raft.Log) {
		f.applied.Store(l.Index)
		if f.feed != nil {
			f.feed.appendLocked(l.Index, l.Data)
		}
	}
	flush := func() {
		if batch != nil {
			batch.Commit()
			batch = nil
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
		if t, decode, err := decodeHeader(l.Data); err == nil && t == state.KVSRequestType {
			var req state.KVSRequest
			if err := decode(&req); err != nil {
				resps[i] = fmt.Errorf("decoding %s: %w", state.KVSRequestType, err)
			} else {
				if batch == nil {
					batch = f.store.KVSBatch()
				}
				start := time.Now()
				if ok, err := batch.Apply(l.Index, &req); err != nil {
					resps[i] = err
				} else {
					resps[i] = &state.CommandResult{OK: ok}
				}
				measureKVS(req.Op, start)
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
	case state.RegisterRequestType:
		var req state.RegisterRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		defer metrics.MeasureSince([]string{"fsm", "register"}, time.Now())
		return f.store.EnsureRegistration(idx, &req), nil
	case state.DeregisterRequestType:
		var req state.DeregisterRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		defer metrics.MeasureSince([]string{"fsm", "deregister"}, time.Now())
		return f.store.Deregister(idx, &req), nil
	case state.KVSRequestType:
		var req state.KVSRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		defer measureKVS(req.Op, time.Now())
		ok, err := f.store.KVSApply(idx, &req)
		if err != nil {
			return err, nil
		}
		return &state.CommandResult{OK: ok}, nil
	case state.SessionRequestType:
		var req state.SessionRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		defer measureWithOp([]string{"fsm", "session"}, req.Op, time.Now())
		if err := f.store.SessionApply(idx, &req); err != nil {
			return err, nil
		}
		if f.sessionTouched != nil && (req.Op == state.SessionCreate || req.Op == state.SessionRenew) {
			ttl := req.Session.TTL
			if req.Op == state.SessionRenew {
				if _, s, err := f.store.GetSession(nil, req.Session.ID); err == nil && s != nil {
					ttl = s.TTL
				}
			}
			f.sessionTouched(req.Session.ID, ttl)
		}
		return nil, nil
	case state.ACLRequestType:
		var req state.ACLRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		defer measureWithOp([]string{"fsm", "acl"}, req.Op, time.Now())
		return f.store.ACLApply(idx, &req), nil
	case state.CoordinateBatchUpdateType:
		var updates state.Coordinates
		if err := decode(&updates); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		defer metrics.MeasureSince([]string{"fsm", "coordinate", "batch-update"}, time.Now())
		return f.store.CoordinateBatchUpdate(idx, updates), nil
	case state.AutopilotRequestType:
		var req state.AutopilotRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		ok, err := f.store.AutopilotApply(idx, &req)
		if err != nil {
			return err, nil
		}
		return &state.CommandResult{OK: ok}, nil
	case state.PreparedQueryRequestType:
		var req state.PreparedQueryRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		return f.store.PreparedQueryApply(idx, &req), nil
	case state.TxnRequestType:
		var req state.TxnRequest
		if err := decode(&req); err != nil {
			return fmt.Errorf("decoding %s: %w", t, err), nil
		}
		defer metrics.MeasureSince([]string{"fsm", "txn"}, time.Now())
		return &state.CommandResult{Txn: f.store.TxnApply(idx, &req)}, nil
	}
	return nil, fmt.Errorf("raft log entry %d: unknown %s (written by a newer beacon?)", idx, t)
}

// measureKVS records a KV command's apply time: consul.fsm.kvs{op}.
func measureKVS(op state.KVOp, start time.Time) {
	measureWithOp([]string{"fsm", "kvs"}, string(op), start)
}

// measureWithOp records a command's apply time (Consul's consul.fsm.*,
// on servers and client replicas alike: a replica applies the same
// commands with this code) with its operation as the op label. The
// operations are the API's fixed verbs: the label set is bounded.
func measureWithOp(key []string, op string, start time.Time) {
	metrics.MeasureSinceWithLabels(key, start, []metrics.Label{{Name: "op", Value: op}})
}

// Snapshot captures the state at this point of the log; Persist writes it
// out later, off the FSM's goroutine, from the captured read transaction.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.store.Snapshot()}, nil
}

// feedSnapshot returns a snapshot of the whole state, the index it
// reflects and the feed generation it belongs to: what a client agent
// starts (or starts over) from.
func (f *FSM) feedSnapshot() (*state.Snapshot, uint64, uint64) {
	f.feed.mu.Lock()
	defer f.feed.mu.Unlock()
	return f.store.Snapshot(), f.applied.Load(), f.feed.gen
}

type fsmSnapshot struct{ snap *state.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Write(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Restore replaces the whole state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	restored, err := state.ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.replaceState(restored, restored.LastIndex())
	return nil
}

// applyStreamed applies a command a replica was streamed at index (an
// empty one moves the index only: see forReplica), keeping it in the feed
// when the replica relays.
func (f *FSM) applyStreamed(index uint64, data []byte) error {
	if f.feed != nil {
		f.feed.mu.Lock()
		defer f.feed.mu.Unlock()
	}
	if len(data) > 0 {
		if _, err := f.applyCommand(index, data); err != nil {
			return err
		}
	}
	f.applied.Store(index)
	if f.feed != nil {
		// data is the stream reader's buffer, reused by the next frame.
		f.feed.appendLocked(index, bytes.Clone(data))
	}
	return nil
}

// replaceState installs a whole state at index: a Raft restore's, or one
// a replica was streamed.
func (f *FSM) replaceState(restored *state.Store, index uint64) {
	if f.feed != nil {
		f.feed.mu.Lock()
		defer f.feed.mu.Unlock()
	}
	f.store.Restore(restored)
	f.applied.Store(index)
	if f.feed != nil {
		// The feed resumes no replica until the next command: the state
		// may come from a snapshot restore, and a replica's index from
		// before it belongs to another history.
		f.feed.resetLocked()
	}
}
