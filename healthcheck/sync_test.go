package healthcheck

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/beacon-dns/beacon/raftstore"
	"github.com/beacon-dns/beacon/state"
)

// fsmCatalog applies writes with a real FSM at increasing indexes, as a
// single Raft server would.
type fsmCatalog struct {
	mu     sync.Mutex
	fsm    *raftstore.FSM
	index  uint64
	writes int
	leader string
}

func (c *fsmCatalog) Apply(t state.MessageType, msg any) (uint64, error) {
	buf, err := raftstore.Encode(t, msg)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	c.writes++
	if resp := c.fsm.Apply(&raft.Log{Index: c.index, Data: buf, Type: raft.LogCommand}); resp != nil {
		return c.index, resp.(error)
	}
	return c.index, nil
}

func (c *fsmCatalog) Leader() string { return c.leader }

const testNode = "n1"

func nodeReg() *state.RegisterRequest {
	return &state.RegisterRequest{Datacenter: "dc1", ID: "11111111-2222-3333-4444-555555555555", Node: testNode,
		Address: "10.0.0.1", NodeMeta: map[string]string{}}
}

func newSyncer(t *testing.T) (*Syncer, *Local, *state.Store, *fsmCatalog) {
	t.Helper()
	local, err := LoadLocal(filepath.Join(t.TempDir(), "local.json"))
	if err != nil {
		t.Fatal(err)
	}
	store := state.NewStore()
	cat := &fsmCatalog{fsm: raftstore.NewFSM(store, nil), leader: "127.0.0.1:8300"}
	s := NewSyncer(SyncConfig{Local: local, Store: store, Catalog: cat, Node: nodeReg,
		Keep: func(id string) bool { return id == "consul" }})
	return s, local, store, cat
}

func webService() (*state.Service, []*state.HealthCheck) {
	svc := &state.Service{ID: "web-1", Service: "web", Port: 80, Tags: []string{}, Meta: map[string]string{},
		Weights: state.Weights{Passing: 1, Warning: 1}}
	check := &state.HealthCheck{CheckID: "web-http", Name: "web", Status: state.HealthPassing, ServiceID: "web-1",
		Type: "http", Definition: state.CheckDefinition{HTTP: "http://10.0.0.1/", Interval: "10s"}}
	return svc, []*state.HealthCheck{check}
}

func catalogCheck(t *testing.T, store *state.Store, id string) *state.HealthCheck {
	t.Helper()
	_, checks, err := store.NodeChecks(nil, testNode)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.CheckID == id {
			return c
		}
	}
	return nil
}

func TestSyncRepairsTheCatalog(t *testing.T) {
	s, local, store, cat := newSyncer(t)
	svc, checks := webService()
	if _, err := local.AddService(svc, checks); err != nil {
		t.Fatal(err)
	}
	if err := local.AddCheck(&state.HealthCheck{CheckID: "disk", Name: "disk", Status: state.HealthWarning, Type: "ttl",
		Definition: state.CheckDefinition{TTL: "1m"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.FullSync(); err != nil {
		t.Fatal(err)
	}
	if c := catalogCheck(t, store, "web-http"); c == nil || c.Status != state.HealthPassing {
		t.Fatalf("service check after the first sync = %+v", c)
	}
	if c := catalogCheck(t, store, "disk"); c == nil || c.Status != state.HealthWarning || c.ServiceID != "" {
		t.Fatalf("node check after the first sync = %+v", c)
	}

	// In sync: a second sync writes nothing.
	before := cat.writes
	if err := s.FullSync(); err != nil {
		t.Fatal(err)
	}
	if cat.writes != before {
		t.Errorf("a sync of an unchanged state wrote %d times", cat.writes-before)
	}

	// Drift: someone deregisters the service and adds a check and a
	// service of their own on our node; the consul service is kept.
	for _, w := range []struct {
		t   state.MessageType
		msg any
	}{
		{state.DeregisterRequestType, &state.DeregisterRequest{Node: testNode, ServiceID: "web-1"}},
		{state.RegisterRequestType, &state.RegisterRequest{Node: testNode, SkipNodeUpdate: true,
			Service: &state.Service{ID: "stray", Service: "stray"}}},
		{state.RegisterRequestType, &state.RegisterRequest{Node: testNode, SkipNodeUpdate: true,
			Service: &state.Service{ID: "consul", Service: "consul", Port: 8300}}},
		{state.RegisterRequestType, &state.RegisterRequest{Node: testNode, SkipNodeUpdate: true,
			Check: &state.HealthCheck{CheckID: "stray-check", Name: "x", Status: state.HealthCritical}}},
		{state.RegisterRequestType, &state.RegisterRequest{Node: testNode, SkipNodeUpdate: true,
			Check: &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}}},
	} {
		if _, err := cat.Apply(w.t, w.msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FullSync(); err != nil {
		t.Fatal(err)
	}
	_, _, svcs, err := store.NodeServices(nil, testNode)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, sv := range svcs {
		ids[sv.ID] = true
	}
	if !ids["web-1"] || ids["stray"] || !ids["consul"] || len(ids) != 2 {
		t.Errorf("services after the repair = %v, want web-1 and the kept consul", ids)
	}
	if catalogCheck(t, store, "stray-check") != nil {
		t.Error("a check the agent does not have survived the repair")
	}
	if catalogCheck(t, store, state.SerfCheckID) == nil {
		t.Error("the repair removed serfHealth, which is the leader's")
	}
	if c := catalogCheck(t, store, "web-http"); c == nil || c.Status != state.HealthPassing {
		t.Errorf("service check after the repair = %+v", c)
	}

	// A result reaches the catalog with the next sync.
	if found, changed, err := local.SetResult("web-http", state.HealthCritical, "HTTP GET: 500"); !found || !changed || err != nil {
		t.Fatalf("SetResult = %v, %v, %v", found, changed, err)
	}
	if err := s.FullSync(); err != nil {
		t.Fatal(err)
	}
	if c := catalogCheck(t, store, "web-http"); c == nil || c.Status != state.HealthCritical || c.Output != "HTTP GET: 500" {
		t.Errorf("service check after a failure = %+v", c)
	}

	// No leader: nothing is tried.
	cat.leader = ""
	if err := s.FullSync(); err == nil {
		t.Error("a sync without a leader succeeded")
	}
}

func TestLocalStatePersistsAndRestores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "local.json")
	local, err := LoadLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	svc, checks := webService()
	if _, err := local.AddService(svc, checks); err != nil {
		t.Fatal(err)
	}
	if _, changed, _ := local.SetResult("web-http", state.HealthCritical, "down"); !changed {
		t.Fatal("a status change was not reported")
	}
	// Output alone is not persisted; a status change is.
	if _, changed, _ := local.SetResult("web-http", state.HealthCritical, "still down"); changed {
		t.Error("an output change was reported as a status change")
	}
	again, err := LoadLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := again.Check("web-http")
	if !ok || c.Status != state.HealthCritical || c.Output != "down" || !again.HasService("web-1") {
		t.Errorf("restored check = %+v, %v; want critical with the output of its last status change", c, ok)
	}

	// Re-registering the service with other checks drops the old ones.
	dropped, err := again.AddService(svc, nil)
	if err != nil || len(dropped) != 1 || dropped[0] != "web-http" {
		t.Errorf("re-registration without checks dropped %v, %v; want web-http", dropped, err)
	}

	// A check of an unknown service is refused.
	if err := again.AddCheck(&state.HealthCheck{CheckID: "x", ServiceID: "nope"}); err == nil {
		t.Error("a check of an unknown service was accepted")
	}

	// Critical for longer than DeregisterCriticalServiceAfter: expired.
	svc2 := &state.Service{ID: "job", Service: "job"}
	if _, err := again.AddService(svc2, []*state.HealthCheck{{CheckID: "job-ttl", ServiceID: "job", Status: state.HealthCritical,
		Type: "ttl", Definition: state.CheckDefinition{TTL: "1m", DeregisterCriticalServiceAfter: "1m"}}}); err != nil {
		t.Fatal(err)
	}
	if got := again.ExpiredCritical(time.Now()); len(got) != 0 {
		t.Errorf("expired right away: %v", got)
	}
	if got := again.ExpiredCritical(time.Now().Add(2 * time.Minute)); len(got) != 1 || got[0] != "job" {
		t.Errorf("expired after 2m = %v, want [job]", got)
	}

	// A corrupt file is an error naming it, not an empty state.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLocal(path); err == nil {
		t.Error("a corrupt local state loaded")
	}
}
