package state_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/go-memdb"
)

// ---- helpers shared by the package's tests (the rest are statetest's) ----

func checkIDs(checks []*state.HealthCheck) []string {
	out := []string{}
	for _, c := range checks {
		out = append(out, c.Node+"/"+c.CheckID)
	}
	return out
}

// ---- registration ----

func TestEnsureRegistrationNodeServiceChecks(t *testing.T) {
	s := state.NewStore()
	req := &state.RegisterRequest{
		Datacenter: "dc1", ID: "0b9c8c2e-1d4e-4f1a-9a55-5d3d0f4c1a01", Node: "n1", Address: "10.0.0.1",
		TaggedAddresses: map[string]string{"lan": "10.0.0.1"}, NodeMeta: map[string]string{"rack": "r1"},
		Service: &state.Service{ID: "redis-1", Service: "redis", Port: 6379, Tags: []string{"primary"},
			Meta: map[string]string{"v": "7"}, Weights: state.Weights{Passing: 1, Warning: 1}},
		Check: &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing},
		Checks: []*state.HealthCheck{
			{CheckID: "redis-tcp", Name: "tcp", Status: state.HealthWarning, ServiceID: "redis-1", Type: "tcp",
				Definition: state.CheckDefinition{TCP: "10.0.0.1:6379", Interval: "10s"}},
			{CheckID: "no-status", Name: "defaults to critical"},
		},
	}
	statetest.MustRegister(t, s, 7, req)

	n := statetest.GetNode(t, s, "n1")
	want := &state.Node{ID: req.ID, Node: "n1", Address: "10.0.0.1", Datacenter: "dc1",
		TaggedAddresses: req.TaggedAddresses, Meta: req.NodeMeta, CreateIndex: 7, ModifyIndex: 7}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("node = %+v, want %+v", n, want)
	}

	svc := statetest.GetService(t, s, "n1", "redis-1")
	if svc == nil {
		t.Fatal("service redis-1 not stored")
	}
	if svc.Node != "n1" || svc.Service != "redis" || svc.Port != 6379 || svc.CreateIndex != 7 || svc.ModifyIndex != 7 {
		t.Errorf("service = %+v", svc)
	}

	serf := statetest.GetCheck(t, s, "n1", state.SerfCheckID)
	if serf == nil || serf.Node != "n1" || serf.Status != state.HealthPassing || serf.ServiceID != "" {
		t.Errorf("serf check = %+v", serf)
	}
	tcp := statetest.GetCheck(t, s, "n1", "redis-tcp")
	if tcp == nil || tcp.ServiceName != "redis" || !reflect.DeepEqual(tcp.ServiceTags, []string{"primary"}) ||
		tcp.Status != state.HealthWarning || tcp.Definition.TCP != "10.0.0.1:6379" || tcp.CreateIndex != 7 {
		t.Errorf("service check = %+v", tcp)
	}
	if c := statetest.GetCheck(t, s, "n1", "no-status"); c == nil || c.Status != state.HealthCritical {
		t.Errorf("check without status = %+v, want status critical", c)
	}

	// The request's objects are not aliased into the store.
	if req.Checks[0].Node != "" || req.Service.Node != "" {
		t.Errorf("EnsureRegistration mutated the request: check node %q, service node %q",
			req.Checks[0].Node, req.Service.Node)
	}

	wantIdx := map[string]uint64{statetest.TableNodes: 7, statetest.TableServices: 7, statetest.TableChecks: 7}
	if got := statetest.Indexes(t, s); !reflect.DeepEqual(got, wantIdx) {
		t.Errorf("table indexes = %v, want %v", got, wantIdx)
	}
}

func TestEnsureRegistrationUpdateKeepsCreateIndex(t *testing.T) {
	type idxs struct{ create, modify uint64 }
	tests := []struct {
		name   string
		update *state.RegisterRequest
		get    func(t *testing.T, s *state.Store) idxs
		table  string
	}{
		{
			name:   "node address",
			update: statetest.NodeReq("n1", "10.0.0.99"),
			get: func(t *testing.T, s *state.Store) idxs {
				n := statetest.GetNode(t, s, "n1")
				return idxs{n.CreateIndex, n.ModifyIndex}
			},
			table: statetest.TableNodes,
		},
		{
			name:   "service port",
			update: statetest.SvcReq("n1", "10.0.0.1", "web", "web", 8081, nil),
			get: func(t *testing.T, s *state.Store) idxs {
				svc := statetest.GetService(t, s, "n1", "web")
				return idxs{svc.CreateIndex, svc.ModifyIndex}
			},
			table: statetest.TableServices,
		},
		{
			name: "check status",
			update: func() *state.RegisterRequest {
				r := statetest.NodeReq("n1", "10.0.0.1")
				r.Check = &state.HealthCheck{CheckID: "web-check", Name: "web", ServiceID: "web", Status: state.HealthCritical}
				return r
			}(),
			get: func(t *testing.T, s *state.Store) idxs {
				c := statetest.GetCheck(t, s, "n1", "web-check")
				return idxs{c.CreateIndex, c.ModifyIndex}
			},
			table: statetest.TableChecks,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := state.NewStore()
			statetest.MustRegister(t, s, 1, statetest.SvcReq("n1", "10.0.0.1", "web", "web", 8080, nil,
				&state.HealthCheck{CheckID: "web-check", Name: "web", ServiceID: "web", Status: state.HealthPassing}))
			if got := tc.get(t, s); got != (idxs{1, 1}) {
				t.Fatalf("before update: %+v", got)
			}
			statetest.MustRegister(t, s, 5, tc.update)
			if got := tc.get(t, s); got != (idxs{1, 5}) {
				t.Errorf("after update: CreateIndex/ModifyIndex = %d/%d, want 1/5", got.create, got.modify)
			}
			if got := statetest.Indexes(t, s)[tc.table]; got != 5 {
				t.Errorf("%s table index = %d, want 5", tc.table, got)
			}
		})
	}
}

func TestEnsureRegistrationIdenticalNodeDoesNotBump(t *testing.T) {
	s := state.NewStore()
	req := &state.RegisterRequest{Datacenter: "dc1", ID: "id-1", Node: "n1", Address: "10.0.0.1",
		TaggedAddresses: map[string]string{"lan": "10.0.0.1"}, NodeMeta: map[string]string{"a": "b"}}
	statetest.MustRegister(t, s, 3, req)

	ws := memdb.NewWatchSet()
	if _, _, err := s.GetNode(ws, "n1"); err != nil {
		t.Fatal(err)
	}
	again := *req
	statetest.MustRegister(t, s, 9, &again)

	n := statetest.GetNode(t, s, "n1")
	if n.CreateIndex != 3 || n.ModifyIndex != 3 {
		t.Errorf("identical re-registration: Create/ModifyIndex = %d/%d, want 3/3", n.CreateIndex, n.ModifyIndex)
	}
	if got := statetest.Indexes(t, s)[statetest.TableNodes]; got != 3 {
		t.Errorf("nodes table index = %d after a no-op re-registration, want 3", got)
	}
	if !ws.Watch(time.After(10 * time.Millisecond)) {
		t.Error("a no-op node re-registration woke a watcher of the node")
	}
}

// Consul's ensureServiceTxn returns early when the service is the same
// (structs.ServiceNode.IsSameService), so re-registering an unchanged instance
// (anti-entropy, the agent pushing a check update with its service, tools
// that re-register periodically) neither bumps ModifyIndex nor wakes every
// blocking query on the service.
func TestEnsureRegistrationIdenticalServiceDoesNotBump(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 3, statetest.SvcReq("n1", "10.0.0.1", "web", "web", 80, []string{"a"}))
	ws := memdb.NewWatchSet()
	if _, _, err := s.ServiceNodes(ws, "web", ""); err != nil {
		t.Fatal(err)
	}
	statetest.MustRegister(t, s, 9, statetest.SvcReq("n1", "10.0.0.1", "web", "web", 80, []string{"a"}))

	svc := statetest.GetService(t, s, "n1", "web")
	if svc.CreateIndex != 3 || svc.ModifyIndex != 3 {
		t.Errorf("identical service re-registration: Create/ModifyIndex = %d/%d, want 3/3 (Consul skips unchanged services)",
			svc.CreateIndex, svc.ModifyIndex)
	}
	if got := statetest.Indexes(t, s)[statetest.TableServices]; got != 3 {
		t.Errorf("services table index = %d after a no-op re-registration, want 3", got)
	}
	if !ws.Watch(time.After(10 * time.Millisecond)) {
		t.Error("a no-op service re-registration woke the service's blocking queries")
	}
}

// A change to any part of a check's definition must be stored: checkEqual
// compares only some of the definition's fields, so a re-registration that
// changes e.g. the TTL is dropped as a no-op and the API shows the old one.
func TestEnsureRegistrationCheckDefinitionChangeIsStored(t *testing.T) {
	base := func() *state.HealthCheck {
		return &state.HealthCheck{CheckID: "c1", Name: "c1", Status: state.HealthPassing, Type: "http",
			Definition: state.CheckDefinition{HTTP: "http://x/health", Interval: "10s", Method: "GET", TTL: "",
				Header: map[string][]string{"A": {"1"}}}}
	}
	tests := []struct {
		name   string
		change func(c *state.HealthCheck)
	}{
		{"Method", func(c *state.HealthCheck) { c.Definition.Method = "POST" }},
		{"Header", func(c *state.HealthCheck) { c.Definition.Header = map[string][]string{"A": {"2"}} }},
		{"Body", func(c *state.HealthCheck) { c.Definition.Body = "ping" }},
		{"TLSSkipVerify", func(c *state.HealthCheck) { c.Definition.TLSSkipVerify = true }},
		{"TTL", func(c *state.HealthCheck) { c.Definition.TTL = "30s" }},
		{"ScriptArgs", func(c *state.HealthCheck) { c.Definition.ScriptArgs = []string{"/bin/true"} }},
		{"DeregisterCriticalServiceAfter", func(c *state.HealthCheck) { c.Definition.DeregisterCriticalServiceAfter = "1m" }},
		{"Interval (compared today)", func(c *state.HealthCheck) { c.Definition.Interval = "20s" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := state.NewStore()
			r := statetest.NodeReq("n1", "10.0.0.1")
			r.Check = base()
			statetest.MustRegister(t, s, 1, r)

			r2 := statetest.NodeReq("n1", "10.0.0.1")
			r2.Check = base()
			tc.change(r2.Check)
			statetest.MustRegister(t, s, 2, r2)

			got := statetest.GetCheck(t, s, "n1", "c1")
			want := *r2.Check
			want.Node = "n1"
			if !reflect.DeepEqual(got.Definition, want.Definition) {
				t.Errorf("stored definition = %+v, want %+v", got.Definition, want.Definition)
			}
			if got.ModifyIndex != 2 {
				t.Errorf("ModifyIndex = %d, want 2", got.ModifyIndex)
			}
		})
	}
}

func TestEnsureRegistrationServiceRenameUpdatesItsChecks(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.SvcReq("n1", "10.0.0.1", "s1", "old", 80, []string{"a"},
		&state.HealthCheck{CheckID: "c1", Name: "c1", ServiceID: "s1", Status: state.HealthPassing}))
	statetest.MustRegister(t, s, 2, statetest.SvcReq("n1", "10.0.0.1", "s1", "new", 80, []string{"b"}))

	c := statetest.GetCheck(t, s, "n1", "c1")
	if c.ServiceName != "new" || !reflect.DeepEqual(c.ServiceTags, []string{"b"}) || c.ModifyIndex != 2 {
		t.Errorf("check after service update = %+v, want ServiceName new, tags [b], ModifyIndex 2", c)
	}
	if _, checks, _ := s.ServiceChecks(nil, "old"); len(checks) != 0 {
		t.Errorf("ServiceChecks(old) = %v, want none", checkIDs(checks))
	}
	if _, checks, _ := s.ServiceChecks(nil, "new"); len(checks) != 1 {
		t.Errorf("ServiceChecks(new) = %v, want c1", checkIDs(checks))
	}
}

func TestEnsureRegistrationFailuresWriteNothing(t *testing.T) {
	tests := []struct {
		name    string
		req     *state.RegisterRequest
		wantMsg string // substring of the error
	}{
		{
			name:    "empty node name",
			req:     &state.RegisterRequest{Node: "", Address: "10.0.0.9", Service: &state.Service{ID: "s", Service: "s"}},
			wantMsg: "primary index",
		},
		{
			name: "check for unknown service rolls back node and service",
			req: statetest.SvcReq("n2", "10.0.0.2", "web", "web", 80, nil,
				&state.HealthCheck{CheckID: "ok", Name: "ok", ServiceID: "web", Status: state.HealthPassing},
				&state.HealthCheck{CheckID: "bad", Name: "bad", ServiceID: "nope", Status: state.HealthPassing}),
			wantMsg: `refers to service "nope"`,
		},
		{
			name: "node update rolled back with a bad check",
			req: &state.RegisterRequest{Node: "seed", ID: "id-seed", Address: "10.0.0.200",
				Check: &state.HealthCheck{CheckID: "c", Name: "c", ServiceID: "nope"}},
			wantMsg: `refers to service "nope"`,
		},
		{
			name: "node ID already owned by another node",
			req: &state.RegisterRequest{Node: "n3", ID: "id-seed", Address: "10.0.0.3",
				Service: &state.Service{ID: "x", Service: "x"}},
			wantMsg: "already registered to node",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := state.NewStore()
			statetest.MustRegister(t, s, 1, &state.RegisterRequest{Node: "seed", ID: "id-seed", Address: "10.0.0.100"})
			before := statetest.Tables(t, s)
			beforeIdx := statetest.Indexes(t, s)

			err := s.EnsureRegistration(2, tc.req)
			if err == nil {
				t.Fatal("EnsureRegistration succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", err, tc.wantMsg)
			}
			if after := statetest.Tables(t, s); !reflect.DeepEqual(before, after) {
				t.Errorf("a failed registration changed the store:\nbefore %v\nafter  %v", before, after)
			}
			if after := statetest.Indexes(t, s); !reflect.DeepEqual(beforeIdx, after) {
				t.Errorf("a failed registration changed the indexes: %v -> %v", beforeIdx, after)
			}
		})
	}
}

func TestDeregister(t *testing.T) {
	setup := func(t *testing.T) *state.Store {
		s := state.NewStore()
		r := statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil,
			&state.HealthCheck{CheckID: "web-http", Name: "web", ServiceID: "web-1", Status: state.HealthPassing},
			&state.HealthCheck{CheckID: "web-2nd", Name: "web2", ServiceID: "web-1", Status: state.HealthPassing})
		r.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}
		statetest.MustRegister(t, s, 1, r)
		statetest.MustRegister(t, s, 2, statetest.SvcReq("n1", "10.0.0.1", "db-1", "db", 5432, nil,
			&state.HealthCheck{CheckID: "db-tcp", Name: "db", ServiceID: "db-1", Status: state.HealthPassing}))
		statetest.MustRegister(t, s, 3, statetest.SvcReq("n2", "10.0.0.2", "web-2", "web", 80, nil,
			&state.HealthCheck{CheckID: "web-http", Name: "web", ServiceID: "web-2", Status: state.HealthPassing}))
		return s
	}
	allChecks := func(t *testing.T, s *state.Store) []string {
		_, checks, err := s.ChecksInState(nil, state.HealthAny)
		if err != nil {
			t.Fatal(err)
		}
		return checkIDs(checks)
	}

	t.Run("service removes its checks only", func(t *testing.T) {
		s := setup(t)
		statetest.MustDeregister(t, s, 10, &state.DeregisterRequest{Node: "n1", ServiceID: "web-1"})
		if svc := statetest.GetService(t, s, "n1", "web-1"); svc != nil {
			t.Errorf("service still there: %+v", svc)
		}
		want := []string{"n1/db-tcp", "n1/" + state.SerfCheckID, "n2/web-http"}
		if got := allChecks(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("checks = %v, want %v", got, want)
		}
		if got := statetest.Indexes(t, s); got[statetest.TableServices] != 10 || got[statetest.TableChecks] != 10 || got[statetest.TableNodes] != 3 {
			t.Errorf("indexes = %v, want services/checks 10, nodes 3", got)
		}
	})

	t.Run("check", func(t *testing.T) {
		s := setup(t)
		statetest.MustDeregister(t, s, 10, &state.DeregisterRequest{Node: "n1", CheckID: "web-2nd"})
		want := []string{"n1/db-tcp", "n1/" + state.SerfCheckID, "n1/web-http", "n2/web-http"}
		if got := allChecks(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("checks = %v, want %v", got, want)
		}
		if svc := statetest.GetService(t, s, "n1", "web-1"); svc == nil {
			t.Error("deregistering a check removed its service")
		}
	})

	t.Run("node removes services and checks", func(t *testing.T) {
		s := setup(t)
		statetest.MustDeregister(t, s, 10, &state.DeregisterRequest{Node: "n1"})
		if n := statetest.GetNode(t, s, "n1"); n != nil {
			t.Errorf("node still there: %+v", n)
		}
		if _, sns, _ := s.ServiceNodes(nil, "web", ""); !reflect.DeepEqual(statetest.InstanceKeys(sns), []string{"n2/web-2"}) {
			t.Errorf("web instances = %v, want [n2/web-2]", statetest.InstanceKeys(sns))
		}
		if _, sns, _ := s.ServiceNodes(nil, "db", ""); len(sns) != 0 {
			t.Errorf("db instances = %v, want none", statetest.InstanceKeys(sns))
		}
		if got := allChecks(t, s); !reflect.DeepEqual(got, []string{"n2/web-http"}) {
			t.Errorf("checks = %v, want [n2/web-http]", got)
		}
		want := map[string]uint64{statetest.TableNodes: 10, statetest.TableServices: 10, statetest.TableChecks: 10}
		if got := statetest.Indexes(t, s); !reflect.DeepEqual(got, want) {
			t.Errorf("indexes = %v, want %v", got, want)
		}
	})

	t.Run("case-insensitive node name", func(t *testing.T) {
		s := setup(t)
		statetest.MustDeregister(t, s, 10, &state.DeregisterRequest{Node: "N1", ServiceID: "db-1"})
		if svc := statetest.GetService(t, s, "n1", "db-1"); svc != nil {
			t.Error("deregistering with node N1 did not remove n1's service")
		}
		statetest.MustDeregister(t, s, 11, &state.DeregisterRequest{Node: "N1"})
		if n := statetest.GetNode(t, s, "n1"); n != nil {
			t.Error("deregistering node N1 did not remove n1")
		}
		if got := allChecks(t, s); !reflect.DeepEqual(got, []string{"n2/web-http"}) {
			t.Errorf("checks = %v, want [n2/web-http]", got)
		}
	})

	absent := []struct {
		name string
		req  *state.DeregisterRequest
	}{
		{"absent node", &state.DeregisterRequest{Node: "ghost"}},
		{"absent service", &state.DeregisterRequest{Node: "n1", ServiceID: "nope"}},
		{"absent check", &state.DeregisterRequest{Node: "n1", CheckID: "nope"}},
		{"service of absent node", &state.DeregisterRequest{Node: "ghost", ServiceID: "web-1"}},
		{"check of absent node", &state.DeregisterRequest{Node: "ghost", CheckID: "web-http"}},
	}
	for _, tc := range absent {
		t.Run(tc.name+" is a no-op", func(t *testing.T) {
			s := setup(t)
			before, beforeIdx := statetest.Tables(t, s), statetest.Indexes(t, s)
			statetest.MustDeregister(t, s, 10, tc.req)
			if after := statetest.Tables(t, s); !reflect.DeepEqual(before, after) {
				t.Error("store changed")
			}
			if after := statetest.Indexes(t, s); !reflect.DeepEqual(beforeIdx, after) {
				t.Errorf("indexes changed: %v -> %v", beforeIdx, after)
			}
		})
	}
}

// ---- reads ----

func TestCaseInsensitiveLookups(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.SvcReq("Node-One", "10.0.0.1", "Redis-1", "Redis", 6379, []string{"Primary"}))

	if n := statetest.GetNode(t, s, "node-one"); n == nil || n.Node != "Node-One" {
		t.Errorf("GetNode(node-one) = %+v", n)
	}
	if n := statetest.GetNode(t, s, "NODE-ONE"); n == nil {
		t.Error("GetNode(NODE-ONE) found nothing")
	}
	for _, name := range []string{"redis", "REDIS", "Redis"} {
		if _, sns, _ := s.ServiceNodes(nil, name, ""); len(sns) != 1 {
			t.Errorf("ServiceNodes(%q) = %d instances, want 1", name, len(sns))
		}
		if got := s.HealthyInstances(nil, name, "", false); len(got) != 1 {
			t.Errorf("HealthyInstances(%q) = %d, want 1", name, len(got))
		}
	}
	if _, sns, _ := s.ServiceNodes(nil, "redis", "primary"); len(sns) != 1 {
		t.Error("tag match is not case-insensitive")
	}
	if _, n, svcs, _ := s.NodeServices(nil, "node-ONE"); n == nil || len(svcs) != 1 {
		t.Errorf("NodeServices(node-ONE) = %v, %v", n, svcs)
	}
	// Re-registering under another case updates the same row.
	statetest.MustRegister(t, s, 2, statetest.NodeReq("NODE-ONE", "10.0.0.2"))
	if _, nodes, _ := s.Nodes(nil); len(nodes) != 1 || nodes[0].Address != "10.0.0.2" || nodes[0].CreateIndex != 1 {
		t.Errorf("nodes after re-registration in another case = %+v", nodes)
	}
}

func TestServiceNodes(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.SvcReq("b", "10.0.0.2", "web-b", "web", 80, []string{"v1", "eu"}))
	statetest.MustRegister(t, s, 2, statetest.SvcReq("a", "10.0.0.1", "web-a2", "web", 81, []string{"v2"}))
	statetest.MustRegister(t, s, 3, statetest.SvcReq("a", "10.0.0.1", "web-a1", "web", 80, []string{"v1"},
		&state.HealthCheck{CheckID: "web-a1-check", Name: "c", ServiceID: "web-a1", Status: state.HealthWarning}))
	r := statetest.SvcReq("c", "10.0.0.3", "db", "db", 5432, nil)
	r.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}
	statetest.MustRegister(t, s, 4, r)

	tests := []struct {
		name, svc, tag string
		want           []string // node/ID in order
	}{
		{"all, sorted by node then ID", "web", "", []string{"a/web-a1", "a/web-a2", "b/web-b"}},
		{"tag", "web", "v1", []string{"a/web-a1", "b/web-b"}},
		{"tag case-insensitive", "web", "EU", []string{"b/web-b"}},
		{"unknown tag", "web", "v3", nil},
		{"unknown service", "nope", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx, sns, err := s.ServiceNodes(nil, tc.svc, tc.tag)
			if err != nil {
				t.Fatal(err)
			}
			if idx != 4 {
				t.Errorf("index = %d, want 4 (max of nodes, services, checks)", idx)
			}
			var got []string
			for _, sn := range sns {
				got = append(got, sn.Node.Node+"/"+sn.Service.ID)
				if sn.Service.Node != sn.Node.Node {
					t.Errorf("instance %s: Service.Node = %q", sn.Service.ID, sn.Service.Node)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("instances = %v, want %v", got, tc.want)
			}
		})
	}

	_, sns, _ := s.ServiceNodes(nil, "web", "")
	if got := checkIDs(sns[0].Checks); !reflect.DeepEqual(got, []string{"a/web-a1-check"}) {
		t.Errorf("checks of a/web-a1 = %v", got)
	}
	if len(sns[1].Checks) != 0 {
		t.Errorf("checks of a/web-a2 = %v, want none (another instance's check must not leak)", checkIDs(sns[1].Checks))
	}
	_, dbs, _ := s.ServiceNodes(nil, "db", "")
	if got := checkIDs(dbs[0].Checks); !reflect.DeepEqual(got, []string{"c/" + state.SerfCheckID}) {
		t.Errorf("checks of c/db = %v, want the node's serfHealth", got)
	}
}

func TestHealthyInstances(t *testing.T) {
	s := state.NewStore()
	// n-ok: passing node and service checks.
	r := statetest.SvcReq("n-ok", "10.0.0.1", "api-1", "api", 80, []string{"blue"},
		&state.HealthCheck{CheckID: "api-1", Name: "api", ServiceID: "api-1", Status: state.HealthPassing})
	r.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}
	statetest.MustRegister(t, s, 1, r)
	// n-dead: node-level check critical.
	r = statetest.SvcReq("n-dead", "10.0.0.2", "api-2", "api", 80, []string{"blue"},
		&state.HealthCheck{CheckID: "api-2", Name: "api", ServiceID: "api-2", Status: state.HealthPassing})
	r.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthCritical}
	statetest.MustRegister(t, s, 2, r)
	// n-svc-crit: the instance's own check is critical.
	statetest.MustRegister(t, s, 3, statetest.SvcReq("n-svc-crit", "10.0.0.3", "api-3", "api", 80, nil,
		&state.HealthCheck{CheckID: "api-3", Name: "api", ServiceID: "api-3", Status: state.HealthCritical}))
	// n-warn: a warning check.
	statetest.MustRegister(t, s, 4, statetest.SvcReq("n-warn", "10.0.0.4", "api-4", "api", 80, []string{"green"},
		&state.HealthCheck{CheckID: "api-4", Name: "api", ServiceID: "api-4", Status: state.HealthWarning}))
	// n-other: another service on the same node is critical; api-5 is fine.
	statetest.MustRegister(t, s, 5, statetest.SvcReq("n-other", "10.0.0.5", "api-5", "api", 80, nil))
	statetest.MustRegister(t, s, 6, statetest.SvcReq("n-other", "10.0.0.5", "cache", "cache", 11211, nil,
		&state.HealthCheck{CheckID: "cache", Name: "cache", ServiceID: "cache", Status: state.HealthCritical}))
	// n-nochecks: no checks at all counts as healthy.
	statetest.MustRegister(t, s, 7, statetest.SvcReq("n-nochecks", "10.0.0.6", "api-6", "api", 80, nil))

	tests := []struct {
		name        string
		tag         string
		onlyPassing bool
		want        []string
	}{
		{"warning counts as healthy", "", false,
			[]string{"n-nochecks/api-6", "n-ok/api-1", "n-other/api-5", "n-warn/api-4"}},
		{"only passing", "", true, []string{"n-nochecks/api-6", "n-ok/api-1", "n-other/api-5"}},
		{"tag", "blue", false, []string{"n-ok/api-1"}},
		{"tag, warning", "GREEN", false, []string{"n-warn/api-4"}},
		{"tag, warning, only passing", "green", true, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := statetest.InstanceKeys(s.HealthyInstances(nil, "api", tc.tag, tc.onlyPassing))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("HealthyInstances = %v, want %v", got, tc.want)
			}
		})
	}

	// It appends to dst.
	dst := make([]state.ServiceNode, 1, 8)
	if got := s.HealthyInstances(dst, "cache", "", false); len(got) != 1 {
		t.Errorf("HealthyInstances(cache) appended %d, want none (critical)", len(got)-1)
	}

	// Healthy (the helper the API uses) agrees.
	_, sns, _ := s.ServiceNodes(nil, "api", "")
	var viaHealthy []string
	for _, sn := range sns {
		if state.Healthy(sn.Checks, false) {
			viaHealthy = append(viaHealthy, sn.Node.Node+"/"+sn.Service.ID)
		}
	}
	if want := tests[0].want; !reflect.DeepEqual(viaHealthy, want) {
		t.Errorf("Healthy over ServiceNodes = %v, want %v", viaHealthy, want)
	}
}

func TestServicesTagUnion(t *testing.T) {
	s := state.NewStore()
	idx, got, err := s.Services(nil)
	if err != nil || idx != 0 || len(got) != 0 {
		t.Fatalf("empty store: %d %v %v", idx, got, err)
	}
	statetest.MustRegister(t, s, 1, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, []string{"b", "a"}))
	statetest.MustRegister(t, s, 2, statetest.SvcReq("n2", "10.0.0.2", "web-2", "web", 80, []string{"c", "a"}))
	statetest.MustRegister(t, s, 3, statetest.SvcReq("n2", "10.0.0.2", "db", "db", 5432, nil))
	idx, got, err = s.Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"web": {"a", "b", "c"}, "db": {}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Services = %v, want %v", got, want)
	}
	if idx != 3 {
		t.Errorf("index = %d, want 3", idx)
	}
}

func TestChecksInState(t *testing.T) {
	s := state.NewStore()
	r := statetest.NodeReq("n1", "10.0.0.1")
	r.Checks = []*state.HealthCheck{
		{CheckID: "p1", Name: "p1", Status: state.HealthPassing},
		{CheckID: "w1", Name: "w1", Status: state.HealthWarning},
		{CheckID: "c1", Name: "c1", Status: state.HealthCritical},
	}
	statetest.MustRegister(t, s, 1, r)
	r = statetest.NodeReq("n0", "10.0.0.2")
	r.Checks = []*state.HealthCheck{{CheckID: "p0", Name: "p0", Status: state.HealthPassing}}
	statetest.MustRegister(t, s, 2, r)

	tests := []struct {
		state string
		want  []string
	}{
		{state.HealthPassing, []string{"n0/p0", "n1/p1"}},
		{state.HealthWarning, []string{"n1/w1"}},
		{state.HealthCritical, []string{"n1/c1"}},
		{state.HealthAny, []string{"n0/p0", "n1/c1", "n1/p1", "n1/w1"}},
		{"bogus", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.state, func(t *testing.T) {
			idx, checks, err := s.ChecksInState(nil, tc.state)
			if err != nil {
				t.Fatal(err)
			}
			if got := checkIDs(checks); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ChecksInState(%s) = %v, want %v", tc.state, got, tc.want)
			}
			if idx != 2 {
				t.Errorf("index = %d, want 2", idx)
			}
		})
	}
}

func TestAddressLookups(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.SvcReq("n1", "10.0.0.1", "web", "web", 80, nil))
	r := statetest.SvcReq("n2", "10.0.0.2", "web", "web", 80, nil)
	r.Service.Address = "10.0.0.1"
	statetest.MustRegister(t, s, 2, r)

	if got := s.NodesByAddress("10.0.0.1"); len(got) != 1 || got[0].Node != "n1" {
		t.Errorf("NodesByAddress = %+v", got)
	}
	if got := s.ServicesByAddress("10.0.0.1"); len(got) != 1 || got[0].Node != "n2" {
		t.Errorf("ServicesByAddress = %+v", got)
	}
	if got := s.NodesByAddress("10.9.9.9"); len(got) != 0 {
		t.Errorf("NodesByAddress(unknown) = %+v", got)
	}
}

// ---- watches ----

// TestServiceNodesWatch checks that a watch set filled by ServiceNodes fires
// for changes to the service's instances, their nodes and checks.
func TestServiceNodesWatch(t *testing.T) {
	setup := func(t *testing.T) *state.Store {
		s := state.NewStore()
		r := statetest.SvcReq("n1", "10.0.0.1", "redis-1", "redis", 6379, nil,
			&state.HealthCheck{CheckID: "redis-1", Name: "redis", ServiceID: "redis-1", Status: state.HealthPassing})
		r.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}
		statetest.MustRegister(t, s, 1, r)
		statetest.MustRegister(t, s, 2, statetest.SvcReq("n2", "10.0.0.2", "web-1", "web", 80, nil,
			&state.HealthCheck{CheckID: "web-1", Name: "web", ServiceID: "web-1", Status: state.HealthPassing}))
		return s
	}
	relevant := []struct {
		name  string
		write func(s *state.Store) error
	}{
		{"instance port", func(s *state.Store) error {
			return s.EnsureRegistration(10, statetest.SvcReq("n1", "10.0.0.1", "redis-1", "redis", 6380, nil))
		}},
		{"new instance", func(s *state.Store) error {
			return s.EnsureRegistration(10, statetest.SvcReq("n3", "10.0.0.3", "redis-2", "redis", 6379, nil))
		}},
		{"instance check status", func(s *state.Store) error {
			r := statetest.NodeReq("n1", "10.0.0.1")
			r.Check = &state.HealthCheck{CheckID: "redis-1", Name: "redis", ServiceID: "redis-1", Status: state.HealthCritical}
			return s.EnsureRegistration(10, r)
		}},
		{"node check status", func(s *state.Store) error {
			r := statetest.NodeReq("n1", "10.0.0.1")
			r.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthCritical}
			return s.EnsureRegistration(10, r)
		}},
		{"node address", func(s *state.Store) error { return s.EnsureRegistration(10, statetest.NodeReq("n1", "10.0.0.99")) }},
		{"instance deregistered", func(s *state.Store) error {
			return s.Deregister(10, &state.DeregisterRequest{Node: "n1", ServiceID: "redis-1"})
		}},
		{"node deregistered", func(s *state.Store) error { return s.Deregister(10, &state.DeregisterRequest{Node: "n1"}) }},
	}
	for _, tc := range relevant {
		t.Run("fires on "+tc.name, func(t *testing.T) {
			s := setup(t)
			ws := memdb.NewWatchSet()
			if _, _, err := s.ServiceNodes(ws, "redis", ""); err != nil {
				t.Fatal(err)
			}
			if err := tc.write(s); err != nil {
				t.Fatal(err)
			}
			if ws.Watch(time.After(time.Second)) {
				t.Error("the watch did not fire")
			}
		})
	}
}

// TestServiceNodesWatchUnrelated pins which unrelated writes may wake a
// ServiceNodes watcher: every such wake-up makes each blocking query on the
// service re-run and, since the reported index is per table, return to its
// client with an unchanged body. Writes on other nodes never do. When the
// instance lacks its node's or its own check, the watch on the missing
// (node, service) check entry falls back to the radix tree's nearest
// ancestor, which another service's check on the same node also touches:
// that one spurious wake-up is allowed there, and only there.
func TestServiceNodesWatchUnrelated(t *testing.T) {
	type layout struct {
		name                string
		serfCheck, ownCheck bool
	}
	layouts := []layout{
		{"node and instance checks", true, true},
		{"instance check only", false, true},
		{"node check only", true, false},
		{"no checks", false, false},
	}
	const sameNodeCheck = "other service's check on the same node"
	setup := func(t *testing.T, l layout) *state.Store {
		s := state.NewStore()
		r := statetest.SvcReq("n1", "10.0.0.1", "redis-1", "redis", 6379, nil)
		if l.ownCheck {
			r.Checks = []*state.HealthCheck{{CheckID: "redis-1", Name: "redis", ServiceID: "redis-1", Status: state.HealthPassing}}
		}
		if l.serfCheck {
			r.Check = &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName, Status: state.HealthPassing}
		}
		statetest.MustRegister(t, s, 1, r)
		statetest.MustRegister(t, s, 2, statetest.SvcReq("n2", "10.0.0.2", "web-1", "web", 80, nil,
			&state.HealthCheck{CheckID: "web-1", Name: "web", ServiceID: "web-1", Status: state.HealthPassing}))
		statetest.MustRegister(t, s, 3, statetest.SvcReq("n1", "10.0.0.1", "mc", "mc", 11211, nil,
			&state.HealthCheck{CheckID: "mc", Name: "mc", ServiceID: "mc", Status: state.HealthPassing}))
		return s
	}
	unrelated := []struct {
		name  string
		write func(s *state.Store) error
	}{
		{"other service's port on another node", func(s *state.Store) error {
			return s.EnsureRegistration(10, statetest.SvcReq("n2", "10.0.0.2", "web-1", "web", 81, nil))
		}},
		{"new unrelated service on another node", func(s *state.Store) error {
			return s.EnsureRegistration(10, statetest.SvcReq("n3", "10.0.0.3", "zk", "zk", 2181, nil))
		}},
		{"other service's check on another node", func(s *state.Store) error {
			r := statetest.NodeReq("n2", "10.0.0.2")
			r.Check = &state.HealthCheck{CheckID: "web-1", Name: "web", ServiceID: "web-1", Status: state.HealthCritical}
			return s.EnsureRegistration(10, r)
		}},
		{"other service on the same node", func(s *state.Store) error {
			return s.EnsureRegistration(10, statetest.SvcReq("n1", "10.0.0.1", "mc", "mc", 11212, nil))
		}},
		{"other service's check on the same node", func(s *state.Store) error {
			r := statetest.NodeReq("n1", "10.0.0.1")
			r.Check = &state.HealthCheck{CheckID: "mc", Name: "mc", ServiceID: "mc", Status: state.HealthCritical}
			return s.EnsureRegistration(10, r)
		}},
		{"unrelated node", func(s *state.Store) error { return s.EnsureRegistration(10, statetest.NodeReq("n9", "10.0.0.9")) }},
	}
	for _, l := range layouts {
		var fired []string
		for _, tc := range unrelated {
			s := setup(t, l)
			ws := memdb.NewWatchSet()
			if _, _, err := s.ServiceNodes(ws, "redis", ""); err != nil {
				t.Fatal(err)
			}
			if err := tc.write(s); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !ws.Watch(time.After(20 * time.Millisecond)) {
				fired = append(fired, tc.name)
			}
		}
		allowed := map[string]bool{sameNodeCheck: !(l.serfCheck && l.ownCheck)}
		for _, name := range fired {
			if !allowed[name] {
				t.Errorf("%s: a ServiceNodes(redis) watcher was woken by an unrelated write: %s", l.name, name)
			}
		}
	}
}

// TestReadsDoNotWatchIndexTable checks the claim in maxIndex's comment: a
// read adds no index-table channel to its watch set, so a write to another
// node does not wake a read of one node through the table index alone.
func TestReadsDoNotWatchIndexTable(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.SvcReq("n1", "10.0.0.1", "a", "a", 1, nil))
	statetest.MustRegister(t, s, 2, statetest.SvcReq("n2", "10.0.0.2", "b", "b", 1, nil))

	ws := memdb.NewWatchSet()
	if _, _, err := s.GetNode(ws, "n1"); err != nil {
		t.Fatal(err)
	}
	statetest.MustRegister(t, s, 3, statetest.NodeReq("n2", "10.0.0.22"))
	if !ws.Watch(time.After(20 * time.Millisecond)) {
		t.Error("GetNode(n1) watch fired for a write to n2")
	}
}

func TestAbandonChOnlyClosesOnReplace(t *testing.T) {
	s := state.NewStore()
	ch := s.AbandonCh()
	statetest.MustRegister(t, s, 1, statetest.NodeReq("n1", "10.0.0.1"))
	select {
	case <-ch:
		t.Fatal("AbandonCh closed by an ordinary write")
	default:
	}
}

// TestServiceNodesWatchMissingService: a watcher of a service with no
// instances must wake when the first one registers. (It may also wake for
// writes to other services: the radix tree has no node for the missing
// name, so the watch falls back to the nearest ancestor's channel.)
func TestServiceNodesWatchMissingService(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil))
	statetest.MustRegister(t, s, 2, statetest.SvcReq("n2", "10.0.0.2", "db-1", "db", 5432, nil))
	ws := memdb.NewWatchSet()
	if _, _, err := s.ServiceNodes(ws, "redis", ""); err != nil {
		t.Fatal(err)
	}
	statetest.MustRegister(t, s, 4, statetest.SvcReq("n3", "10.0.0.3", "redis-1", "redis", 6379, nil))
	if ws.Watch(time.After(time.Second)) {
		t.Error("registering the first instance of a watched service did not fire the watch")
	}
}

func TestEnsureRegistrationSkipNodeUpdate(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, &state.RegisterRequest{Node: "n1", Address: "10.0.0.1", NodeMeta: map[string]string{"a": "b"}})
	r := statetest.SvcReq("n1", "10.9.9.9", "web", "web", 80, nil)
	r.SkipNodeUpdate = true
	statetest.MustRegister(t, s, 2, r)
	n := statetest.GetNode(t, s, "n1")
	if n.Address != "10.0.0.1" || n.Meta["a"] != "b" || n.ModifyIndex != 1 {
		t.Errorf("SkipNodeUpdate changed the node: %+v", n)
	}
	if statetest.GetService(t, s, "n1", "web") == nil {
		t.Error("service not registered")
	}
	// Without the node, SkipNodeUpdate still creates it (as Consul does).
	r = statetest.SvcReq("n2", "10.0.0.2", "web", "web", 80, nil)
	r.SkipNodeUpdate = true
	statetest.MustRegister(t, s, 3, r)
	if n := statetest.GetNode(t, s, "n2"); n == nil || n.Address != "10.0.0.2" {
		t.Errorf("node n2 = %+v", n)
	}
}

func TestByAddressComparesIPs(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, &state.RegisterRequest{Node: "v6", Address: "2001:0db8:0000::0001",
		Service: &state.Service{ID: "web-1", Service: "web", Address: "2001:DB8::2"}})
	if got := s.NodesByAddress("2001:db8::1"); len(got) != 1 || got[0].Node != "v6" {
		t.Errorf("NodesByAddress(canonical form of a non-canonical registration) = %+v", got)
	}
	if got := s.ServicesByAddress("2001:db8::2"); len(got) != 1 || got[0].ID != "web-1" {
		t.Errorf("ServicesByAddress(lowercase form of an uppercase registration) = %+v", got)
	}
	if got := s.NodesByAddress("not-an-ip"); got != nil {
		t.Errorf("NodesByAddress(garbage) = %+v, want nil", got)
	}
}

// A node's services and checks are read (and deleted with it) by a prefix
// of their key: a node whose name starts with another's is not taken.
func TestNodeRowsDoNotTakeLongerNames(t *testing.T) {
	s := state.NewStore()
	for i, node := range []string{"n1", "n10", "n1x"} {
		statetest.MustRegister(t, s, uint64(i*2+1), statetest.SvcReq(node, "10.0.0.1", "web-"+node, "web", 80, nil))
		statetest.MustRegister(t, s, uint64(i*2+2), &state.RegisterRequest{Node: node, SkipNodeUpdate: true,
			Checks: []*state.HealthCheck{{CheckID: "c-" + node, Status: state.HealthPassing}}})
	}
	for _, name := range []string{"n1", "N1"} {
		_, _, svcs, err := s.NodeServices(nil, name)
		if err != nil || len(svcs) != 1 || svcs[0].ID != "web-n1" {
			t.Errorf("services of %s: %v, %v", name, svcs, err)
		}
		_, checks, err := s.NodeChecks(nil, name)
		if err != nil || len(checks) != 1 || checks[0].CheckID != "c-n1" {
			t.Errorf("checks of %s: %v, %v", name, checks, err)
		}
	}
	if err := s.Deregister(10, &state.DeregisterRequest{Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"n10", "n1x"} {
		if _, _, svcs, _ := s.NodeServices(nil, node); len(svcs) != 1 {
			t.Errorf("deregistering n1 took %s's services: %v", node, svcs)
		}
		if _, checks, _ := s.NodeChecks(nil, node); len(checks) != 1 {
			t.Errorf("deregistering n1 took %s's checks: %v", node, checks)
		}
	}
}

// ---- the catalog generation ----

// The DNS cache trusts an entry while the generation stays the same: every
// catalog write and restore must move it, and a write that changes nothing
// of the catalog may leave it.
func TestCatalogGeneration(t *testing.T) {
	s := state.NewStore()
	steps := []struct {
		what  string
		do    func() error
		moves bool
	}{
		{"register a node and service", func() error {
			return s.EnsureRegistration(1, &state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
				Service: &state.Service{ID: "web1", Service: "web"}})
		}, true},
		{"a check's status", func() error {
			return s.EnsureRegistration(2, &state.RegisterRequest{Node: "n1", SkipNodeUpdate: true,
				Check: &state.HealthCheck{CheckID: "c1", ServiceID: "web1", Status: state.HealthCritical}})
		}, true},
		{"a KV write", func() error {
			_, err := s.KVSApply(3, &state.KVSRequest{Op: state.KVSet, DirEnt: state.DirEntry{Key: "k", Value: []byte("v")}})
			return err
		}, false},
		{"deregister the service", func() error {
			return s.Deregister(4, &state.DeregisterRequest{Node: "n1", ServiceID: "web1"})
		}, true},
		{"deregister the node", func() error {
			return s.Deregister(5, &state.DeregisterRequest{Node: "n1"})
		}, true},
		{"a restore", func() error { s.Restore(state.NewStore()); return nil }, true},
	}
	for _, st := range steps {
		before := s.CatalogGeneration()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		if moved := s.CatalogGeneration() != before; moved != st.moves {
			t.Errorf("%s: generation moved %v, want %v", st.what, moved, st.moves)
		}
	}
}
