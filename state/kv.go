package state

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
)

// The KV store, Consul's: entries with flags, a lock session and indexes;
// writes by the FSM only (KVSRequest, and TxnRequest for several at once).

const tableKVs = "kvs"

// MaxKVValueBytes bounds a KV value (Consul's kv_max_value_size default).
const MaxKVValueBytes = 512 << 10

// DirEntry is one KV entry (Consul's DirEntry).
type DirEntry struct {
	LockIndex   uint64 `json:"LockIndex"`
	Key         string `json:"Key"`
	Flags       uint64 `json:"Flags"`
	Value       []byte `json:"Value"`
	Session     string `json:"Session,omitempty"`
	CreateIndex uint64 `json:"CreateIndex"`
	ModifyIndex uint64 `json:"ModifyIndex"`
}

// KVOp is a KV operation, named as Consul's KVSOp and txn verbs.
type KVOp string

// KV operations. The first ones write; the check and get verbs exist in
// transactions only.
const (
	KVSet            KVOp = "set"
	KVCAS            KVOp = "cas"
	KVLock           KVOp = "lock"
	KVUnlock         KVOp = "unlock"
	KVDelete         KVOp = "delete"
	KVDeleteCAS      KVOp = "delete-cas"
	KVDeleteTree     KVOp = "delete-tree"
	KVGet            KVOp = "get"
	KVGetTree        KVOp = "get-tree"
	KVCheckIndex     KVOp = "check-index"
	KVCheckSession   KVOp = "check-session"
	KVCheckNotExists KVOp = "check-not-exists"
)

// KVSRequest is one KV write.
type KVSRequest struct {
	Datacenter string   `json:"Datacenter"`
	Op         KVOp     `json:"Op"`
	DirEnt     DirEntry `json:"DirEnt"`
}

// CommandResult is what a command answers besides an error: whether a
// conditional write took effect, a transaction's results. Most commands
// answer nothing.
type CommandResult struct {
	// OK reports that a check-and-set, lock, unlock or conditional
	// delete took effect; false means it did not and nothing changed.
	OK  bool       `json:"OK,omitempty"`
	Txn *TxnResult `json:"Txn,omitempty"`
}

// ErrInvalidSession is returned for a lock with a session that does not
// exist (Consul's "invalid session").
var ErrInvalidSession = errors.New("invalid session")

// kvsApplyTxn applies one KV write inside tx; ok is false for a condition
// (cas, lock, unlock) that did not hold.
func kvsApplyTxn(tx *memdb.Txn, idx uint64, req *KVSRequest) (bool, error) {
	e := req.DirEnt
	switch req.Op {
	case KVSet:
		return true, kvsSetTxn(tx, idx, &e, false)
	case KVCAS:
		return kvsCASTxn(tx, idx, &e)
	case KVLock:
		return kvsLockTxn(tx, idx, &e)
	case KVUnlock:
		return kvsUnlockTxn(tx, idx, &e)
	case KVDelete:
		return true, kvsDeleteTxn(tx, idx, e.Key)
	case KVDeleteCAS:
		return kvsDeleteCASTxn(tx, idx, e.ModifyIndex, e.Key)
	case KVDeleteTree:
		return true, kvsDeleteTreeTxn(tx, idx, e.Key)
	}
	return false, fmt.Errorf("%w: unknown KV operation %q", ErrInvalidRegistration, req.Op)
}

func getKV(tx *memdb.Txn, key string) (*DirEntry, error) {
	raw, err := tx.First(tableKVs, "id", key)
	if err != nil {
		return nil, fmt.Errorf("kv lookup: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*DirEntry), nil
}

// kvsSetTxn writes e at idx, keeping its create index and, unless
// updateSession, the lock session and lock index it has.
func kvsSetTxn(tx *memdb.Txn, idx uint64, e *DirEntry, updateSession bool) error {
	if len(e.Value) > MaxKVValueBytes {
		return fmt.Errorf("%w: value of %d bytes exceeds the %d limit", ErrInvalidRegistration, len(e.Value), MaxKVValueBytes)
	}
	existing, err := getKV(tx, e.Key)
	if err != nil {
		return err
	}
	n := *e
	n.CreateIndex, n.ModifyIndex = idx, idx
	if existing != nil {
		n.CreateIndex = existing.CreateIndex
		if !updateSession {
			n.Session, n.LockIndex = existing.Session, existing.LockIndex
		}
	} else if !updateSession {
		n.Session, n.LockIndex = "", 0
	}
	if err := tx.Insert(tableKVs, &n); err != nil {
		return fmt.Errorf("inserting kv: %w", err)
	}
	return setIndex(tx, idx, tableKVs)
}

// kvsCASTxn sets e only if the key's ModifyIndex is e.ModifyIndex (0: only
// if it does not exist).
func kvsCASTxn(tx *memdb.Txn, idx uint64, e *DirEntry) (bool, error) {
	existing, err := getKV(tx, e.Key)
	if err != nil {
		return false, err
	}
	switch {
	case e.ModifyIndex == 0 && existing != nil,
		e.ModifyIndex != 0 && (existing == nil || existing.ModifyIndex != e.ModifyIndex):
		return false, nil
	}
	return true, kvsSetTxn(tx, idx, e, false)
}

func kvsLockTxn(tx *memdb.Txn, idx uint64, e *DirEntry) (bool, error) {
	if e.Session == "" {
		return false, fmt.Errorf("%w: missing session", ErrInvalidSession)
	}
	raw, err := tx.First(tableSessions, "id", e.Session)
	if err != nil {
		return false, fmt.Errorf("session lookup: %w", err)
	}
	if raw == nil {
		return false, fmt.Errorf("%w: %q", ErrInvalidSession, e.Session)
	}
	existing, err := getKV(tx, e.Key)
	if err != nil {
		return false, err
	}
	n := *e
	switch {
	case existing == nil:
		n.LockIndex = 1
	case existing.Session == "":
		n.LockIndex = existing.LockIndex + 1
	case existing.Session == e.Session:
		n.LockIndex = existing.LockIndex // re-acquire by the holder: an update
	default:
		return false, nil // held by another session
	}
	return true, kvsSetTxn(tx, idx, &n, true)
}

func kvsUnlockTxn(tx *memdb.Txn, idx uint64, e *DirEntry) (bool, error) {
	existing, err := getKV(tx, e.Key)
	if err != nil {
		return false, err
	}
	if existing == nil || existing.Session == "" || existing.Session != e.Session {
		return false, nil
	}
	n := *e
	n.Session, n.LockIndex = "", existing.LockIndex
	return true, kvsSetTxn(tx, idx, &n, true)
}

func kvsDeleteTxn(tx *memdb.Txn, idx uint64, key string) error {
	existing, err := getKV(tx, key)
	if err != nil || existing == nil {
		return err
	}
	if err := tx.Delete(tableKVs, existing); err != nil {
		return fmt.Errorf("deleting kv: %w", err)
	}
	return setIndex(tx, idx, tableKVs)
}

func kvsDeleteCASTxn(tx *memdb.Txn, idx, cas uint64, key string) (bool, error) {
	existing, err := getKV(tx, key)
	if err != nil {
		return false, err
	}
	if existing == nil {
		return cas == 0, nil // nothing to delete: Consul's answer
	}
	if existing.ModifyIndex != cas {
		return false, nil
	}
	return true, kvsDeleteTxn(tx, idx, key)
}

func kvsDeleteTreeTxn(tx *memdb.Txn, idx uint64, prefix string) error {
	n, err := tx.DeletePrefix(tableKVs, "id_prefix", prefix)
	if err != nil {
		return fmt.Errorf("deleting kv prefix: %w", err)
	}
	if n {
		return setIndex(tx, idx, tableKVs)
	}
	return nil
}

// ---- reads ----

// KVGet returns the entry at key, or nil. The index is the KV table's, as
// Consul's: it only ever grows, so clients never see it go back.
func (s *Store) KVGet(ws memdb.WatchSet, key string) (uint64, *DirEntry, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableKVs)
	ch, raw, err := tx.FirstWatch(tableKVs, "id", key)
	if err != nil {
		return 0, nil, fmt.Errorf("kv lookup: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*DirEntry), nil
}

// KVList returns the entries under prefix, sorted by key.
func (s *Store) KVList(ws memdb.WatchSet, prefix string) (uint64, []*DirEntry, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableKVs)
	out, err := kvListTxn(tx, ws, prefix)
	return idx, out, err
}

func kvListTxn(tx *memdb.Txn, ws memdb.WatchSet, prefix string) ([]*DirEntry, error) {
	it, err := tx.Get(tableKVs, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("kv list: %w", err)
	}
	watch(ws, it.WatchCh())
	var out []*DirEntry
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*DirEntry))
	}
	return out, nil
}

// KVKeys returns the keys under prefix, each cut after the first separator
// past the prefix (when separator is not empty), deduplicated and sorted, as
// Consul's ?keys&separator.
func (s *Store) KVKeys(ws memdb.WatchSet, prefix, separator string) (uint64, []string, error) {
	idx, entries, err := s.KVList(ws, prefix)
	if err != nil {
		return 0, nil, err
	}
	var keys []string
	last := ""
	for _, e := range entries {
		k := e.Key
		if separator != "" {
			if i := strings.Index(k[len(prefix):], separator); i >= 0 {
				k = k[:len(prefix)+i+len(separator)]
			}
		}
		if k != last {
			keys = append(keys, k)
			last = k
		}
	}
	sort.Strings(keys)
	return idx, keys, nil
}

// ---- lock delay ----

// lockDelays holds, per key, until when a lock may not be acquired after a
// session holding it was invalidated (Consul's lock-delay). It lives in
// memory on each server, as in Consul: only the leader consults it, before a
// lock is proposed, and a new leader starts without it.
type lockDelays struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (d *lockDelays) set(key string, until time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.until == nil {
		d.until = map[string]time.Time{}
	}
	if until.After(d.until[key]) {
		d.until[key] = until
	}
}

// none reports whether no key is (or was lately) under a lock delay: the
// common case, which spares a write its decoding.
func (d *lockDelays) none() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	for key, until := range d.until {
		if !now.Before(until) {
			delete(d.until, key)
		}
	}
	return len(d.until) == 0
}

// delayed reports whether key is under a lock delay at now.
func (d *lockDelays) delayed(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.until[key]
	if !ok {
		return false
	}
	if !now.Before(until) {
		delete(d.until, key)
		return false
	}
	return true
}

// KVLockDelayed reports whether a lock on key must wait for a lock delay.
func (s *Store) KVLockDelayed(key string) bool { return s.delays.delayed(key, time.Now()) }

// AnyLockDelay reports whether any key is under a lock delay: when none is
// (the common case), a write need not be decoded to be checked.
func (s *Store) AnyLockDelay() bool { return !s.delays.none() }

// ---- writes (called by the FSM only) ----

// KVSApply applies a KV write at idx; false when its condition failed.
func (s *Store) KVSApply(idx uint64, req *KVSRequest) (bool, error) {
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	ok, err := kvsApplyTxn(tx, idx, req)
	if err != nil || !ok {
		return ok, err
	}
	tx.Commit()
	return true, nil
}

// KVSBatch applies KV writes in one state store transaction: a busy KV
// store pays for one commit and one round of watch notifications per batch
// rather than per write. A write whose condition fails, or that is refused,
// changes nothing before it fails, so sharing the transaction cannot leak
// half a write. Nothing is visible to readers until Commit.
type KVSBatch struct{ tx *memdb.Txn }

// KVSBatch starts a batch; the caller must Commit it and must not write the
// store otherwise until then (the FSM is the only writer).
func (s *Store) KVSBatch() *KVSBatch { return &KVSBatch{tx: s.db.Load().Txn(true)} }

// Apply applies one KV write at idx; false when its condition failed.
func (b *KVSBatch) Apply(idx uint64, req *KVSRequest) (bool, error) {
	return kvsApplyTxn(b.tx, idx, req)
}

// Commit makes the batch's writes visible.
func (b *KVSBatch) Commit() { b.tx.Commit() }

// SessionApply applies a session operation at idx.
func (s *Store) SessionApply(idx uint64, req *SessionRequest) error {
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	if err := sessionApplyTxn(tx, idx, req, &s.delays); err != nil {
		return err
	}
	tx.Commit()
	return nil
}

// TxnApply applies a transaction at idx: all of it, or, when its result has
// errors, none of it.
func (s *Store) TxnApply(idx uint64, req *TxnRequest) *TxnResult {
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	res := txnApplyTxn(tx, idx, req)
	if len(res.Errors) == 0 {
		tx.Commit()
	}
	return res
}
