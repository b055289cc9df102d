package gossip

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Datacenter: "dc1", NodeID: "0b6a3f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Role: RoleServer, RPCAddr: "10.0.0.1:8300", BootstrapExpect: 3},
		{Datacenter: "dc1", NodeID: "0b6a3f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Role: RoleServer, RPCAddr: "[2001:db8::1]:8300"},
		{Datacenter: "eu-west", NodeID: "id", Role: RoleClient},
	} {
		tags := localTags(&cfg)
		b, err := encodeMeta(tags)
		if err != nil {
			t.Fatalf("encode %v: %v", tags, err)
		}
		if len(b) > 100 {
			t.Errorf("metadata of %v is %d bytes; expected it compact", tags, len(b))
		}
		got, err := decodeMeta(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		if !maps.Equal(got, tags) {
			t.Errorf("round trip: got %v, want %v", got, tags)
		}
		// Deterministic: same tags, same bytes (memberlist compares metadata
		// to decide whether a node was updated).
		again, _ := encodeMeta(maps.Clone(tags))
		if !bytes.Equal(again, b) {
			t.Errorf("encoding not deterministic: %x vs %x", b, again)
		}
		m, leaving, err := memberFromNode(&memberlist.Node{Name: "n", Addr: net.IPv4(10, 0, 0, 2), Port: 8301, Meta: b})
		if err != nil || leaving {
			t.Fatal(err)
		}
		if m.Role != cfg.Role || m.Datacenter != cfg.Datacenter || m.ID != cfg.NodeID ||
			m.RPCAddr != cfg.RPCAddr || m.BootstrapExpect != cfg.BootstrapExpect || m.Addr != "10.0.0.2" {
			t.Errorf("parsed %+v from %+v", m, cfg)
		}
	}
}

func TestEncodeMetaLimits(t *testing.T) {
	if _, err := encodeMeta(map[string]string{"big": strings.Repeat("x", memberlist.MetaMaxSize)}); err == nil {
		t.Error("metadata over the limit encoded")
	}
	if _, err := encodeMeta(map[string]string{"": "x"}); err == nil {
		t.Error("empty key encoded")
	}
	if _, err := encodeMeta(map[string]string{"k": "\xff"}); err == nil {
		t.Error("invalid UTF-8 encoded")
	}
	// NewLAN refuses up front what memberlist would panic on.
	cfg := testConfig("n1", RoleServer)
	cfg.RPCAddr = "127.0.0.1:" + strings.Repeat("1", 600)
	if p, err := NewLAN(cfg); err == nil {
		p.Shutdown()
		t.Fatal("NewLAN accepted metadata over the limit")
	}
}

func TestDecodeMetaRejectsGarbage(t *testing.T) {
	valid, err := encodeMeta(map[string]string{"dc": "dc1", "role": "node"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"nil":                  nil,
		"empty":                {},
		"unknown format":       {0x01, 1, 'a', 1, 'b'},
		"msgpack map":          {0x81, 0xa2, 'd', 'c', 0xa3, 'd', 'c', '1'},
		"serf tags":            {0xff, 0x81, 0xa2, 'd', 'c', 0xa3, 'd', 'c', '1'},
		"key length overflows": {metaFormat1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"key longer than rest": {metaFormat1, 10, 'a'},
		"missing value":        {metaFormat1, 1, 'a'},
		"value longer":         {metaFormat1, 1, 'a', 5, 'b'},
		"truncated varint":     {metaFormat1, 0x80},
		"empty key":            {metaFormat1, 0, 1, 'x'},
		"duplicate key":        {metaFormat1, 1, 'a', 1, 'x', 1, 'a', 1, 'y'},
		"invalid utf8 key":     {metaFormat1, 1, 0xff, 1, 'x'},
		"invalid utf8 value":   {metaFormat1, 1, 'a', 1, 0xfe},
		"truncated valid":      valid[:len(valid)-1],
		"trailing byte":        append(bytes.Clone(valid), 7),
		"over the size limit":  append([]byte{metaFormat1, 1, 'a'}, bytes.Repeat([]byte{'x'}, 600)...),
	}
	many := []byte{metaFormat1}
	for i := 0; i <= maxTags; i++ {
		many = append(many, 2, 'k', byte('!'+i), 0)
	}
	cases["too many tags"] = many
	for name, b := range cases {
		tags, err := decodeMeta(b)
		if err == nil {
			t.Errorf("%s: %x decoded to %v", name, b, tags)
		}
		// A member with such metadata is kept, with empty tags.
		m, _, err := memberFromNode(&memberlist.Node{Name: "x", Addr: net.IPv4(127, 0, 0, 1), Meta: b})
		if err == nil || m.Tags == nil || len(m.Tags) != 0 || m.Role != "" || m.Name != "x" || m.Addr != "127.0.0.1" {
			t.Errorf("%s: member %+v, err %v", name, m, err)
		}
	}
	// Random bytes and random mutations of valid metadata: never a panic.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b []byte
		if rng.IntN(2) == 0 {
			b = make([]byte, rng.IntN(64))
			for i := range b {
				b[i] = byte(rng.UintN(256))
			}
		} else {
			b = bytes.Clone(valid)
			for range 1 + rng.IntN(3) {
				b[rng.IntN(len(b))] = byte(rng.UintN(256))
			}
		}
		_, _ = decodeMeta(b)
	}
	// Malformed values of known tags parse to zero, not to errors.
	b, _ := encodeMeta(map[string]string{TagRole: "king", TagExpect: "three", TagDC: "dc1"})
	m, _, err := memberFromNode(&memberlist.Node{Name: "y", Meta: b})
	if err != nil || m.Role != "" || m.BootstrapExpect != 0 || m.Datacenter != "dc1" || m.Addr != "" {
		t.Errorf("malformed tag values: %+v, %v", m, err)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, tags := range []map[string]string{
		{},
		{"dc": "dc1", "role": "consul", "rpc_addr": "10.0.0.1:8300", "expect": "3", "id": "x", "vsn": "1"},
	} {
		b, err := encodeMeta(tags)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{metaFormat1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, err := decodeMeta(b)
		if err != nil {
			return
		}
		// What decodes re-encodes (keys in any order on the wire) and
		// decodes back to the same tags.
		again, err := encodeMeta(tags)
		if err != nil {
			t.Fatalf("decoded %v from %x but cannot encode it: %v", tags, b, err)
		}
		back, err := decodeMeta(again)
		if err != nil || !maps.Equal(back, tags) {
			t.Fatalf("%x decoded to %v, re-encoded to %x, decoded to %v (%v)", b, tags, again, back, err)
		}
	})
}
