package raftstore

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/beacon-dns/beacon/state"
)

// Every log entry is [type][encoding version][body]. Version 1 bodies are
// JSON; a later encoding gets a new version and the decoder keeps reading the
// old one, so logs and snapshots written by older binaries stay readable.
const encodingV1 = 1

// Encode serializes a command for the Raft log.
func Encode(t state.MessageType, msg any) ([]byte, error) {
	if req, ok := msg.(*state.KVSRequest); ok && t == state.KVSRequestType {
		return encodeKVS(req), nil
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", t, err)
	}
	buf := make([]byte, 0, len(body)+2)
	buf = append(buf, byte(t), encodingV1)
	return append(buf, body...), nil
}

var errShortEntry = errors.New("log entry shorter than its header")

// decodeHeader splits an entry into its type and a decoder for its body.
func decodeHeader(buf []byte) (state.MessageType, func(any) error, error) {
	if len(buf) < 2 {
		return 0, nil, errShortEntry
	}
	t, version, body := state.MessageType(buf[0]), buf[1], buf[2:]
	switch version {
	case encodingV1:
		return t, func(v any) error { return json.Unmarshal(body, v) }, nil
	case encodingBinaryKV:
		if t != state.KVSRequestType {
			return t, nil, fmt.Errorf("%s: binary KV encoding on another command", t)
		}
		return t, func(v any) error {
			req, ok := v.(*state.KVSRequest)
			if !ok {
				return fmt.Errorf("binary KV body decoded into %T", v)
			}
			return decodeKVS(body, req)
		}, nil
	}
	return t, nil, fmt.Errorf("%s: unknown encoding version %d (written by a newer beacon?)", t, version)
}
