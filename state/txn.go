package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Transactions (Consul's /v1/txn): up to MaxTxnOps KV operations applied in
// one state store transaction. Every operation runs in order, each seeing
// the ones before it; if any fails, nothing of the transaction is kept and
// every failure is reported with its operation's index.

// MaxTxnOps bounds the operations of one transaction (Consul's).
const MaxTxnOps = 64

// TxnKVOp is one KV operation of a transaction (Consul's TxnKVOp).
type TxnKVOp struct {
	Verb    KVOp   `json:"Verb"`
	Key     string `json:"Key"`
	Value   []byte `json:"Value"`
	Flags   uint64 `json:"Flags"`
	Index   uint64 `json:"Index"`
	Session string `json:"Session"`
}

// TxnOp is one operation; only KV operations exist so far.
type TxnOp struct {
	KV *TxnKVOp `json:"KV,omitempty"`
}

// TxnRequest is a transaction.
type TxnRequest struct {
	Datacenter string  `json:"Datacenter"`
	Ops        []TxnOp `json:"Ops"`
}

// TxnResultItem is one result of a transaction.
type TxnResultItem struct {
	KV *DirEntry `json:"KV,omitempty"`
}

// TxnError is the failure of one operation.
type TxnError struct {
	OpIndex int    `json:"OpIndex"`
	What    string `json:"What"`
}

// TxnResult is a transaction's outcome: its results, or, when Errors is not
// empty, why nothing of it was applied.
type TxnResult struct {
	Results []TxnResultItem `json:"Results"`
	Errors  []TxnError      `json:"Errors"`
}

// ReadOnly reports whether every operation of the transaction only reads,
// so it can be answered from a replica without Raft.
func (r *TxnRequest) ReadOnly() bool {
	for _, op := range r.Ops {
		if op.KV == nil {
			return false
		}
		switch op.KV.Verb {
		case KVGet, KVGetTree, KVCheckIndex, KVCheckSession, KVCheckNotExists:
		default:
			return false
		}
	}
	return true
}

// txnApplyTxn runs the operations in tx and reports their results; the
// caller commits only if the result has no errors.
func txnApplyTxn(tx *memdb.Txn, idx uint64, req *TxnRequest) *TxnResult {
	res := &TxnResult{}
	for i, op := range req.Ops {
		if op.KV == nil {
			res.Errors = append(res.Errors, TxnError{OpIndex: i, What: "unknown operation: only KV operations are supported"})
			continue
		}
		items, err := txnKVTxn(tx, idx, op.KV)
		if err != nil {
			res.Errors = append(res.Errors, TxnError{OpIndex: i, What: err.Error()})
			continue
		}
		res.Results = append(res.Results, items...)
	}
	if len(res.Errors) > 0 {
		res.Results = nil
	}
	return res
}

// withoutValue is the entry as a transaction's write reports it.
func withoutValue(e *DirEntry) *DirEntry {
	if e == nil {
		return nil
	}
	c := *e
	c.Value = nil
	return &c
}

func txnKVTxn(tx *memdb.Txn, idx uint64, op *TxnKVOp) ([]TxnResultItem, error) {
	e := DirEntry{Key: op.Key, Value: op.Value, Flags: op.Flags, Session: op.Session, ModifyIndex: op.Index}
	written := func() ([]TxnResultItem, error) {
		got, err := getKV(tx, op.Key)
		if err != nil {
			return nil, err
		}
		return []TxnResultItem{{KV: withoutValue(got)}}, nil
	}
	if op.Key == "" && op.Verb != KVDeleteTree && op.Verb != KVGetTree {
		return nil, fmt.Errorf("missing key")
	}
	switch op.Verb {
	case KVSet:
		if err := kvsSetTxn(tx, idx, &e, false); err != nil {
			return nil, err
		}
		return written()
	case KVCAS:
		ok, err := kvsCASTxn(tx, idx, &e)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("failed to set key %q, index is stale", op.Key)
		}
		return written()
	case KVLock:
		ok, err := kvsLockTxn(tx, idx, &e)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("failed to lock key %q, lock is already held", op.Key)
		}
		return written()
	case KVUnlock:
		ok, err := kvsUnlockTxn(tx, idx, &e)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("failed to unlock key %q, lock isn't held, or is held by another session", op.Key)
		}
		return written()
	case KVDelete:
		return nil, kvsDeleteTxn(tx, idx, op.Key)
	case KVDeleteCAS:
		ok, err := kvsDeleteCASTxn(tx, idx, op.Index, op.Key)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("failed to delete key %q, index is stale", op.Key)
		}
		return nil, nil
	case KVDeleteTree:
		return nil, kvsDeleteTreeTxn(tx, idx, op.Key)
	case KVGet:
		got, err := getKV(tx, op.Key)
		if err != nil {
			return nil, err
		}
		if got == nil {
			return nil, fmt.Errorf("key %q doesn't exist", op.Key)
		}
		return []TxnResultItem{{KV: got}}, nil
	case KVGetTree:
		entries, err := kvListTxn(tx, nil, op.Key)
		if err != nil {
			return nil, err
		}
		items := make([]TxnResultItem, 0, len(entries))
		for _, en := range entries {
			items = append(items, TxnResultItem{KV: en})
		}
		return items, nil
	case KVCheckIndex:
		got, err := getKV(tx, op.Key)
		if err != nil {
			return nil, err
		}
		if got == nil {
			return nil, fmt.Errorf("key %q doesn't exist", op.Key)
		}
		if got.ModifyIndex != op.Index {
			return nil, fmt.Errorf("current modify index %d != %d", got.ModifyIndex, op.Index)
		}
		return []TxnResultItem{{KV: withoutValue(got)}}, nil
	case KVCheckSession:
		got, err := getKV(tx, op.Key)
		if err != nil {
			return nil, err
		}
		if got == nil {
			return nil, fmt.Errorf("key %q doesn't exist", op.Key)
		}
		if got.Session != op.Session {
			return nil, fmt.Errorf("current session %q != %q", got.Session, op.Session)
		}
		return []TxnResultItem{{KV: withoutValue(got)}}, nil
	case KVCheckNotExists:
		got, err := getKV(tx, op.Key)
		if err != nil {
			return nil, err
		}
		if got != nil {
			return nil, fmt.Errorf("key %q exists", op.Key)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("unknown KV verb %q", op.Verb)
}

// TxnRead answers a read-only transaction from the local state.
func (s *Store) TxnRead(req *TxnRequest) (uint64, *TxnResult) {
	tx := s.ReadTxn()
	return maxIndex(tx, tableKVs), txnApplyTxn(tx, 0, req)
}
