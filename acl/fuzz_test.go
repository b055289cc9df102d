package acl

import (
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParseRules holds the parser to: no panic on any input; every error
// wraps ErrInvalidRules; what parses is within the limits, builds an
// authorizer, and renders to JSON (and, for plain segments, HCL) that
// parses back to the same Rules.
func FuzzParseRules(f *testing.F) {
	for _, seed := range []string{
		``,
		`key_prefix "" { policy = "read" }`,
		`key "a/b" { policy = "list" } operator = "write"`,
		`service "web" { policy = "write" intentions = "read" }`,
		`{"node_prefix": {"": {"policy": "read"}}, "acl": "write"}`,
		`{"session": [{"n": [{"policy": "deny"}]}]}`,
		`agent_prefix = { "" = { policy = "read" } }`,
		`event "x" { policy = <<EOT
read
EOT
}`,
		`query_prefix "${x}" { policy = "read" }`,
		GlobalManagementPolicy().Rules,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := ParseRules(text)
		if err != nil {
			if !errors.Is(err, ErrInvalidRules) {
				t.Fatalf("error %q does not wrap ErrInvalidRules", err)
			}
			return
		}
		if len(rules.Segmented) > MaxRuleCount {
			t.Fatalf("%d rules parsed", len(rules.Segmented))
		}
		a := NewAuthorizer(DenyAll(), rules)
		plain, validUTF8 := true, true
		for _, rule := range rules.Segmented {
			if rule.Access == AccessNone || rule.Resource >= numResources {
				t.Fatalf("parsed an empty rule: %+v", rule)
			}
			got, _ := a.tables[rule.Resource].lookup(rule.Segment)
			if !rule.Prefix && got != rule.Access {
				t.Fatalf("exact rule %+v decides as %v", rule, got)
			}
			plain = plain && plainSegment(rule.Segment)
			validUTF8 = validUTF8 && utf8.ValidString(rule.Segment)
		}
		var renderings []string
		if validUTF8 {
			renderings = append(renderings, renderJSON(rules))
		}
		if plain {
			renderings = append(renderings, renderHCL(rules))
		}
		for _, rendered := range renderings {
			again, err := ParseRules(rendered)
			if err != nil {
				t.Fatalf("rendered rules do not parse: %v\n%s", err, rendered)
			}
			if !reflect.DeepEqual(again, rules) {
				t.Fatalf("rendered rules parse differently:\n got %+v\nwant %+v\n%s", again, rules, rendered)
			}
		}
	})
}
