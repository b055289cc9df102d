package acl

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRulesHCLAndJSON(t *testing.T) {
	tests := []struct {
		name       string
		hcl, json  string
		jsonAlt    []string // other JSON spellings Consul accepts
		want       Rules
		wantRender bool // the HCL and JSON renderings parse back to want
	}{
		{
			name: "empty",
			hcl:  "",
			json: "{}",
			want: Rules{Segmented: []Rule{}},
		},
		{
			name: "comments only",
			hcl:  "# nothing\n// here\n/* at all */\n",
			json: " { } ",
			want: Rules{Segmented: []Rule{}},
		},
		{
			// The example of Consul's "ACL Rules" reference
			// (developer.hashicorp.com/consul/docs/v1.10.x/agent/acl-rules).
			name: "consul documented key example",
			hcl: `
# These control access to the key/value store.
key_prefix "" {
  policy = "read"
}
key_prefix "foo/" {
  policy = "write"
}
key_prefix "foo/private/" {
  policy = "deny"
}
# Or for exact key matches
key "foo/bar/secret" {
  policy = "deny"
}
# This controls access to cluster-wide Consul operator information
operator = "read"
`,
			json: `{
  "key_prefix": {
    "": {"policy": "read"},
    "foo/": {"policy": "write"},
    "foo/private/": {"policy": "deny"}
  },
  "key": {"foo/bar/secret": {"policy": "deny"}},
  "operator": "read"
}`,
			jsonAlt: []string{
				// Lists of objects, as HCL's JSON form also allows.
				`{"key_prefix": [{"": {"policy": "read"}}, {"foo/": {"policy": "write"}}, {"foo/private/": [{"policy": "deny"}]}],
				  "key": [{"foo/bar/secret": {"policy": "deny"}}], "operator": "read"}`,
			},
			want: Rules{
				Segmented: []Rule{
					{Resource: ResourceKey, Segment: "foo/bar/secret", Access: AccessDeny},
					{Resource: ResourceKey, Prefix: true, Segment: "", Access: AccessRead},
					{Resource: ResourceKey, Prefix: true, Segment: "foo/", Access: AccessWrite},
					{Resource: ResourceKey, Prefix: true, Segment: "foo/private/", Access: AccessDeny},
				},
				Operator: AccessRead,
			},
			wantRender: true,
		},
		{
			name: "every resource",
			hcl: `
acl = "read"
keyring = "write"
operator = "deny"
mesh = "write"
peering = "read"
key "k" { policy = "list" }
key_prefix "kp/" { policy = "list" }
service "s" {
  policy     = "write"
  intentions = "read"
}
service_prefix "sp" { policy = "read" }
node "n" { policy = "write" }
node_prefix "np" { policy = "deny" }
session "ss" { policy = "write" }
session_prefix "ssp" { policy = "read" }
agent "a" { policy = "read" }
agent_prefix "ap" { policy = "write" }
event "e" { policy = "write" }
event_prefix "ep" { policy = "read" }
query "q" { policy = "deny" }
query_prefix "qp" { policy = "write" }
`,
			json: `{
  "acl": "read", "keyring": "write", "operator": "deny", "mesh": "write", "peering": "read",
  "key": {"k": {"policy": "list"}}, "key_prefix": {"kp/": {"policy": "list"}},
  "service": {"s": {"policy": "write", "intentions": "read"}}, "service_prefix": {"sp": {"policy": "read"}},
  "node": {"n": {"policy": "write"}}, "node_prefix": {"np": {"policy": "deny"}},
  "session": {"ss": {"policy": "write"}}, "session_prefix": {"ssp": {"policy": "read"}},
  "agent": {"a": {"policy": "read"}}, "agent_prefix": {"ap": {"policy": "write"}},
  "event": {"e": {"policy": "write"}}, "event_prefix": {"ep": {"policy": "read"}},
  "query": {"q": {"policy": "deny"}}, "query_prefix": {"qp": {"policy": "write"}}
}`,
			want: Rules{
				Segmented: []Rule{
					{Resource: ResourceKey, Segment: "k", Access: AccessList},
					{Resource: ResourceKey, Prefix: true, Segment: "kp/", Access: AccessList},
					{Resource: ResourceService, Segment: "s", Access: AccessWrite, Intentions: AccessRead},
					{Resource: ResourceService, Prefix: true, Segment: "sp", Access: AccessRead},
					{Resource: ResourceNode, Segment: "n", Access: AccessWrite},
					{Resource: ResourceNode, Prefix: true, Segment: "np", Access: AccessDeny},
					{Resource: ResourceSession, Segment: "ss", Access: AccessWrite},
					{Resource: ResourceSession, Prefix: true, Segment: "ssp", Access: AccessRead},
					{Resource: ResourceAgent, Segment: "a", Access: AccessRead},
					{Resource: ResourceAgent, Prefix: true, Segment: "ap", Access: AccessWrite},
					{Resource: ResourceEvent, Segment: "e", Access: AccessWrite},
					{Resource: ResourceEvent, Prefix: true, Segment: "ep", Access: AccessRead},
					{Resource: ResourceQuery, Segment: "q", Access: AccessDeny},
					{Resource: ResourceQuery, Prefix: true, Segment: "qp", Access: AccessWrite},
				},
				ACL: AccessRead, Keyring: AccessWrite, Operator: AccessDeny, Mesh: AccessWrite, Peering: AccessRead,
			},
			wantRender: true,
		},
		{
			name: "duplicates merge by precedence",
			hcl: `
service "web" { policy = "read" }
service "web" { policy = "write" }
service "web" { policy = "read" }
key_prefix "a/" { policy = "read" }
key_prefix "a/" { policy = "list" }
node "n" { policy = "write" }
node "n" { policy = "deny" }
operator = "write"
operator = "read"
`,
			json: `{
  "service": [{"web": {"policy": "read"}}, {"web": {"policy": "write"}}, {"web": {"policy": "read"}}],
  "key_prefix": {"a/": [{"policy": "read"}, {"policy": "list"}]},
  "node": {"n": {"policy": "write"}},
  "node": {"n": {"policy": "deny"}},
  "operator": "write",
  "operator": "read"
}`,
			want: Rules{
				Segmented: []Rule{
					{Resource: ResourceKey, Prefix: true, Segment: "a/", Access: AccessList},
					{Resource: ResourceService, Segment: "web", Access: AccessWrite},
					{Resource: ResourceNode, Segment: "n", Access: AccessDeny},
				},
				Operator: AccessWrite,
			},
			wantRender: true,
		},
		{
			// Consul's HCL decoding matches keywords and fields
			// regardless of case; dispositions are exact.
			name: "keyword case",
			hcl:  `KEY_PREFIX "" { Policy = "read" }  Service "web" { POLICY = "write" Intentions = "deny" }  Operator = "write"`,
			json: `{"Key_Prefix": {"": {"POLICY": "read"}}, "SERVICE": {"web": {"policy": "write", "INTENTIONS": "deny"}}, "OPERATOR": "write"}`,
			want: Rules{
				Segmented: []Rule{
					{Resource: ResourceKey, Prefix: true, Segment: "", Access: AccessRead},
					{Resource: ResourceService, Segment: "web", Access: AccessWrite, Intentions: AccessDeny},
				},
				Operator: AccessWrite,
			},
			wantRender: true,
		},
		{
			name: "HCL lists of objects",
			hcl:  `key_prefix = [{ "" = { policy = "read" } }, { "a/" = { policy = "write" } }]  service = { policy = { policy = "read" } }  node = {}  query = []`,
			json: `{"key_prefix": [{"": {"policy": "read"}}, {"a/": {"policy": "write"}}], "service": {"policy": {"policy": "read"}}, "node": {}, "query": []}`,
			want: Rules{
				Segmented: []Rule{
					{Resource: ResourceKey, Prefix: true, Segment: "", Access: AccessRead},
					{Resource: ResourceKey, Prefix: true, Segment: "a/", Access: AccessWrite},
					{Resource: ResourceService, Segment: "policy", Access: AccessRead},
				},
			},
		},
		{
			name: "nested object HCL and odd segments",
			hcl: `
key_prefix = {
  "" = { policy = "read" }
  "with space/" = { policy = "write" }
}
service "ünïcode-☃" { policy = "read" }
key "quote\"d" { policy = "deny" }
`,
			json: `{"key_prefix": {"": {"policy": "read"}, "with space/": {"policy": "write"}},
			       "service": {"ünïcode-☃": {"policy": "read"}}, "key": {"quote\"d": {"policy": "deny"}}}`,
			want: Rules{
				Segmented: []Rule{
					{Resource: ResourceKey, Segment: `quote"d`, Access: AccessDeny},
					{Resource: ResourceKey, Prefix: true, Segment: "", Access: AccessRead},
					{Resource: ResourceKey, Prefix: true, Segment: "with space/", Access: AccessWrite},
					{Resource: ResourceService, Segment: "ünïcode-☃", Access: AccessRead},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, text := range append([]string{tt.hcl, tt.json}, tt.jsonAlt...) {
				got, err := ParseRules(text)
				if err != nil {
					t.Fatalf("form %d: %v\n%s", i, err, text)
				}
				if !reflect.DeepEqual(*got, tt.want) {
					t.Errorf("form %d:\n got %+v\nwant %+v", i, *got, tt.want)
				}
			}
			if !tt.wantRender {
				return
			}
			for _, text := range []string{renderHCL(&tt.want), renderJSON(&tt.want)} {
				got, err := ParseRules(text)
				if err != nil {
					t.Fatalf("rendered: %v\n%s", err, text)
				}
				if !reflect.DeepEqual(*got, tt.want) {
					t.Errorf("rendered:\n got %+v\nwant %+v\n%s", *got, tt.want, text)
				}
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // all in the error text
	}{
		{"unknown resource", `foo "x" { policy = "read" }`, []string{`line 1`, `unknown resource "foo"`, "key_prefix"}},
		{"unknown resource json", `{"services": {"x": {"policy": "read"}}}`, []string{`unknown resource "services"`}},
		{"unknown scalar", `operators = "read"`, []string{`unknown resource "operators"`}},
		{"enterprise namespace", `namespace "ns" { key "a" { policy = "read" } }`, []string{`unknown resource "namespace"`}},
		{"bad policy", "\n\nkey_prefix \"foo/\" {\n  policy = \"raed\"\n}", []string{`line 4`, `key_prefix "foo/"`, `invalid policy "raed"`, "read, write, list or deny"}},
		{"bad policy json", `{"service_prefix": {"web": {"policy": "all"}}}`, []string{`service_prefix "web"`, `invalid policy "all"`, "read, write or deny"}},
		{"list on service", `service "web" { policy = "list" }`, []string{`service "web"`, `invalid policy "list"`}},
		{"list on scalar", `acl = "list"`, []string{`acl`, `invalid policy "list"`}},
		{"bad scalar", `keyring = "manage"`, []string{`keyring`, `invalid policy "manage"`}},
		{"scalar as block", `operator { policy = "read" }`, []string{`operator must be a string`}},
		{"scalar with name", `operator "x" { policy = "read" }`, []string{`operator takes no name`}},
		{"scalar not string", `acl = true`, []string{`acl must be a string`}},
		{"policy not string", `key "a" { policy = 1 }`, []string{`key "a"`, `policy must be a string`}},
		{"policy list", `key "a" { policy = ["read"] }`, []string{`key "a"`, `policy must be a string`}},
		{"missing policy", `node "n" { }`, []string{`node "n"`, `missing policy`}},
		{"missing policy json", `{"node": {"n": {}}}`, []string{`node "n"`, `missing policy`}},
		{"null policy json", `{"node": {"n": {"policy": null}}}`, []string{`node "n"`, `invalid policy ""`}},
		{"unknown field", `key "a" { policy = "read" polcy = "write" }`, []string{`key "a"`, `unknown field "polcy"`, "want policy"}},
		{"intentions outside service", `node "n" { policy = "read" intentions = "read" }`, []string{`unknown field "intentions"`}},
		{"bad intentions", `service "s" { policy = "read" intentions = "list" }`, []string{`service "s"`, `invalid intentions "list"`}},
		{"policy twice", "key \"a\" {\n policy = \"read\"\n policy = \"write\"\n}", []string{`line 3`, `policy given twice`}},
		{"two names", `key "a" "b" { policy = "read" }`, []string{`key "a"`, `unexpected "b"`}},
		{"nested block", `{"key": {"a": {"sentinel": {"code": "x"}}}}`, []string{`key "a"`, `unexpected "sentinel"`}},
		{"no name", `key = "read"`, []string{`key needs a name`}},
		{"block without name", `service { policy = "read" }`, []string{`service needs a name`}},
		{"body not object", `{"service": {"web": {"policy": "read"}, "db": "write"}}`, []string{`service "db"`, `want a body`}},
		{"hcl syntax", `key_prefix "a" {`, []string{`1:`}},
		{"hcl syntax 2", `key_prefix "a" { policy = "read" } }`, []string{`invalid ACL rules`}},
		{"truncated json", `{"key": {"a": {"policy": "read"}}`, []string{`JSON`}},
		{"json trailing garbage", "{}\n{}", []string{`line 2`, `JSON`}},
		{"disposition case", `key "a" { policy = "READ" }`, []string{`invalid policy "READ"`}},
		{"policy twice, differently cased", `key "a" { policy = "read" Policy = "write" }`, []string{`policy given twice`}},
		{"list of strings", `key = ["a"]`, []string{`key: want blocks`}},
		{"list with a bad block", `key = [{ "a" = { policy = "read" } }, { "b" = { policy = "raed" } }]`, []string{`key "b"`, `invalid policy "raed"`}},
		{"unknown service field", `service "web" { policy = "read" foo = "x" }`, []string{`unknown field "foo"`, "want policy or intentions"}},
		{"block in body", `key "a" { policy = "read" sub "x" { policy = "read" } }`, []string{`key "a"`, `unexpected block`}},
		{"policy as block", `key "a" { policy { x = "read" } }`, []string{`key "a"`, `policy must be a string`}},
		{"heredoc policy", "key \"a\" { policy = <<EOT\nread\nEOT\n}", []string{`key "a"`, `policy must be a string`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := ParseRules(tt.text)
			if err == nil {
				t.Fatalf("parsed %q to %+v, want an error", tt.text, rules)
			}
			if !errors.Is(err, ErrInvalidRules) {
				t.Errorf("error %q does not wrap ErrInvalidRules", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestParseRulesLimits(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		text := `key "a" { policy = "read" }` + strings.Repeat(" ", MaxRulesSize)
		_, err := ParseRules(text)
		if !errors.Is(err, ErrInvalidRules) || !strings.Contains(err.Error(), "limit of 131072") {
			t.Fatalf("got %v, want the size limit", err)
		}
	})
	t.Run("just under the size", func(t *testing.T) {
		text := `key "a" { policy = "read" }`
		text += strings.Repeat(" ", MaxRulesSize-len(text))
		if _, err := ParseRules(text); err != nil {
			t.Fatal(err)
		}
	})
	var b strings.Builder
	for i := 0; i < MaxRuleCount; i++ {
		fmt.Fprintf(&b, "key %q { policy = \"read\" }\n", fmt.Sprint(i))
	}
	t.Run("most rules", func(t *testing.T) {
		rules, err := ParseRules(b.String())
		if err != nil {
			t.Fatal(err)
		}
		if len(rules.Segmented) != MaxRuleCount {
			t.Fatalf("got %d rules, want %d", len(rules.Segmented), MaxRuleCount)
		}
	})
	t.Run("too many rules", func(t *testing.T) {
		// Duplicates count too: the limit is on parsing work.
		_, err := ParseRules(b.String() + `key "0" { policy = "read" }`)
		if !errors.Is(err, ErrInvalidRules) || !strings.Contains(err.Error(), "more than 4096 rules") {
			t.Fatalf("got %v, want the rule count limit", err)
		}
	})
}

func TestAccessString(t *testing.T) {
	for access, want := range map[Access]string{AccessNone: "", AccessRead: "read", AccessList: "list", AccessWrite: "write", AccessDeny: "deny"} {
		if got := access.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", access, got, want)
		}
	}
	for r := Resource(0); r < numResources; r++ {
		if r.String() == "" || strings.HasPrefix(r.String(), "Resource(") {
			t.Errorf("resource %d has no name", r)
		}
	}
	if got := numResources.String(); got != "Resource(7)" {
		t.Errorf("out of range resource: %q", got)
	}
}

// Inputs that made HCL v1 slow (its parser takes time cubic in the depth of
// an unterminated nesting) or that push at the limits parse, or fail, fast.
func TestParseRulesAdversarialInputsAreFast(t *testing.T) {
	n := MaxRulesSize
	deep := maxNesting - 1
	tests := map[string]string{
		"nested hcl lists":          "a = " + strings.Repeat("[", n-4),
		"nested hcl objects":        "a = " + strings.Repeat("{b = ", n/5),
		"nested json lists":         `{"a":` + strings.Repeat(`[`, n-6),
		"nested json objects":       strings.Repeat(`{"a":`, n/5),
		"many deep unterminated":    strings.Repeat("a = "+strings.Repeat("[", deep)+"\n", n/(deep+5)),
		"many deep terminated":      strings.Repeat("a = "+strings.Repeat("[", deep)+strings.Repeat("]", deep)+"\n", n/(2*deep+5)),
		"many labels":               "key " + strings.Repeat(`"a" `, n/4-2) + "{}",
		"many rules":                strings.Repeat(`key "a" { policy = "read" }`+"\n", n/28),
		"wide json":                 `{"key": {` + strings.Repeat(`"a": {"policy": "read"},`, n/25-1) + `"b": {"policy": "read"}}}`,
		"interpolations":            `key "` + strings.Repeat("${", n/2-10) + `" {}`,
		"unterminated comments":     strings.Repeat("/*", n/2),
		"unterminated heredocs":     strings.Repeat("a = <<EOT\n", n/10),
		"brackets in strings":       `key "` + strings.Repeat("[{", n/2-30) + `" { policy = "read" }`,
		"brackets in comments":      "# " + strings.Repeat("[", n-40) + "\nkey \"a\" { policy = \"read\" }",
		"brackets in block comment": "/* " + strings.Repeat("[", n-40) + " */ acl = \"read\"",
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			text = text[:min(len(text), MaxRulesSize)]
			done := make(chan error, 1)
			go func() {
				_, err := ParseRules(text)
				done <- err
			}()
			select {
			case err := <-done:
				t.Logf("%v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("ParseRules took more than 5s")
			}
		})
	}
}

func TestParseRulesNesting(t *testing.T) {
	ok := []string{
		`key "` + strings.Repeat("[", 100) + `" { policy = "read" }`,
		`key "\"` + strings.Repeat("{", 100) + `" { policy = "read" }`,
		"# " + strings.Repeat("{", 100) + "\nacl = \"read\"",
		"// " + strings.Repeat("{", 100) + "\nacl = \"read\"",
		"/* " + strings.Repeat("{\n", 100) + "*/ acl = \"read\"",
		`{"key": {"` + strings.Repeat("[", 100) + `": {"policy": "read"}}}`,
	}
	for _, text := range ok {
		if _, err := ParseRules(text); err != nil {
			t.Errorf("%.40q: %v", text, err)
		}
	}
	text := "acl = \"read\"\n" + "a = " + strings.Repeat("[", maxNesting+1)
	_, err := ParseRules(text)
	if !errors.Is(err, ErrInvalidRules) || !strings.Contains(err.Error(), "line 2: nested more than 32 deep") {
		t.Errorf("got %v, want the nesting limit on line 2", err)
	}
}
