package raftstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/raft"
)

// TestFSMApplyBatchMatchesApply applies the same entries one by one and as
// one batch: the answers, the state, the applied index and the change feed
// must be the same, with failed and refused KV writes between good ones,
// other commands between KV writes and a configuration entry among them.
func TestFSMApplyBatchMatchesApply(t *testing.T) {
	sess := "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
	node := statetest.NodeReq("n1", "10.0.0.1")
	node.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}
	type cmd struct {
		typ state.MessageType
		msg any
	}
	kv := func(op state.KVOp, e state.DirEntry) cmd {
		return cmd{state.KVSRequestType, &state.KVSRequest{Op: op, DirEnt: e}}
	}
	cmds := []cmd{
		kv(state.KVSet, state.DirEntry{Key: "a", Value: []byte("1")}),
		{state.RegisterRequestType, node},
		kv(state.KVSet, state.DirEntry{Key: "b", Value: []byte("2")}),
		kv(state.KVCAS, state.DirEntry{Key: "a", Value: []byte("stale"), ModifyIndex: 99}), // refused
		kv(state.KVCAS, state.DirEntry{Key: "a", Value: []byte("3"), ModifyIndex: 1}),
		kv(state.KVSet, state.DirEntry{Key: "big", Value: make([]byte, state.MaxKVValueBytes+1)}), // an error
		kv(state.KVLock, state.DirEntry{Key: "lock", Value: []byte("x"), Session: sess}),          // no such session yet
		{state.SessionRequestType, &state.SessionRequest{Op: state.SessionCreate, Session: state.Session{ID: sess, Node: "n1", Behavior: state.SessionRelease}}},
		kv(state.KVLock, state.DirEntry{Key: "lock", Value: []byte("x"), Session: sess}),
		kv(state.KVSet, state.DirEntry{Key: "b", Value: []byte("4")}),
		kv(state.KVDeleteCAS, state.DirEntry{Key: "b", ModifyIndex: 3}), // refused: b was rewritten
		{state.TxnRequestType, &state.TxnRequest{Ops: []state.TxnOp{{KV: &state.TxnKVOp{Verb: state.KVSet, Key: "t", Value: []byte("5")}}}}},
		kv(state.KVSet, state.DirEntry{Key: "c/1", Value: []byte("6")}),
		kv(state.KVSet, state.DirEntry{Key: "c/2", Value: []byte("7")}),
		kv(state.KVDeleteTree, state.DirEntry{Key: "c/"}),
		{state.KVSRequestType, "not a request"}, // undecodable body
		kv(state.KVSet, state.DirEntry{Key: "d", Value: []byte("8")}),
	}
	var logs []*raft.Log
	for _, c := range cmds {
		buf, err := Encode(c.typ, c.msg)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Term: 1, Type: raft.LogCommand, Data: buf})
		if len(logs) == 6 {
			logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Term: 1, Type: raft.LogConfiguration})
		}
	}

	newFSM := func() *FSM {
		f := NewFSM(state.NewStore(), nil)
		f.feed = newChangeFeed(feedMaxEntries, feedMaxBytes)
		return f
	}
	one, batch := newFSM(), newFSM()
	var want []any
	for _, l := range logs {
		if l.Type != raft.LogCommand {
			want = append(want, nil)
			continue
		}
		want = append(want, one.Apply(l))
	}
	got := batch.ApplyBatch(logs)

	describe := func(v any) string {
		switch r := v.(type) {
		case error:
			return "error: " + r.Error()
		case *state.CommandResult:
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		return fmt.Sprintf("%v", v)
	}
	if len(got) != len(want) {
		t.Fatalf("%d answers for %d entries", len(got), len(want))
	}
	var errs, refused int
	for i := range want {
		if describe(got[i]) != describe(want[i]) {
			t.Errorf("entry %d: batch answered %s, one by one %s", logs[i].Index, describe(got[i]), describe(want[i]))
		}
		switch r := want[i].(type) {
		case error:
			errs++
		case *state.CommandResult:
			if r.Txn == nil && !r.OK {
				refused++
			}
		}
	}
	if errs < 3 || refused < 2 {
		t.Errorf("%d errors and %d refused writes, the test means at least 3 and 2", errs, refused)
	}

	dump := func(f *FSM) []byte {
		var b bytes.Buffer
		if err := f.store.Snapshot().Write(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if a, b := dump(one), dump(batch); !bytes.Equal(a, b) {
		t.Errorf("states differ:\none by one:\n%s\nbatch:\n%s", a, b)
	}
	last := logs[len(logs)-1].Index
	if one.AppliedIndex() != last || batch.AppliedIndex() != last {
		t.Errorf("applied index %d one by one, %d in a batch, want %d", one.AppliedIndex(), batch.AppliedIndex(), last)
	}
	feed := func(f *FSM) []feedEntry {
		out, ok, _ := f.feed.since(nil, 0, f.feed.gen, false, 100)
		if !ok {
			t.Fatal("feed lost its entries")
		}
		return out
	}
	if a, b := feed(one), feed(batch); !reflect.DeepEqual(a, b) || len(a) != len(cmds) {
		t.Errorf("feeds differ or miss commands: %d entries one by one, %d in a batch, %d commands", len(a), len(b), len(cmds))
	}
}
