package agent

import (
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/adminapi"
	"github.com/beacon-dns/beacon/state"
)

// ACLs: the agent resolves tokens from its replica (state.ACLResolver) for
// the HTTP API and DNS; the leader makes the Corefile's initial_management
// secret a management token.

var _ adminapi.ACLs = (*Agent)(nil)

// ACLResolver resolves tokens; nil when ACLs are off.
func (a *Agent) ACLResolver() *state.ACLResolver { return a.acl }

// ACLDefaultToken is the secret of requests that carry none.
func (a *Agent) ACLDefaultToken() string { return a.cfg.ACLTokens.Default }

// DNSAuthorizer is what DNS may answer: the default token's authorizer
// (the anonymous token's without one); nil when ACLs are off. A default
// token that does not resolve may read nothing.
func (a *Agent) DNSAuthorizer() *acl.Authorizer {
	if a.acl == nil {
		return nil
	}
	authz, _, err := a.acl.Resolve(a.cfg.ACLTokens.Default)
	if err != nil {
		return acl.DenyAll()
	}
	return authz
}

// ensureInitialManagement makes the initial_management secret a
// management token, bootstrapping the ACL system with it when nothing else
// has (Consul's initial_management). It runs on the leader.
func (a *Agent) ensureInitialManagement() {
	secret := a.cfg.ACLTokens.InitialManagement
	if a.acl == nil || secret == "" {
		return
	}
	if _, tok, err := a.store.ACLTokenBySecret(nil, secret, time.Now()); err != nil || tok != nil {
		return
	}
	tok := &acl.Token{AccessorID: acl.NewUUID(), SecretID: secret, Description: "Initial Management Token",
		CreateTime: time.Now().UTC()}
	req := &state.ACLRequest{Datacenter: a.cfg.Datacenter, Op: state.ACLBootstrap, Token: tok}
	if a.store.ACLBootstrapped() != 0 {
		tok.Policies = []acl.PolicyLink{{ID: acl.GlobalManagementPolicyID}}
		req.Op = state.ACLTokenSet
	}
	if _, err := a.Apply(state.ACLRequestType, req); err != nil {
		a.logger.Warn("creating the initial management token", "error", err)
		return
	}
	a.logger.Info("created the initial management token", "accessor", tok.AccessorID)
}
