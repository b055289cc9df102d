package state_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/go-memdb"
)

func kvApply(t *testing.T, s *state.Store, idx uint64, op state.KVOp, e state.DirEntry) bool {
	t.Helper()
	ok, err := s.KVSApply(idx, &state.KVSRequest{Op: op, DirEnt: e})
	if err != nil {
		t.Fatalf("KVSApply(%d, %s %s): %v", idx, op, e.Key, err)
	}
	return ok
}

func kvGet(t *testing.T, s *state.Store, key string) *state.DirEntry {
	t.Helper()
	_, e, err := s.KVGet(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustSession(t *testing.T, s *state.Store, idx uint64, sess state.Session) {
	t.Helper()
	if err := s.SessionApply(idx, &state.SessionRequest{Op: state.SessionCreate, Session: sess}); err != nil {
		t.Fatalf("creating session %s: %v", sess.ID, err)
	}
}

// nodeWithSerf registers node with a passing serfHealth check.
func nodeWithSerf(t *testing.T, s *state.Store, idx uint64, node string) {
	t.Helper()
	r := statetest.NodeReq(node, "10.0.0.1")
	r.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}
	statetest.MustRegister(t, s, idx, r)
}

func TestKVOperations(t *testing.T) {
	s := state.NewStore()
	if !kvApply(t, s, 1, state.KVSet, state.DirEntry{Key: "a", Value: []byte("1"), Flags: 3}) {
		t.Fatal("set reported a failed condition")
	}
	e := kvGet(t, s, "a")
	if e == nil || string(e.Value) != "1" || e.Flags != 3 || e.CreateIndex != 1 || e.ModifyIndex != 1 {
		t.Fatalf("after set: %+v", e)
	}
	// CAS: 0 creates only; otherwise the ModifyIndex must match.
	for _, tc := range []struct {
		idx, cas uint64
		key      string
		want     bool
	}{
		{2, 0, "a", false},
		{3, 0, "b", true},
		{4, 99, "a", false},
		{5, 1, "a", true},
		{6, 1, "a", false}, // stale now
		{7, 5, "nope", false},
	} {
		if got := kvApply(t, s, tc.idx, state.KVCAS, state.DirEntry{Key: tc.key, Value: []byte("x"), ModifyIndex: tc.cas}); got != tc.want {
			t.Errorf("cas %d on %s = %v, want %v", tc.cas, tc.key, got, tc.want)
		}
	}
	if e := kvGet(t, s, "a"); e.CreateIndex != 1 || e.ModifyIndex != 5 {
		t.Errorf("after cas: %+v; want CreateIndex 1, ModifyIndex 5", e)
	}
	if got := kvGet(t, s, "nope"); got != nil {
		t.Error("a failed cas created a key")
	}
	// Delete with cas, then the tree.
	if kvApply(t, s, 8, state.KVDeleteCAS, state.DirEntry{Key: "a", ModifyIndex: 1}) || kvGet(t, s, "a") == nil {
		t.Error("delete-cas with a stale index deleted")
	}
	if !kvApply(t, s, 9, state.KVDeleteCAS, state.DirEntry{Key: "a", ModifyIndex: 5}) || kvGet(t, s, "a") != nil {
		t.Error("delete-cas with the current index did not delete")
	}
	for i, k := range []string{"t/1", "t/2/x", "t/2/y", "u"} {
		kvApply(t, s, uint64(10+i), state.KVSet, state.DirEntry{Key: k})
	}
	_, keys, err := s.KVKeys(nil, "t/", "/")
	if err != nil || strings.Join(keys, " ") != "t/1 t/2/" {
		t.Errorf("keys t/ / = %v, %v", keys, err)
	}
	kvApply(t, s, 20, state.KVDeleteTree, state.DirEntry{Key: "t/"})
	_, left, _ := s.KVList(nil, "")
	if len(left) != 2 {
		t.Errorf("after delete-tree t/: %d keys, want b and u", len(left))
	}
	if idx, _, _ := s.KVGet(nil, "u"); idx != 20 {
		t.Errorf("KV index = %d, want the delete's 20", idx)
	}
	// Oversized values are refused whole.
	if _, err := s.KVSApply(21, &state.KVSRequest{Op: state.KVSet, DirEnt: state.DirEntry{Key: "big", Value: make([]byte, state.MaxKVValueBytes+1)}}); err == nil {
		t.Error("an oversized value was stored")
	}
}

func TestKVLocksAndSessions(t *testing.T) {
	s := state.NewStore()
	nodeWithSerf(t, s, 1, "n1")
	mustSession(t, s, 2, state.Session{ID: "s1", Node: "n1", LockDelay: time.Minute, NodeChecks: []string{state.SerfCheckID}})
	mustSession(t, s, 3, state.Session{ID: "s2", Node: "n1", Behavior: state.SessionDelete, NodeChecks: []string{state.SerfCheckID}})

	if _, err := s.KVSApply(4, &state.KVSRequest{Op: state.KVLock, DirEnt: state.DirEntry{Key: "l", Session: "ghost"}}); !errors.Is(err, state.ErrInvalidSession) {
		t.Errorf("lock with an unknown session = %v, want ErrInvalidSession", err)
	}
	if !kvApply(t, s, 5, state.KVLock, state.DirEntry{Key: "l", Value: []byte("1"), Session: "s1"}) {
		t.Fatal("first lock failed")
	}
	if e := kvGet(t, s, "l"); e.Session != "s1" || e.LockIndex != 1 {
		t.Errorf("locked entry = %+v", e)
	}
	if kvApply(t, s, 6, state.KVLock, state.DirEntry{Key: "l", Session: "s2"}) {
		t.Error("another session took a held lock")
	}
	if !kvApply(t, s, 7, state.KVLock, state.DirEntry{Key: "l", Value: []byte("2"), Session: "s1"}) {
		t.Error("the holder could not update its lock")
	}
	// A plain set keeps the lock.
	kvApply(t, s, 8, state.KVSet, state.DirEntry{Key: "l", Value: []byte("3")})
	if e := kvGet(t, s, "l"); e.Session != "s1" || e.LockIndex != 1 || string(e.Value) != "3" {
		t.Errorf("after a set on a locked key: %+v", e)
	}
	if kvApply(t, s, 9, state.KVUnlock, state.DirEntry{Key: "l", Session: "s2"}) {
		t.Error("a non-holder released the lock")
	}
	if !kvApply(t, s, 10, state.KVUnlock, state.DirEntry{Key: "l", Value: []byte("4"), Session: "s1"}) {
		t.Error("the holder could not release")
	}
	if kvApply(t, s, 11, state.KVLock, state.DirEntry{Key: "l", Session: "s2"}); kvGet(t, s, "l").LockIndex != 2 {
		t.Errorf("a new holder's LockIndex = %d, want 2", kvGet(t, s, "l").LockIndex)
	}
	if s.KVLockDelayed("l") {
		t.Error("an explicit release set a lock delay")
	}

	// s1 takes another key; the node's serfHealth turns critical: both
	// sessions go, s1's key is released with the lock delay, s2's (delete
	// behaviour) deleted.
	kvApply(t, s, 12, state.KVLock, state.DirEntry{Key: "m", Session: "s1"})
	ws := memdb.NewWatchSet()
	if _, _, err := s.KVGet(ws, "m"); err != nil {
		t.Fatal(err)
	}
	statetest.MustRegister(t, s, 13, &state.RegisterRequest{Node: "n1", SkipNodeUpdate: true,
		Check: &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthCritical}})
	if ws.Watch(time.After(time.Second)) {
		t.Error("the watch on a released key did not fire")
	}
	if e := kvGet(t, s, "m"); e == nil || e.Session != "" || e.ModifyIndex != 13 {
		t.Errorf("s1's key after the invalidation = %+v; want released at 13", e)
	}
	if e := kvGet(t, s, "l"); e != nil {
		t.Errorf("s2's key after the invalidation = %+v; want deleted (delete behaviour)", e)
	}
	_, all, _ := s.Sessions(nil, "")
	if len(all) != 0 {
		t.Errorf("sessions after their check failed: %v", all)
	}
	if !s.KVLockDelayed("m") {
		t.Error("no lock delay on a key released by an invalidated session")
	}

	// A session cannot be created on a critical check, nor on a missing
	// node or check.
	for _, sess := range []state.Session{
		{ID: "s3", Node: "n1", NodeChecks: []string{state.SerfCheckID}},
		{ID: "s4", Node: "ghost"},
		{ID: "s5", Node: "n1", NodeChecks: []string{"nope"}},
		{ID: "s6", Node: "n1", TTL: "1s"},
		{ID: "s7", Node: "n1", Behavior: "explode"},
	} {
		if err := s.SessionApply(20, &state.SessionRequest{Op: state.SessionCreate, Session: sess}); err == nil {
			t.Errorf("session %+v was created", sess)
		}
	}
	// Deregistering the node invalidates what is left.
	statetest.MustRegister(t, s, 21, &state.RegisterRequest{Node: "n1", SkipNodeUpdate: true,
		Check: &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}})
	mustSession(t, s, 22, state.Session{ID: "s8", Node: "n1", NodeChecks: []string{}})
	statetest.MustDeregister(t, s, 23, &state.DeregisterRequest{Node: "n1"})
	if _, sess, _ := s.GetSession(nil, "s8"); sess != nil {
		t.Error("a session outlived its node")
	}
	if err := s.SessionApply(24, &state.SessionRequest{Op: state.SessionRenew, Session: state.Session{ID: "s8"}}); !errors.Is(err, state.ErrSessionNotFound) {
		t.Errorf("renew of a destroyed session = %v, want ErrSessionNotFound", err)
	}
}

func TestTxnAllOrNothing(t *testing.T) {
	s := state.NewStore()
	kvApply(t, s, 1, state.KVSet, state.DirEntry{Key: "a", Value: []byte("1")})
	res := s.TxnApply(2, &state.TxnRequest{Ops: []state.TxnOp{
		{KV: &state.TxnKVOp{Verb: state.KVSet, Key: "b", Value: []byte("2")}},
		{KV: &state.TxnKVOp{Verb: state.KVCheckIndex, Key: "a", Index: 99}},
		{KV: &state.TxnKVOp{Verb: state.KVGet, Key: "missing"}},
	}})
	if len(res.Errors) != 2 || res.Errors[0].OpIndex != 1 || res.Errors[1].OpIndex != 2 || res.Results != nil {
		t.Errorf("failing txn = %+v", res)
	}
	if kvGet(t, s, "b") != nil {
		t.Error("a failed transaction kept its write")
	}
	res = s.TxnApply(3, &state.TxnRequest{Ops: []state.TxnOp{
		{KV: &state.TxnKVOp{Verb: state.KVSet, Key: "b", Value: []byte("2")}},
		{KV: &state.TxnKVOp{Verb: state.KVCheckIndex, Key: "a", Index: 1}},
		{KV: &state.TxnKVOp{Verb: state.KVCAS, Key: "a", Value: []byte("1b"), Index: 1}},
		{KV: &state.TxnKVOp{Verb: state.KVGet, Key: "a"}},
		{KV: &state.TxnKVOp{Verb: state.KVDelete, Key: "nope"}},
	}})
	if len(res.Errors) != 0 || len(res.Results) != 4 || string(res.Results[3].KV.Value) != "1b" || res.Results[0].KV.Value != nil {
		t.Errorf("txn = %+v", res)
	}
	if kvGet(t, s, "b") == nil || kvGet(t, s, "a").ModifyIndex != 3 {
		t.Error("a successful transaction was not applied")
	}
	ro := &state.TxnRequest{Ops: []state.TxnOp{{KV: &state.TxnKVOp{Verb: state.KVGetTree, Key: ""}}}}
	if !ro.ReadOnly() {
		t.Error("a get-tree transaction is not read-only")
	}
	if idx, res := s.TxnRead(ro); idx != 3 || len(res.Results) != 2 {
		t.Errorf("read-only txn = %d, %+v", idx, res)
	}
}
