package gossip

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func fakeNode(name string, meta []byte) *memberlist.Node {
	return &memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 9), Port: 1, Meta: meta}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func mustEncode(t testing.TB, typ byte, v any) []byte {
	t.Helper()
	b, err := encodeMessage(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// raw is a message of type typ with a JSON body given as text.
func raw(typ byte, body string) []byte { return append([]byte{typ}, body...) }

func TestMessagesRoundTrip(t *testing.T) {
	key := newKey(t)
	reqs := []wireRequest{
		{V: 1, ID: "abc", Origin: "n1", Op: opKeyringList},
		{V: 1, ID: "abc", Origin: "n1", Op: opKeyringInstall, Key: key},
		{V: 1, ID: "abc", Origin: "n1", Op: opKeyringUse, Key: key},
		{V: 1, ID: "abc", Origin: "n1", Op: opKeyringRemove, Key: key},
		{V: 1, ID: "abc", Origin: "n1", Op: opForceLeave, Node: "n2", Prune: true},
	}
	for _, r := range reqs {
		req, resp, err := decodeMessage(mustEncode(t, msgRequest, r))
		if err != nil || resp != nil || req == nil || *req != r {
			t.Errorf("%+v: %+v %+v %v", r, req, resp, err)
		}
	}
	r := wireResponse{V: 1, ID: "abc", From: "n2", OK: true, Keys: []string{key}, Primary: key}
	req, resp, err := decodeMessage(mustEncode(t, msgResponse, r))
	if err != nil || req != nil || resp == nil || resp.From != "n2" || !resp.OK || resp.Primary != key || len(resp.Keys) != 1 {
		t.Errorf("response: %+v %+v %v", req, resp, err)
	}
	// Unknown fields are ignored (a later version may add some).
	if _, _, err := decodeMessage(raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"keyring-list","later":[1]}`)); err != nil {
		t.Errorf("unknown field: %v", err)
	}
	// Answers are cut to what receivers take, on a rune boundary.
	long := truncateMessage(strings.Repeat("é", maxMessageLen))
	if len(long) > maxMessageLen || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "éé") {
		t.Errorf("truncated to %d bytes: %q…", len(long), long[:10])
	}
}

// badMessages are user messages a member must drop.
func badMessages(t *testing.T) map[string][]byte {
	key := newKey(t)
	many := make([]string, MaxKeyringKeys+1)
	for i := range many {
		many[i] = key
	}
	manyJSON, _ := json.Marshal(many)
	return map[string][]byte{
		"empty":              {},
		"type only":          {msgRequest},
		"unknown type":       raw(0x7f, `{"v":1}`),
		"not json":           raw(msgRequest, `{"v":1,`),
		"json array":         raw(msgRequest, `[1,2]`),
		"trailing garbage":   raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"keyring-list"} x`),
		"no version":         raw(msgRequest, `{"id":"x","origin":"o","op":"keyring-list"}`),
		"future version":     raw(msgRequest, `{"v":2,"id":"x","origin":"o","op":"keyring-list"}`),
		"no id":              raw(msgRequest, `{"v":1,"origin":"o","op":"keyring-list"}`),
		"no origin":          raw(msgRequest, `{"v":1,"id":"x","op":"keyring-list"}`),
		"long origin":        raw(msgRequest, `{"v":1,"id":"x","origin":"`+strings.Repeat("o", 300)+`","op":"keyring-list"}`),
		"unknown op":         raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"keyring-burn"}`),
		"wrong field type":   raw(msgRequest, `{"v":1,"id":7,"origin":"o","op":"keyring-list"}`),
		"install no key":     raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"keyring-install"}`),
		"install bad key":    raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"keyring-install","key":"abc"}`),
		"list with key":      raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"keyring-list","key":"`+key+`"}`),
		"force-leave nobody": raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"force-leave"}`),
		"response no from":   raw(msgResponse, `{"v":1,"id":"x","ok":true}`),
		"response bad key":   raw(msgResponse, `{"v":1,"id":"x","from":"f","ok":true,"keys":["abc"]}`),
		"too many keys":      raw(msgResponse, `{"v":1,"id":"x","from":"f","ok":true,"keys":`+string(manyJSON)+`}`),
		"stray primary":      raw(msgResponse, `{"v":1,"id":"x","from":"f","ok":true,"primary":"`+key+`"}`),
		"long message":       raw(msgResponse, `{"v":1,"id":"x","from":"f","msg":"`+strings.Repeat("m", maxMessageLen+1)+`"}`),
		"over the size limit": raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"keyring-list","pad":"`+
			strings.Repeat("p", maxMessageSize)+`"}`),
	}
}

func TestDecodeMessageRejectsGarbage(t *testing.T) {
	for name, b := range badMessages(t) {
		if req, resp, err := decodeMessage(b); err == nil {
			t.Errorf("%s: decoded to %+v %+v", name, req, resp)
		}
	}
	// Random bytes and mutations of valid messages: never a panic.
	valid := mustEncode(t, msgRequest, wireRequest{V: 1, ID: "abc", Origin: "n1", Op: opForceLeave, Node: "n2"})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var b []byte
		if rng.IntN(2) == 0 {
			b = make([]byte, rng.IntN(80))
			for i := range b {
				b[i] = byte(rng.UintN(256))
			}
		} else {
			b = bytes.Clone(valid)
			for range 1 + rng.IntN(3) {
				b[rng.IntN(len(b))] = byte(rng.UintN(256))
			}
		}
		_, _, _ = decodeMessage(b)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"keyring-list"}`))
	f.Add(raw(msgResponse, `{"v":1,"id":"x","from":"f","ok":true}`))
	f.Add(raw(msgRequest, `{"v":1,"id":"x","origin":"o","op":"force-leave","node":"n","prune":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, resp, err := decodeMessage(b)
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes the same.
		var again []byte
		if req != nil {
			again, err = encodeMessage(msgRequest, req)
		} else {
			again, err = encodeMessage(msgResponse, resp)
		}
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", b, err)
		}
		if _, _, err := decodeMessage(again); err != nil {
			t.Fatalf("%q re-encoded to %q, which does not decode: %v", b, again, err)
		}
	})
}

// Malformed and unwelcome user messages, given to the delegate as memberlist
// would and sent over a real connection, are dropped and change nothing.
func TestMalformedMessagesDropped(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	key := newKey(t)
	pools, _ := cluster(t, sink, encConfig(t, "a", RoleServer, key), encConfig(t, "b", RoleClient, key))
	a, b := pools[0], pools[1]
	const dropped = "dropping a malformed user message"

	bad := badMessages(t)
	d := &delegate{b}
	for _, m := range bad {
		d.NotifyMsg(m)
	}
	waitFor(t, 10*time.Second, "every malformed message to be dropped", func() bool {
		return sink.count(dropped) >= len(bad)
	})
	// Over a real connection too.
	before := sink.count(dropped)
	bNode := memberlist.Node{Name: "b", Addr: net.IPv4(127, 0, 0, 1), Port: b.LocalMember().Port}
	for _, m := range [][]byte{raw(msgRequest, `{"v":1,`), {0xff, 0x00}, raw(msgResponse, `{}`)} {
		if err := a.ml.SendReliable(&bNode, m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the messages sent to be dropped", func() bool { return sink.count(dropped) >= before+3 })

	// Well-formed but unwelcome: an install from a member that does not
	// exist, one that claims to be b itself. Neither is applied.
	k2 := newKey(t)
	for _, origin := range []string{"stranger", "b"} {
		d.NotifyMsg(mustEncode(t, msgRequest, wireRequest{V: 1, ID: "x", Origin: origin, Op: opKeyringInstall, Key: k2}))
	}
	waitFor(t, 10*time.Second, "the unwelcome requests to be dropped", func() bool {
		return sink.count("dropping a request from a member that is not alive here") >= 1 &&
			sink.count("dropping a request that claims to come from this member") >= 1
	})
	// An answer to no request is dropped.
	d.NotifyMsg(mustEncode(t, msgResponse, wireResponse{V: 1, ID: "nosuchrequest", From: "a", OK: true}))

	// Nothing changed, and the pool still works.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := a.KeyringList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, "list", r, 2, counts(key, 2), counts(key, 2))
	if aliveCount(a) != 2 || aliveCount(b) != 2 {
		t.Error("the pool fell apart")
	}
}
