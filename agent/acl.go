package agent

import (
	"net/http"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/adminapi"
	"github.com/beacon-dns/beacon/state"
)

// ACLs: the agent resolves tokens for the HTTP API and DNS, a server from
// its state (state.ACLResolver), a client agent through the servers
// (acl.RemoteResolver: client replicas hold no ACL tables); the leader
// makes the Corefile's initial_management secret a management token.

var (
	_ adminapi.ACLs            = (*Agent)(nil)
	_ adminapi.ServerForwarder = (*Agent)(nil)
)

// ACLResolver resolves tokens; nil when ACLs are off.
func (a *Agent) ACLResolver() adminapi.TokenResolver {
	if a.acl == nil {
		return nil
	}
	return a.acl
}

// tokenTTL is how long a client agent trusts a token the servers resolved
// (Consul's token_ttl).
const tokenTTL = 30 * time.Second

// newACLResolver resolves tokens from the state on a server and through
// the servers on a client agent, whose replica holds no ACL tables; nil
// when ACLs are off.
func (a *Agent) newACLResolver() adminapi.TokenResolver {
	switch {
	case a.cfg.ACL == "":
		return nil
	case a.client != nil:
		return acl.NewRemoteResolver(a.client.ResolveToken, a.cfg.ACL == "allow", a.cfg.ACLDownPolicy, tokenTTL)
	}
	return state.NewACLResolver(a.store, a.cfg.ACL == "allow")
}

// ServerAPI is a server's HTTP API as a client agent reaches it; nil on a
// server.
func (a *Agent) ServerAPI() http.Handler {
	if a.client == nil {
		return nil
	}
	return a.client.ServerAPI()
}

// DatacenterAPI is the HTTP API of a server of datacenter dc: reached
// through the WAN pool from a server, through a server from a client
// agent.
func (a *Agent) DatacenterAPI(dc string) http.Handler {
	if a.client != nil {
		return a.client.DatacenterAPI(dc)
	}
	return a.server.DatacenterAPI(dc)
}

// ACLDefaultToken is the secret of requests that carry none.
func (a *Agent) ACLDefaultToken() string { return a.tokens.Load().Default }

// SetACLToken replaces one of the agent's tokens until it restarts.
func (a *Agent) SetACLToken(kind, secret string) bool {
	for {
		old := a.tokens.Load()
		tokens := *old
		switch kind {
		case "default", "acl_token":
			tokens.Default = secret
		case "agent", "acl_agent_token":
			tokens.Agent = secret
		default:
			return false
		}
		if a.tokens.CompareAndSwap(old, &tokens) {
			return true
		}
	}
}

// DNSAuthorizer is what DNS may answer: the default token's authorizer
// (the anonymous token's without one); nil when ACLs are off. A default
// token that does not resolve may read nothing.
func (a *Agent) DNSAuthorizer() *acl.Authorizer {
	if a.acl == nil {
		return nil
	}
	authz, _, err := a.acl.Resolve(a.ACLDefaultToken())
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
	if a.cfg.ACL == "" || secret == "" {
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
