package raftstore

import (
	"errors"
	"reflect"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/raft"
)

func TestKVSBinaryEncoding(t *testing.T) {
	reqs := []*state.KVSRequest{
		{Datacenter: "dc1", Op: state.KVSet, DirEnt: state.DirEntry{Key: "a/b", Value: []byte("v"), Flags: 42}},
		{Op: state.KVSet, DirEnt: state.DirEntry{Key: "empty", Value: []byte{}}},
		{Op: state.KVSet, DirEnt: state.DirEntry{Key: "nil"}},
		{Datacenter: "dc2", Op: state.KVLock, DirEnt: state.DirEntry{Key: "l", Value: make([]byte, 70000), Session: "s-1",
			LockIndex: 1 << 40, CreateIndex: 3, ModifyIndex: 1<<64 - 1}},
		{Op: state.KVDeleteTree, DirEnt: state.DirEntry{Key: ""}},
	}
	for _, req := range reqs {
		buf, err := Encode(state.KVSRequestType, req)
		if err != nil {
			t.Fatal(err)
		}
		if buf[0] != byte(state.KVSRequestType) || buf[1] != encodingBinaryKV {
			t.Fatalf("header %v, want the binary KV encoding", buf[:2])
		}
		typ, decode, err := decodeHeader(buf)
		if err != nil || typ != state.KVSRequestType {
			t.Fatalf("decodeHeader: %v %v", typ, err)
		}
		var back state.KVSRequest
		if err := decode(&back); err != nil {
			t.Fatalf("decoding %s: %v", req.DirEnt.Key, err)
		}
		if !reflect.DeepEqual(&back, req) {
			t.Errorf("round trip of %q: got %+v, want %+v", req.DirEnt.Key, back.DirEnt, req.DirEnt)
		}
		if (back.DirEnt.Value == nil) != (req.DirEnt.Value == nil) {
			t.Errorf("%q: nil value %v after the round trip, %v before", req.DirEnt.Key, back.DirEnt.Value == nil, req.DirEnt.Value == nil)
		}
		// Every truncation and any trailing byte is an error, never a
		// different request.
		for n := 2; n < len(buf); n++ {
			if err := decodeKVS(buf[2:n], &back); !errors.Is(err, errKVSBody) {
				t.Fatalf("%q cut to %d bytes: %v, want errKVSBody", req.DirEnt.Key, n, err)
			}
		}
		if err := decodeKVS(append(buf[2:len(buf):len(buf)], 0), &back); !errors.Is(err, errKVSBody) {
			t.Errorf("%q with a trailing byte: %v, want errKVSBody", req.DirEnt.Key, err)
		}
	}
	// A binary body that does not decode is refused by the FSM, which
	// changes nothing.
	s := state.NewStore()
	f := NewFSM(s, nil)
	resp := f.Apply(&raft.Log{Index: 5, Type: raft.LogCommand, Data: []byte{byte(state.KVSRequestType), encodingBinaryKV, 0xff}})
	if err, ok := resp.(error); !ok || !errors.Is(err, errKVSBody) {
		t.Errorf("Apply of a garbled body answered %v, want errKVSBody", resp)
	}
	if got := statetest.Tables(t, s); len(got) != 0 {
		t.Errorf("store changed: %v", got)
	}
}
