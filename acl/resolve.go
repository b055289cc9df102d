package acl

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNotFound: no token has a request's secret, or it expired (Consul's
// "ACL not found", a 403).
var ErrNotFound = errors.New("ACL not found")

// TokenAuthorizer is what token may do: everything when it links the
// global-management policy, else its policies' rules over fallback.
// policies are the token's linked policies as stored (a link to a policy
// deleted meanwhile has none).
func TokenAuthorizer(fallback *Authorizer, token *Token, policies []*Policy) (*Authorizer, error) {
	for _, link := range token.Policies {
		if link.ID == GlobalManagementPolicyID {
			return ManageAll(), nil
		}
	}
	rules := make([]*Rules, 0, len(policies))
	for _, p := range policies {
		parsed, err := ParseRules(p.Rules)
		if err != nil { // stored policies were parsed before they were stored
			return nil, fmt.Errorf("policy %s: %w", p.Name, err)
		}
		rules = append(rules, parsed)
	}
	return NewAuthorizer(fallback, rules...), nil
}

// Down policies (Consul's acl down_policy): what a client agent decides
// when no server can resolve a token.
const (
	DownExtendCache = "extend-cache"
	DownAsyncCache  = "async-cache"
	DownAllow       = "allow"
	DownDeny        = "deny"
)

// TokenFetch asks the servers for the token whose SecretID is secret and
// its linked policies: ErrNotFound when none has it, any other error when
// the servers could not answer.
type TokenFetch func(secret string) (*Token, []*Policy, error)

// RemoteResolver resolves secrets on a client agent, which holds no ACL
// tables: it asks the servers (fetch) and keeps what they said for ttl, so
// the hot paths (every HTTP request, DNS's default token) decide at memory
// speed. When the servers cannot answer, downPolicy decides: allow or
// deny everything, or (extend-cache, async-cache) go on with what was
// cached, however old, denying what never was. With async-cache an
// expired entry is answered at once and refreshed in the background.
type RemoteResolver struct {
	fetch      TokenFetch
	fallback   *Authorizer
	ttl        time.Duration
	downPolicy string
	now        func() time.Time

	mu         sync.Mutex
	cache      map[string]remoteEntry
	refreshing map[string]bool
	// inflight are the fetches under way, by secret: requests that miss
	// together share one.
	inflight map[string]*remoteFetch
	// downUntil: after a fetch the servers did not answer, the down
	// policy decides at once until then, rather than every request
	// waiting out a fetch of its own.
	downUntil time.Time
}

// remoteFetch is one fetch under way; done closes when its result is set.
type remoteFetch struct {
	done  chan struct{}
	authz *Authorizer
	token *Token
	err   error
}

// downPause is how long the down policy decides alone after the servers
// failed to answer.
const downPause = time.Second

type remoteEntry struct {
	authz   *Authorizer
	token   *Token
	fetched time.Time
}

// maxRemoteTokens bounds the cache; past it, it starts over.
const maxRemoteTokens = 4096

// NewRemoteResolver resolves through fetch; defaultAllow is the `acl`
// property, downPolicy acl_down_policy ("" is extend-cache), ttl how long
// an answer is trusted (Consul's token_ttl, 30 s).
func NewRemoteResolver(fetch TokenFetch, defaultAllow bool, downPolicy string, ttl time.Duration) *RemoteResolver {
	fallback := DenyAll()
	if defaultAllow {
		fallback = AllowAll()
	}
	if downPolicy == "" {
		downPolicy = DownExtendCache
	}
	return &RemoteResolver{fetch: fetch, fallback: fallback, ttl: ttl, downPolicy: downPolicy, now: time.Now,
		cache: map[string]remoteEntry{}, refreshing: map[string]bool{}, inflight: map[string]*remoteFetch{}}
}

// Resolve returns the authorizer of the token whose SecretID is secret
// (the anonymous token for "") and the token; ErrNotFound when the servers
// know no such token.
func (r *RemoteResolver) Resolve(secret string) (*Authorizer, *Token, error) {
	if secret == "" {
		secret = AnonymousTokenSecretID
	}
	now := r.now()
	r.mu.Lock()
	got, cached := r.cache[secret]
	fresh := cached && now.Sub(got.fetched) < r.ttl && !got.token.Expired(now)
	background := cached && !fresh && r.downPolicy == DownAsyncCache && !got.token.Expired(now) && !r.refreshing[secret]
	if background {
		r.refreshing[secret] = true
	}
	down := !fresh && now.Before(r.downUntil)
	r.mu.Unlock()
	if down {
		return r.whenDown(got, cached, now)
	}
	switch {
	case fresh:
		return got.authz, got.token, nil
	case background:
		go func() {
			_, _, _ = r.refresh(secret)
			r.mu.Lock()
			delete(r.refreshing, secret)
			r.mu.Unlock()
		}()
		return got.authz, got.token, nil
	}
	authz, token, err := r.shared(secret)
	if err == nil || errors.Is(err, ErrNotFound) {
		return authz, token, err
	}
	r.mu.Lock()
	r.downUntil = r.now().Add(downPause)
	r.mu.Unlock()
	return r.whenDown(got, cached, now)
}

// shared is refresh, one at a time per secret: a request that finds a
// fetch of its secret under way waits for its result.
func (r *RemoteResolver) shared(secret string) (*Authorizer, *Token, error) {
	r.mu.Lock()
	if f, ok := r.inflight[secret]; ok {
		r.mu.Unlock()
		<-f.done
		return f.authz, f.token, f.err
	}
	f := &remoteFetch{done: make(chan struct{})}
	r.inflight[secret] = f
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.inflight, secret)
		r.mu.Unlock()
		close(f.done)
	}()
	f.authz, f.token, f.err = r.refresh(secret)
	return f.authz, f.token, f.err
}

// whenDown is what the down policy decides with the servers away, got
// being the cached entry when cached.
func (r *RemoteResolver) whenDown(got remoteEntry, cached bool, now time.Time) (*Authorizer, *Token, error) {
	switch r.downPolicy {
	case DownAllow:
		return AllowAll(), AnonymousToken(), nil
	case DownDeny:
		return DenyAll(), AnonymousToken(), nil
	}
	if cached && !got.token.Expired(now) {
		return got.authz, got.token, nil
	}
	return DenyAll(), AnonymousToken(), nil
}

// refresh asks the servers and caches their answer; a token they no longer
// know leaves the cache.
func (r *RemoteResolver) refresh(secret string) (*Authorizer, *Token, error) {
	token, policies, err := r.fetch(secret)
	if errors.Is(err, ErrNotFound) {
		r.mu.Lock()
		delete(r.cache, secret)
		r.mu.Unlock()
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, err
	}
	authz, err := TokenAuthorizer(r.fallback, token, policies)
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	if len(r.cache) >= maxRemoteTokens {
		r.cache = map[string]remoteEntry{}
	}
	r.cache[secret] = remoteEntry{authz: authz, token: token, fetched: r.now()}
	r.mu.Unlock()
	return authz, token, nil
}
