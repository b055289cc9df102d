package acl

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServers answers TokenFetch from a map, or fails while down.
type fakeServers struct {
	mu     sync.Mutex
	tokens map[string]*Token
	rules  map[string]string // policy ID -> rules
	down   bool
	calls  int
}

var errUnreachable = errors.New("no server reachable")

func (f *fakeServers) fetch(secret string) (*Token, []*Policy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return nil, nil, errUnreachable
	}
	tok := f.tokens[secret]
	if tok == nil {
		return nil, nil, ErrNotFound
	}
	var policies []*Policy
	for _, l := range tok.Policies {
		policies = append(policies, &Policy{ID: l.ID, Name: l.ID, Rules: f.rules[l.ID]})
	}
	return tok, policies, nil
}

func (f *fakeServers) set(down bool) (calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	return f.calls
}

func TestRemoteResolver(t *testing.T) {
	webReader := &Token{AccessorID: "a1", SecretID: "web", Policies: []PolicyLink{{ID: "p-web"}}}
	root := &Token{AccessorID: "a2", SecretID: "root", Policies: []PolicyLink{{ID: GlobalManagementPolicyID}}}
	never := &Token{AccessorID: "a3", SecretID: "never", Policies: []PolicyLink{{ID: "p-web"}}}
	servers := func() *fakeServers {
		return &fakeServers{tokens: map[string]*Token{"web": webReader, "root": root, "never": never},
			rules: map[string]string{"p-web": `service "web" { policy = "read" }`}}
	}
	var clockNs atomic.Int64 // the resolver's background refresh reads it too
	clockNs.Store(time.Unix(1_000_000, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, clockNs.Load()) }
	advance := func(d time.Duration) { clockNs.Add(int64(d)) }

	for _, tc := range []struct {
		downPolicy string
		// whether, with the servers down, a token resolved before and
		// one never resolved may read web
		cachedReadsWeb, neverReadsWeb, neverReadsDB bool
	}{
		{DownExtendCache, true, false, false},
		{"", true, false, false}, // extend-cache is the default
		{DownAsyncCache, true, false, false},
		{DownDeny, false, false, false},
		{DownAllow, true, true, true},
	} {
		t.Run("down="+tc.downPolicy, func(t *testing.T) {
			f := servers()
			r := NewRemoteResolver(f.fetch, false, tc.downPolicy, 30*time.Second)
			r.now = now

			authz, tok, err := r.Resolve("web")
			if err != nil || tok.AccessorID != "a1" || !authz.ServiceRead("web") || authz.ServiceRead("db") {
				t.Fatalf("web reader: %v %v", tok, err)
			}
			if authz, _, err := r.Resolve("root"); err != nil || !authz.ACLWrite() {
				t.Fatalf("root: %v", err)
			}
			if _, _, err := r.Resolve("nobody"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("an unknown secret: %v, want ErrNotFound", err)
			}
			calls := f.set(false)
			if _, _, err := r.Resolve("web"); err != nil || f.set(false) != calls {
				t.Errorf("a fresh entry asked the servers again (%v)", err)
			}

			// Past the TTL the servers are asked again; when they are
			// down, the down policy decides.
			advance(31 * time.Second)
			f.set(true)
			authz, _, err = r.Resolve("web")
			if err != nil || authz.ServiceRead("web") != tc.cachedReadsWeb {
				t.Errorf("cached token with the servers down: reads web %v (%v), want %v", authz.ServiceRead("web"), err, tc.cachedReadsWeb)
			}
			authz, _, err = r.Resolve("never")
			if err != nil || authz.ServiceRead("web") != tc.neverReadsWeb || authz.ServiceRead("db") != tc.neverReadsDB {
				t.Errorf("uncached token with the servers down: web %v db %v (%v)", authz.ServiceRead("web"), authz.ServiceRead("db"), err)
			}
			if tc.downPolicy != DownAllow {
				if authz, _, _ := r.Resolve("root"); authz.ACLWrite() != (tc.downPolicy != DownDeny) {
					t.Errorf("root with the servers down: acl write %v", authz.ACLWrite())
				}
			}
		})
	}

	t.Run("a revoked token goes once the servers say so", func(t *testing.T) {
		f := servers()
		r := NewRemoteResolver(f.fetch, false, DownExtendCache, 30*time.Second)
		r.now = now
		if _, _, err := r.Resolve("web"); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		delete(f.tokens, "web")
		f.mu.Unlock()
		if _, _, err := r.Resolve("web"); err != nil {
			t.Errorf("within the TTL the cached token holds: %v", err)
		}
		advance(31 * time.Second)
		if _, _, err := r.Resolve("web"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after the TTL: %v, want ErrNotFound", err)
		}
		f.set(true)
		if authz, _, _ := r.Resolve("web"); authz.ServiceRead("web") {
			t.Error("a token the servers said was gone came back from the cache when they went down")
		}
	})

	t.Run("async-cache answers at once and refreshes behind", func(t *testing.T) {
		f := servers()
		r := NewRemoteResolver(f.fetch, false, DownAsyncCache, 30*time.Second)
		r.now = now
		if _, _, err := r.Resolve("web"); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		f.rules["p-web"] = `service "db" { policy = "read" }`
		f.mu.Unlock()
		advance(31 * time.Second)
		if authz, _, err := r.Resolve("web"); err != nil || !authz.ServiceRead("web") {
			t.Fatalf("the expired entry was not answered at once: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			authz, _, _ := r.Resolve("web")
			if authz.ServiceRead("db") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the background refresh never landed")
			}
			time.Sleep(time.Millisecond) // polling the cache, not synchronising
		}
	})

	t.Run("an expired token is not answered from the cache", func(t *testing.T) {
		f := servers()
		exp := now().Add(10 * time.Second)
		f.tokens["short"] = &Token{AccessorID: "a4", SecretID: "short", ExpirationTime: &exp}
		r := NewRemoteResolver(f.fetch, true, DownExtendCache, 30*time.Second)
		r.now = now
		if _, _, err := r.Resolve("short"); err != nil {
			t.Fatal(err)
		}
		advance(11 * time.Second)
		f.set(true)
		if authz, _, _ := r.Resolve("short"); authz.ServiceRead("web") {
			t.Error("an expired token was answered from the cache")
		}
	})
}

// With the servers away, one failed fetch lets the down policy decide
// alone for a second, rather than every request waiting out a fetch of its
// own; past that second the servers are asked again.
func TestRemoteResolverAsksOnceWhenDown(t *testing.T) {
	f := &fakeServers{tokens: map[string]*Token{"web": {AccessorID: "a1", SecretID: "web"}}}
	var clockNs atomic.Int64
	clockNs.Store(time.Unix(1_000_000, 0).UnixNano())
	r := NewRemoteResolver(f.fetch, false, DownExtendCache, 30*time.Second)
	r.now = func() time.Time { return time.Unix(0, clockNs.Load()) }

	f.set(true)
	calls := f.set(true)
	for range 5 {
		if authz, _, _ := r.Resolve("web"); authz.ServiceRead("web") {
			t.Fatal("an uncached token was allowed with the servers down")
		}
	}
	if n := f.set(true) - calls; n != 1 {
		t.Errorf("5 requests with the servers down made %d fetches, want 1", n)
	}
	clockNs.Add(int64(2 * time.Second))
	calls = f.set(false)
	if _, tok, err := r.Resolve("web"); err != nil || tok.AccessorID != "a1" || f.set(false)-calls != 1 {
		t.Errorf("after the pause, with the servers back: %v, %v, %d fetches", tok, err, f.set(false)-calls)
	}
}
