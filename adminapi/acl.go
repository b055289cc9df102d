package adminapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

// ACL enforcement. Every request is resolved to an authorizer once, before
// its handler runs, from the token it carries (X-Consul-Token, then
// Authorization: Bearer, then ?token=; else the agent's default token, else
// the anonymous one). Handlers ask it what they need: a write it does not
// allow is 403 "Permission denied" with nothing changed; a read drops what
// it may not see and says so in X-Consul-Results-Filtered-By-ACLs. With
// ACLs off every request may do everything.

// TokenResolver turns a request's secret into what it may do: a server's
// resolves from its state, a client agent's asks the servers and caches.
// An empty secret is the anonymous token; a secret no token has is
// state.ErrACLNotFound.
type TokenResolver interface {
	Resolve(secret string) (*acl.Authorizer, *acl.Token, error)
}

// ACLs is what an agent with ACLs on gives the API.
type ACLs interface {
	// ACLResolver resolves secrets; nil when ACLs are off.
	ACLResolver() TokenResolver
	// ACLDefaultToken is the secret of requests that carry none ("" for
	// the anonymous token).
	ACLDefaultToken() string
	// SetACLToken replaces the agent's token of a kind (Consul's names:
	// default, agent, and their legacy acl_token, acl_agent_token); false
	// for a kind it does not have.
	SetACLToken(kind, secret string) bool
}

type authzKey struct{}

// errPermissionDenied is Consul's 403 ("Permission denied", aclErr).
var errPermissionDenied = errors.New("permission denied")

// resolver is the agent's ACL resolver, nil when ACLs are off.
func (s *Server) resolver() (TokenResolver, string) {
	a, ok := s.agent.(ACLs)
	if !ok {
		return nil, ""
	}
	return a.ACLResolver(), a.ACLDefaultToken()
}

// withAuthorizer resolves the request's token before the handler runs. An
// unknown or expired token is 403 "ACL not found", as Consul answers it.
func (s *Server) withAuthorizer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, defaultToken := s.resolver()
		authz := acl.ManageAll()
		if res != nil {
			secret := requestToken(r)
			if secret == "" {
				secret = defaultToken
			}
			var err error
			authz, _, err = res.Resolve(secret)
			if err != nil {
				if errors.Is(err, state.ErrACLNotFound) {
					httpError(w, http.StatusForbidden, "ACL not found")
					return
				}
				s.writeErr(w, err)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authzKey{}, authz)))
	})
}

// requestToken is the secret a request carries, "" for none.
func requestToken(r *http.Request) string {
	if t := r.Header.Get("X-Consul-Token"); t != "" {
		return t
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return r.URL.Query().Get("token")
}

// authz is the request's authorizer (withAuthorizer put it there; a
// handler called without it, as a test may, may do nothing).
func authz(r *http.Request) *acl.Authorizer {
	if a, ok := r.Context().Value(authzKey{}).(*acl.Authorizer); ok {
		return a
	}
	return acl.DenyAll()
}

// aclsOn reports whether ACLs are enforced.
func (s *Server) aclsOn() bool {
	res, _ := s.resolver()
	return res != nil
}

// filtered records on the answer whether a read dropped anything its
// token may not see; nil w records nothing.
func filtered(w http.ResponseWriter, dropped bool) {
	if w == nil {
		return
	}
	if dropped {
		w.Header().Set("X-Consul-Results-Filtered-By-ACLs", "true")
	} else {
		w.Header().Del("X-Consul-Results-Filtered-By-ACLs")
	}
}

// keep returns the elements of in that allowed accepts, and whether any
// was dropped.
func keep[T any](in []T, allowed func(T) bool) ([]T, bool) {
	out := in[:0:0]
	for _, v := range in {
		if allowed(v) {
			out = append(out, v)
		}
	}
	return out, len(out) != len(in)
}

// guarded answers 403 unless the request's token passes allowed, and runs
// h otherwise: for endpoints whose permission does not depend on what they
// read.
func (s *Server) guarded(allowed func(a *acl.Authorizer) bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !allowed(authz(r)) {
			s.writeErr(w, errPermissionDenied)
			return
		}
		h(w, r)
	}
}
