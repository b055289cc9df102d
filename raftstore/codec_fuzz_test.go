package raftstore

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/coordinate"
)

// Fuzz targets for the Raft command decoders: the entry header, the binary
// KV body, and the FSM's reading of whatever bytes a log entry holds. The
// FSM panics on an entry it cannot read (FSM.Apply says why), so these
// drive applyCommand and ApplyBatch's decoding, where an unreadable entry
// is an error, and hold the store to "a refused command changes nothing".

// fuzzSession is the session the fuzz store's lock is held by.
const fuzzSession = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"

// fuzzQueryID is the prepared query the fuzz store holds.
const fuzzQueryID = "8f246b77-f3e1-ff88-5b48-8ec93abf3e05"

// fuzzCommands are valid commands of every type, against fuzzStore's
// contents: the seeds the fuzzer mutates.
func fuzzCommands() []struct {
	typ state.MessageType
	msg any
} {
	kv := func(op state.KVOp, e state.DirEntry) *state.KVSRequest {
		return &state.KVSRequest{Datacenter: "dc1", Op: op, DirEnt: e}
	}
	return []struct {
		typ state.MessageType
		msg any
	}{
		{state.RegisterRequestType, &state.RegisterRequest{Datacenter: "dc1", ID: "0e5e1d2a-4bd7-4c2f-9d1b-4d5c6e7f8a9b",
			Node: "n2", Address: "10.0.0.2", NodeMeta: map[string]string{"rack": "r2"},
			Service: &state.Service{ID: "db-1", Service: "db", Port: 5432, Tags: []string{"primary"}},
			Checks:  []*state.HealthCheck{{CheckID: "db", Name: "db", ServiceID: "db-1", Status: state.HealthPassing}}}},
		{state.RegisterRequestType, &state.RegisterRequest{Node: "n1", SkipNodeUpdate: true,
			Check: &state.HealthCheck{CheckID: state.SerfCheckID, Status: state.HealthCritical}}},
		{state.DeregisterRequestType, &state.DeregisterRequest{Node: "n1", ServiceID: "web-1"}},
		{state.DeregisterRequestType, &state.DeregisterRequest{Node: "n1"}},
		{state.KVSRequestType, kv(state.KVSet, state.DirEntry{Key: "a", Value: []byte("1"), Flags: 7})},
		{state.KVSRequestType, kv(state.KVCAS, state.DirEntry{Key: "a", Value: []byte("2"), ModifyIndex: 4})},
		{state.KVSRequestType, kv(state.KVLock, state.DirEntry{Key: "lock", Session: fuzzSession})},
		{state.KVSRequestType, kv(state.KVUnlock, state.DirEntry{Key: "lock", Session: fuzzSession})},
		{state.KVSRequestType, kv(state.KVDeleteCAS, state.DirEntry{Key: "a", ModifyIndex: 4})},
		{state.KVSRequestType, kv(state.KVDeleteTree, state.DirEntry{Key: "c/"})},
		{state.SessionRequestType, &state.SessionRequest{Op: state.SessionCreate,
			Session: state.Session{ID: "5f1d7c1e-0b0e-4a3b-8f5e-1c2d3e4f5a6b", Node: "n1", TTL: "15s", Behavior: state.SessionDelete}}},
		{state.SessionRequestType, &state.SessionRequest{Op: state.SessionDestroy, Session: state.Session{ID: fuzzSession}}},
		{state.TxnRequestType, &state.TxnRequest{Ops: []state.TxnOp{
			{KV: &state.TxnKVOp{Verb: state.KVCheckIndex, Key: "a", Index: 4}},
			{KV: &state.TxnKVOp{Verb: state.KVSet, Key: "t", Value: []byte("5")}},
			{KV: &state.TxnKVOp{Verb: state.KVGetTree, Key: "c/"}}}}},
		{state.CoordinateBatchUpdateType, state.Coordinates{
			{Node: "n1", Coord: &coordinate.Coordinate{Vec: []float64{0.001, 0, 0, 0, 0, 0, 0, -0.002}, Error: 0.4, Height: 1e-5}},
			{Node: "n2", Segment: "alpha", Coord: coordinate.NewCoordinate(coordinate.DefaultConfig())}}},
		{state.PreparedQueryRequestType, &state.PreparedQueryRequest{Datacenter: "dc1", Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Name: "web-primary", Session: fuzzSession, Token: "captured",
				Service: state.ServiceQuery{Service: "web", Tags: []string{"v1", "!v2"}, OnlyPassing: true,
					NodeMeta: map[string]string{"rack": "r1"}, Failover: state.QueryFailoverOptions{NearestN: 2, Datacenters: []string{"dc2"}}},
				DNS: state.QueryDNSOptions{TTL: "10s"}}}},
		{state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", Name: "geo-",
				Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch, Regexp: `^geo-(\w+)-(\w+)$`, RemoveEmptyTags: true},
				Service:  state.ServiceQuery{Service: "${match(1)}", Tags: []string{"${match(2)}"}}}}},
		{state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryUpdate,
			Query: &state.PreparedQuery{ID: fuzzQueryID, Name: "web-any", Token: state.RedactedToken, Service: state.ServiceQuery{Service: "web"}}}},
		{state.PreparedQueryRequestType, &state.PreparedQueryRequest{Op: state.PreparedQueryDelete, Query: &state.PreparedQuery{ID: fuzzQueryID}}},
	}
}

// fuzzStore returns a small store with a node, a service, its check, a
// session holding a lock, a few keys and a prepared query, written at
// indexes 1 to 7.
func fuzzStore(t *testing.T) *state.Store {
	t.Helper()
	s := state.NewStore()
	reg := statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, []string{"v1"},
		&state.HealthCheck{CheckID: "web", Name: "web", ServiceID: "web-1", Status: state.HealthPassing})
	reg.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}
	statetest.MustRegister(t, s, 1, reg)
	if err := s.SessionApply(2, &state.SessionRequest{Op: state.SessionCreate,
		Session: state.Session{ID: fuzzSession, Node: "n1", Behavior: state.SessionRelease}}); err != nil {
		t.Fatal(err)
	}
	for i, req := range []*state.KVSRequest{
		{Op: state.KVSet, DirEnt: state.DirEntry{Key: "a", Value: []byte("0")}},
		{Op: state.KVLock, DirEnt: state.DirEntry{Key: "lock", Session: fuzzSession}},
		{Op: state.KVSet, DirEnt: state.DirEntry{Key: "c/1", Value: []byte{}}},
		{Op: state.KVSet, DirEnt: state.DirEntry{Key: "c/2"}},
	} {
		if ok, err := s.KVSApply(uint64(3+i), req); !ok || err != nil {
			t.Fatalf("KVSApply(%s): %v %v", req.DirEnt.Key, ok, err)
		}
	}
	if err := s.PreparedQueryApply(7, &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
		Query: &state.PreparedQuery{ID: fuzzQueryID, Name: "web", Service: state.ServiceQuery{Service: "web"}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzDecodeKVS: any body is errKVSBody or a request that encodes back to
// a body decoding to the same request (nil and empty values kept apart),
// whose value does not share the entry's buffer.
func FuzzDecodeKVS(f *testing.F) {
	for _, c := range fuzzCommands() {
		if req, ok := c.msg.(*state.KVSRequest); ok {
			f.Add(encodeKVS(req)[2:])
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req state.KVSRequest
		if err := decodeKVS(body, &req); err != nil {
			if !errors.Is(err, errKVSBody) {
				t.Fatalf("decodeKVS: %v, want errKVSBody", err)
			}
			return
		}
		enc := encodeKVS(&req)
		if len(enc)-2 > len(body) {
			t.Errorf("re-encoded body is %d bytes, longer than the %d decoded", len(enc)-2, len(body))
		}
		var back state.KVSRequest
		if err := decodeKVS(enc[2:], &back); err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", req, err)
		}
		if !reflect.DeepEqual(back, req) || (back.DirEnt.Value == nil) != (req.DirEnt.Value == nil) {
			t.Fatalf("round trip changed the request:\nfirst  %+v\nsecond %+v", req, back)
		}
		value := bytes.Clone(req.DirEnt.Value)
		for i := range body {
			body[i] ^= 0xff
		}
		if !bytes.Equal(req.DirEnt.Value, value) {
			t.Fatal("the decoded value shares the entry's buffer")
		}
	})
}

// FuzzApplyCommand: any entry is unreadable (an error: Apply would stop the
// server rather than skip it) or applied; a command refused, a condition
// that failed and a transaction with errors change nothing, and whatever was
// applied survives a snapshot round trip.
func FuzzApplyCommand(f *testing.F) {
	for _, c := range fuzzCommands() {
		buf, err := Encode(c.typ, c.msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzStore(t)
		fsm := NewFSM(s, nil)
		before := statetest.Snapshot(t, s)
		resp, err := fsm.applyCommand(100, data)
		unchanged := err != nil
		switch r := resp.(type) {
		case nil:
		case error:
			unchanged = true
		case *state.CommandResult:
			if r.Txn != nil {
				unchanged = len(r.Txn.Errors) > 0
				if unchanged && len(r.Txn.Results) > 0 {
					t.Errorf("a failed transaction reports results: %+v", r.Txn)
				}
			} else {
				unchanged = !r.OK
			}
		default:
			t.Fatalf("applyCommand answered a %T", resp)
		}
		if err != nil && resp != nil {
			t.Errorf("applyCommand answered %v and failed with %v", resp, err)
		}
		after := statetest.Snapshot(t, s)
		if unchanged && !bytes.Equal(after, before) {
			t.Fatalf("answer %v (error %v), but the store changed:\nbefore %s\nafter  %s", resp, err, before, after)
		}
		statetest.AssertRestorable(t, s)
		statetest.AssertUTF8(t, s)
	})
}

// FuzzApplyBatch: entries applied as one batch (KV writes sharing a state
// store transaction) answer and leave the store exactly as the same entries
// applied one by one.
func FuzzApplyBatch(f *testing.F) {
	cmds := fuzzCommands()
	enc := make([][]byte, len(cmds))
	for i, c := range cmds {
		buf, err := Encode(c.typ, c.msg)
		if err != nil {
			f.Fatal(err)
		}
		enc[i] = buf
	}
	// KV writes around other commands, refused ones among them.
	f.Add(enc[4], enc[5], enc[6])
	f.Add(enc[6], enc[11], enc[6])
	f.Add(enc[8], enc[12], enc[9])
	f.Add(enc[7], enc[0], []byte{byte(state.KVSRequestType), encodingBinaryKV, 0xff})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		entries := [][]byte{a, b, c}
		one := fuzzStore(t)
		fsm := NewFSM(one, nil)
		var want []any
		for i, data := range entries {
			resp, err := fsm.applyCommand(uint64(100+i), data)
			if err != nil {
				return // unreadable: both paths stop the server
			}
			want = append(want, resp)
		}
		batched := fuzzStore(t)
		bfsm := NewFSM(batched, nil)
		logs := make([]*raft.Log, len(entries))
		for i, data := range entries {
			logs[i] = &raft.Log{Index: uint64(100 + i), Term: 1, Type: raft.LogCommand, Data: data}
		}
		got := bfsm.ApplyBatch(logs)
		for i := range entries {
			if !sameAnswer(got[i], want[i]) {
				t.Errorf("entry %d: batched answer %#v, one by one %#v", i, got[i], want[i])
			}
		}
		if g, w := statetest.Snapshot(t, batched), statetest.Snapshot(t, one); !bytes.Equal(g, w) {
			t.Fatalf("batched store differs:\nbatched    %s\none by one %s", g, w)
		}
		if last := logs[len(logs)-1].Index; bfsm.AppliedIndex() != last {
			t.Errorf("applied index %d after the batch, want %d", bfsm.AppliedIndex(), last)
		}
	})
}

// sameAnswer compares FSM answers: errors by message.
func sameAnswer(a, b any) bool {
	ea, aok := a.(error)
	eb, bok := b.(error)
	if aok || bok {
		return aok && bok && ea.Error() == eb.Error()
	}
	return reflect.DeepEqual(a, b)
}

// TestDecodeKVSNotUTF8: a binary KV body whose strings are not UTF-8 is
// malformed, and the FSM's answer to it changes nothing. Such a key used to
// be stored as it came, and restored from a snapshot as U+FFFD: replicas
// that restored one disagreed with those that applied the log (found by
// FuzzApplyCommand).
func TestDecodeKVSNotUTF8(t *testing.T) {
	for name, edit := range map[string]func(*state.KVSRequest){
		"Datacenter": func(r *state.KVSRequest) { r.Datacenter = "dc\xff" },
		"Op":         func(r *state.KVSRequest) { r.Op = "set\xc7" },
		"Key":        func(r *state.KVSRequest) { r.DirEnt.Key = "k\x83" },
		"Session":    func(r *state.KVSRequest) { r.DirEnt.Session = "\xed\xa0\x80" }, // a surrogate
	} {
		t.Run(name, func(t *testing.T) {
			req := &state.KVSRequest{Datacenter: "dc1", Op: state.KVSet, DirEnt: state.DirEntry{Key: "k", Value: []byte("\xff")}}
			edit(req)
			buf := encodeKVS(req)
			var back state.KVSRequest
			if err := decodeKVS(buf[2:], &back); !errors.Is(err, errKVSBody) || !strings.Contains(err.Error(), name) {
				t.Errorf("decodeKVS: %v, want errKVSBody naming %s", err, name)
			}
			s := fuzzStore(t)
			before := statetest.Snapshot(t, s)
			resp := NewFSM(s, nil).Apply(&raft.Log{Index: 100, Type: raft.LogCommand, Data: buf})
			if err, ok := resp.(error); !ok || !errors.Is(err, errKVSBody) {
				t.Errorf("Apply answered %v, want errKVSBody", resp)
			}
			if after := statetest.Snapshot(t, s); !bytes.Equal(after, before) {
				t.Errorf("store changed:\n%s", after)
			}
		})
	}
}

// TestApplyRegisterNullCheck: a registration whose checks hold a null is
// refused and changes nothing, even after its node and service were
// written in the same transaction. It used to panic the FSM, and with it
// every server applying the entry (found by the FuzzApplyCommand seed
// corpus; the API refuses such a body with a 400 before it reaches Raft).
func TestApplyRegisterNullCheck(t *testing.T) {
	s := fuzzStore(t)
	before := statetest.Snapshot(t, s)
	data := []byte(`{"Node":"n9","Address":"10.0.0.9","Service":{"ID":"x","Service":"x"},"Checks":[{"CheckID":"c"},null]}`)
	resp := NewFSM(s, nil).Apply(&raft.Log{Index: 100, Type: raft.LogCommand,
		Data: append([]byte{byte(state.RegisterRequestType), encodingV1}, data...)})
	if err, ok := resp.(error); !ok || !errors.Is(err, state.ErrInvalidRegistration) {
		t.Errorf("Apply answered %v, want ErrInvalidRegistration", resp)
	}
	if after := statetest.Snapshot(t, s); !bytes.Equal(after, before) {
		t.Errorf("store changed:\n%s", after)
	}
}
