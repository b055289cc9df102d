package acl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// jsonKeys returns the top-level keys of v's JSON encoding.
func jsonKeys(t *testing.T, v any) []string {
	t.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func fullToken() *Token {
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	expires := created.Add(time.Hour)
	return &Token{
		CreateIndex:    7,
		ModifyIndex:    9,
		AccessorID:     "6a1253d2-1785-24fd-91c2-f8e78c745511",
		SecretID:       "45a3bd52-07c7-47a4-52fd-0745e0cfe967",
		Description:    "agent token",
		Policies:       []PolicyLink{{ID: "165d4317-e379-f732-ce70-86278c4558f7", Name: "node-read"}},
		Local:          true,
		ExpirationTTL:  time.Hour,
		ExpirationTime: &expires,
		CreateTime:     created,
		Hash:           []byte{1, 2, 3},
	}
}

func fullPolicy() *Policy {
	return &Policy{
		ID:          "e359bd81-baca-903e-7e64-1ccd9fdc78f5",
		Name:        "node-read",
		Description: "Grants read access to all node information",
		Rules:       `node_prefix "" { policy = "read" }`,
		Datacenters: []string{"dc1", "dc2"},
		Hash:        []byte{4, 5, 6},
		CreateIndex: 14,
		ModifyIndex: 15,
	}
}

// Token and Policy encode as Consul's api package expects, and decode what
// it sends.
func TestJSONMatchesConsulAPI(t *testing.T) {
	t.Run("token", func(t *testing.T) {
		ours := fullToken()
		out, err := json.Marshal(ours)
		if err != nil {
			t.Fatal(err)
		}
		var theirs api.ACLToken
		if err := json.Unmarshal(out, &theirs); err != nil {
			t.Fatal(err)
		}
		want := api.ACLToken{
			CreateIndex: 7, ModifyIndex: 9, AccessorID: ours.AccessorID, SecretID: ours.SecretID,
			Description: ours.Description, Policies: []*api.ACLTokenPolicyLink{{ID: ours.Policies[0].ID, Name: "node-read"}},
			Local: true, ExpirationTTL: time.Hour, ExpirationTime: ours.ExpirationTime, CreateTime: ours.CreateTime,
			Hash: []byte{1, 2, 3},
		}
		if !reflect.DeepEqual(theirs, want) {
			t.Errorf("api decodes\n%+v\nwant\n%+v", theirs, want)
		}
		back, err := json.Marshal(&theirs)
		if err != nil {
			t.Fatal(err)
		}
		var again Token
		if err := json.Unmarshal(back, &again); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&again, ours) {
			t.Errorf("decoding api's encoding:\n got %+v\nwant %+v", again, *ours)
		}
		// Every field we encode, api encodes under the same name.
		for _, k := range jsonKeys(t, ours) {
			if !slices.Contains(jsonKeys(t, &theirs), k) {
				t.Errorf("token field %q is not in api.ACLToken's encoding", k)
			}
		}
	})
	t.Run("policy", func(t *testing.T) {
		ours := fullPolicy()
		out, err := json.Marshal(ours)
		if err != nil {
			t.Fatal(err)
		}
		var theirs api.ACLPolicy
		if err := json.Unmarshal(out, &theirs); err != nil {
			t.Fatal(err)
		}
		want := api.ACLPolicy{ID: ours.ID, Name: ours.Name, Description: ours.Description, Rules: ours.Rules,
			Datacenters: ours.Datacenters, Hash: ours.Hash, CreateIndex: 14, ModifyIndex: 15}
		if !reflect.DeepEqual(theirs, want) {
			t.Errorf("api decodes\n%+v\nwant\n%+v", theirs, want)
		}
		if got, want := jsonKeys(t, ours), jsonKeys(t, &theirs); !reflect.DeepEqual(got, want) {
			t.Errorf("policy fields %v, api's %v", got, want)
		}
	})
	t.Run("omitted", func(t *testing.T) {
		// The optional fields are omitted as api omits them.
		got := jsonKeys(t, &Token{})
		want := []string{"AccessorID", "CreateIndex", "CreateTime", "Description", "Local", "ModifyIndex", "SecretID"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("empty token encodes %v, want %v", got, want)
		}
		if theirs := jsonKeys(t, &api.ACLToken{}); !reflect.DeepEqual(theirs, want) {
			t.Errorf("api's empty token encodes %v, ours %v", theirs, want)
		}
	})
}

func TestBuiltins(t *testing.T) {
	p := GlobalManagementPolicy()
	if p.ID != "00000000-0000-0000-0000-000000000001" || p.Name != "global-management" {
		t.Errorf("global-management is %s %q", p.ID, p.Name)
	}
	if !bytes.Equal(p.Hash, p.ContentHash()) || len(p.Hash) == 0 {
		t.Error("global-management's hash is not set")
	}
	p.Rules = "changed"
	if GlobalManagementPolicy().Rules == "changed" {
		t.Error("GlobalManagementPolicy returns a shared value")
	}
	tok := AnonymousToken()
	if tok.AccessorID != "00000000-0000-0000-0000-000000000002" || tok.SecretID != "anonymous" || len(tok.Policies) != 0 {
		t.Errorf("anonymous token is %+v", *tok)
	}
	if !bytes.Equal(tok.Hash, tok.ContentHash()) {
		t.Error("anonymous token's hash is not set")
	}
	if !ValidUUID(GlobalManagementPolicyID) || !ValidUUID(AnonymousTokenAccessorID) {
		t.Error("built-in IDs are not UUIDs")
	}
}

func TestNewUUID(t *testing.T) {
	format := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id, secret := NewUUID(), NewSecret()
		for _, u := range []string{id, secret} {
			if !format.MatchString(u) || !ValidUUID(u) {
				t.Fatalf("%q is not a version 4 UUID", u)
			}
			if seen[u] {
				t.Fatalf("%q generated twice", u)
			}
			seen[u] = true
		}
	}
}

func TestValidUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"6a1253d2-1785-24fd-91c2-f8e78c745511":  true,
		"6A1253D2-1785-24FD-91C2-F8E78C745511":  true,
		"00000000-0000-0000-0000-000000000000":  true,
		"":                                      false,
		"anonymous":                             false,
		"6a1253d2-1785-24fd-91c2-f8e78c74551":   false,
		"6a1253d2-1785-24fd-91c2-f8e78c7455111": false,
		"6a1253d2x1785-24fd-91c2-f8e78c745511":  false,
		"6a1253d2-1785-24fd-91c2-f8e78c74551g":  false,
		"6a1253d21785-24fd-91c2-f8e78c745511-":  false,
	} {
		if got := ValidUUID(s); got != want {
			t.Errorf("ValidUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidPolicyName(t *testing.T) {
	for name, want := range map[string]bool{
		"node-read":              true,
		"global_management-2":    true,
		strings.Repeat("a", 128): true,
		strings.Repeat("a", 129): false,
		"":                       false,
		"with space":             false,
		"dotted.name":            false,
		"ünïcode":                false,
	} {
		if got := ValidPolicyName(name); got != want {
			t.Errorf("ValidPolicyName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTokenExpired(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { e := now.Add(d); return &e }
	zero := time.Time{}
	for _, tt := range []struct {
		name    string
		expires *time.Time
		want    bool
	}{
		{"no expiry", nil, false},
		{"zero expiry", &zero, false},
		{"future", at(time.Second), false},
		{"exactly now", at(0), false},
		{"past", at(-time.Nanosecond), true},
	} {
		tok := &Token{ExpirationTime: tt.expires}
		if got := tok.Expired(now); got != tt.want {
			t.Errorf("%s: Expired = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTokenNeverPrintsItsSecret(t *testing.T) {
	tok := fullToken()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, tok); strings.Contains(out, tok.SecretID) || !strings.Contains(out, tok.AccessorID) {
			t.Errorf("%s prints %q", verb, out)
		}
	}
	if got := fmt.Sprint((*Token)(nil)); got != "token <nil>" {
		t.Errorf("nil token prints %q", got)
	}
}

func TestContentHash(t *testing.T) {
	base := fullPolicy().ContentHash()
	if !bytes.Equal(base, fullPolicy().ContentHash()) {
		t.Fatal("policy hash is not stable")
	}
	same := fullPolicy()
	same.ID, same.CreateIndex, same.ModifyIndex, same.Hash = "other", 1, 2, nil
	if !bytes.Equal(base, same.ContentHash()) {
		t.Error("policy hash depends on ID, indexes or the old hash")
	}
	for name, change := range map[string]func(*Policy){
		"name":        func(p *Policy) { p.Name = "x" },
		"description": func(p *Policy) { p.Description = "x" },
		"rules":       func(p *Policy) { p.Rules = "x" },
		"datacenters": func(p *Policy) { p.Datacenters = []string{"dc1"} },
		"shifted":     func(p *Policy) { p.Name, p.Description = p.Name+p.Description[:1], p.Description[1:] },
	} {
		p := fullPolicy()
		change(p)
		if bytes.Equal(base, p.ContentHash()) {
			t.Errorf("policy hash ignores its %s", name)
		}
	}

	tokenBase := fullToken().ContentHash()
	same2 := fullToken()
	same2.SecretID, same2.AccessorID, same2.CreateTime, same2.ModifyIndex = "s", "a", time.Time{}, 99
	same2.Policies[0].Name = "renamed" // the link's ID identifies it
	if !bytes.Equal(tokenBase, same2.ContentHash()) {
		t.Error("token hash depends on its IDs, times, indexes or linked policy names")
	}
	for name, change := range map[string]func(*Token){
		"description": func(t *Token) { t.Description = "x" },
		"local":       func(t *Token) { t.Local = false },
		"policies":    func(t *Token) { t.Policies = append(t.Policies, PolicyLink{ID: "x"}) },
		"policy ID":   func(t *Token) { t.Policies[0].ID = "x" },
		"link by name": func(t *Token) {
			t.Policies[0] = PolicyLink{Name: t.Policies[0].ID}
		},
	} {
		tok := fullToken()
		change(tok)
		if bytes.Equal(tokenBase, tok.ContentHash()) {
			t.Errorf("token hash ignores its %s", name)
		}
	}
}
