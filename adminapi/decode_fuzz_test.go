package adminapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/go-hclog"
)

// Fuzz targets for the request decoders: each drives the real handler
// over a fresh fake agent (a real store and FSM behind it) and holds the
// answer to the promise "bad input gets a clear error and changes
// nothing": no panic; 2xx or 4xx (a 5xx only for the answers Consul gives
// with one, below); a refusal changes neither the store nor the agent's
// own services and checks; and what was accepted leaves a store whose
// snapshot restores the same contents.

// fuzzSessionID is the seeded session, holding the lock on "locked".
const fuzzSessionID = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"

// fuzzChecksAgent is the fake agent with the check endpoints: the local
// checks are the truth, pushed to the catalog as the real agent's sync
// would. A push the catalog refuses is recorded: what the API accepted,
// the catalog must take.
type fuzzChecksAgent struct {
	*fakeAgent
	pushErr error
}

func (a *fuzzChecksAgent) push(c *state.HealthCheck) {
	req := a.nodeRegistration()
	req.SkipNodeUpdate, req.Check, req.Checks = true, nil, []*state.HealthCheck{c}
	if _, err := a.Apply(state.RegisterRequestType, req); err != nil && a.pushErr == nil {
		a.pushErr = fmt.Errorf("catalog refused check %q: %w", c.CheckID, err)
	}
}

func (a *fuzzChecksAgent) AddCheck(c *state.HealthCheck) error {
	a.mu.Lock()
	if _, ok := a.services[c.ServiceID]; c.ServiceID != "" && !ok {
		a.mu.Unlock()
		return fmt.Errorf("check %q: %w %q", c.CheckID, ErrUnknownService, c.ServiceID)
	}
	a.checks[c.CheckID] = c
	a.mu.Unlock()
	a.push(c)
	return nil
}

func (a *fuzzChecksAgent) RemoveCheck(id string) (bool, error) {
	a.mu.Lock()
	_, ok := a.checks[id]
	delete(a.checks, id)
	a.mu.Unlock()
	if !ok {
		return false, nil
	}
	_, err := a.Apply(state.DeregisterRequestType, &state.DeregisterRequest{Node: testNode, CheckID: id})
	return true, err
}

func (a *fuzzChecksAgent) UpdateTTL(id, status, output string) error {
	a.mu.Lock()
	c, ok := a.checks[id]
	if !ok {
		a.mu.Unlock()
		return fmt.Errorf("check %q: %w", id, ErrUnknownCheck)
	}
	if c.Type != "ttl" {
		a.mu.Unlock()
		return fmt.Errorf("check %q: %w", id, ErrNotTTL)
	}
	n := *c
	n.Status, n.Output = status, output
	a.checks[id] = &n
	a.mu.Unlock()
	a.push(&n)
	return nil
}

func (a *fuzzChecksAgent) NodeMaintenance(enable bool, reason string) error {
	if !enable {
		_, err := a.RemoveCheck("_node_maintenance")
		return err
	}
	return a.AddCheck(&state.HealthCheck{CheckID: "_node_maintenance", Name: "Node Maintenance Mode",
		Status: state.HealthCritical, Notes: reason})
}

func (a *fuzzChecksAgent) ServiceMaintenance(id string, enable bool, reason string) (bool, error) {
	a.mu.Lock()
	_, ok := a.services[id]
	a.mu.Unlock()
	if !ok {
		return false, nil
	}
	if !enable {
		_, err := a.RemoveCheck("_service_maintenance:" + id)
		return true, err
	}
	return true, a.AddCheck(&state.HealthCheck{CheckID: "_service_maintenance:" + id, ServiceID: id,
		Name: "Service Maintenance Mode", Status: state.HealthCritical, Notes: reason})
}

// fuzzAPI is a handler over a seeded fake agent: its node, another node
// with a service and check, a local service with a TTL check, a session
// holding a lock, and a few keys.
func fuzzAPI(t *testing.T) (*fuzzChecksAgent, http.Handler) {
	t.Helper()
	a := &fuzzChecksAgent{fakeAgent: newFakeAgent(t)}
	a.registerSelf(t)
	mustApply := func(typ state.MessageType, msg any) {
		t.Helper()
		if _, err := a.Apply(typ, msg); err != nil {
			t.Fatalf("seeding %s: %v", typ, err)
		}
	}
	mustApply(state.RegisterRequestType, &state.RegisterRequest{Datacenter: testDC, Node: "n1", Address: "10.0.0.1",
		Service: &state.Service{ID: "web", Service: "web", Port: 80, Tags: []string{}, Meta: map[string]string{}},
		Check:   &state.HealthCheck{CheckID: "web", Name: "web", ServiceID: "web", Status: state.HealthPassing}})
	ttl := &state.HealthCheck{CheckID: "service:api", Name: "api", ServiceID: "api", ServiceName: "api",
		Status: state.HealthPassing, Type: "ttl", Definition: state.CheckDefinition{TTL: "30s"}}
	if err := a.AddService(&state.Service{ID: "api", Service: "api", Port: 9000, Tags: []string{"v1"},
		Meta: map[string]string{}, Weights: state.Weights{Passing: 1, Warning: 1}}, []*state.HealthCheck{ttl}); err != nil {
		t.Fatal(err)
	}
	mustApply(state.SessionRequestType, &state.SessionRequest{Datacenter: testDC, Op: state.SessionCreate,
		Session: state.Session{ID: fuzzSessionID, Node: testNode, NodeChecks: []string{state.SerfCheckID},
			Behavior: state.SessionRelease, LockDelay: state.DefaultLockDelay}})
	for _, req := range []*state.KVSRequest{
		{Op: state.KVSet, DirEnt: state.DirEntry{Key: "a", Value: []byte("1")}},
		{Op: state.KVSet, DirEnt: state.DirEntry{Key: "dir/b", Value: []byte("2"), Flags: 42}},
		{Op: state.KVLock, DirEnt: state.DirEntry{Key: "locked", Value: []byte("3"), Session: fuzzSessionID}},
	} {
		req.Datacenter = testDC
		mustApply(state.KVSRequestType, req)
	}
	srv := New(a, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	return a, srv.Handler()
}

// fuzzEnv is one seeded API per process, put back into its seeded state
// before each input: building the handler and seeding a store cost more
// than most inputs.
var fuzzEnv struct {
	a      *fuzzChecksAgent
	h      http.Handler
	seeded []byte // the store's snapshot
	index  uint64
	local  map[string]*state.Service
	checks map[string]*state.HealthCheck
}

// freshFuzzAPI returns the process's fuzz API in its seeded state.
func freshFuzzAPI(t *testing.T) (*fuzzChecksAgent, http.Handler) {
	t.Helper()
	e := &fuzzEnv
	if e.a == nil {
		a, h := fuzzAPI(t)
		e.a, e.h, e.seeded, e.index = a, h, statetest.Snapshot(t, a.store), a.index
		e.local, e.checks = maps.Clone(a.services), maps.Clone(a.checks)
	}
	st, err := state.ReadSnapshot(bytes.NewReader(e.seeded))
	if err != nil {
		t.Fatal(err)
	}
	a := e.a
	a.store.Restore(st)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.index, a.services, a.checks, a.pushErr = e.index, maps.Clone(e.local), maps.Clone(e.checks), nil
	return a, e.h
}

// fuzzSnapshot is everything a refused request must leave alone.
type fuzzSnapshot struct {
	Store  []byte // the store's snapshot
	Local  []*state.Service
	Checks []*state.HealthCheck
}

func takeFuzzSnapshot(t *testing.T, a *fuzzChecksAgent) fuzzSnapshot {
	t.Helper()
	return fuzzSnapshot{Store: statetest.Snapshot(t, a.store), Local: a.LocalServices(), Checks: a.LocalChecks()}
}

// consul5xx are the answers Consul gives with a 500 that beacon gives as
// Consul does: they are not failures of the server.
var consul5xx = []string{
	"No path to datacenter", // ?dc= or Datacenter of another datacenter
	"invalid session",       // acquire with a session that does not exist
	"session not found",     // the same, for a session destroyed meanwhile
	"CheckID \"",            // a TTL update of a check that is not a TTL check
}

// fuzzRequest serves one request and checks the answer.
func fuzzRequest(t *testing.T, method, target string, body []byte, chunked bool) {
	t.Helper()
	a, h := freshFuzzAPI(t)
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Skipf("not a request net/http would hand over: %v", err)
	}
	if chunked {
		req.ContentLength = -1 // as the server reads a chunked body
	}
	before := takeFuzzSnapshot(t, a)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	code, msg := rec.Code, rec.Body.String()
	switch {
	case code >= 200 && code < 300:
		statetest.AssertRestorable(t, a.store)
		statetest.AssertUTF8(t, a.store)
		if a.pushErr != nil {
			t.Fatalf("%s %s answered %d, but %v", method, target, code, a.pushErr)
		}
		return
	case code >= 300 && code < 500:
	case code >= 500 && hasAnyPrefix(msg, consul5xx):
	default:
		t.Fatalf("%s %s with %q: status %d %q", method, target, body, code, msg)
	}
	if code >= 400 && strings.TrimSpace(msg) == "" && code != http.StatusNotFound && code != http.StatusConflict {
		t.Errorf("%s %s: status %d without a message", method, target, code)
	}
	if after := takeFuzzSnapshot(t, a); !reflect.DeepEqual(after, before) {
		t.Fatalf("%s %s with %q answered %d %q, but changed the state:\nbefore %s\n%s\nafter  %s\n%s",
			method, target, body, code, msg, before.Store, mustJSON(before), after.Store, mustJSON(after))
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(err.Error())
	}
	return b
}

// fuzzBody is a fuzz target for an endpoint that decodes a JSON body.
func fuzzBody(f *testing.F, path string) {
	f.Fuzz(func(t *testing.T, body []byte, chunked bool) {
		fuzzRequest(t, http.MethodPut, path, body, chunked)
	})
}

func FuzzCatalogRegister(f *testing.F)      { fuzzBody(f, "/v1/catalog/register") }
func FuzzCatalogDeregister(f *testing.F)    { fuzzBody(f, "/v1/catalog/deregister") }
func FuzzAgentServiceRegister(f *testing.F) { fuzzBody(f, "/v1/agent/service/register") }
func FuzzAgentCheckRegister(f *testing.F)   { fuzzBody(f, "/v1/agent/check/register") }
func FuzzAgentCheckUpdate(f *testing.F)     { fuzzBody(f, "/v1/agent/check/update/service:api") }
func FuzzSessionCreate(f *testing.F)        { fuzzBody(f, "/v1/session/create") }
func FuzzTxn(f *testing.F)                  { fuzzBody(f, "/v1/txn") }
func FuzzCoordinateUpdate(f *testing.F)     { fuzzBody(f, "/v1/coordinate/update") }

// FuzzQueryCreate: a prepared query definition (a POST, where fuzzBody
// PUTs).
func FuzzQueryCreate(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, chunked bool) {
		fuzzRequest(t, http.MethodPost, "/v1/query", body, chunked)
	})
}

// FuzzKV: a KV write or delete with any key, query and value.
func FuzzKV(f *testing.F) {
	f.Fuzz(func(t *testing.T, del bool, key, query string, value []byte) {
		method := http.MethodPut
		if del {
			method = http.MethodDelete
		}
		segs := strings.Split(key, "/")
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		fuzzRequest(t, method, "/v1/kv/"+strings.Join(segs, "/")+"?"+query, value, false)
	})
}

// TestKVNotUTF8: a key or session that is not UTF-8 is a 400 that changes
// nothing. Such a key used to be stored as it came, and restored from a
// snapshot as U+FFFD, another key (found by FuzzKV).
func TestKVNotUTF8(t *testing.T) {
	for _, tc := range []struct{ method, target, want string }{
		{http.MethodPut, "/v1/kv/a%C7", `Invalid key "a\xc7": it must be UTF-8`},
		{http.MethodPut, "/v1/kv/dir/%FF/b?cas=0", `Invalid key "dir/\xff/b": it must be UTF-8`},
		{http.MethodDelete, "/v1/kv/%83?recurse", `Invalid key "\x83": it must be UTF-8`},
		{http.MethodPut, "/v1/kv/lock?acquire=%FF", `Invalid session "\xff": it must be UTF-8`},
		{http.MethodPut, "/v1/kv/locked?release=" + fuzzSessionID + "%ED%A0%80", `Invalid session "` + fuzzSessionID + `\xed\xa0\x80": it must be UTF-8`},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			a, h := fuzzAPI(t)
			before, applies := takeFuzzSnapshot(t, a), a.applyCount()
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader("v"))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := strings.TrimSpace(rec.Body.String()); rec.Code != http.StatusBadRequest || got != tc.want {
				t.Errorf("%d %q, want 400 %q", rec.Code, got, tc.want)
			}
			if after := takeFuzzSnapshot(t, a); !reflect.DeepEqual(after, before) || a.applyCount() != applies {
				t.Errorf("state changed, or a command was applied (%d -> %d)", applies, a.applyCount())
			}
		})
	}
}
