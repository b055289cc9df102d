package adminapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

// /v1/acl/..., Consul's ACL endpoints: bootstrap, tokens and policies.
// They need acl:read or acl:write (management), but for the bootstrap,
// which anyone may do once, and token/self, which any token may read of
// itself. With ACLs off they answer 401 "ACL support disabled", as Consul.

func (s *Server) aclRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/acl/bootstrap", s.aclBootstrap)
	mux.HandleFunc("PUT /v1/acl/token", s.aclTokenCreate)
	mux.HandleFunc("GET /v1/acl/token/self", s.aclTokenSelf)
	mux.HandleFunc("GET /v1/acl/token/{id}", s.aclTokenRead)
	mux.HandleFunc("PUT /v1/acl/token/{id}", s.aclTokenUpdate)
	mux.HandleFunc("DELETE /v1/acl/token/{id}", s.aclTokenDelete)
	mux.HandleFunc("GET /v1/acl/tokens", s.aclTokenList)
	mux.HandleFunc("PUT /v1/acl/policy", s.aclPolicyCreate)
	mux.HandleFunc("GET /v1/acl/policy/name/{name}", s.aclPolicyReadByName)
	mux.HandleFunc("GET /v1/acl/policy/{id}", s.aclPolicyRead)
	mux.HandleFunc("PUT /v1/acl/policy/{id}", s.aclPolicyUpdate)
	mux.HandleFunc("DELETE /v1/acl/policy/{id}", s.aclPolicyDelete)
	mux.HandleFunc("GET /v1/acl/policies", s.aclPolicyList)
	mux.HandleFunc("PUT /v1/agent/token/{kind}", s.agentTokenSet)
}

// agentTokenSet sets one of the agent's tokens until it restarts (Consul's
// /v1/agent/token/:type without token persistence): "default" (also
// "acl_token") for requests that carry none and for DNS, "agent" (also
// "acl_agent_token"). It needs acl:write.
func (s *Server) agentTokenSet(w http.ResponseWriter, r *http.Request) {
	if !s.aclGate(w, r, true) {
		return
	}
	var body struct{ Token string }
	if err := decodeBody(r, &body); err != nil {
		s.writeErr(w, err)
		return
	}
	if len(body.Token) > 128 {
		s.writeErr(w, badRequest("Token must be at most 128 characters"))
		return
	}
	a, _ := s.agent.(ACLs)
	if !a.SetACLToken(r.PathValue("kind"), body.Token) {
		httpError(w, http.StatusNotFound, fmt.Sprintf("Token %q is unknown", r.PathValue("kind")))
		return
	}
	s.logger.Info("agent token updated", "kind", r.PathValue("kind"))
	w.WriteHeader(http.StatusOK)
}

// aclGate answers for an ACL endpoint that cannot run: ACLs off (401), or
// the token lacking acl:read or acl:write (403). It reports whether the
// handler may go on.
func (s *Server) aclGate(w http.ResponseWriter, r *http.Request, write bool) bool {
	if !s.aclsOn() {
		httpError(w, http.StatusUnauthorized, "ACL support disabled")
		return false
	}
	a := authz(r)
	if (write && !a.ACLWrite()) || (!write && !a.ACLRead()) {
		s.writeErr(w, errPermissionDenied)
		return false
	}
	return true
}

// applyACL commits an ACL write and waits for this agent's replica to
// show it: the answer reads it back.
func (s *Server) applyACL(req *state.ACLRequest) error {
	req.Datacenter = s.agent.Datacenter()
	if _, err := s.agent.Apply(state.ACLRequestType, req); err != nil {
		return err
	}
	return s.agent.ConsistentRead(false)
}

func (s *Server) aclBootstrap(w http.ResponseWriter, r *http.Request) {
	if !s.aclsOn() {
		httpError(w, http.StatusUnauthorized, "ACL support disabled")
		return
	}
	tok := &acl.Token{AccessorID: acl.NewUUID(), SecretID: acl.NewSecret(),
		Description: "Bootstrap Token (Global Management)", CreateTime: time.Now().UTC()}
	if err := s.applyACL(&state.ACLRequest{Op: state.ACLBootstrap, Token: tok}); err != nil {
		s.writeErr(w, err)
		return
	}
	s.writeToken(w, r, tok.AccessorID)
}

// tokenBody is a token as requests give it: Consul's fields, of which the
// server fills what is missing.
type tokenBody struct {
	AccessorID     string
	SecretID       string
	Description    string
	Policies       []acl.PolicyLink
	Local          bool
	ExpirationTTL  time.Duration
	ExpirationTime *time.Time
}

func (s *Server) aclTokenCreate(w http.ResponseWriter, r *http.Request) {
	if !s.aclGate(w, r, true) {
		return
	}
	var body tokenBody
	if err := decodeBody(r, &body); err != nil {
		s.writeErr(w, err)
		return
	}
	for name, id := range map[string]string{"AccessorID": body.AccessorID, "SecretID": body.SecretID} {
		if id != "" && !acl.ValidUUID(id) {
			s.writeErr(w, badRequest("Invalid %s: must be a UUID", name))
			return
		}
	}
	tok := &acl.Token{AccessorID: body.AccessorID, SecretID: body.SecretID, Description: body.Description,
		Policies: body.Policies, Local: body.Local, CreateTime: time.Now().UTC(), ExpirationTime: body.ExpirationTime}
	if tok.AccessorID == "" {
		tok.AccessorID = acl.NewUUID()
	}
	if tok.SecretID == "" {
		tok.SecretID = acl.NewSecret()
	}
	if body.ExpirationTTL < 0 || (body.ExpirationTTL > 0 && body.ExpirationTime != nil) {
		s.writeErr(w, badRequest("Expiration TTL and Expiration Time cannot both be set, nor the TTL be negative"))
		return
	}
	if body.ExpirationTTL > 0 {
		exp := tok.CreateTime.Add(body.ExpirationTTL)
		tok.ExpirationTime = &exp
	}
	_, existing, err := s.agent.Store().ACLTokenByAccessor(nil, tok.AccessorID, time.Now())
	if err == nil && existing != nil {
		s.writeErr(w, badRequest("Cannot create token: AccessorID %s is in use", tok.AccessorID))
		return
	}
	if err := s.applyACL(&state.ACLRequest{Op: state.ACLTokenSet, Token: tok}); err != nil {
		s.writeErr(w, err)
		return
	}
	s.writeToken(w, r, tok.AccessorID)
}

func (s *Server) aclTokenUpdate(w http.ResponseWriter, r *http.Request) {
	if !s.aclGate(w, r, true) {
		return
	}
	var body tokenBody
	if err := decodeBody(r, &body); err != nil {
		s.writeErr(w, err)
		return
	}
	id := r.PathValue("id")
	if body.AccessorID != "" && body.AccessorID != id {
		s.writeErr(w, badRequest("Token Accessor ID in URL and payload do not match"))
		return
	}
	_, old, err := s.agent.Store().ACLTokenByAccessor(nil, id, time.Now())
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if old == nil {
		s.writeErr(w, fmt.Errorf("%w: token %q", state.ErrACLNotFound, id))
		return
	}
	if body.SecretID != "" && body.SecretID != old.SecretID {
		s.writeErr(w, badRequest("Changing a token's SecretID is not permitted"))
		return
	}
	tok := *old
	tok.Description, tok.Policies, tok.Local = body.Description, body.Policies, body.Local
	if err := s.applyACL(&state.ACLRequest{Op: state.ACLTokenSet, Token: &tok}); err != nil {
		s.writeErr(w, err)
		return
	}
	s.writeToken(w, r, tok.AccessorID)
}

// writeToken answers with a token as the store now holds it.
func (s *Server) writeToken(w http.ResponseWriter, r *http.Request, accessor string) {
	idx, tok, err := s.agent.Store().ACLTokenByAccessor(nil, accessor, time.Now())
	writeFound(s, w, idx, tok, err, "token "+accessor)
}

// writeFound answers v at idx, or the error, or ACL not found for a nil v.
func writeFound[T any](s *Server, w http.ResponseWriter, idx uint64, v *T, err error, what string) {
	if err == nil && v == nil {
		err = fmt.Errorf("%w: %s", state.ErrACLNotFound, what)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	s.setMeta(w, idx)
	writeJSON(w, v)
}

func (s *Server) aclTokenRead(w http.ResponseWriter, r *http.Request) {
	if !s.aclGate(w, r, false) {
		return
	}
	id := r.PathValue("id")
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, tok, err := s.agent.Store().ACLTokenByAccessor(ws, id, time.Now())
		if err == nil && tok == nil {
			err = fmt.Errorf("%w: token %q", state.ErrACLNotFound, id)
		}
		return idx, tok, err
	})
}

func (s *Server) aclTokenSelf(w http.ResponseWriter, r *http.Request) {
	res, defaultToken := s.resolver()
	if res == nil {
		httpError(w, http.StatusUnauthorized, "ACL support disabled")
		return
	}
	secret := requestToken(r)
	if secret == "" {
		secret = defaultToken
	}
	if secret == "" {
		secret = acl.AnonymousTokenSecretID
	}
	idx, tok, err := s.agent.Store().ACLTokenBySecret(nil, secret, time.Now())
	writeFound(s, w, idx, tok, err, "the token")
}

func (s *Server) aclTokenDelete(w http.ResponseWriter, r *http.Request) {
	s.aclDelete(w, r, state.ACLTokenDelete)
}

// aclDelete deletes the token or policy the path names.
func (s *Server) aclDelete(w http.ResponseWriter, r *http.Request, op string) {
	if !s.aclGate(w, r, true) {
		return
	}
	if err := s.applyACL(&state.ACLRequest{Op: op, ID: r.PathValue("id")}); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, true)
}

// tokenListEntry is a token as the list shows it: without its secret.
type tokenListEntry struct {
	acl.Token
	SecretID string `json:",omitempty"`
}

func (s *Server) aclTokenList(w http.ResponseWriter, r *http.Request) {
	if !s.aclGate(w, r, false) {
		return
	}
	policy := r.URL.Query().Get("policy")
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, toks, err := s.agent.Store().ACLTokens(ws, time.Now())
		out := []tokenListEntry{}
		for _, t := range toks {
			if policy != "" && !linksPolicy(t, policy) {
				continue
			}
			e := tokenListEntry{Token: *t}
			e.Token.SecretID = ""
			out = append(out, e)
		}
		return idx, out, err
	})
}

func linksPolicy(t *acl.Token, id string) bool {
	for _, l := range t.Policies {
		if l.ID == id {
			return true
		}
	}
	return false
}

// policyBody is a policy as requests give it.
type policyBody struct {
	ID          string
	Name        string
	Description string
	Rules       string
	Datacenters []string
}

func (s *Server) aclPolicyCreate(w http.ResponseWriter, r *http.Request) {
	s.aclPolicyWrite(w, r, "")
}

func (s *Server) aclPolicyUpdate(w http.ResponseWriter, r *http.Request) {
	s.aclPolicyWrite(w, r, r.PathValue("id"))
}

// aclPolicyWrite creates (id "") or updates a policy.
func (s *Server) aclPolicyWrite(w http.ResponseWriter, r *http.Request, id string) {
	if !s.aclGate(w, r, true) {
		return
	}
	var body policyBody
	if err := decodeBody(r, &body); err != nil {
		s.writeErr(w, err)
		return
	}
	if !acl.ValidPolicyName(body.Name) {
		s.writeErr(w, badRequest("Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"))
		return
	}
	if _, err := acl.ParseRules(body.Rules); err != nil {
		s.writeErr(w, badRequest("Invalid Policy: %v", err))
		return
	}
	store := s.agent.Store()
	switch {
	case id == "" && body.ID != "":
		s.writeErr(w, badRequest("Cannot specify an ID when creating a policy"))
		return
	case id == "":
		id = acl.NewUUID()
	case body.ID != "" && body.ID != id:
		s.writeErr(w, badRequest("Policy ID in URL and payload do not match"))
		return
	default:
		if _, old, err := store.ACLPolicyByID(nil, id); err != nil || old == nil {
			if err == nil {
				err = fmt.Errorf("%w: policy %q", state.ErrACLNotFound, id)
			}
			s.writeErr(w, err)
			return
		}
	}
	p := &acl.Policy{ID: id, Name: body.Name, Description: body.Description, Rules: body.Rules, Datacenters: body.Datacenters}
	if err := s.applyACL(&state.ACLRequest{Op: state.ACLPolicySet, Policy: p}); err != nil {
		s.writeErr(w, err)
		return
	}
	idx, stored, err := store.ACLPolicyByID(nil, id)
	writeFound(s, w, idx, stored, err, "policy "+id)
}

func (s *Server) aclPolicyRead(w http.ResponseWriter, r *http.Request) {
	s.aclPolicyReadBy(w, r, r.PathValue("id"), s.agent.Store().ACLPolicyByID)
}

func (s *Server) aclPolicyReadByName(w http.ResponseWriter, r *http.Request) {
	s.aclPolicyReadBy(w, r, r.PathValue("name"), s.agent.Store().ACLPolicyByName)
}

func (s *Server) aclPolicyReadBy(w http.ResponseWriter, r *http.Request, key string,
	get func(memdb.WatchSet, string) (uint64, *acl.Policy, error)) {
	if !s.aclGate(w, r, false) {
		return
	}
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, p, err := get(ws, key)
		if err == nil && p == nil {
			err = fmt.Errorf("%w: policy %q", state.ErrACLNotFound, key)
		}
		return idx, p, err
	})
}

func (s *Server) aclPolicyDelete(w http.ResponseWriter, r *http.Request) {
	s.aclDelete(w, r, state.ACLPolicyDelete)
}

// policyListEntry is a policy as the list shows it: without its rules.
type policyListEntry struct {
	acl.Policy
	Rules string `json:",omitempty"`
}

func (s *Server) aclPolicyList(w http.ResponseWriter, r *http.Request) {
	if !s.aclGate(w, r, false) {
		return
	}
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, ps, err := s.agent.Store().ACLPolicies(ws)
		out := []policyListEntry{}
		for _, p := range ps {
			e := policyListEntry{Policy: *p}
			e.Policy.Rules = ""
			out = append(out, e)
		}
		return idx, out, err
	})
}

// aclErr maps ACL errors to Consul's answers; ok is false for other errors.
func aclErr(err error) (code int, msg string, ok bool) {
	switch {
	case errors.Is(err, errPermissionDenied):
		return http.StatusForbidden, "Permission denied", true
	case errors.Is(err, state.ErrACLBootstrapped):
		return http.StatusForbidden, "Permission denied: " + err.Error(), true
	case errors.Is(err, state.ErrACLNotFound):
		return http.StatusForbidden, "ACL not found", true
	case errors.Is(err, state.ErrACLInvalid):
		return http.StatusBadRequest, err.Error(), true
	}
	return 0, "", false
}
