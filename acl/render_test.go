package acl

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The renderers write parsed Rules back as rules text, for the round-trip
// properties of the tests and the fuzz target. They are test code: the
// package keeps policies as the text their authors wrote.

// keyword returns the rule's resource keyword: "key" or "key_prefix", ….
func (r Rule) keyword() string {
	if r.Prefix {
		return r.Resource.String() + "_prefix"
	}
	return r.Resource.String()
}

// renderHCL writes r as HCL. Segments must be plain (see plainSegment):
// HCL v1 copies "${…}" sequences of a quoted string without unescaping.
func renderHCL(r *Rules) string {
	var b strings.Builder
	for _, s := range []struct {
		name   string
		access Access
	}{{"acl", r.ACL}, {"keyring", r.Keyring}, {"operator", r.Operator}, {"mesh", r.Mesh}, {"peering", r.Peering}} {
		if s.access != AccessNone {
			fmt.Fprintf(&b, "%s = %q\n", s.name, s.access)
		}
	}
	for _, rule := range r.Segmented {
		fmt.Fprintf(&b, "%s %q {\n  policy = %q\n", rule.keyword(), rule.Segment, rule.Access)
		if rule.Intentions != AccessNone {
			fmt.Fprintf(&b, "  intentions = %q\n", rule.Intentions)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// renderJSON writes r as JSON, in the nested form Consul documents.
func renderJSON(r *Rules) string {
	doc := map[string]any{}
	for _, s := range []struct {
		name   string
		access Access
	}{{"acl", r.ACL}, {"keyring", r.Keyring}, {"operator", r.Operator}, {"mesh", r.Mesh}, {"peering", r.Peering}} {
		if s.access != AccessNone {
			doc[s.name] = s.access.String()
		}
	}
	for _, rule := range r.Segmented {
		segments, _ := doc[rule.keyword()].(map[string]any)
		if segments == nil {
			segments = map[string]any{}
			doc[rule.keyword()] = segments
		}
		body := map[string]string{"policy": rule.Access.String()}
		if rule.Intentions != AccessNone {
			body["intentions"] = rule.Intentions.String()
		}
		segments[rule.Segment] = body
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(out)
}

// plainSegment reports whether s renders to HCL and back unchanged:
// printable ASCII without '$', '"' or '\\'.
func plainSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '$' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
