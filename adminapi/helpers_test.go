package adminapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/coordinate"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/raftstore"
	"github.com/beacon-dns/beacon/state"
)

const (
	testDC       = "dc1"
	testNode     = "agent-1"
	testNodeID   = "5b8b0f0c-6a4e-4b1e-9c7f-0a1b2c3d4e5f"
	testNodeAddr = "127.0.0.1"
	testLeader   = "127.0.0.1:8300"
)

// fakeAgent implements Agent over a real state store: writes are encoded with
// raftstore.Encode and applied by a real FSM at increasing indexes, as Raft
// would apply them on a single server.
type fakeAgent struct {
	store *state.Store
	fsm   *raftstore.FSM

	storeCalls atomic.Int64 // how often the API asked for the store

	mu          sync.Mutex
	index       uint64
	applies     int
	leader      string
	lastContact time.Duration
	verifyErr   error
	applyErr    error
	peers       []string
	services    map[string]*state.Service
	checks      map[string]*state.HealthCheck
}

var _ Agent = (*fakeAgent)(nil)

func newFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	store := state.NewStore()
	a := &fakeAgent{
		store: store, fsm: raftstore.NewFSM(store, nil), leader: testLeader,
		peers:    []string{testLeader},
		services: map[string]*state.Service{}, checks: map[string]*state.HealthCheck{},
	}
	return a
}

// registerSelf puts the agent's own node in the catalog, as anti-entropy does.
func (a *fakeAgent) registerSelf(t *testing.T) {
	t.Helper()
	if _, err := a.Apply(state.RegisterRequestType, a.nodeRegistration()); err != nil {
		t.Fatal(err)
	}
}

func (a *fakeAgent) nodeRegistration() *state.RegisterRequest {
	return &state.RegisterRequest{Datacenter: testDC, ID: testNodeID, Node: testNode, Address: testNodeAddr,
		Check: &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName,
			Status: state.HealthPassing}}
}

func (a *fakeAgent) Store() *state.Store {
	a.storeCalls.Add(1)
	return a.store
}
func (a *fakeAgent) NodeName() string   { return testNode }
func (a *fakeAgent) NodeID() string     { return testNodeID }
func (a *fakeAgent) Datacenter() string { return testDC }

func (a *fakeAgent) Apply(t state.MessageType, msg any) (uint64, error) {
	idx, _, err := a.ApplyWithResult(t, msg)
	return idx, err
}

func (a *fakeAgent) ApplyWithResult(t state.MessageType, msg any) (uint64, *state.CommandResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applyErr != nil {
		return 0, nil, a.applyErr
	}
	buf, err := raftstore.Encode(t, msg)
	if err != nil {
		return 0, nil, err
	}
	a.index++
	a.applies++
	switch resp := a.fsm.Apply(&raft.Log{Index: a.index, Term: 1, Type: raft.LogCommand, Data: buf}).(type) {
	case error:
		return a.index, nil, resp
	case *state.CommandResult:
		return a.index, resp, nil
	}
	return a.index, nil, nil
}

func (a *fakeAgent) setLeader(l string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.leader = l
}

func (a *fakeAgent) Leader() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.leader
}

func (a *fakeAgent) LastContact() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastContact
}

func (a *fakeAgent) Peers() ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.peers, nil
}

// ConsistentRead behaves as a replica does: the default mode needs a known
// leader; a linearizable read also needs the leader confirmed (verifyErr).
func (a *fakeAgent) ConsistentRead(verify bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leader == "" {
		return state.ErrNoLeader
	}
	if verify {
		return a.verifyErr
	}
	return nil
}

func (a *fakeAgent) AddService(svc *state.Service, checks []*state.HealthCheck) error {
	a.mu.Lock()
	a.services[svc.ID] = svc
	for _, c := range checks {
		a.checks[c.CheckID] = c
	}
	a.mu.Unlock()
	req := a.nodeRegistration()
	req.SkipNodeUpdate = true
	req.Check = nil
	req.Service = svc
	req.Checks = checks
	_, err := a.Apply(state.RegisterRequestType, req)
	return err
}

func (a *fakeAgent) RemoveService(id string) (bool, error) {
	a.mu.Lock()
	_, ok := a.services[id]
	delete(a.services, id)
	for cid, c := range a.checks {
		if c.ServiceID == id {
			delete(a.checks, cid)
		}
	}
	a.mu.Unlock()
	if !ok {
		return false, nil
	}
	_, err := a.Apply(state.DeregisterRequestType, &state.DeregisterRequest{Node: testNode, ServiceID: id})
	return true, err
}

func (a *fakeAgent) LocalServices() []*state.Service {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*state.Service
	for _, s := range a.services {
		c := *s
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (a *fakeAgent) LocalChecks() []*state.HealthCheck {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*state.HealthCheck
	for _, c := range a.checks {
		cc := *c
		out = append(out, &cc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CheckID < out[j].CheckID })
	return out
}

func (a *fakeAgent) Self() AgentSelf {
	return AgentSelf{NodeName: testNode, NodeID: testNodeID, Datacenter: testDC, Domain: "consul.",
		Version: "0.1.0", Revision: "0123456789ab", BuildDate: "2026-01-02T03:04:05Z", Server: true, DataDir: "/tmp/beacon",
		DebugConfig: map[string]any{"NodeName": testNode, "EncryptKey": "hidden"},
		Coord:       coordinate.NewCoordinate(coordinate.DefaultConfig()),
		Member: AgentMember{Name: testNode, Addr: testNodeAddr, Port: 8301, Status: 1,
			Tags: map[string]string{"role": "consul", "dc": testDC, "id": testNodeID}},
		Stats: map[string]map[string]string{"raft": {"state": "Leader"}, "consul": {"server": "true"}}}
}

func (a *fakeAgent) applyCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applies
}

// ---- the server under test ----

type testAPI struct {
	t      *testing.T
	agent  *fakeAgent
	srv    *Server
	ts     *httptest.Server
	client *api.Client

	// inflight counts requests inside the handler; handlerDone receives one
	// value per finished request. waits counts the times a blocking query
	// started to wait (Server.waiting).
	mu       sync.Mutex
	inflight int
	waits    int
}

// newTestAPI serves the API's Handler over a real HTTP listener (so request
// bodies, chunked encoding and disconnects behave as in production).
//
// Server has no constructor without a listener (Listen starts its own
// http.Server on an address it does not expose), so the test builds the
// struct directly; a New(agent, logger) would make that unnecessary.
func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	agent := newFakeAgent(t)
	return serveTestAPI(t, agent, agent)
}

// serveTestAPI is newTestAPI for an agent built on fake that offers more of
// the optional interfaces (Events, ACLs, …).
func serveTestAPI(t *testing.T, fake *fakeAgent, agent Agent) *testAPI {
	t.Helper()
	return serveTestAPIWithLogger(t, fake, agent, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
}

// serveTestAPIWithLogger is serveTestAPI with the API logging to logger.
func serveTestAPIWithLogger(t *testing.T, fake *fakeAgent, agent Agent, logger hclog.Logger) *testAPI {
	t.Helper()
	srv := New(agent, logger)
	ta := &testAPI{t: t, agent: fake, srv: srv}
	srv.waiting = func() {
		ta.mu.Lock()
		ta.waits++
		ta.mu.Unlock()
	}
	h := srv.Handler()
	ta.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ta.mu.Lock()
		ta.inflight++
		ta.mu.Unlock()
		defer func() {
			ta.mu.Lock()
			ta.inflight--
			ta.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ta.ts.Close) // waits for in-flight requests
	client, err := api.NewClient(&api.Config{Address: ta.ts.URL, HttpClient: ta.ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ta.client = client
	return ta
}

func (ta *testAPI) inFlight() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.inflight
}

// waitCount is how many times a blocking query has started to wait.
func (ta *testAPI) waitCount() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.waits
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return strings.TrimSpace(string(r.body))
}

func (ta *testAPI) do(method, path string, body io.Reader) response {
	ta.t.Helper()
	req, err := http.NewRequest(method, ta.ts.URL+path, body)
	if err != nil {
		ta.t.Fatal(err)
	}
	return ta.send(req)
}

func (ta *testAPI) send(req *http.Request) response {
	ta.t.Helper()
	resp, err := ta.ts.Client().Do(req)
	if err != nil {
		ta.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ta.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func (ta *testAPI) get(path string) response { return ta.do(http.MethodGet, path, nil) }

func (ta *testAPI) put(path string, v any) response {
	ta.t.Helper()
	var body io.Reader
	switch b := v.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	case io.Reader:
		body = b
	default:
		j, err := json.Marshal(v)
		if err != nil {
			ta.t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	return ta.do(http.MethodPut, path, body)
}

// mustOK fails unless the response is 200, and decodes its body into out
// (when not nil), as the official client would.
func mustOK(t *testing.T, r response, out any) {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("status %d, body %q; want 200", r.code, r.body)
	}
	if out == nil {
		return
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		t.Fatalf("decoding %q into %T: %v", r.body, out, err)
	}
}

// register applies a catalog registration through the fake agent (the FSM
// path), failing the test on error.
func (ta *testAPI) register(req *state.RegisterRequest) uint64 {
	ta.t.Helper()
	if req.Datacenter == "" {
		req.Datacenter = testDC
	}
	idx, err := ta.agent.Apply(state.RegisterRequestType, req)
	if err != nil {
		ta.t.Fatalf("register %s: %v", req.Node, err)
	}
	return idx
}

// storeState is everything observable in the store, for "nothing changed"
// assertions.
type storeState struct {
	Nodes    []*state.Node
	Services map[string][]string
	Checks   []*state.HealthCheck
	NodeSvcs map[string][]*state.Service
	Coords   state.Coordinates
	Queries  []*state.PreparedQuery
	Index    uint64
}

func (ta *testAPI) state() storeState {
	ta.t.Helper()
	s := ta.agent.store
	var st storeState
	var idx uint64
	var err error
	idx, st.Nodes, err = s.Nodes(nil)
	if err != nil {
		ta.t.Fatal(err)
	}
	st.Index = max(st.Index, idx)
	idx, st.Services, _ = s.Services(nil)
	st.Index = max(st.Index, idx)
	idx, st.Checks, _ = s.ChecksInState(nil, state.HealthAny)
	st.Index = max(st.Index, idx)
	idx, st.Coords, _ = s.Coordinates(nil)
	st.Index = max(st.Index, idx)
	idx, st.Queries, _ = s.PreparedQueries(nil)
	st.Index = max(st.Index, idx)
	st.NodeSvcs = map[string][]*state.Service{}
	for _, n := range st.Nodes {
		_, _, svcs, _ := s.NodeServices(nil, n.Node)
		st.NodeSvcs[n.Node] = svcs
	}
	return st
}

func (ta *testAPI) assertUnchanged(before storeState, appliesBefore int) {
	ta.t.Helper()
	after := ta.state()
	if !reflect.DeepEqual(before, after) {
		b, _ := json.Marshal(before)
		a, _ := json.Marshal(after)
		ta.t.Errorf("store changed:\nbefore %s\nafter  %s", b, a)
	}
	if n := ta.agent.applyCount(); n != appliesBefore {
		ta.t.Errorf("%d commands were applied, want none", n-appliesBefore)
	}
}

// indexOf returns X-Consul-Index, failing if it is missing or malformed.
func indexOf(t *testing.T, r response) uint64 {
	t.Helper()
	v := r.header.Get("X-Consul-Index")
	if v == "" {
		t.Fatalf("no X-Consul-Index header (status %d)", r.code)
	}
	var n uint64
	if err := json.Unmarshal([]byte(v), &n); err != nil || n == 0 {
		t.Fatalf("X-Consul-Index = %q", v)
	}
	return n
}

// aclAgent is the fake agent with ACLs: on (default deny) with a
// resolver, off without.
type aclAgent struct {
	*fakeAgent
	resolver *state.ACLResolver
}

var _ ACLs = (*aclAgent)(nil)

func (a *aclAgent) ACLResolver() TokenResolver {
	if a.resolver == nil {
		return nil
	}
	return a.resolver
}
func (a *aclAgent) ACLDefaultToken() string         { return "" }
func (a *aclAgent) SetACLToken(string, string) bool { return false }

// newACLTestAPI serves the fake agent with ACLs on (default deny) and the
// ACL system bootstrapped with the management secret "root"; apply commits
// an ACL write straight to the fake agent's state.
func newACLTestAPI(t *testing.T) (ta *testAPI, fake *fakeAgent, apply func(*state.ACLRequest)) {
	t.Helper()
	fake = newFakeAgent(t)
	agent := &aclAgent{fakeAgent: fake, resolver: state.NewACLResolver(fake.store, false)}
	ts := httptest.NewServer(New(agent, hclog.New(&hclog.LoggerOptions{Output: io.Discard})).Handler())
	t.Cleanup(ts.Close)
	ta = &testAPI{t: t, agent: fake, ts: ts}
	apply = func(req *state.ACLRequest) {
		t.Helper()
		if _, err := fake.Apply(state.ACLRequestType, req); err != nil {
			t.Fatal(err)
		}
	}
	apply(&state.ACLRequest{Op: state.ACLBootstrap, Token: &acl.Token{AccessorID: acl.NewUUID(), SecretID: "root"}})
	return ta, fake, apply
}
