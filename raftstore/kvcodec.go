package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/beacon-dns/beacon/state"
)

// encodingBinaryKV is the version of KV write bodies in a compact binary
// form: KV writes are the busiest entries, and decoding JSON (with base64
// values) on every server cost more than the rest of applying them.
//
// The body is, in order: Datacenter, Op, Key as length-prefixed strings;
// Flags; a byte saying whether Value is present (nil and empty differ: a
// nil value reads back as null); Value as length-prefixed bytes when
// present; Session; LockIndex, CreateIndex, ModifyIndex. Lengths and
// numbers are uvarints.
const encodingBinaryKV = 2

func encodeKVS(req *state.KVSRequest) []byte {
	e := &req.DirEnt
	n := 2 + 5*binary.MaxVarintLen64 + len(req.Datacenter) + len(req.Op) + len(e.Key) + len(e.Value) + len(e.Session) +
		5*binary.MaxVarintLen64 + 1
	buf := make([]byte, 0, n)
	buf = append(buf, byte(state.KVSRequestType), encodingBinaryKV)
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	str(req.Datacenter)
	str(string(req.Op))
	str(e.Key)
	buf = binary.AppendUvarint(buf, e.Flags)
	if e.Value == nil {
		buf = append(buf, 0)
	} else {
		buf = append(buf, 1)
		buf = binary.AppendUvarint(buf, uint64(len(e.Value)))
		buf = append(buf, e.Value...)
	}
	str(e.Session)
	buf = binary.AppendUvarint(buf, e.LockIndex)
	buf = binary.AppendUvarint(buf, e.CreateIndex)
	buf = binary.AppendUvarint(buf, e.ModifyIndex)
	return buf
}

var errKVSBody = errors.New("malformed binary KV body")

// kvsReader reads a binary KV body; the first failure sticks.
type kvsReader struct {
	b   []byte
	err error
}

func (r *kvsReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errKVSBody
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *kvsReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errKVSBody
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *kvsReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errKVSBody
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// decodeKVS decodes a binary KV body into req. The value is copied: the
// entry's buffer belongs to Raft.
func decodeKVS(body []byte, req *state.KVSRequest) error {
	r := &kvsReader{b: body}
	*req = state.KVSRequest{}
	req.Datacenter = string(r.bytes())
	req.Op = state.KVOp(r.bytes())
	e := &req.DirEnt
	e.Key = string(r.bytes())
	e.Flags = r.uvarint()
	switch r.byte() {
	case 0:
	case 1:
		e.Value = append([]byte{}, r.bytes()...)
	default:
		if r.err == nil {
			r.err = errKVSBody
		}
	}
	e.Session = string(r.bytes())
	e.LockIndex = r.uvarint()
	e.CreateIndex = r.uvarint()
	e.ModifyIndex = r.uvarint()
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the last field", errKVSBody, len(r.b))
	}
	if r.err == nil {
		// Only UTF-8, as in the JSON encoding: the state's snapshot is JSON,
		// so a key that is not would restore as another key on the
		// replicas that start from a snapshot.
		for _, f := range [...]struct{ name, v string }{
			{"Datacenter", req.Datacenter}, {"Op", string(req.Op)}, {"Key", e.Key}, {"Session", e.Session},
		} {
			if !utf8.ValidString(f.v) {
				return fmt.Errorf("%w: %s is not UTF-8", errKVSBody, f.name)
			}
		}
	}
	return r.err
}
