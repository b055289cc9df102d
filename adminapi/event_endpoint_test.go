package adminapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

// eventsAgent is a fake agent with user events: what it fires it keeps at
// once (as its gossip pool delivers an event to itself), and deliver
// stands for an event from another agent. With a resolver, ACLs are on.
type eventsAgent struct {
	*aclAgent

	mu      sync.Mutex
	kept    []UserEvent
	changed chan struct{}
	fired   int
	nextID  int
	// fireErr, when set, is FireEvent's answer (the gossip pool's refusal).
	fireErr error
}

var (
	_ Events = (*eventsAgent)(nil)
	_ ACLs   = (*eventsAgent)(nil)
)

func newEventsAPI(t *testing.T) (*testAPI, *eventsAgent) {
	t.Helper()
	a := &eventsAgent{aclAgent: &aclAgent{fakeAgent: newFakeAgent(t)}, changed: make(chan struct{})}
	return serveTestAPI(t, a.fakeAgent, a), a
}

func (a *eventsAgent) FireEvent(ev *UserEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fireErr != nil {
		return a.fireErr
	}
	a.fired++
	a.nextID++
	ev.ID = fmt.Sprintf("a0b1c2d3-0000-4000-8000-%012x", a.nextID)
	ev.Version = 1
	a.keepLocked(*ev)
	return nil
}

func (a *eventsAgent) UserEvents() ([]UserEvent, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.kept), a.changed
}

// deliver keeps an event named name from another agent, and returns it.
func (a *eventsAgent) deliver(name string) UserEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextID++
	ev := UserEvent{ID: fmt.Sprintf("%08x-1111-4222-8333-%012x", a.nextID*7919, a.nextID), Name: name, Version: 1,
		LTime: uint64(a.nextID)}
	a.keepLocked(ev)
	return ev
}

func (a *eventsAgent) keepLocked(ev UserEvent) {
	a.kept = append(a.kept, ev)
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *eventsAgent) firedCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fired
}

func (a *eventsAgent) setFireErr(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fireErr = err
}

// listed decodes a list answer into event names.
func listed(t *testing.T, r response) []string {
	t.Helper()
	var evs []UserEvent
	mustOK(t, r, &evs)
	names := []string{}
	for _, e := range evs {
		names = append(names, e.Name)
	}
	return names
}

// The official client fires with its filters and payload; the answer is
// the event in Consul's shape.
func TestEventFire(t *testing.T) {
	ta, a := newEventsAPI(t)
	id, _, err := ta.client.Event().Fire(&api.UserEvent{Name: "deploy", Payload: []byte("v1.2.3"),
		NodeFilter: "^web-", ServiceFilter: "api", TagFilter: "v2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := a.UserEvents()
	if len(evs) != 1 || evs[0].ID != id || evs[0].Name != "deploy" || string(evs[0].Payload) != "v1.2.3" ||
		evs[0].NodeFilter != "^web-" || evs[0].ServiceFilter != "api" || evs[0].TagFilter != "v2" {
		t.Fatalf("fired %+v, answered ID %s", evs, id)
	}

	// Consul's JSON: every field, the payload in base64, null without one;
	// the name is the rest of the path.
	r := ta.put("/v1/event/fire/app/restart", nil)
	mustOK(t, r, nil)
	want := `{"ID":"a0b1c2d3-0000-4000-8000-000000000002","Name":"app/restart","Payload":null,"NodeFilter":"",` +
		`"ServiceFilter":"","TagFilter":"","Version":1,"LTime":0}`
	if string(r.body) != want {
		t.Errorf("answer %s\nwant   %s", r.body, want)
	}
	r = ta.put("/v1/event/fire/x", "hi")
	mustOK(t, r, nil)
	if !strings.Contains(string(r.body), `"Payload":"aGk="`) {
		t.Errorf("payload not in base64: %s", r.body)
	}
}

// Bad input gets a clear error and fires nothing.
func TestEventFireBadInput(t *testing.T) {
	ta, a := newEventsAPI(t)
	big := strings.Repeat("x", maxEventPayload+1)
	for _, tc := range []struct {
		name    string
		path    string
		body    io.Reader
		fireErr error
		code    int
		msg     string
	}{
		{"no name", "/v1/event/fire/", nil, nil, 400, "Missing name"},
		{"other datacenter", "/v1/event/fire/x?dc=dc2", nil, nil, 500, "No path to datacenter"},
		{"payload too large", "/v1/event/fire/x", strings.NewReader(big), nil, 413,
			"Request body(513 bytes) too large, max size: 512 bytes"},
		{"payload too large, chunked", "/v1/event/fire/x", io.MultiReader(strings.NewReader(big)), nil, 413,
			"Request body too large, max size: 512 bytes"},
		{"bad filter", "/v1/event/fire/x?node=(", nil,
			fmt.Errorf("%w: invalid user event: invalid node filter: missing closing )", ErrInvalid), 400,
			"invalid user event: invalid node filter: missing closing )"},
		{"too large for gossip", "/v1/event/fire/x", strings.NewReader("abc"),
			fmt.Errorf("%w: user event too large: 530 bytes", ErrTooLarge), 413, "user event too large: 530 bytes"},
	} {
		a.setFireErr(tc.fireErr)
		r := ta.do(http.MethodPut, tc.path, tc.body)
		if r.code != tc.code || strings.TrimSpace(string(r.body)) != tc.msg {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.code, r.body, tc.code, tc.msg)
		}
	}
	if n := a.firedCount(); n != 0 {
		t.Errorf("%d events fired", n)
	}
	if r := ta.get("/v1/event/fire/x"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET fire: %d", r.code)
	}
}

// The list's index is Consul's: the last event's ID folded to 64 bits, as
// the official client's IDToIndex computes it, and 1 with no event.
func TestEventListIndex(t *testing.T) {
	ta, a := newEventsAPI(t)
	r := ta.get("/v1/event/list")
	if got := listed(t, r); len(got) != 0 || indexOf(t, r) != 1 || string(r.body) != "[]" {
		t.Errorf("empty list: %q, index %d", r.body, indexOf(t, r))
	}
	a.deliver("deploy")
	last := a.deliver("restart")
	r = ta.get("/v1/event/list")
	if got := listed(t, r); !slices.Equal(got, []string{"deploy", "restart"}) {
		t.Errorf("list %v", got)
	}
	if got, want := indexOf(t, r), ta.client.Event().IDToIndex(last.ID); got != want {
		t.Errorf("index %d, want IDToIndex %d", got, want)
	}
	if got := eventIndex([]UserEvent{{ID: "not-a-uuid"}}); got != 1 {
		t.Errorf("index of a malformed ID: %d", got)
	}
}

// A blocking list waits while its index is the current one, and answers as
// soon as it is not: on an event it may see, at once for any other index
// (the index has no order), or with the same index when the wait is over.
func TestEventListBlocking(t *testing.T) {
	ta, a := newEventsAPI(t)
	first := a.deliver("deploy")
	idx := ta.client.Event().IDToIndex(first.ID)

	// Any other index answers at once, smaller or greater.
	for _, other := range []uint64{idx - 1, idx + 1} {
		r := ta.get("/v1/event/list?index=" + strconv.FormatUint(other, 10))
		if got := listed(t, r); len(got) != 1 || indexOf(t, r) != idx {
			t.Errorf("index %d: %v, index %d", other, got, indexOf(t, r))
		}
	}

	// Blocked on ?name=deploy: an event of another name does not answer
	// it, the next deploy does.
	out, _ := ta.startBlocking(fmt.Sprintf("/v1/event/list?name=deploy&index=%d", idx))
	a.deliver("restart")
	second := a.deliver("deploy")
	select {
	case r := <-out:
		if got := listed(t, r); !slices.Equal(got, []string{"deploy", "deploy"}) ||
			indexOf(t, r) != ta.client.Event().IDToIndex(second.ID) {
			t.Errorf("woken with %v, index %d", got, indexOf(t, r))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking list did not wake on a new event")
	}

	// The official client blocks the same way.
	idx = ta.client.Event().IDToIndex(second.ID)
	got := make(chan []*api.UserEvent, 1)
	go func() {
		evs, _, err := ta.client.Event().List("", &api.QueryOptions{WaitIndex: idx, WaitTime: 30 * time.Second})
		if err != nil {
			t.Error(err)
		}
		got <- evs
	}()
	waitInFlight(t, ta, 1)
	third := a.deliver("scale")
	select {
	case evs := <-got:
		if len(evs) != 4 || evs[3].ID != third.ID {
			t.Errorf("official client woken with %d events", len(evs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the official client's blocking list did not wake")
	}

	// Nothing new: the wait passes and the answer is as it was.
	idx = ta.client.Event().IDToIndex(third.ID)
	start := time.Now()
	r := ta.get(fmt.Sprintf("/v1/event/list?index=%d&wait=50ms", idx))
	if got := listed(t, r); len(got) != 4 || indexOf(t, r) != idx || time.Since(start) < 50*time.Millisecond {
		t.Errorf("after the wait: %v, index %d, after %v", got, indexOf(t, r), time.Since(start))
	}
	if r := ta.get("/v1/event/list?index=x"); r.code != http.StatusBadRequest {
		t.Errorf("a bad index: %d %q", r.code, r.body)
	}
}

// With ACLs on: firing needs event:write on the name; a list keeps what
// the token may read (event:read) and says when it dropped something the
// caller asked for.
func TestEventACLs(t *testing.T) {
	ta, a := newEventsAPI(t)
	store := ta.agent.store
	a.resolver = state.NewACLResolver(store, false)
	policy := func(idx uint64, name, rules string) acl.PolicyLink {
		p := &acl.Policy{ID: acl.NewUUID(), Name: name, Rules: rules}
		if err := store.ACLApply(idx, &state.ACLRequest{Op: state.ACLPolicySet, Policy: p}); err != nil {
			t.Fatal(err)
		}
		return acl.PolicyLink{ID: p.ID}
	}
	tokenApply := func(idx uint64, secret string, links ...acl.PolicyLink) {
		tok := &acl.Token{AccessorID: acl.NewUUID(), SecretID: secret, Policies: links}
		op := state.ACLTokenSet
		if secret == "root" {
			op = state.ACLBootstrap
		}
		if err := store.ACLApply(idx, &state.ACLRequest{Op: op, Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	tokenApply(1, "root")
	tokenApply(3, "writer", policy(2, "deploy-writer", `event "deploy" { policy = "write" }`))
	tokenApply(5, "reader", policy(4, "dep-reader", `event_prefix "dep" { policy = "read" }`))

	fire := func(token, name string) response {
		req, _ := http.NewRequest(http.MethodPut, ta.ts.URL+"/v1/event/fire/"+name, bytes.NewReader(nil))
		req.Header.Set("X-Consul-Token", token)
		return ta.send(req)
	}
	for _, tc := range []struct {
		token, name string
		code        int
	}{
		{"", "deploy", 403}, {"reader", "deploy", 403}, {"writer", "other", 403}, {"nope", "deploy", 403},
		{"writer", "deploy", 200}, {"root", "other", 200},
	} {
		if r := fire(tc.token, tc.name); r.code != tc.code {
			t.Errorf("token %q firing %s: %d %q, want %d", tc.token, tc.name, r.code, r.body, tc.code)
		}
	}
	if n := a.firedCount(); n != 2 {
		t.Errorf("%d events fired, want 2", n)
	}

	list := func(token, query string) (names []string, filteredByACLs bool) {
		req, _ := http.NewRequest(http.MethodGet, ta.ts.URL+"/v1/event/list"+query, nil)
		req.Header.Set("X-Consul-Token", token)
		r := ta.send(req)
		return listed(t, r), r.header.Get("X-Consul-Results-Filtered-By-ACLs") == "true"
	}
	for _, tc := range []struct {
		token, query string
		want         []string
		filtered     bool
	}{
		{"root", "", []string{"deploy", "other"}, false},
		{"reader", "", []string{"deploy"}, true},
		{"reader", "?name=deploy", []string{"deploy"}, false},
		{"reader", "?name=other", []string{}, true},
		{"", "", []string{}, true},
	} {
		names, f := list(tc.token, tc.query)
		if !slices.Equal(names, tc.want) || f != tc.filtered {
			t.Errorf("token %q lists%s: %v (filtered %v), want %v (filtered %v)", tc.token, tc.query, names, f, tc.want, tc.filtered)
		}
	}
	// The index is of what the token sees.
	req, _ := http.NewRequest(http.MethodGet, ta.ts.URL+"/v1/event/list", nil)
	req.Header.Set("X-Consul-Token", "reader")
	r := ta.send(req)
	var evs []UserEvent
	if err := json.Unmarshal(r.body, &evs); err != nil || len(evs) != 1 || indexOf(t, r) != eventIndex(evs) {
		t.Errorf("reader's list %s, index %d", r.body, indexOf(t, r))
	}
}
