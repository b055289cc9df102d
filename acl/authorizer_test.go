package acl

import (
	"fmt"
	"sync"
	"testing"
)

func mustParse(t testing.TB, text string) *Rules {
	t.Helper()
	rules, err := ParseRules(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return rules
}

// check is one decision and its expected answer.
type check struct {
	name   string
	decide func(*Authorizer) bool
	want   bool
}

func keyRead(k string) func(*Authorizer) bool {
	return func(a *Authorizer) bool { return a.KeyRead(k) }
}
func keyList(k string) func(*Authorizer) bool {
	return func(a *Authorizer) bool { return a.KeyList(k) }
}
func keyWrite(k string) func(*Authorizer) bool {
	return func(a *Authorizer) bool { return a.KeyWrite(k) }
}
func keyWritePrefix(k string) func(*Authorizer) bool {
	return func(a *Authorizer) bool { return a.KeyWritePrefix(k) }
}

func runChecks(t *testing.T, a *Authorizer, checks []check) {
	t.Helper()
	for _, c := range checks {
		if got := c.decide(a); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

// The KV example of Consul's ACL rules reference
// (developer.hashicorp.com/consul/docs/v1.10.x/agent/acl-rules): read on
// everything, write under foo/, nothing under foo/private/, and not the
// one key foo/bar/secret.
func TestAuthorizerConsulKeyExample(t *testing.T) {
	rules := mustParse(t, `
key_prefix "" { policy = "read" }
key_prefix "foo/" { policy = "write" }
key_prefix "foo/private/" { policy = "deny" }
key "foo/bar/secret" { policy = "deny" }
operator = "read"
`)
	for _, fallback := range []*Authorizer{DenyAll(), AllowAll()} {
		a := NewAuthorizer(fallback, rules)
		runChecks(t, a, []check{
			{"KeyRead(other)", keyRead("other"), true},
			{"KeyWrite(other)", keyWrite("other"), false},
			{"KeyRead(foo)", keyRead("foo"), true}, // "foo" is not under "foo/"
			{"KeyWrite(foo)", keyWrite("foo"), false},
			{"KeyWrite(foo/)", keyWrite("foo/"), true},
			{"KeyWrite(foo/x)", keyWrite("foo/x"), true},
			{"KeyRead(foo/private/x)", keyRead("foo/private/x"), false},
			{"KeyWrite(foo/private/x)", keyWrite("foo/private/x"), false},
			{"KeyRead(foo/bar/secret)", keyRead("foo/bar/secret"), false},
			{"KeyWrite(foo/bar/secret2)", keyWrite("foo/bar/secret2"), true}, // exact means exact
			{"KeyList(foo/)", keyList("foo/"), true},                         // write grants list
			{"KeyList(other)", keyList("other"), false},                      // read does not
			{"KeyWritePrefix(foo/)", keyWritePrefix("foo/"), false},          // foo/private/ and the secret
			{"KeyWritePrefix(foo/x/)", keyWritePrefix("foo/x/"), true},
			{"KeyWritePrefix(foo/bar/)", keyWritePrefix("foo/bar/"), false},
			{"OperatorRead", (*Authorizer).OperatorRead, true},
			{"OperatorWrite", (*Authorizer).OperatorWrite, false},
		})
	}
}

// The list example of Consul's rules reference: nothing but reading baz…
// and recursive reads of bar….
func TestAuthorizerConsulListExample(t *testing.T) {
	a := NewAuthorizer(AllowAll(), mustParse(t, `
key_prefix "" { policy = "deny" }
key_prefix "bar" { policy = "list" }
key_prefix "baz" { policy = "read" }
`))
	runChecks(t, a, []check{
		{"KeyList(bar)", keyList("bar"), true},
		{"KeyList(bar/x)", keyList("bar/x"), true},
		{"KeyRead(bar/x)", keyRead("bar/x"), true}, // list grants read
		{"KeyWrite(bar/x)", keyWrite("bar/x"), false},
		{"KeyList(baz)", keyList("baz"), false},
		{"KeyRead(baz)", keyRead("baz"), true},
		{"KeyRead(other)", keyRead("other"), false},
		{"KeyList(\"\")", keyList(""), false},
	})
}

// segmentedMethods are the read and write decisions of every segmented
// resource, with their rule keyword.
var segmentedMethods = []struct {
	keyword     string
	read, write func(*Authorizer, string) bool
}{
	{"key", (*Authorizer).KeyRead, (*Authorizer).KeyWrite},
	{"service", (*Authorizer).ServiceRead, (*Authorizer).ServiceWrite},
	{"node", (*Authorizer).NodeRead, (*Authorizer).NodeWrite},
	{"session", (*Authorizer).SessionRead, (*Authorizer).SessionWrite},
	{"agent", (*Authorizer).AgentRead, (*Authorizer).AgentWrite},
	{"event", (*Authorizer).EventRead, (*Authorizer).EventWrite},
	{"query", (*Authorizer).QueryRead, (*Authorizer).QueryWrite},
}

// Every segmented resource follows the same precedence: exact beats
// prefix, the longest prefix beats shorter ones, deny refuses, no rule
// falls to the default.
func TestAuthorizerPrecedenceEveryResource(t *testing.T) {
	for _, m := range segmentedMethods {
		t.Run(m.keyword, func(t *testing.T) {
			rules := mustParse(t, fmt.Sprintf(`
%[1]s_prefix "app" { policy = "read" }
%[1]s_prefix "app-w" { policy = "write" }
%[1]s_prefix "app-w-private" { policy = "deny" }
%[1]s "app-w-private-ok" { policy = "write" }
%[1]s "app-w-secret" { policy = "deny" }
%[1]s "app" { policy = "write" }
%[1]s "db" { policy = "read" }
`, m.keyword))
			tests := []struct {
				name                      string
				read, write               bool // with the deny default
				readAllowed, writeAllowed bool // with the allow default
			}{
				{"app", true, true, true, true},                   // exact write beats prefix read
				{"app-1", true, false, true, false},               // prefix "app"
				{"ap", false, false, true, true},                  // no rule: default
				{"app-w", true, true, true, true},                 // prefix "app-w"
				{"app-w-1", true, true, true, true},               // longest prefix "app-w"
				{"app-w-private", false, false, false, false},     // longer prefix deny
				{"app-w-private-1", false, false, false, false},   // still under deny
				{"app-w-private-ok", true, true, true, true},      // exact beats the deny prefix
				{"app-w-private-ok2", false, false, false, false}, // exact is exact
				{"app-w-secret", false, false, false, false},      // exact deny beats prefix write
				{"db", true, false, true, false},                  // exact read
				{"db2", false, false, true, true},                 // not a prefix rule
				{"", false, false, true, true},
			}
			deny, allow := NewAuthorizer(DenyAll(), rules), NewAuthorizer(AllowAll(), rules)
			for _, tt := range tests {
				if got := m.read(deny, tt.name); got != tt.read {
					t.Errorf("deny default: read %q = %v, want %v", tt.name, got, tt.read)
				}
				if got := m.write(deny, tt.name); got != tt.write {
					t.Errorf("deny default: write %q = %v, want %v", tt.name, got, tt.write)
				}
				if got := m.read(allow, tt.name); got != tt.readAllowed {
					t.Errorf("allow default: read %q = %v, want %v", tt.name, got, tt.readAllowed)
				}
				if got := m.write(allow, tt.name); got != tt.writeAllowed {
					t.Errorf("allow default: write %q = %v, want %v", tt.name, got, tt.writeAllowed)
				}
			}
		})
	}
}

// Consul's documented examples for the other resources.
func TestAuthorizerConsulExamples(t *testing.T) {
	type nameCheck struct {
		name        string
		read, write bool
	}
	tests := []struct {
		keyword string
		rules   string
		checks  []nameCheck
	}{
		{"service", `
service_prefix "" { policy = "read" }
service "app" { policy = "write" }
service "admin" { policy = "deny" }`,
			[]nameCheck{{"web", true, false}, {"app", true, true}, {"admin", false, false}, {"app2", true, false}}},
		{"node", `
node_prefix "" { policy = "read" }
node "app" { policy = "write" }
node "admin" { policy = "deny" }`,
			[]nameCheck{{"web", true, false}, {"app", true, true}, {"admin", false, false}}},
		{"agent", `
agent_prefix "" { policy = "read" }
agent "foo" { policy = "write" }
agent_prefix "bar" { policy = "deny" }`,
			[]nameCheck{{"web", true, false}, {"foo", true, true}, {"bar", false, false}, {"bar1", false, false}, {"foo1", true, false}}},
		{"event", `
event_prefix "" { policy = "read" }
event "deploy" { policy = "write" }`,
			[]nameCheck{{"other", true, false}, {"deploy", true, true}, {"deploy2", true, false}}},
		{"query", `
query_prefix "" { policy = "read" }
query "foo" { policy = "write" }`,
			[]nameCheck{{"other", true, false}, {"foo", true, true}}},
		{"session", `
session_prefix "" { policy = "read" }
session "foo" { policy = "write" }
session "bar" { policy = "deny" }`,
			[]nameCheck{{"other", true, false}, {"foo", true, true}, {"bar", false, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.keyword, func(t *testing.T) {
			var read, write func(*Authorizer, string) bool
			for _, m := range segmentedMethods {
				if m.keyword == tt.keyword {
					read, write = m.read, m.write
				}
			}
			a := NewAuthorizer(DenyAll(), mustParse(t, tt.rules))
			for _, c := range tt.checks {
				if got := read(a, c.name); got != c.read {
					t.Errorf("read %q = %v, want %v", c.name, got, c.read)
				}
				if got := write(a, c.name); got != c.write {
					t.Errorf("write %q = %v, want %v", c.name, got, c.write)
				}
			}
		})
	}
}

// A token's policies merge per resource and segment, deny > write > list
// > read; precedence between segments is then as in one policy.
func TestAuthorizerMultiplePolicies(t *testing.T) {
	readA := mustParse(t, `key_prefix "a/" { policy = "read" }  service "web" { policy = "read" }  operator = "read"`)
	writeA := mustParse(t, `key_prefix "a/" { policy = "write" }  service "web" { policy = "write" }  operator = "write"`)
	denyA := mustParse(t, `key_prefix "a/" { policy = "deny" }  service "web" { policy = "deny" }  operator = "deny"`)
	listA := mustParse(t, `key_prefix "a/" { policy = "list" }`)
	readAB := mustParse(t, `key_prefix "a/b/" { policy = "read" }`)
	writeAll := mustParse(t, `key_prefix "" { policy = "write" }  service_prefix "" { policy = "write" }`)

	runChecks(t, NewAuthorizer(DenyAll(), readA, writeA), []check{
		{"read+write: KeyWrite(a/x)", keyWrite("a/x"), true},
		{"read+write: ServiceWrite(web)", func(a *Authorizer) bool { return a.ServiceWrite("web") }, true},
		{"read+write: OperatorWrite", (*Authorizer).OperatorWrite, true},
	})
	runChecks(t, NewAuthorizer(DenyAll(), writeA, readA), []check{
		{"order does not matter: KeyWrite(a/x)", keyWrite("a/x"), true},
	})
	runChecks(t, NewAuthorizer(AllowAll(), writeA, denyA, readA), []check{
		{"deny wins: KeyRead(a/x)", keyRead("a/x"), false},
		{"deny wins: ServiceRead(web)", func(a *Authorizer) bool { return a.ServiceRead("web") }, false},
		{"deny wins: OperatorRead", (*Authorizer).OperatorRead, false},
		{"deny wins, others fall through: KeyRead(b)", keyRead("b"), true},
	})
	runChecks(t, NewAuthorizer(DenyAll(), readA, listA), []check{
		{"list over read: KeyList(a/)", keyList("a/"), true},
		{"list over read: KeyWrite(a/)", keyWrite("a/"), false},
	})
	runChecks(t, NewAuthorizer(DenyAll(), listA, writeA), []check{
		{"write over list: KeyWrite(a/)", keyWrite("a/"), true},
	})
	// The longer prefix of one policy beats the shorter of another, even
	// when the shorter grants more.
	runChecks(t, NewAuthorizer(DenyAll(), writeA, readAB), []check{
		{"longest prefix across policies: KeyWrite(a/b/c)", keyWrite("a/b/c"), false},
		{"longest prefix across policies: KeyRead(a/b/c)", keyRead("a/b/c"), true},
		{"longest prefix across policies: KeyWrite(a/c)", keyWrite("a/c"), true},
	})
	runChecks(t, NewAuthorizer(DenyAll(), writeAll, denyA), []check{
		{"deny prefix under a write prefix: KeyWrite(a/x)", keyWrite("a/x"), false},
		{"deny prefix under a write prefix: KeyWrite(b)", keyWrite("b"), true},
		{"deny prefix under a write prefix: KeyWritePrefix(\"\")", keyWritePrefix(""), false},
		{"deny prefix under a write prefix: KeyWritePrefix(b)", keyWritePrefix("b"), true},
	})
	runChecks(t, NewAuthorizer(DenyAll(), nil, readA, nil), []check{
		{"nil policies are skipped", keyRead("a/x"), true},
	})
}

func TestAuthorizerKeyWritePrefix(t *testing.T) {
	tests := []struct {
		name     string
		rules    string
		prefix   string
		fallback *Authorizer
		want     bool
	}{
		{"write prefix, nothing under", `key_prefix "a/" { policy = "write" }`, "a/", DenyAll(), true},
		{"write on a shorter prefix", `key_prefix "" { policy = "write" }`, "a/", DenyAll(), true},
		{"read prefix", `key_prefix "a/" { policy = "read" }`, "a/", AllowAll(), false},
		{"list prefix", `key_prefix "a/" { policy = "list" }`, "a/", AllowAll(), false},
		{"exact read under", `key_prefix "a/" { policy = "write" }  key "a/x" { policy = "read" }`, "a/", AllowAll(), false},
		{"exact write under", `key_prefix "a/" { policy = "write" }  key "a/x" { policy = "write" }`, "a/", DenyAll(), true},
		{"exact deny on the prefix itself", `key_prefix "a/" { policy = "write" }  key "a/" { policy = "deny" }`, "a/", AllowAll(), false},
		{"deny prefix under", `key_prefix "a/" { policy = "write" }  key_prefix "a/b/" { policy = "deny" }`, "a/", AllowAll(), false},
		{"deny prefix elsewhere", `key_prefix "a/" { policy = "write" }  key_prefix "b/" { policy = "deny" }`, "a/", DenyAll(), true},
		{"deny rule longer than the prefix, no base", `key_prefix "foo/" { policy = "deny" }`, "fo", AllowAll(), false},
		{"no rule: deny default", ``, "a/", DenyAll(), false},
		{"no rule: allow default", ``, "a/", AllowAll(), true},
		{"only write rules under, allow default", `key "a/x" { policy = "write" }`, "a/", AllowAll(), true},
		{"only write rules under, deny default", `key "a/x" { policy = "write" }`, "a/", DenyAll(), false},
		{"exact write on the prefix is not a base", `key "a/" { policy = "write" }`, "a/", DenyAll(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAuthorizer(tt.fallback, mustParse(t, tt.rules))
			if got := a.KeyWritePrefix(tt.prefix); got != tt.want {
				t.Errorf("KeyWritePrefix(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		})
	}
}

// unsegmentedChecks are every decision that takes no name.
var unsegmentedChecks = []struct {
	name   string
	decide func(*Authorizer) bool
	manage bool // ACL management: not granted by the allow default
}{
	{"ACLRead", (*Authorizer).ACLRead, true},
	{"ACLWrite", (*Authorizer).ACLWrite, true},
	{"Snapshot", (*Authorizer).Snapshot, true},
	{"KeyringRead", (*Authorizer).KeyringRead, false},
	{"KeyringWrite", (*Authorizer).KeyringWrite, false},
	{"OperatorRead", (*Authorizer).OperatorRead, false},
	{"OperatorWrite", (*Authorizer).OperatorWrite, false},
	{"MeshRead", (*Authorizer).MeshRead, false},
	{"MeshWrite", (*Authorizer).MeshWrite, false},
	{"PeeringRead", (*Authorizer).PeeringRead, false},
	{"PeeringWrite", (*Authorizer).PeeringWrite, false},
}

func TestBuiltinAuthorizers(t *testing.T) {
	for _, tt := range []struct {
		name            string
		a               *Authorizer
		allow, allowACL bool
	}{
		{"ManageAll", ManageAll(), true, true},
		{"AllowAll", AllowAll(), true, false},
		{"DenyAll", DenyAll(), false, false},
		{"no rules over ManageAll", NewAuthorizer(ManageAll()), true, true},
		{"no rules over AllowAll", NewAuthorizer(AllowAll()), true, false},
		{"no rules over nil", NewAuthorizer(nil), false, false},
		{"nil", nil, false, false},
		{"zero", &Authorizer{}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range segmentedMethods {
				for _, name := range []string{"", "x", "foo/bar"} {
					if got := m.read(tt.a, name); got != tt.allow {
						t.Errorf("%s read %q = %v, want %v", m.keyword, name, got, tt.allow)
					}
					if got := m.write(tt.a, name); got != tt.allow {
						t.Errorf("%s write %q = %v, want %v", m.keyword, name, got, tt.allow)
					}
				}
			}
			if got := tt.a.KeyList("x"); got != tt.allow {
				t.Errorf("KeyList = %v, want %v", got, tt.allow)
			}
			if got := tt.a.KeyWritePrefix(""); got != tt.allow {
				t.Errorf("KeyWritePrefix = %v, want %v", got, tt.allow)
			}
			for _, c := range unsegmentedChecks {
				want := tt.allow
				if c.manage {
					want = tt.allowACL
				}
				if got := c.decide(tt.a); got != want {
					t.Errorf("%s = %v, want %v", c.name, got, want)
				}
			}
		})
	}
}

func TestAuthorizerUnsegmented(t *testing.T) {
	tests := []struct {
		rules    string
		fallback *Authorizer
		allowed  map[string]bool // the decisions named here; the rest are false
	}{
		{`acl = "read"`, DenyAll(), map[string]bool{"ACLRead": true}},
		{`acl = "write"`, DenyAll(), map[string]bool{"ACLRead": true, "ACLWrite": true, "Snapshot": true}},
		{`acl = "deny"`, ManageAll(), map[string]bool{"KeyringRead": true, "KeyringWrite": true, "OperatorRead": true,
			"OperatorWrite": true, "MeshRead": true, "MeshWrite": true, "PeeringRead": true, "PeeringWrite": true}},
		{`keyring = "read"`, DenyAll(), map[string]bool{"KeyringRead": true}},
		{`keyring = "write"`, DenyAll(), map[string]bool{"KeyringRead": true, "KeyringWrite": true}},
		// mesh and peering fall back to operator.
		{`operator = "read"`, DenyAll(), map[string]bool{"OperatorRead": true, "MeshRead": true, "PeeringRead": true}},
		{`operator = "write"`, DenyAll(), map[string]bool{"OperatorRead": true, "OperatorWrite": true,
			"MeshRead": true, "MeshWrite": true, "PeeringRead": true, "PeeringWrite": true}},
		{`operator = "write"  mesh = "read"  peering = "deny"`, DenyAll(), map[string]bool{"OperatorRead": true, "OperatorWrite": true, "MeshRead": true}},
		{`mesh = "write"`, DenyAll(), map[string]bool{"MeshRead": true, "MeshWrite": true}},
		{`peering = "read"`, DenyAll(), map[string]bool{"PeeringRead": true}},
		// ... and then to the default.
		{`keyring = "deny"`, AllowAll(), map[string]bool{"OperatorRead": true, "OperatorWrite": true,
			"MeshRead": true, "MeshWrite": true, "PeeringRead": true, "PeeringWrite": true}},
		{`operator = "deny"`, AllowAll(), map[string]bool{"KeyringRead": true, "KeyringWrite": true}},
	}
	for _, tt := range tests {
		t.Run(tt.rules, func(t *testing.T) {
			a := NewAuthorizer(tt.fallback, mustParse(t, tt.rules))
			for _, c := range unsegmentedChecks {
				if got := c.decide(a); got != tt.allowed[c.name] {
					t.Errorf("%s = %v, want %v", c.name, got, tt.allowed[c.name])
				}
			}
		})
	}
}

// A token authorizer may fall back to another: the first authorizer in
// the chain with a matching rule decides.
func TestAuthorizerChain(t *testing.T) {
	inner := NewAuthorizer(AllowAll(), mustParse(t, `key_prefix "a/" { policy = "read" }  operator = "read"  acl = "read"`))
	outer := NewAuthorizer(inner, mustParse(t, `key_prefix "a/b/" { policy = "write" }  key "c" { policy = "deny" }`))
	runChecks(t, outer, []check{
		{"outer rule: KeyWrite(a/b/x)", keyWrite("a/b/x"), true},
		{"inner rule: KeyWrite(a/x)", keyWrite("a/x"), false},
		{"inner rule: KeyRead(a/x)", keyRead("a/x"), true},
		{"outer deny: KeyRead(c)", keyRead("c"), false},
		{"default: KeyWrite(d)", keyWrite("d"), true},
		{"inner scalar: OperatorWrite", (*Authorizer).OperatorWrite, false},
		{"inner acl: ACLRead", (*Authorizer).ACLRead, true},
		{"inner acl: ACLWrite", (*Authorizer).ACLWrite, false},
		// outer grants write on a/b/, but the inner authorizer's read on
		// a/ is what decides for the rest of a/.
		{"KeyWritePrefix(a/b/)", keyWritePrefix("a/b/"), true},
		{"KeyWritePrefix(a/)", keyWritePrefix("a/"), false},
	})
}

// The built-in global-management policy grants what ManageAll does.
func TestGlobalManagementRulesManageAll(t *testing.T) {
	a := NewAuthorizer(DenyAll(), mustParse(t, GlobalManagementPolicy().Rules))
	for _, m := range segmentedMethods {
		for _, name := range []string{"", "x", "foo/bar"} {
			if !m.read(a, name) || !m.write(a, name) {
				t.Errorf("global-management: %s %q not allowed", m.keyword, name)
			}
		}
	}
	if !a.KeyList("") || !a.KeyWritePrefix("") {
		t.Error("global-management: KeyList or KeyWritePrefix not allowed")
	}
	for _, c := range unsegmentedChecks {
		if !c.decide(a) {
			t.Errorf("global-management: %s not allowed", c.name)
		}
	}
}

func TestAuthorizerConcurrentUse(t *testing.T) {
	a := NewAuthorizer(DenyAll(), mustParse(t, `
key_prefix "" { policy = "read" }
key_prefix "foo/" { policy = "write" }
service_prefix "web" { policy = "write" }
operator = "read"`))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				key := fmt.Sprintf("foo/%d", i)
				if !a.KeyWrite(key) || !a.ServiceWrite("web-1") || a.ServiceRead("db") || !a.OperatorRead() || !a.KeyWritePrefix("foo/") {
					t.Error("wrong decision under concurrent use")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Decisions are on the DNS and HTTP hot paths: none may allocate.
func TestDecisionsDoNotAllocate(t *testing.T) {
	a := benchAuthorizer(t)
	long := "some/rather/long/key/name/that/is/longer/than/thirty-two/bytes/for/sure"
	allocs := testing.AllocsPerRun(100, func() {
		a.KeyRead(long)
		a.KeyList("app/")
		a.KeyWrite("app/config/x")
		a.KeyWritePrefix("app/")
		a.KeyWritePrefix("")
		a.ServiceRead("web-frontend-7")
		a.ServiceWrite("db")
		a.NodeRead("node-17")
		a.SessionWrite("node-17")
		a.AgentRead("node-17")
		a.EventWrite("deploy")
		a.QueryRead("geo-web")
		a.OperatorRead()
		a.MeshWrite()
		a.ACLRead()
		a.Snapshot()
	})
	if allocs != 0 {
		t.Errorf("decisions allocate %v times per run, want 0", allocs)
	}
}

// benchAuthorizer is a realistic token: a few policies of a few dozen
// rules each, over the deny default.
func benchAuthorizer(tb testing.TB) *Authorizer {
	tb.Helper()
	var policies []*Rules
	for p := 0; p < 3; p++ {
		text := `
key_prefix "" { policy = "read" }
key_prefix "app/" { policy = "write" }
key_prefix "app/secret/" { policy = "deny" }
key "app/config/x" { policy = "write" }
service_prefix "" { policy = "read" }
service "db" { policy = "write" }
node_prefix "" { policy = "read" }
session_prefix "node-" { policy = "write" }
agent_prefix "" { policy = "read" }
event "deploy" { policy = "write" }
query_prefix "geo-" { policy = "read" }
operator = "read"
mesh = "write"
acl = "read"
`
		for i := 0; i < 20; i++ {
			text += fmt.Sprintf("service \"svc-%d-%d\" { policy = \"write\" }\nkey_prefix \"team-%d/%d/\" { policy = \"write\" }\nnode \"node-%d\" { policy = \"write\" }\n", p, i, p, i, i)
		}
		policies = append(policies, mustParse(tb, text))
	}
	return NewAuthorizer(DenyAll(), policies...)
}

func BenchmarkServiceRead(b *testing.B) {
	a := benchAuthorizer(b)
	b.ReportAllocs()
	for b.Loop() {
		a.ServiceRead("web-frontend-7")
	}
}

func BenchmarkServiceWriteExact(b *testing.B) {
	a := benchAuthorizer(b)
	b.ReportAllocs()
	for b.Loop() {
		a.ServiceWrite("svc-1-13")
	}
}

func BenchmarkNodeRead(b *testing.B) {
	a := benchAuthorizer(b)
	b.ReportAllocs()
	for b.Loop() {
		a.NodeRead("node-17")
	}
}

func BenchmarkKeyRead(b *testing.B) {
	a := benchAuthorizer(b)
	b.ReportAllocs()
	for b.Loop() {
		a.KeyRead("team-2/13/some/deeper/key/that/is/long")
	}
}

func BenchmarkKeyWritePrefix(b *testing.B) {
	a := benchAuthorizer(b)
	b.ReportAllocs()
	for b.Loop() {
		a.KeyWritePrefix("app/")
	}
}

func BenchmarkOperatorRead(b *testing.B) {
	a := benchAuthorizer(b)
	b.ReportAllocs()
	for b.Loop() {
		a.OperatorRead()
	}
}

func BenchmarkServiceReadDenyAll(b *testing.B) {
	a := DenyAll()
	b.ReportAllocs()
	for b.Loop() {
		a.ServiceRead("web")
	}
}

func BenchmarkParseRules(b *testing.B) {
	text := renderHCL(mustParse(b, GlobalManagementPolicy().Rules)) + `
key_prefix "app/" { policy = "write" }
service "db" { policy = "write" }
node_prefix "" { policy = "read" }`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRules(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewAuthorizer(b *testing.B) {
	rules := []*Rules{
		mustParse(b, GlobalManagementPolicy().Rules),
		mustParse(b, `key_prefix "app/" { policy = "write" }  service "db" { policy = "write" }  node_prefix "" { policy = "read" }`),
	}
	b.ReportAllocs()
	for b.Loop() {
		NewAuthorizer(DenyAll(), rules...)
	}
}
