package state_test

import (
	"errors"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

func TestACLResolver(t *testing.T) {
	s := state.NewStore()
	deny := state.NewACLResolver(s, false)
	allow := state.NewACLResolver(s, true)

	// Before the bootstrap, no token exists: the anonymous token is the
	// default policy alone, any other secret is unknown.
	if a, _, err := deny.Resolve(""); err != nil || a.KeyRead("x") {
		t.Errorf("anonymous before bootstrap, default deny: %v, read %v", err, a != nil && a.KeyRead("x"))
	}
	if a, _, err := allow.Resolve(""); err != nil || !a.KeyWrite("x") {
		t.Errorf("anonymous before bootstrap, default allow: %v", err)
	}
	if _, _, err := deny.Resolve("nope"); !errors.Is(err, state.ErrACLNotFound) {
		t.Errorf("unknown secret: %v", err)
	}

	aclApply(t, s, 1, &state.ACLRequest{Op: state.ACLBootstrap, Token: token(acl.NewUUID(), "root")})
	if a, tok, err := deny.Resolve("root"); err != nil || !a.ACLWrite() || !a.KeyWrite("any") || tok.SecretID != "root" {
		t.Errorf("management token: %v", err)
	}
	p := &acl.Policy{ID: acl.NewUUID(), Name: "kv", Rules: `key_prefix "app/" { policy = "read" }`}
	aclApply(t, s, 2, &state.ACLRequest{Op: state.ACLPolicySet, Policy: p})
	aclApply(t, s, 3, &state.ACLRequest{Op: state.ACLTokenSet, Token: token(acl.NewUUID(), "app", acl.PolicyLink{ID: p.ID})})
	a, _, err := deny.Resolve("app")
	if err != nil || !a.KeyRead("app/x") || a.KeyWrite("app/x") || a.KeyRead("other") {
		t.Fatalf("app token: %v", err)
	}
	// A policy change reaches the tokens that link it at once.
	p2 := *p
	p2.Rules = `key_prefix "app/" { policy = "write" }`
	aclApply(t, s, 4, &state.ACLRequest{Op: state.ACLPolicySet, Policy: &p2})
	if a, _, _ = deny.Resolve("app"); !a.KeyWrite("app/x") {
		t.Error("a changed policy did not reach its token's authorizer")
	}
	// Under default allow, what no rule decides is allowed.
	if a, _, _ = allow.Resolve("app"); !a.KeyWrite("other") {
		t.Error("default allow does not decide what the rules leave open")
	}
	// The anonymous token exists after the bootstrap, with no policy.
	if a, tok, err := deny.Resolve(""); err != nil || tok.AccessorID != acl.AnonymousTokenAccessorID || a.ServiceRead("web") {
		t.Errorf("anonymous after bootstrap: %v", err)
	}
	// A deleted token is gone at once.
	_, app, _ := s.ACLTokenBySecret(nil, "app", time.Now())
	aclApply(t, s, 5, &state.ACLRequest{Op: state.ACLTokenDelete, ID: app.AccessorID})
	if _, _, err := deny.Resolve("app"); !errors.Is(err, state.ErrACLNotFound) {
		t.Errorf("a deleted token resolves: %v", err)
	}
}

func BenchmarkACLResolveCached(b *testing.B) {
	s := state.NewStore()
	if err := s.ACLApply(1, &state.ACLRequest{Op: state.ACLBootstrap, Token: token(acl.NewUUID(), "root")}); err != nil {
		b.Fatal(err)
	}
	r := state.NewACLResolver(s, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Resolve(""); err != nil {
			b.Fatal(err)
		}
	}
}
