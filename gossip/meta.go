package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// Node metadata is a small key/value list (the tags), carried in every alive
// message memberlist gossips, so it is limited to memberlist.MetaMaxSize (512
// bytes) and encoded compactly:
//
//	metaFormat1 (1 byte)
//	then per tag, sorted by key: uvarint len(key), key, uvarint len(value), value
//
// The decoder trusts nothing: every length is checked against what is left,
// keys must be non-empty, unique and, like values, valid UTF-8.

// metaFormat1 is the first byte of metadata in this format. Another value
// means a format this version does not know.
const metaFormat1 byte = 0xb1

// Tag keys, as Consul names them where it has them.
const (
	TagRole    = "role"     // "consul" for servers, "node" for clients
	TagDC      = "dc"       // datacenter
	TagID      = "id"       // node ID
	TagRPCAddr = "rpc_addr" // servers: where they take Raft and RPC
	TagExpect  = "expect"   // servers started with bootstrap_expect
	TagVsn     = "vsn"      // beacon's gossip protocol version

	// tagLeaving is a member's leave intent, advertised by Leave before
	// memberlist's own leave message: memberlist reports a graceful leave
	// and a failure alike (NotifyLeave, with Node.State not set), so this
	// is how the others tell them apart, as serf does with its intents.
	tagLeaving = "leaving"
)

// Values of TagRole.
const (
	roleTagServer = "consul"
	roleTagClient = "node"
)

// ProtocolVersion is advertised in TagVsn. Raise it when what members expect
// of each other changes.
const ProtocolVersion = 1

// maxTags bounds the number of tags a decoder accepts. Each tag takes at
// least 3 bytes, so 512 bytes could not hold many more anyway.
const maxTags = 64

// encodeMeta encodes tags. It fails when the result would not fit in
// memberlist's limit, which memberlist would otherwise answer with a panic.
func encodeMeta(tags map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf := []byte{metaFormat1}
	for _, k := range keys {
		v := tags[k]
		if k == "" {
			return nil, errors.New("empty tag key")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("tag %q: not valid UTF-8", k)
		}
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
	}
	if len(buf) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes, over memberlist's limit of %d (tags %v)",
			len(buf), memberlist.MetaMaxSize, tags)
	}
	return buf, nil
}

// decodeMeta decodes what encodeMeta produced. Any other input gives an
// error, never a panic.
func decodeMeta(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, errors.New("no metadata")
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("metadata is %d bytes, over the limit of %d", len(b), memberlist.MetaMaxSize)
	}
	if b[0] != metaFormat1 {
		return nil, fmt.Errorf("unknown metadata format 0x%02x", b[0])
	}
	rest := b[1:]
	field := func(what string) (string, error) {
		n, size := binary.Uvarint(rest)
		if size <= 0 {
			return "", fmt.Errorf("bad length of %s", what)
		}
		rest = rest[size:]
		if n > uint64(len(rest)) {
			return "", fmt.Errorf("%s of %d bytes but only %d left", what, n, len(rest))
		}
		s := string(rest[:n])
		rest = rest[n:]
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("%s is not valid UTF-8", what)
		}
		return s, nil
	}
	tags := make(map[string]string)
	for len(rest) > 0 {
		if len(tags) == maxTags {
			return nil, fmt.Errorf("more than %d tags", maxTags)
		}
		k, err := field("tag key")
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, errors.New("empty tag key")
		}
		if _, dup := tags[k]; dup {
			return nil, fmt.Errorf("tag %q given twice", k)
		}
		v, err := field(fmt.Sprintf("value of tag %q", k))
		if err != nil {
			return nil, err
		}
		tags[k] = v
	}
	return tags, nil
}
