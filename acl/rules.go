package acl

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// Limits on one policy's rules, so that a policy cannot make its parsing, or
// every token that links it, expensive.
const (
	// MaxRulesSize is the largest rules text ParseRules accepts, in bytes.
	MaxRulesSize = 128 << 10
	// MaxRuleCount is the most segmented rules (key "…", service_prefix
	// "…", …) one rules text may hold, counted before duplicates merge.
	MaxRuleCount = 4096
)

// ErrInvalidRules is wrapped by every error ParseRules returns: the rules
// text is not valid (an HTTP API answers 400 with the error's text).
var ErrInvalidRules = errors.New("invalid ACL rules")

// Access is a rule's policy disposition. Its values are ordered by
// precedence: when rules for the same resource and segment meet (within
// one policy or across a token's policies), the greater Access wins.
type Access uint8

const (
	// AccessNone means no rule: the decision falls through.
	AccessNone Access = iota
	// AccessRead grants reading.
	AccessRead
	// AccessList grants reading and listing (keys only).
	AccessList
	// AccessWrite grants reading, listing and writing.
	AccessWrite
	// AccessDeny grants nothing and stops the decision there.
	AccessDeny
)

// String returns the access as the rules language spells it ("" for
// AccessNone).
func (a Access) String() string {
	switch a {
	case AccessRead:
		return "read"
	case AccessList:
		return "list"
	case AccessWrite:
		return "write"
	case AccessDeny:
		return "deny"
	default:
		return ""
	}
}

// grants reports whether a rule with access a allows an operation that
// needs need (AccessRead, AccessList or AccessWrite).
func (a Access) grants(need Access) bool {
	switch a {
	case AccessWrite:
		return true
	case AccessList:
		return need == AccessRead || need == AccessList
	case AccessRead:
		return need == AccessRead
	default:
		return false
	}
}

// parseAccess reads a disposition; list is valid only for keys.
func parseAccess(s string, listAllowed bool) (Access, bool) {
	switch s {
	case "read":
		return AccessRead, true
	case "write":
		return AccessWrite, true
	case "deny":
		return AccessDeny, true
	case "list":
		return AccessList, listAllowed
	default:
		return AccessNone, false
	}
}

// Resource is a segmented resource of the rules language: its rules name
// a key, service, node, … exactly (`key "a/b"`) or by prefix
// (`key_prefix "a/"`).
type Resource uint8

// The segmented resources, with the name their rules are matched against.
const (
	ResourceKey     Resource = iota // KV key
	ResourceService                 // service name
	ResourceNode                    // node name
	ResourceSession                 // name of the node a session is on
	ResourceAgent                   // name of the agent's node
	ResourceEvent                   // user event name
	ResourceQuery                   // prepared query name
	numResources
)

var resourceNames = [numResources]string{"key", "service", "node", "session", "agent", "event", "query"}

// String returns the resource's exact-rule keyword ("key", "service", …).
func (r Resource) String() string {
	if r < numResources {
		return resourceNames[r]
	}
	return fmt.Sprintf("Resource(%d)", uint8(r))
}

// Rule is one segmented rule.
type Rule struct {
	Resource Resource
	// Prefix is true for a prefix rule (key_prefix, service_prefix, …),
	// false for an exact one (key, service, …).
	Prefix bool
	// Segment is the name (exact rule) or name prefix (prefix rule).
	Segment string
	Access  Access
	// Intentions is a service rule's intentions disposition, parsed and
	// kept for compatibility with Consul's rules; beacon decides nothing
	// from it. AccessNone when absent.
	Intentions Access
}

// Rules is a parsed policy: what ParseRules returns and NewAuthorizer
// takes. It is normalized: Segmented holds at most one rule per
// (Resource, Prefix, Segment), sorted in that order, so the HCL and JSON
// forms of one policy give equal Rules. Rules is not changed once parsed,
// and may be shared by authorizers.
type Rules struct {
	Segmented []Rule
	// The unsegmented resources; AccessNone when the rules do not set them.
	ACL      Access // ACL API; write also grants snapshots
	Keyring  Access // gossip keyring
	Operator Access // cluster operations (Raft, autopilot, …)
	Mesh     Access // mesh configuration; falls back to Operator
	Peering  Access // cluster peering; falls back to Operator
}

// ParseRules parses a policy's rules text, in HCL or in JSON (a text whose
// first non-space character is '{'), as Consul accepts them:
//
//	key_prefix "" { policy = "read" }
//	key "secret" { policy = "deny" }
//	service "web" { policy = "write" }
//	operator = "read"
//
// The segmented resources are key, service, node, session, agent, event
// and query, each also as <resource>_prefix; the unsegmented ones acl,
// keyring, operator, mesh and peering. Dispositions are read, write and
// deny, and list for keys. A service rule may also carry intentions =
// "<disposition>". Keywords and field names match regardless of case, as
// in Consul; dispositions do not. Rules given twice merge by precedence
// (see Access). An empty text is a valid policy with no rules.
//
// Unlike Consul, which ignores what it does not know, an unknown resource
// or field is an error, and so is a text over MaxRulesSize bytes, with
// more than MaxRuleCount rules, or with braces nested over 32 deep.
// Errors wrap ErrInvalidRules and name the resource, the segment, the bad
// value and, where the parser knows it, the line.
func ParseRules(text string) (*Rules, error) {
	if len(text) > MaxRulesSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the limit of %d", ErrInvalidRules, len(text), MaxRulesSize)
	}
	if err := checkNesting(text); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
	}
	file, err := parseHCL(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRules, err)
	}
	p := rulesParser{segmented: map[ruleKey]*Rule{}}
	if list, ok := file.Node.(*ast.ObjectList); ok {
		for _, item := range list.Items {
			if err := p.topLevelItem(item); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
			}
		}
	}
	return p.result(), nil
}

// maxNesting bounds how deep braces and brackets may nest in rules text.
// Consul's forms nest at most five deep (JSON with lists); HCL v1 takes
// time cubic in the depth of some malformed nestings.
const maxNesting = 32

// checkNesting refuses text whose braces and brackets, outside quoted
// strings and comments, nest deeper than maxNesting. It errs on the side of
// counting: a bracket it cannot place is counted.
func checkNesting(text string) error {
	depth, line := 0, 1
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\n':
			line++
		case c == '"':
			// A quoted string ends at its unescaped closing quote or,
			// unterminated, at the end of the line.
			for i++; i < len(text) && text[i] != '"' && text[i] != '\n'; i++ {
				if text[i] == '\\' {
					i++
				}
			}
			if i < len(text) && text[i] == '\n' {
				line++
			}
		case c == '#' || c == '/' && strings.HasPrefix(text[i:], "//"):
			for i < len(text) && text[i] != '\n' {
				i++
			}
			line++
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				return nil // unterminated: a syntax error the parser reports
			}
			line += strings.Count(text[i:i+2+end], "\n")
			i += 2 + end + 1
		case c == '{' || c == '[':
			depth++
			if depth > maxNesting {
				return fmt.Errorf("line %d: nested more than %d deep", line, maxNesting)
			}
		case c == '}' || c == ']':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// parseHCL parses text into its syntax tree, as JSON when its first
// non-space character is '{' and as HCL otherwise (HCL v1's own choice).
// HCL v1's JSON parser accepts truncated documents, so JSON must also be
// valid to encoding/json; and HCL v1 panics on a few malformed inputs
// (heredocs, string escapes): those are syntax errors too.
func parseHCL(text string) (file *ast.File, err error) {
	if strings.HasPrefix(strings.TrimLeftFunc(text, unicode.IsSpace), "{") {
		var raw json.RawMessage
		if err := json.Unmarshal([]byte(text), &raw); err != nil {
			var syntax *json.SyntaxError
			if errors.As(err, &syntax) {
				line := 1 + strings.Count(text[:min(int(syntax.Offset), len(text))], "\n")
				return nil, fmt.Errorf("line %d: JSON: %v", line, syntax)
			}
			return nil, fmt.Errorf("JSON: %w", err)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			file, err = nil, fmt.Errorf("malformed rules: %v", r)
		}
	}()
	file, err = hcl.Parse(text)
	if err == nil && file == nil {
		err = errors.New("malformed rules")
	}
	return file, err
}

type ruleKey struct {
	resource Resource
	prefix   bool
	segment  string
}

type rulesParser struct {
	segmented map[ruleKey]*Rule
	count     int
	scalars   Rules // only the unsegmented fields
}

func (p *rulesParser) result() *Rules {
	r := p.scalars
	r.Segmented = make([]Rule, 0, len(p.segmented))
	for _, rule := range p.segmented {
		r.Segmented = append(r.Segmented, *rule)
	}
	slices.SortFunc(r.Segmented, compareRules)
	return &r
}

func compareRules(a, b Rule) int {
	if c := cmp.Compare(a.Resource, b.Resource); c != 0 {
		return c
	}
	if a.Prefix != b.Prefix {
		if a.Prefix {
			return 1
		}
		return -1
	}
	return strings.Compare(a.Segment, b.Segment)
}

// lookupKeyword resolves a top-level keyword: a segmented resource (with
// prefix telling key_prefix from key) or, with scalar set, the field of an
// unsegmented one. Keywords match regardless of case, as in Consul.
func (p *rulesParser) lookupKeyword(word string) (res Resource, prefix bool, scalar *Access, ok bool) {
	for _, s := range []struct {
		name  string
		field *Access
	}{{"acl", &p.scalars.ACL}, {"keyring", &p.scalars.Keyring}, {"operator", &p.scalars.Operator},
		{"mesh", &p.scalars.Mesh}, {"peering", &p.scalars.Peering}} {
		if strings.EqualFold(word, s.name) {
			return 0, false, s.field, true
		}
	}
	for r, name := range resourceNames {
		if strings.EqualFold(word, name) {
			return Resource(r), false, nil, true
		}
		if strings.EqualFold(word, name+"_prefix") {
			return Resource(r), true, nil, true
		}
	}
	return 0, false, nil, false
}

const knownResources = "key, key_prefix, service, service_prefix, node, node_prefix, session, session_prefix, " +
	"agent, agent_prefix, event, event_prefix, query, query_prefix, acl, keyring, operator, mesh or peering"

func (p *rulesParser) topLevelItem(item *ast.ObjectItem) error {
	if len(item.Keys) == 0 {
		return fmt.Errorf("%sexpected a resource", where(item.Pos(), item.Assign))
	}
	word := keyText(item.Keys[0])
	res, prefix, scalar, ok := p.lookupKeyword(word)
	if !ok {
		return fmt.Errorf("%sunknown resource %q (want %s)", where(item.Pos(), item.Assign), word, knownResources)
	}
	if scalar != nil {
		if len(item.Keys) > 1 {
			return fmt.Errorf("%s%s takes no name: write %s = \"read\", \"write\" or \"deny\"", where(item.Pos(), item.Assign), word, word)
		}
		value, ok := stringValue(item.Val)
		if !ok {
			return fmt.Errorf("%s%s must be a string: write %s = \"read\", \"write\" or \"deny\"", where(item.Pos(), item.Assign), word, word)
		}
		access, ok := parseAccess(value, false)
		if !ok {
			return fmt.Errorf("%s%s: invalid policy %q (want read, write or deny)", where(item.Pos(), item.Assign), word, value)
		}
		*scalar = max(*scalar, access)
		return nil
	}
	pos := item.Pos()
	if !pos.IsValid() {
		pos = item.Assign
	}
	return p.segmentedItem(word, res, prefix, item.Keys[1:], item.Val, pos)
}

// segmentedItem reads the rules of one resource keyword: labels are the
// keys after the keyword. HCL gives `key "a" { … }` (one label, a body);
// JSON, and HCL written as nested objects, give `key = { "a" = { … } }`
// (no label, an object or list of objects of labelled bodies).
func (p *rulesParser) segmentedItem(word string, res Resource, prefix bool, labels []*ast.ObjectKey, val ast.Node, pos token.Pos) error {
	switch len(labels) {
	case 1:
		return p.ruleBody(word, res, prefix, keyText(labels[0]), val, pos)
	case 0:
		switch v := val.(type) {
		case *ast.ObjectType:
			return p.segmentedObject(word, res, prefix, v)
		case *ast.ListType:
			for _, elem := range v.List {
				obj, ok := elem.(*ast.ObjectType)
				if !ok {
					return fmt.Errorf("%s%s: want blocks of the form %s \"<name>\" { policy = \"…\" }", where(elem.Pos()), word, word)
				}
				if err := p.segmentedObject(word, res, prefix, obj); err != nil {
					return err
				}
			}
			return nil
		default:
			return fmt.Errorf("%s%s needs a name: write %s \"<name>\" { policy = \"…\" }", where(pos), word, word)
		}
	default:
		return fmt.Errorf("%s%s %q: unexpected %q (a rule has one name, then its body)", where(pos), word, keyText(labels[0]), keyText(labels[1]))
	}
}

func (p *rulesParser) segmentedObject(word string, res Resource, prefix bool, obj *ast.ObjectType) error {
	if obj.List == nil {
		return nil
	}
	for _, inner := range obj.List.Items {
		if _, isObject := inner.Val.(*ast.ObjectType); len(inner.Keys) == 0 || !isObject && isField(keyText(inner.Keys[0])) {
			// `key { policy = "read" }`: a body without its name.
			return fmt.Errorf("%s%s needs a name: write %s \"<name>\" { policy = \"…\" }", where(inner.Pos(), inner.Assign), word, word)
		}
		pos := inner.Pos()
		if !pos.IsValid() {
			pos = inner.Assign
		}
		if err := p.segmentedItem(word, res, prefix, inner.Keys, inner.Val, pos); err != nil {
			return err
		}
	}
	return nil
}

// ruleBody reads `{ policy = "…" [intentions = "…"] }` for one segment.
func (p *rulesParser) ruleBody(word string, res Resource, prefix bool, segment string, val ast.Node, pos token.Pos) error {
	obj, ok := val.(*ast.ObjectType)
	if !ok {
		return fmt.Errorf("%s%s %q: want a body { policy = \"…\" }", where(pos), word, segment)
	}
	rule := Rule{Resource: res, Prefix: prefix, Segment: segment}
	seen := map[string]bool{}
	if obj.List != nil {
		for _, field := range obj.List.Items {
			if len(field.Keys) != 1 {
				return fmt.Errorf("%s%s %q: unexpected block in the rule's body (want policy = \"…\")", where(field.Pos(), field.Assign), word, segment)
			}
			name := keyText(field.Keys[0])
			var target *Access
			listAllowed := false
			switch {
			case strings.EqualFold(name, "policy"):
				name = "policy"
				target, listAllowed = &rule.Access, res == ResourceKey
			case strings.EqualFold(name, "intentions") && res == ResourceService:
				name = "intentions"
				target = &rule.Intentions
			default:
				want := "policy"
				if res == ResourceService {
					want = "policy or intentions"
				}
				return fmt.Errorf("%s%s %q: unknown field %q (want %s)", where(field.Pos(), field.Assign), word, segment, name, want)
			}
			if seen[name] {
				return fmt.Errorf("%s%s %q: %s given twice", where(field.Pos(), field.Assign), word, segment, name)
			}
			seen[name] = true
			value, ok := stringValue(field.Val)
			if !ok {
				return fmt.Errorf("%s%s %q: %s must be a string", where(field.Pos(), field.Assign), word, segment, name)
			}
			access, ok := parseAccess(value, listAllowed)
			if !ok {
				want := "read, write or deny"
				if listAllowed {
					want = "read, write, list or deny"
				}
				return fmt.Errorf("%s%s %q: invalid %s %q (want %s)", where(field.Pos(), field.Assign), word, segment, name, value, want)
			}
			*target = access
		}
	}
	if rule.Access == AccessNone {
		return fmt.Errorf("%s%s %q: missing policy", where(pos), word, segment)
	}
	p.count++
	if p.count > MaxRuleCount {
		return fmt.Errorf("%smore than %d rules", where(pos), MaxRuleCount)
	}
	key := ruleKey{res, prefix, segment}
	if existing, ok := p.segmented[key]; ok {
		existing.Access = max(existing.Access, rule.Access)
		existing.Intentions = max(existing.Intentions, rule.Intentions)
		return nil
	}
	p.segmented[key] = &rule
	return nil
}

// isField reports whether name is a field of a rule's body.
func isField(name string) bool {
	return strings.EqualFold(name, "policy") || strings.EqualFold(name, "intentions")
}

// keyText returns an object key's text: an identifier as written, a
// quoted string unquoted.
func keyText(k *ast.ObjectKey) string {
	if k.Token.Type == token.STRING {
		if s, ok := tokenString(k.Token); ok {
			return s
		}
	}
	return k.Token.Text
}

// stringValue returns a literal string value; heredocs, numbers, bools,
// lists and objects are not policies.
func stringValue(n ast.Node) (string, bool) {
	lit, ok := n.(*ast.LiteralType)
	if !ok || lit.Token.Type != token.STRING {
		return "", false
	}
	return tokenString(lit.Token)
}

// tokenString unquotes a string token, which HCL does by panicking on
// malformed input.
func tokenString(t token.Token) (s string, ok bool) {
	defer func() {
		if recover() != nil {
			s, ok = "", false
		}
	}()
	s, ok = t.Value().(string)
	return s, ok
}

// where returns "line N: " for the first known position, "" for none (the
// JSON parser does not keep positions of keys and values).
func where(positions ...token.Pos) string {
	for _, pos := range positions {
		if pos.Line > 0 {
			return fmt.Sprintf("line %d: ", pos.Line)
		}
	}
	return ""
}
