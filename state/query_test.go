package state_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/go-memdb"
)

const (
	queryID1 = "8f246b77-f3e1-ff88-5b48-8ec93abf3e05"
	queryID2 = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
	queryID3 = "11111111-2222-3333-4444-555555555555"
	querySID = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
)

func mustApplyQuery(t *testing.T, s *state.Store, idx uint64, op string, q *state.PreparedQuery) {
	t.Helper()
	if err := s.PreparedQueryApply(idx, &state.PreparedQueryRequest{Op: op, Query: q}); err != nil {
		t.Fatalf("%s %s (%q) at %d: %v", op, q.ID, q.Name, idx, err)
	}
}

func getQuery(t *testing.T, s *state.Store, id string) *state.PreparedQuery {
	t.Helper()
	_, q, err := s.PreparedQueryGet(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestPreparedQueryCRUD(t *testing.T) {
	s := state.NewStore()
	q := &state.PreparedQuery{ID: queryID1, Name: "redis-primary", Token: "secret",
		Service: state.ServiceQuery{Service: "redis", Tags: []string{"primary", "!experimental"}},
		DNS:     state.QueryDNSOptions{TTL: "10s"}}
	mustApplyQuery(t, s, 5, state.PreparedQueryCreate, q)
	got := getQuery(t, s, queryID1)
	if got == nil || got.Name != "redis-primary" || got.Token != "secret" || got.CreateIndex != 5 || got.ModifyIndex != 5 {
		t.Fatalf("after create: %+v", got)
	}
	if q.CreateIndex != 0 {
		t.Error("the request's query was changed by the write")
	}
	// IDs are matched as the UUIDs they are, whatever their case.
	if got := getQuery(t, s, strings.ToUpper(queryID1)); got == nil {
		t.Error("lookup by the upper-case ID found nothing")
	}

	update := *q
	update.Name, update.Token, update.Service.Service = "redis-any", "", "redis2"
	mustApplyQuery(t, s, 7, state.PreparedQueryUpdate, &update)
	got = getQuery(t, s, queryID1)
	if got.Name != "redis-any" || got.Service.Service != "redis2" || got.Token != "" || got.CreateIndex != 5 || got.ModifyIndex != 7 {
		t.Fatalf("after update: %+v", got)
	}
	// The old name is free again, the new one taken.
	if _, r, err := s.PreparedQueryResolve("redis-primary"); !errors.Is(err, state.ErrQueryNotFound) || r != nil {
		t.Errorf("the old name still resolves: %v %v", r, err)
	}
	if _, r, err := s.PreparedQueryResolve("REDIS-any"); err != nil || r.ID != queryID1 {
		t.Errorf("the new name, in another case: %v %v", r, err)
	}

	idx, all, err := s.PreparedQueries(nil)
	if err != nil || idx != 7 || len(all) != 1 {
		t.Fatalf("list: %d %v %v", idx, all, err)
	}

	mustApplyQuery(t, s, 9, state.PreparedQueryDelete, &state.PreparedQuery{ID: queryID1})
	if got := getQuery(t, s, queryID1); got != nil {
		t.Fatalf("after delete: %+v", got)
	}
	if idx := statetest.Indexes(t, s)[statetest.TableQueries]; idx != 9 {
		t.Errorf("table index after delete = %d, want 9", idx)
	}
}

// Every refused write leaves the store exactly as it was.
func TestPreparedQueryRefusedWrites(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.NodeReq("n1", "10.0.0.1"))
	mustApplyQuery(t, s, 2, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID1, Name: "taken",
		Service: state.ServiceQuery{Service: "web"}})
	mustApplyQuery(t, s, 3, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID2,
		Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch},
		Service:  state.ServiceQuery{Service: "${name.full}"}})
	svc := state.ServiceQuery{Service: "web"}
	tmpl := state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch}
	for _, tc := range []struct {
		name     string
		req      *state.PreparedQueryRequest
		notFound bool
		want     string
	}{
		{"duplicate name", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: queryID3, Name: "TAKEN", Service: svc}}, false, "aliases an existing query name"},
		{"name is another's ID", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: queryID3, Name: queryID1, Service: svc}}, false, "aliases an existing query ID"},
		{"name is its own ID", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: queryID3, Name: queryID3, Service: svc}}, false, "own ID"},
		{"second catch-all template", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: queryID3, Template: tmpl, Service: svc}}, false, "empty name"},
		{"ID taken", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: queryID1, Name: "other", Service: svc}}, false, "already exists"},
		{"no ID", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{Name: "other", Service: svc}}, false, "needs its ID"},
		{"null query", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate}, false, "needs its ID"},
		{"no service", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: queryID3}}, false, "Service name"},
		{"unknown session", &state.PreparedQueryRequest{Op: state.PreparedQueryCreate,
			Query: &state.PreparedQuery{ID: queryID3, Session: querySID, Service: svc}}, false, "invalid session"},
		{"update of a query not there", &state.PreparedQueryRequest{Op: state.PreparedQueryUpdate,
			Query: &state.PreparedQuery{ID: queryID3, Service: svc}}, true, "non-existent"},
		{"delete of a query not there", &state.PreparedQueryRequest{Op: state.PreparedQueryDelete,
			Query: &state.PreparedQuery{ID: queryID3}}, true, "non-existent"},
		{"unknown op", &state.PreparedQueryRequest{Op: "upsert",
			Query: &state.PreparedQuery{ID: queryID3, Service: svc}}, false, "unknown operation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := statetest.Snapshot(t, s)
			err := s.PreparedQueryApply(10, tc.req)
			wantKind := state.ErrInvalidRegistration
			if tc.notFound {
				wantKind = state.ErrQueryNotFound
			}
			if !errors.Is(err, wantKind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %v containing %q", err, wantKind, tc.want)
			}
			if after := statetest.Snapshot(t, s); !bytes.Equal(after, before) {
				t.Errorf("store changed:\n%s", after)
			}
		})
	}
}

func TestValidatePreparedQuery(t *testing.T) {
	tmpl := func(re string, svc state.ServiceQuery) *state.PreparedQuery {
		return &state.PreparedQuery{Name: "geo-", Service: svc,
			Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch, Regexp: re}}
	}
	web := state.ServiceQuery{Service: "web"}
	for _, tc := range []struct {
		name string
		q    *state.PreparedQuery
		want string // "" is valid
	}{
		{"static", &state.PreparedQuery{Service: web, DNS: state.QueryDNSOptions{TTL: "10s"}}, ""},
		{"template", tmpl(`^geo-(.*?)-([^\-]+?)$`, state.ServiceQuery{Service: "${match(1)}", Tags: []string{"${match(2)}"},
			NodeMeta: map[string]string{"seg": "${agent.segment}"}, Failover: state.QueryFailoverOptions{NearestN: 2}}), ""},
		{"static with ${ is literal", &state.PreparedQuery{Service: state.ServiceQuery{Service: "${nonsense"}}, ""},
		{"null", nil, "null"},
		{"no service", &state.PreparedQuery{}, "Must provide a Service name"},
		{"blank service", &state.PreparedQuery{Service: state.ServiceQuery{Service: " "}}, "Must provide a Service name"},
		{"negative NearestN", &state.PreparedQuery{Service: state.ServiceQuery{Service: "web",
			Failover: state.QueryFailoverOptions{NearestN: -1}}}, "Bad NearestN"},
		{"bad TTL", &state.PreparedQuery{Service: web, DNS: state.QueryDNSOptions{TTL: "10"}}, "Bad DNS TTL"},
		{"negative TTL", &state.PreparedQuery{Service: web, DNS: state.QueryDNSOptions{TTL: "-1s"}}, "must be >=0"},
		{"bad template type", &state.PreparedQuery{Service: web, Template: state.QueryTemplate{Type: "prefix"}}, "Bad Template.Type"},
		{"bad regexp", tmpl(`^geo-(`, web), "Bad Regexp"},
		{"long regexp", tmpl(strings.Repeat("a", state.MaxPreparedQueryRegexpBytes+1), web), "Bad Regexp"},
		{"unterminated interpolation", tmpl("", state.ServiceQuery{Service: "${name.full"}), "unterminated"},
		{"unknown variable", tmpl("", state.ServiceQuery{Service: "${name.whole}"}), "unknown variable"},
		{"bad match argument", tmpl("", state.ServiceQuery{Service: "${match(one)}"}), "whole number"},
		{"bad interpolation in a tag", tmpl("", state.ServiceQuery{Service: "web", Tags: []string{"ok", "${x}"}}), "Service.Tags[1]"},
		{"bad interpolation in node meta", tmpl("", state.ServiceQuery{Service: "web",
			NodeMeta: map[string]string{"k": "${y}"}}), "Service.NodeMeta.k"},
		{"too many tags", &state.PreparedQuery{Service: state.ServiceQuery{Service: "web",
			Tags: make([]string, state.MaxPreparedQueryTags+1)}}, "tags"},
		{"bad node meta key", &state.PreparedQuery{Service: state.ServiceQuery{Service: "web",
			NodeMeta: map[string]string{"a b": "c"}}}, "NodeMeta key"},
		{"too large", &state.PreparedQuery{Service: state.ServiceQuery{Service: "web",
			ServiceMeta: map[string]string{"k": strings.Repeat("v", state.MaxPreparedQueryBytes)}}}, "bytes encoded"},
		{"long token", &state.PreparedQuery{Token: strings.Repeat("t", state.MaxPreparedQueryTokenBytes+1), Service: web}, "token"},
		{"peer", &state.PreparedQuery{Service: state.ServiceQuery{Service: "web", Peer: "p"}}, "peering"},
		{"failover peer", &state.PreparedQuery{Service: state.ServiceQuery{Service: "web",
			Failover: state.QueryFailoverOptions{Targets: []state.QueryFailoverTarget{{Peer: "p"}}}}}, "peering"},
		{"targets with NearestN", &state.PreparedQuery{Service: state.ServiceQuery{Service: "web",
			Failover: state.QueryFailoverOptions{NearestN: 1, Targets: []state.QueryFailoverTarget{{Datacenter: "dc2"}}}}}, "Targets cannot"},
		{"connect", &state.PreparedQuery{Service: state.ServiceQuery{Service: "web", Connect: true}}, "Connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := state.ValidatePreparedQuery(tc.q)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (!errors.Is(err, state.ErrInvalidPreparedQuery) || !errors.Is(err, state.ErrInvalidRegistration) ||
				!strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want an invalid prepared query containing %q", err, tc.want)
			}
		})
	}
}

// Resolution: an ID first, then an exact name (a template's too), then
// the template with the longest name that prefixes the name; a template
// is rendered for the name, never executed by its ID.
func TestPreparedQueryResolvePrecedence(t *testing.T) {
	s := state.NewStore()
	tmplType := state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch}
	mustApplyQuery(t, s, 1, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID1, Template: tmplType,
		Service: state.ServiceQuery{Service: "${name.full}"}})
	mustApplyQuery(t, s, 2, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID2, Name: "geo-", Template: tmplType,
		Service: state.ServiceQuery{Service: "geo${name.suffix}"}})
	mustApplyQuery(t, s, 3, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID3, Name: "geo-db-",
		Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch, Regexp: `^geo-db-(.*?)-([^\-]+?)$`, RemoveEmptyTags: true},
		Service: state.ServiceQuery{Service: "mysql-${match(1)}", Tags: []string{"${match(2)}", "${match(7)}"},
			Failover: state.QueryFailoverOptions{Datacenters: []string{"${match(1)}-dc"}}}})
	const staticID = "22222222-3333-4444-5555-666666666666"
	mustApplyQuery(t, s, 4, state.PreparedQueryCreate, &state.PreparedQuery{ID: staticID, Name: "geo-db-customer-primary",
		Service: state.ServiceQuery{Service: "static"}})

	for _, tc := range []struct {
		name, wantID, wantService string
		wantTags                  []string
	}{
		{"geo-db-customer-primary", staticID, "static", nil}, // exact name beats templates
		{staticID, staticID, "static", nil},                  // by ID
		{"geo-db-orders-replica", queryID3, "mysql-orders", []string{"replica"}},
		// Names match templates case-insensitively, but the regexp is
		// the user's: case-sensitive, as in Consul.
		{"GEO-DB-orders-replica", queryID3, "mysql-", nil},
		{"geo-db-nomatch", queryID3, "mysql-", nil},                                                     // the regexp did not match: ""s, removed
		{"geo-db-", queryID3, "mysql-", nil},                                                            // the template's own name
		{"geo-web", queryID2, "geoweb", nil},                                                            // the shorter template
		{"web", queryID1, "web", nil},                                                                   // the catch-all
		{"33333333-4444-5555-6666-777777777777", queryID1, "33333333-4444-5555-6666-777777777777", nil}, // an unknown ID is a name
	} {
		_, q, err := s.PreparedQueryResolve(tc.name)
		if err != nil {
			t.Errorf("resolve %q: %v", tc.name, err)
			continue
		}
		if q.ID != tc.wantID || q.Service.Service != tc.wantService || !slices.Equal(q.Service.Tags, tc.wantTags) {
			t.Errorf("resolve %q: %s service %q tags %q, want %s %q %q", tc.name, q.ID, q.Service.Service, q.Service.Tags,
				tc.wantID, tc.wantService, tc.wantTags)
		}
	}
	if _, q, _ := s.PreparedQueryResolve("geo-db-orders-replica"); !reflect.DeepEqual(q.Service.Failover.Datacenters, []string{"orders-dc"}) {
		t.Errorf("failover datacenters not interpolated: %v", q.Service.Failover.Datacenters)
	}
	// A rendering is a copy: the stored template is untouched.
	if q := getQuery(t, s, queryID3); q.Service.Service != "mysql-${match(1)}" || q.Service.Tags[0] != "${match(2)}" {
		t.Errorf("the stored template changed: %+v", q.Service)
	}
	if _, _, err := s.PreparedQueryResolve(queryID2); !errors.Is(err, state.ErrInvalidPreparedQuery) {
		t.Errorf("a template by its ID: %v, want an error", err)
	}
	mustApplyQuery(t, s, 5, state.PreparedQueryDelete, &state.PreparedQuery{ID: queryID1})
	for _, name := range []string{"web", "", "ge"} {
		if _, q, err := s.PreparedQueryResolve(name); !errors.Is(err, state.ErrQueryNotFound) {
			t.Errorf("resolve %q without a catch-all: %v %v, want ErrQueryNotFound", name, q, err)
		}
	}
}

func TestPreparedQueryInterpolation(t *testing.T) {
	s := state.NewStore()
	mustApplyQuery(t, s, 1, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID1, Name: "pfx",
		Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch, Regexp: `^pfx-(\w+)$`},
		Service: state.ServiceQuery{Service: "${name.full}|${name.prefix}|${ name.suffix }|${agent.segment}|${match(0)}|${match( 1 )}|${match(-1)}|$${name.full}",
			NodeMeta: map[string]string{"dc": "${match(1)}"}, ServiceMeta: map[string]string{"v": "${name.suffix}"},
			IgnoreCheckIDs: []string{"chk-${match(1)}"}, Near: "${match(1)}-node"}})
	_, q, err := s.PreparedQueryResolve("pfx-abc")
	if err != nil {
		t.Fatal(err)
	}
	if want := "pfx-abc|pfx|-abc||pfx-abc|abc||${name.full}"; q.Service.Service != want {
		t.Errorf("service %q, want %q", q.Service.Service, want)
	}
	if q.Service.NodeMeta["dc"] != "abc" || q.Service.ServiceMeta["v"] != "-abc" || q.Service.IgnoreCheckIDs[0] != "chk-abc" ||
		q.Service.Near != "abc-node" {
		t.Errorf("rendered %+v", q.Service)
	}
}

func TestPreparedQueryInstances(t *testing.T) {
	s := state.NewStore()
	reg := func(idx uint64, node string, meta map[string]string, id string, tags []string, svcMeta map[string]string, checks ...*state.HealthCheck) {
		t.Helper()
		r := statetest.SvcReq(node, "10.0.0.1", id, "web", 80, tags, checks...)
		r.NodeMeta = meta
		r.Service.Meta = svcMeta
		statetest.MustRegister(t, s, idx, r)
	}
	check := func(id, svc, status string) *state.HealthCheck {
		return &state.HealthCheck{CheckID: id, ServiceID: svc, Status: status}
	}
	reg(1, "n1", map[string]string{"rack": "a"}, "w1", []string{"primary"}, map[string]string{"v": "1"}, check("c1", "w1", state.HealthPassing))
	reg(2, "n2", map[string]string{"rack": "b"}, "w2", []string{"primary", "experimental"}, nil, check("c2", "w2", state.HealthWarning))
	reg(3, "n3", nil, "w3", nil, map[string]string{"v": "1"}, check("c3", "w3", state.HealthCritical))
	reg(4, "n4", nil, "w4", []string{"PRIMARY"}, nil, check("flaky", "", state.HealthCritical))

	for _, tc := range []struct {
		name string
		svc  state.ServiceQuery
		want []string
	}{
		{"healthy: warning counts, critical not", state.ServiceQuery{}, []string{"n1/w1", "n2/w2"}},
		{"only passing", state.ServiceQuery{OnlyPassing: true}, []string{"n1/w1"}},
		{"ignored checks", state.ServiceQuery{IgnoreCheckIDs: []string{"c3", "flaky"}}, []string{"n1/w1", "n2/w2", "n3/w3", "n4/w4"}},
		{"tags, case-insensitive", state.ServiceQuery{Tags: []string{"primary"}, IgnoreCheckIDs: []string{"flaky"}},
			[]string{"n1/w1", "n2/w2", "n4/w4"}},
		{"negated tag", state.ServiceQuery{Tags: []string{"primary", "!Experimental"}}, []string{"n1/w1"}},
		{"node meta", state.ServiceQuery{NodeMeta: map[string]string{"rack": "b"}}, []string{"n2/w2"}},
		{"service meta", state.ServiceQuery{ServiceMeta: map[string]string{"v": "1"}, IgnoreCheckIDs: []string{"c3"}},
			[]string{"n1/w1", "n3/w3"}},
	} {
		tc.svc.Service = "web"
		_, got, err := s.PreparedQueryInstances(nil, &state.PreparedQuery{Service: tc.svc})
		if err != nil {
			t.Fatal(err)
		}
		if keys := statetest.InstanceKeys(got); !reflect.DeepEqual(keys, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, keys, tc.want)
		}
	}

	// A blocking read of the instances wakes on their health changing.
	ws := memdb.NewWatchSet()
	if _, _, err := s.PreparedQueryInstances(ws, &state.PreparedQuery{Service: state.ServiceQuery{Service: "web"}}); err != nil {
		t.Fatal(err)
	}
	statetest.MustRegister(t, s, 5, statetest.SvcReq("n3", "10.0.0.1", "w3", "web", 80, nil, check("c3", "w3", state.HealthPassing)))
	if ws.Watch(time.After(time.Second)) {
		t.Error("the watch did not fire on a check of the instances changing")
	}
}

// A query bound to a session goes with it, whatever invalidates it.
func TestPreparedQuerySessionInvalidation(t *testing.T) {
	s := state.NewStore()
	statetest.MustRegister(t, s, 1, statetest.NodeReq("n1", "10.0.0.1"))
	if err := s.SessionApply(2, &state.SessionRequest{Op: state.SessionCreate, Session: state.Session{ID: querySID, Node: "n1"}}); err != nil {
		t.Fatal(err)
	}
	mustApplyQuery(t, s, 3, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID1, Name: "bound", Session: querySID,
		Service: state.ServiceQuery{Service: "web"}})
	mustApplyQuery(t, s, 4, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID2, Name: "free",
		Service: state.ServiceQuery{Service: "web"}})
	statetest.MustDeregister(t, s, 5, &state.DeregisterRequest{Node: "n1"}) // invalidates the session
	if q := getQuery(t, s, queryID1); q != nil {
		t.Errorf("the query of an invalidated session is still there: %+v", q)
	}
	if q := getQuery(t, s, queryID2); q == nil {
		t.Error("a query without a session went too")
	}
	if idx := statetest.Indexes(t, s)[statetest.TableQueries]; idx != 5 {
		t.Errorf("table index = %d, want 5", idx)
	}
}

// Queries are in snapshots, and a template restored from one still
// renders; a replica's snapshot carries them without their tokens.
func TestPreparedQuerySnapshot(t *testing.T) {
	s := state.NewStore()
	mustApplyQuery(t, s, 1, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID1, Name: "geo-", Token: "captured",
		Template: state.QueryTemplate{Type: state.QueryTemplateTypeNamePrefixMatch, Regexp: `^geo-(\w+)$`},
		Service:  state.ServiceQuery{Service: "${match(1)}", Failover: state.QueryFailoverOptions{NearestN: 2, Datacenters: []string{"dc2"}}},
		DNS:      state.QueryDNSOptions{TTL: "3s"}})
	mustApplyQuery(t, s, 2, state.PreparedQueryCreate, &state.PreparedQuery{ID: queryID2, Service: state.ServiceQuery{Service: "web"}})
	statetest.AssertRestorable(t, s)
	statetest.AssertUTF8(t, s)

	back, err := state.ReadSnapshot(bytes.NewReader(statetest.Snapshot(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(statetest.Tables(t, back), statetest.Tables(t, s)) {
		t.Error("restored tables differ")
	}
	if _, q, err := back.PreparedQueryResolve("geo-api"); err != nil || q.Service.Service != "api" || q.Token != "captured" {
		t.Errorf("the restored template: %+v %v", q, err)
	}

	var replica bytes.Buffer
	if err := s.Snapshot().WriteForReplica(&replica); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(replica.Bytes(), []byte("captured")) {
		t.Errorf("a replica's snapshot holds a captured token:\n%s", replica.Bytes())
	}
	rs, err := state.ReadSnapshot(&replica)
	if err != nil {
		t.Fatal(err)
	}
	if q := getQuery(t, rs, queryID1); q == nil || q.Token != state.RedactedToken {
		t.Errorf("the replica's query: %+v, want its token redacted", q)
	}
	if q := getQuery(t, rs, queryID2); q == nil || q.Token != "" {
		t.Errorf("the replica's query without a token: %+v", q)
	}
}
