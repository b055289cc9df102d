package gossip

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeUserEvent: what another member gossips under our prefix is
// either refused (an error that says so) or an event that encodes back to
// what decodes to the same event; matching it against an agent never
// panics.
func FuzzDecodeUserEvent(f *testing.F) {
	for _, ev := range []UserEvent{
		{ID: eventID(1), Name: "deploy", Version: 1},
		{ID: eventID(2), Name: "deploy", Payload: []byte("v1.2.3"), NodeFilter: "^web-", ServiceFilter: "api",
			TagFilter: "v[0-9]+", Version: 1},
		{ID: eventID(3), Name: "x", Payload: []byte{}, Version: 7},
	} {
		name, payload, err := encodeUserEvent(&ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(name[len(userEventPrefix):], payload)
	}
	f.Add("bad", []byte("not msgpack"))
	services := func() []LocalService {
		return []LocalService{{ID: "web-1", Name: "web", Tags: []string{"v2"}}, {ID: "api"}}
	}
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		ev, err := decodeUserEvent(name, payload)
		if err != nil {
			return
		}
		if err := validUUID(ev.ID); err != nil {
			if !errors.Is(err, ErrInvalidUserEvent) {
				t.Fatalf("validUUID: %v", err)
			}
			return
		}
		filters, err := compileFilters(&ev)
		if err != nil {
			if !errors.Is(err, ErrInvalidUserEvent) {
				t.Fatalf("compileFilters: %v", err)
			}
			return
		}
		filters.selects("web-7", services)
		serfName, enc, err := encodeUserEvent(&ev)
		if err != nil {
			t.Fatalf("encoding %+v: %v", ev, err)
		}
		back, err := decodeUserEvent(serfName[len(userEventPrefix):], enc)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", ev, err)
		}
		if !bytes.Equal(back.Payload, ev.Payload) {
			t.Fatalf("payload %q came back as %q", ev.Payload, back.Payload)
		}
		back.Payload, ev.Payload = nil, nil
		if !reflect.DeepEqual(back, ev) {
			t.Fatalf("round trip changed the event:\nfirst  %+v\nsecond %+v", ev, back)
		}
	})
}
