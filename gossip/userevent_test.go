package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// eventID is a UUID-shaped ID numbered n.
func eventID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", n) }

var nextEventID atomic.Int64

// newEvent is an event named name with a fresh ID.
func newEvent(name string) *UserEvent {
	return &UserEvent{ID: eventID(int(nextEventID.Add(1))), Name: name}
}

// keptNames are the names of the events p kept, oldest first.
func keptNames(p *Pool) []string {
	evs, _ := p.UserEvents()
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}

// kept returns the event p kept with that ID.
func kept(p *Pool, id string) (UserEvent, bool) {
	evs, _ := p.UserEvents()
	for _, e := range evs {
		if e.ID == id {
			return e, true
		}
	}
	return UserEvent{}, false
}

func fire(t *testing.T, p *Pool, ev *UserEvent) *UserEvent {
	t.Helper()
	if err := p.FireUserEvent(ev); err != nil {
		t.Fatalf("firing %q: %v", ev.Name, err)
	}
	return ev
}

// waitKept waits until every pool kept ev.
func waitKept(t *testing.T, ev *UserEvent, pools ...*Pool) {
	t.Helper()
	for _, p := range pools {
		waitFor(t, 10*time.Second, fmt.Sprintf("%s to keep %s", p.cfg.NodeName, ev.Name), func() bool {
			_, ok := kept(p, ev.ID)
			return ok
		})
	}
}

func services(ss ...LocalService) func() []LocalService {
	return func() []LocalService { return ss }
}

// Events go to every member; each keeps those whose filters select it: the
// node filter against its name, the service filter against its services'
// names and IDs, the tag filter against the tags of a service the service
// filter matched.
func TestUserEventsDeliveredWithFilters(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	alpha := testConfig("alpha", RoleServer)
	alpha.LocalServices = services(LocalService{ID: "db", Name: "db", Tags: []string{"primary"}})
	beta := testConfig("beta", RoleClient)
	beta.LocalServices = services(LocalService{ID: "web-1", Name: "web", Tags: []string{"v2", "canary"}},
		LocalService{ID: "cache-on-web", Name: "cache"})
	pools, _ := cluster(t, sink, alpha, beta)
	a, b := pools[0], pools[1]

	all := fire(t, a, &UserEvent{ID: eventID(1), Name: "deploy", Payload: []byte("v1.2.3")})
	toBeta := fire(t, a, &UserEvent{ID: eventID(2), Name: "node", NodeFilter: "^be"})
	toWebV2 := fire(t, a, &UserEvent{ID: eventID(3), Name: "web-v2", ServiceFilter: "^web$", TagFilter: "^v2$"})
	byID := fire(t, a, &UserEvent{ID: eventID(4), Name: "by-id", ServiceFilter: "^cache-on"})
	toDB := fire(t, b, &UserEvent{ID: eventID(5), Name: "db", ServiceFilter: "db", TagFilter: "prim"})
	fire(t, a, &UserEvent{ID: eventID(6), Name: "nobody-tag", ServiceFilter: "web", TagFilter: "^v1$"})
	fire(t, a, &UserEvent{ID: eventID(7), Name: "nobody-node", NodeFilter: "^gamma$"})
	fire(t, b, &UserEvent{ID: eventID(8), Name: "nobody-service", ServiceFilter: "^api$"})
	waitKept(t, all, a, b)
	waitKept(t, toBeta, b)
	waitKept(t, toWebV2, b)
	waitKept(t, byID, b)
	waitKept(t, toDB, a)
	// A last event to all: once both have it, the filtered-out ones had
	// as long to arrive as those that did.
	last := fire(t, b, &UserEvent{ID: eventID(9), Name: "last"})
	waitKept(t, last, a, b)

	sorted := func(p *Pool) []string { return slices.Sorted(slices.Values(keptNames(p))) }
	if got, want := sorted(a), []string{"db", "deploy", "last"}; !slices.Equal(got, want) {
		t.Errorf("alpha kept %v, want %v", got, want)
	}
	if got, want := sorted(b), []string{"by-id", "deploy", "last", "node", "web-v2"}; !slices.Equal(got, want) {
		t.Errorf("beta kept %v, want %v", got, want)
	}

	// What is kept is the event as fired, with serf's Lamport time.
	got, _ := kept(b, all.ID)
	if got.Name != "deploy" || string(got.Payload) != "v1.2.3" || got.Version != UserEventVersion || got.LTime == 0 {
		t.Errorf("beta kept %+v", got)
	}
	got, _ = kept(b, toWebV2.ID)
	if got.ServiceFilter != "^web$" || got.TagFilter != "^v2$" || got.NodeFilter != "" || got.Payload != nil {
		t.Errorf("filters kept as %+v", got)
	}
	if all.Version != UserEventVersion || all.LTime != 0 {
		t.Errorf("FireUserEvent left the event as %+v", all)
	}
}

// Bad input is refused with its sentinel, and nothing is fired.
func TestFireUserEventRefusesBadInput(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	p := startPool(t, sink, testConfig("solo", RoleServer))

	// The largest payload that fits a name of "big": it fires, and one
	// byte more does not (and serf never refuses what this check let
	// through, which an error without the sentinel would show).
	room := 0
	for n := 0; n < MaxUserEventBytes; n++ {
		name, payload, err := encodeUserEvent(&UserEvent{ID: eventID(0), Name: "big", Payload: make([]byte, n), Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if gossipSize(name, payload) > MaxUserEventBytes {
			break
		}
		room = n
	}
	t.Logf("a 3-byte name leaves %d bytes of payload", room)
	if room < 380 {
		t.Errorf("a 3-byte name leaves %d bytes of payload; expected about 400", room)
	}

	for _, tc := range []struct {
		ev   UserEvent
		want error
		msg  string
	}{
		{UserEvent{ID: eventID(1)}, ErrInvalidUserEvent, "missing name"},
		{UserEvent{ID: eventID(1), Name: "_rexec"}, ErrInvalidUserEvent, "reserved"},
		{UserEvent{ID: eventID(1), Name: "a\xff"}, ErrInvalidUserEvent, "not UTF-8"},
		{UserEvent{ID: eventID(1), Name: "x", NodeFilter: "(["}, ErrInvalidUserEvent, "invalid node filter"},
		{UserEvent{ID: eventID(1), Name: "x", ServiceFilter: "a++"}, ErrInvalidUserEvent, "invalid service filter"},
		{UserEvent{ID: eventID(1), Name: "x", ServiceFilter: "web", TagFilter: "*"}, ErrInvalidUserEvent, "invalid tag filter"},
		{UserEvent{ID: eventID(1), Name: "x", TagFilter: "v1"}, ErrInvalidUserEvent, "tag filter needs a service filter"},
		{UserEvent{ID: "not-a-uuid", Name: "x"}, ErrInvalidUserEvent, "not a UUID"},
		{UserEvent{ID: eventID(1), Name: "big", Payload: make([]byte, room+1)}, ErrUserEventTooLarge, "gossip carries at most 512"},
		{UserEvent{ID: eventID(1), Name: strings.Repeat("n", 600)}, ErrUserEventTooLarge, "gossip carries at most 512"},
	} {
		err := p.FireUserEvent(&tc.ev)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("firing %+v: %v; want %v containing %q", tc.ev, err, tc.want, tc.msg)
		}
	}
	largest := fire(t, p, &UserEvent{ID: eventID(2), Name: "big", Payload: bytes.Repeat([]byte{0xff}, room)})
	waitKept(t, largest, p)
	if got, _ := kept(p, largest.ID); len(got.Payload) != room {
		t.Errorf("the largest event came back with %d bytes of payload, want %d", len(got.Payload), room)
	}
	if got := keptNames(p); !slices.Equal(got, []string{"big"}) {
		t.Errorf("kept %v: a refused event was fired", got)
	}

	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := p.FireUserEvent(newEvent("late")); !errors.Is(err, ErrShutdown) {
		t.Errorf("firing on a shut down pool: %v", err)
	}
}

// A serf user event under our prefix that is not one of ours is dropped
// with a warning; serf events outside the prefix are not ours to look at.
func TestMalformedUserEventsDropped(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	p := startPool(t, sink, testConfig("solo", RoleClient))
	for name, payload := range map[string][]byte{
		userEventPrefix + "garbage":   []byte("not msgpack"),
		userEventPrefix + "bad-id":    mustEncode(t, &UserEvent{ID: "x", Name: "bad-id"}),
		userEventPrefix + "bad-regex": mustEncode(t, &UserEvent{ID: eventID(1), Name: "bad-regex", NodeFilter: "(["}),
		"other:thing":                 mustEncode(t, &UserEvent{ID: eventID(2), Name: "thing"}),
	} {
		if err := p.serf.UserEvent(name, payload, false); err != nil {
			t.Fatal(err)
		}
	}
	last := fire(t, p, newEvent("ok"))
	waitKept(t, last, p)
	if got := keptNames(p); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("kept %v", got)
	}
	waitFor(t, 5*time.Second, "three warnings", func() bool { return sink.count("dropping a malformed user event") == 3 })
}

func mustEncode(t *testing.T, ev *UserEvent) []byte {
	t.Helper()
	_, b, err := encodeUserEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The log keeps the last userEventBufferSize events, oldest first, and
// wakes whoever waits on it at each one.
func TestUserEventLogRing(t *testing.T) {
	l := newUserEventLog()
	evs, changed := l.list()
	if len(evs) != 0 {
		t.Fatalf("a new log lists %d events", len(evs))
	}
	for i := range userEventBufferSize + 44 {
		l.add(UserEvent{ID: eventID(i)})
		select {
		case <-changed:
		default:
			t.Fatalf("adding event %d did not close the channel", i)
		}
		evs, changed = l.list()
		if want := min(i+1, userEventBufferSize); len(evs) != want {
			t.Fatalf("after %d events the log lists %d, want %d", i+1, len(evs), want)
		}
		if first := max(0, i+1-userEventBufferSize); evs[0].ID != eventID(first) || evs[len(evs)-1].ID != eventID(i) {
			t.Fatalf("after %d events the log runs %s…%s", i+1, evs[0].ID, evs[len(evs)-1].ID)
		}
	}
	select {
	case <-changed:
		t.Fatal("the channel is closed without a new event")
	default:
	}
}
