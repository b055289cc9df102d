package state

import (
	"sync"
	"time"

	"github.com/beacon-dns/beacon/acl"
)

// ACLResolver turns the secrets requests carry into authorizers, from the
// local replica, and keeps what it built until the ACL tables change: the
// hot paths (every HTTP request, the DNS default token) decide at memory
// speed. An empty secret is the anonymous token.
type ACLResolver struct {
	store    *Store
	fallback *acl.Authorizer // the default policy: acl.AllowAll() or acl.DenyAll()
	now      func() time.Time

	mu sync.Mutex
	// changed are closed by the first change to tokens or policies (or a
	// restore) since the cache was started; until then it holds.
	changed [3]<-chan struct{}
	cache   map[string]resolved
}

type resolved struct {
	authz   *acl.Authorizer
	token   *acl.Token
	expires *time.Time
}

// maxResolvedTokens bounds the cache; past it, it starts over.
const maxResolvedTokens = 4096

// NewACLResolver resolves tokens from store, with allow or deny (the
// `acl` property) deciding what no rule does.
func NewACLResolver(store *Store, defaultAllow bool) *ACLResolver {
	fallback := acl.DenyAll()
	if defaultAllow {
		fallback = acl.AllowAll()
	}
	r := &ACLResolver{store: store, fallback: fallback, now: time.Now}
	r.reset()
	return r
}

// reset starts an empty cache and watches the ACL tables from now on; the
// caller holds mu (or owns r).
func (r *ACLResolver) reset() {
	r.cache = map[string]resolved{}
	r.changed = r.store.aclWatch()
}

// stale reports whether the ACL tables changed since the cache started;
// the caller holds mu.
func (r *ACLResolver) stale() bool {
	for _, ch := range r.changed {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

// Resolve returns the authorizer of the token whose SecretID is secret
// (the anonymous token for ""), and the token. A secret no token has, or
// an expired one, is ErrACLNotFound. Before the ACL bootstrap there
// is no anonymous token: an empty secret gets the default policy alone.
func (r *ACLResolver) Resolve(secret string) (*acl.Authorizer, *acl.Token, error) {
	if secret == "" {
		secret = acl.AnonymousTokenSecretID
	}
	now := r.now()
	r.mu.Lock()
	if r.stale() || len(r.cache) > maxResolvedTokens {
		r.reset()
	}
	got, ok := r.cache[secret]
	changed := r.changed
	r.mu.Unlock()
	if ok && (got.expires == nil || now.Before(*got.expires)) {
		return got.authz, got.token, nil
	}
	// Built from the state as it is now: if it changes meanwhile, the
	// channels taken before say so and the result is not kept.
	got, err := r.build(secret, now)
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	if r.changed == changed && !r.stale() {
		r.cache[secret] = got
	}
	r.mu.Unlock()
	return got.authz, got.token, nil
}

func (r *ACLResolver) build(secret string, now time.Time) (resolved, error) {
	token, policies, err := r.store.ACLTokenWithPolicies(secret, now)
	if err != nil {
		return resolved{}, err
	}
	authz, err := acl.TokenAuthorizer(r.fallback, token, policies)
	if err != nil {
		return resolved{}, err
	}
	return resolved{authz: authz, token: token, expires: token.ExpirationTime}, nil
}
