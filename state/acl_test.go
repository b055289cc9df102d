package state_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

func aclApply(t *testing.T, s *state.Store, idx uint64, req *state.ACLRequest) {
	t.Helper()
	if err := s.ACLApply(idx, req); err != nil {
		t.Fatalf("ACLApply(%d, %s): %v", idx, req.Op, err)
	}
}

func token(accessor, secret string, policies ...acl.PolicyLink) *acl.Token {
	return &acl.Token{AccessorID: accessor, SecretID: secret, Description: accessor, Policies: policies}
}

func TestACLBootstrapOnce(t *testing.T) {
	s := state.NewStore()
	if s.ACLBootstrapped() != 0 {
		t.Fatal("bootstrapped before bootstrap")
	}
	aclApply(t, s, 5, &state.ACLRequest{Op: state.ACLBootstrap, Token: token(acl.NewUUID(), "root-secret")})
	if got := s.ACLBootstrapped(); got != 5 {
		t.Errorf("ACLBootstrapped = %d, want 5", got)
	}
	_, root, _ := s.ACLTokenBySecret(nil, "root-secret", time.Now())
	if root == nil || len(root.Policies) != 1 || root.Policies[0].ID != acl.GlobalManagementPolicyID ||
		root.Policies[0].Name != acl.GlobalManagementPolicyName || root.CreateIndex != 5 || len(root.Hash) == 0 {
		t.Fatalf("bootstrap token %+v", root)
	}
	_, anon, _ := s.ACLTokenBySecret(nil, acl.AnonymousTokenSecretID, time.Now())
	if anon == nil || anon.AccessorID != acl.AnonymousTokenAccessorID {
		t.Errorf("anonymous token %+v", anon)
	}
	_, gm, _ := s.ACLPolicyByName(nil, "global-management")
	if gm == nil || gm.ID != acl.GlobalManagementPolicyID {
		t.Errorf("global-management policy %+v", gm)
	}
	before := statetest.Tables(t, s)
	err := s.ACLApply(6, &state.ACLRequest{Op: state.ACLBootstrap, Token: token(acl.NewUUID(), "another")})
	if !errors.Is(err, state.ErrACLBootstrapped) || err.Error() != "ACL bootstrap no longer allowed (reset index: 5)" {
		t.Errorf("second bootstrap = %v", err)
	}
	if after := statetest.Tables(t, s); !reflect.DeepEqual(before, after) {
		t.Error("a refused bootstrap changed the store")
	}
}

func TestACLTokensAndPolicies(t *testing.T) {
	s := state.NewStore()
	aclApply(t, s, 1, &state.ACLRequest{Op: state.ACLBootstrap, Token: token(acl.NewUUID(), "root")})
	web := &acl.Policy{ID: acl.NewUUID(), Name: "web", Rules: `service "web" { policy = "write" }`}
	aclApply(t, s, 2, &state.ACLRequest{Op: state.ACLPolicySet, Policy: web})
	accessor := acl.NewUUID()
	// Linked by name, stored by ID with the name.
	aclApply(t, s, 3, &state.ACLRequest{Op: state.ACLTokenSet, Token: token(accessor, "web-secret", acl.PolicyLink{Name: "WEB"})})
	_, tok, _ := s.ACLTokenByAccessor(nil, accessor, time.Now())
	if tok == nil || !reflect.DeepEqual(tok.Policies, []acl.PolicyLink{{ID: web.ID, Name: "web"}}) {
		t.Fatalf("token %+v", tok)
	}

	refused := []struct {
		name string
		req  *state.ACLRequest
		want error
	}{
		{"link to a missing policy", &state.ACLRequest{Op: state.ACLTokenSet, Token: token(acl.NewUUID(), "x", acl.PolicyLink{Name: "nope"})}, state.ErrACLInvalid},
		{"secret changed", &state.ACLRequest{Op: state.ACLTokenSet, Token: token(accessor, "other")}, state.ErrACLInvalid},
		{"secret taken", &state.ACLRequest{Op: state.ACLTokenSet, Token: token(acl.NewUUID(), "web-secret")}, state.ErrACLInvalid},
		{"no secret", &state.ACLRequest{Op: state.ACLTokenSet, Token: token(acl.NewUUID(), "")}, state.ErrACLInvalid},
		{"anonymous deleted", &state.ACLRequest{Op: state.ACLTokenDelete, ID: acl.AnonymousTokenAccessorID}, state.ErrACLInvalid},
		{"missing token deleted", &state.ACLRequest{Op: state.ACLTokenDelete, ID: acl.NewUUID()}, state.ErrACLNotFound},
		{"name taken", &state.ACLRequest{Op: state.ACLPolicySet, Policy: &acl.Policy{ID: acl.NewUUID(), Name: "Web"}}, state.ErrACLInvalid},
		{"bad name", &state.ACLRequest{Op: state.ACLPolicySet, Policy: &acl.Policy{ID: acl.NewUUID(), Name: "a b"}}, state.ErrACLInvalid},
		{"bad rules", &state.ACLRequest{Op: state.ACLPolicySet, Policy: &acl.Policy{ID: acl.NewUUID(), Name: "x", Rules: `key "a" { policy = "own" }`}}, state.ErrACLInvalid},
		{"global-management rules changed", &state.ACLRequest{Op: state.ACLPolicySet, Policy: &acl.Policy{ID: acl.GlobalManagementPolicyID, Name: "global-management", Rules: `acl = "read"`}}, state.ErrACLInvalid},
		{"global-management deleted", &state.ACLRequest{Op: state.ACLPolicyDelete, ID: acl.GlobalManagementPolicyID}, state.ErrACLInvalid},
		{"missing policy deleted", &state.ACLRequest{Op: state.ACLPolicyDelete, ID: acl.NewUUID()}, state.ErrACLNotFound},
		{"unknown op", &state.ACLRequest{Op: "grant"}, state.ErrACLInvalid},
	}
	for _, tc := range refused {
		before := statetest.Tables(t, s)
		if err := s.ACLApply(10, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if after := statetest.Tables(t, s); !reflect.DeepEqual(before, after) {
			t.Errorf("%s: a refused write changed the store", tc.name)
		}
	}

	// A rename shows in the tokens that link it; a delete unlinks it.
	renamed := *web
	renamed.Name = "frontend"
	aclApply(t, s, 11, &state.ACLRequest{Op: state.ACLPolicySet, Policy: &renamed})
	if _, tok, _ = s.ACLTokenByAccessor(nil, accessor, time.Now()); tok.Policies[0].Name != "frontend" {
		t.Errorf("after the rename the token links %+v", tok.Policies)
	}
	if _, p, _ := s.ACLPolicyByID(nil, web.ID); p.CreateIndex != 2 || p.ModifyIndex != 11 {
		t.Errorf("renamed policy indexes %d/%d", p.CreateIndex, p.ModifyIndex)
	}
	aclApply(t, s, 12, &state.ACLRequest{Op: state.ACLPolicyDelete, ID: web.ID})
	if _, tok, _ = s.ACLTokenByAccessor(nil, accessor, time.Now()); len(tok.Policies) != 0 {
		t.Errorf("after the delete the token links %+v", tok.Policies)
	}
	aclApply(t, s, 13, &state.ACLRequest{Op: state.ACLTokenDelete, ID: accessor})
	if _, tok, _ = s.ACLTokenByAccessor(nil, accessor, time.Now()); tok != nil {
		t.Error("a deleted token is still there")
	}
	if idx, _, _ := s.ACLTokens(nil, time.Now()); idx != 13 {
		t.Errorf("the ACL tables' index = %d, want 13", idx)
	}
}

func TestACLExpiredTokensAreGone(t *testing.T) {
	s := state.NewStore()
	aclApply(t, s, 1, &state.ACLRequest{Op: state.ACLBootstrap, Token: token(acl.NewUUID(), "root")})
	exp := time.Now().Add(time.Minute)
	tok := token(acl.NewUUID(), "short-lived")
	tok.ExpirationTime = &exp
	aclApply(t, s, 2, &state.ACLRequest{Op: state.ACLTokenSet, Token: tok})
	if _, got, _ := s.ACLTokenBySecret(nil, "short-lived", time.Now()); got == nil {
		t.Fatal("a live token is missing")
	}
	later := exp.Add(time.Second)
	if _, got, _ := s.ACLTokenBySecret(nil, "short-lived", later); got != nil {
		t.Error("an expired token resolves")
	}
	_, all, _ := s.ACLTokens(nil, later)
	for _, x := range all {
		if x.SecretID == "short-lived" {
			t.Error("an expired token is listed")
		}
	}
}

// Tokens and policies are in snapshots, and come back from them.
func TestACLSnapshotRoundTrip(t *testing.T) {
	s := state.NewStore()
	aclApply(t, s, 1, &state.ACLRequest{Op: state.ACLBootstrap, Token: token(acl.NewUUID(), "root")})
	aclApply(t, s, 2, &state.ACLRequest{Op: state.ACLPolicySet, Policy: &acl.Policy{ID: acl.NewUUID(), Name: "kv", Rules: `key_prefix "app/" { policy = "read" }`}})
	aclApply(t, s, 3, &state.ACLRequest{Op: state.ACLTokenSet, Token: token(acl.NewUUID(), "kv-secret", acl.PolicyLink{Name: "kv"})})
	var buf bytes.Buffer
	if err := s.Snapshot().Write(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := state.ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(statetest.Tables(t, restored), statetest.Tables(t, s)) {
		t.Error("the restored store differs")
	}
	if _, tok, _ := restored.ACLTokenBySecret(nil, "kv-secret", time.Now()); tok == nil || tok.Policies[0].Name != "kv" {
		t.Errorf("restored token %+v", tok)
	}
	if restored.ACLBootstrapped() != 1 {
		t.Error("the bootstrap was forgotten")
	}
}
