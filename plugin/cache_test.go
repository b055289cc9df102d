package discovery

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/hashicorp/go-memdb"
	"github.com/miekg/dns"
)

// answers returns the sorted answer data of a query, or the rcode's name.
func answers(t testing.TB, d *Discovery, qname string, qtype uint16) []string {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := d.ServeDNS(context.Background(), rec, (&test.Case{Qname: qname, Qtype: qtype}).Msg()); err != nil {
		t.Fatal(err)
	}
	if rec.Msg.Rcode != dns.RcodeSuccess {
		return []string{dns.RcodeToString[rec.Msg.Rcode]}
	}
	var out []string
	for _, rr := range rec.Msg.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%s:%d", rr.Target, rr.Port))
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

// TestCacheInvalidation checks that every kind of catalog write is seen by
// the very next query, cache or not.
func TestCacheInvalidation(t *testing.T) {
	s := testStore(t)
	d := New(s, testDNSConfig(), testAgentConfig())
	idx := uint64(1000)
	write := func(req *state.RegisterRequest) {
		t.Helper()
		idx++
		if err := s.EnsureRegistration(idx, req); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, qtype uint16, want ...string) {
		t.Helper()
		// Twice: the first may fill the cache, the second reads it.
		for i := 0; i < 2; i++ {
			if got := answers(t, d, name, qtype); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s %s: got %v, want %v", name, dns.TypeToString[qtype], got, want)
			}
		}
	}
	check("web.service.consul.", dns.TypeA, "10.0.0.1", "10.0.1.2")

	// An instance's check goes critical, then passing again.
	crit := &state.HealthCheck{CheckID: "service:web1", ServiceID: "web1", Status: state.HealthCritical}
	write(&state.RegisterRequest{Node: "n1", SkipNodeUpdate: true, Check: crit})
	check("web.service.consul.", dns.TypeA, "10.0.1.2")
	check("web.service.consul.", dns.TypeSRV, "0a000102.addr.dc1.consul.:81")
	pass := *crit
	pass.Status = state.HealthPassing
	write(&state.RegisterRequest{Node: "n1", SkipNodeUpdate: true, Check: &pass})
	check("web.service.consul.", dns.TypeA, "10.0.0.1", "10.0.1.2")

	// A node fails (gossip marks serfHealth critical).
	write(&state.RegisterRequest{Node: "n2", SkipNodeUpdate: true, Check: &state.HealthCheck{
		CheckID: state.SerfCheckID, Status: state.HealthCritical}})
	check("web.service.consul.", dns.TypeA, "10.0.0.1")

	// A new instance; an address change; a tag change.
	write(&state.RegisterRequest{Node: "n3", Address: "10.0.0.3", Checks: []*state.HealthCheck{
		{CheckID: state.SerfCheckID, Status: state.HealthPassing}}})
	check("web.service.consul.", dns.TypeA, "10.0.0.1", "10.0.0.3")
	write(&state.RegisterRequest{Node: "n3", Address: "10.0.0.33"})
	check("web.service.consul.", dns.TypeA, "10.0.0.1", "10.0.0.33")
	check("primary.web.service.consul.", dns.TypeA, "10.0.0.1")
	write(&state.RegisterRequest{Node: "n3", SkipNodeUpdate: true,
		Service: &state.Service{ID: "web3", Service: "web", Port: 80, Tags: []string{"primary"}}})
	check("primary.web.service.consul.", dns.TypeA, "10.0.0.1", "10.0.0.33")

	// Services without checks: only their own rows change.
	check("ext.service.consul.", dns.TypeSRV, "ext.example.com.:8080")
	write(&state.RegisterRequest{Node: "n1", SkipNodeUpdate: true,
		Service: &state.Service{ID: "ext", Service: "ext", Port: 8081, Address: "10.0.0.99"}})
	check("ext.service.consul.", dns.TypeA, "10.0.0.99")
	check("ext.service.consul.", dns.TypeSRV, "0a000063.addr.dc1.consul.:8081")
	idx++
	if err := s.Deregister(idx, &state.DeregisterRequest{Node: "n1", ServiceID: "ext"}); err != nil {
		t.Fatal(err)
	}
	check("ext.service.consul.", dns.TypeA, "NXDOMAIN")
	write(&state.RegisterRequest{Node: "n1", SkipNodeUpdate: true,
		Service: &state.Service{ID: "ext", Service: "ext", Port: 8082, Address: "10.0.0.98"}})
	check("ext.service.consul.", dns.TypeA, "10.0.0.98")

	// Deregistration, down to none.
	for _, node := range []string{"n1", "n3"} {
		idx++
		if err := s.Deregister(idx, &state.DeregisterRequest{Node: node}); err != nil {
			t.Fatal(err)
		}
	}
	check("web.service.consul.", dns.TypeA, "NXDOMAIN")
}

// swappableStore is a Catalog whose whole content can be replaced, as a
// snapshot restore replaces the store's database: the table watches of the
// old content never fire, only AbandonCh does.
type swappableStore struct {
	cur     atomic.Pointer[state.Store]
	mu      sync.Mutex
	abandon chan struct{}
	swaps   atomic.Uint64
}

func (s *swappableStore) swap(n *state.Store) {
	// The count first: a generation read between the two is new either
	// way, never one seen before the swap.
	s.swaps.Add(1)
	s.cur.Store(n)
	s.mu.Lock()
	close(s.abandon)
	s.abandon = make(chan struct{})
	s.mu.Unlock()
}

// CatalogGeneration moves on a swap too, as a restore moves the store's.
func (s *swappableStore) CatalogGeneration() uint64 {
	return s.swaps.Load()<<40 + s.cur.Load().CatalogGeneration()
}

func (s *swappableStore) HealthyInstances(dst []state.ServiceNode, name, tag string, onlyPassing bool) []state.ServiceNode {
	return s.cur.Load().HealthyInstances(dst, name, tag, onlyPassing)
}
func (s *swappableStore) ServiceNodes(ws memdb.WatchSet, name, tag string) (uint64, []state.ServiceNode, error) {
	return s.cur.Load().ServiceNodes(ws, name, tag)
}
func (s *swappableStore) GetNode(ws memdb.WatchSet, name string) (uint64, *state.Node, error) {
	return s.cur.Load().GetNode(ws, name)
}
func (s *swappableStore) NodesByAddress(addr string) []*state.Node {
	return s.cur.Load().NodesByAddress(addr)
}
func (s *swappableStore) ServicesByAddress(addr string) []*state.Service {
	return s.cur.Load().ServicesByAddress(addr)
}
func (s *swappableStore) AbandonCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.abandon
}

func TestCacheRestore(t *testing.T) {
	s := &swappableStore{abandon: make(chan struct{})}
	s.cur.Store(testStore(t))
	d := New(s, testDNSConfig(), testAgentConfig())
	if got := answers(t, d, "web.service.consul.", dns.TypeA); fmt.Sprint(got) != "[10.0.0.1 10.0.1.2]" {
		t.Fatalf("before restore: %v", got)
	}
	restored := state.NewStore()
	err := restored.EnsureRegistration(1, &state.RegisterRequest{Node: "r1", Address: "192.0.2.1",
		Service: &state.Service{ID: "web", Service: "web", Port: 80}})
	if err != nil {
		t.Fatal(err)
	}
	s.swap(restored)
	if got := answers(t, d, "web.service.consul.", dns.TypeA); fmt.Sprint(got) != "[192.0.2.1]" {
		t.Fatalf("after restore: %v", got)
	}
}

// TestCacheConcurrent runs queries against a catalog being written, for the
// race detector, and checks that a write is visible to queries started
// after it.
func TestCacheConcurrent(t *testing.T) {
	s := testStore(t)
	d := New(s, testDNSConfig(), testAgentConfig())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				answers(t, d, "web.service.consul.", dns.TypeA)
				answers(t, d, "web.service.consul.", dns.TypeSRV)
				answers(t, d, "primary.web.service.consul.", dns.TypeA)
			}
		}()
	}
	for i := 0; i < 200; i++ {
		status := state.HealthCritical
		want := "[10.0.1.2]"
		if i%2 == 1 {
			status, want = state.HealthPassing, "[10.0.0.1 10.0.1.2]"
		}
		err := s.EnsureRegistration(uint64(2000+i), &state.RegisterRequest{Node: "n1", SkipNodeUpdate: true,
			Check: &state.HealthCheck{CheckID: "service:web1", ServiceID: "web1", Status: status}})
		if err != nil {
			t.Fatal(err)
		}
		if got := answers(t, d, "web.service.consul.", dns.TypeA); fmt.Sprint(got) != want {
			t.Fatalf("write %d (%s): got %v, want %v", i, status, got, want)
		}
	}
	close(stop)
	wg.Wait()
}

// TestCacheBigService covers entries watched by a goroutine rather than by
// each query: a write reaches them a moment after its commit.
func TestCacheBigService(t *testing.T) {
	s := state.NewStore()
	const n = 40 // 40 nodes, 40 instances: well over maxInlineWatches channels
	idx := uint64(0)
	for i := 0; i < n; i++ {
		idx++
		id := fmt.Sprintf("big%d", i)
		err := s.EnsureRegistration(idx, &state.RegisterRequest{
			Node: fmt.Sprintf("node%d", i), Address: fmt.Sprintf("10.1.0.%d", i),
			Service: &state.Service{ID: id, Service: "big", Port: 80},
			Checks: []*state.HealthCheck{
				{CheckID: state.SerfCheckID, Status: state.HealthPassing},
				{CheckID: "service:" + id, ServiceID: id, Status: state.HealthPassing},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	d := New(s, testDNSConfig(), testAgentConfig())
	t.Cleanup(func() { d.shutdown() })
	count := func() int {
		got := answers(t, d, "big.service.consul.", dns.TypeA)
		if len(got) == 1 && got[0] == "NXDOMAIN" {
			return 0
		}
		return len(got)
	}
	if got := count(); got != n {
		t.Fatalf("got %d addresses, want %d", got, n)
	}
	z, _, _ := d.match("consul.")
	e := d.cache.entries.Load().load(cacheHash(z.index, "big", ""))
	if e == nil || !e.watched {
		t.Fatalf("the entry of a %d-instance service is not cached with a watcher", n)
	}
	eventually := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for count() != want {
			if time.Now().After(deadline) {
				t.Fatalf("still %d addresses, want %d", count(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	idx++
	err := s.EnsureRegistration(idx, &state.RegisterRequest{Node: "node7", SkipNodeUpdate: true,
		Check: &state.HealthCheck{CheckID: "service:big7", ServiceID: "big7", Status: state.HealthCritical}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(n - 1)

	// After shutdown the watchers are gone: entries read the store.
	d.shutdown()
	idx++
	if err := s.Deregister(idx, &state.DeregisterRequest{Node: "node8"}); err != nil {
		t.Fatal(err)
	}
	eventually(n - 2)
	deadline := time.Now().Add(5 * time.Second)
	for d.cache.watchers.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d watchers still running after shutdown", d.cache.watchers.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// An entry is trusted without its channels while the catalog generation
// stays; a write elsewhere in the catalog costs it one check of its
// channels and leaves it cached.
func TestCacheGenerationFastPath(t *testing.T) {
	s := testStore(t)
	d := New(s, testDNSConfig(), testAgentConfig())
	z, _, _ := d.match("consul.")
	entry := func() *serviceEntry {
		return d.cache.entries.Load().load(cacheHash(z.index, "web", ""))
	}
	answers(t, d, "web.service.consul.", dns.TypeA)
	e := entry()
	if e == nil || e.verified.Load() != s.CatalogGeneration() {
		t.Fatalf("a new entry is not verified at the store's generation %d: %+v", s.CatalogGeneration(), e)
	}
	before := s.CatalogGeneration()
	if err := s.EnsureRegistration(5000, &state.RegisterRequest{Node: "n2", SkipNodeUpdate: true,
		Service: &state.Service{ID: "other", Service: "other", Port: 9}}); err != nil {
		t.Fatal(err)
	}
	if s.CatalogGeneration() == before {
		t.Fatal("a registration did not move the catalog generation")
	}
	if got := answers(t, d, "web.service.consul.", dns.TypeA); fmt.Sprint(got) != "[10.0.0.1 10.0.1.2]" {
		t.Fatalf("web after an unrelated write: %v", got)
	}
	if entry() != e || e.verified.Load() != s.CatalogGeneration() {
		t.Fatalf("an unrelated write replaced the entry or left it unverified (verified %d, generation %d)",
			e.verified.Load(), s.CatalogGeneration())
	}
}

// validAt trusts the generation it was stamped with and nothing else: at
// that generation an entry is valid whatever its channels say (no write
// came after the stamp, so none can have fired them), at any other it
// reads its channels.
func TestServiceEntryValidAt(t *testing.T) {
	fired := make(chan struct{})
	close(fired)
	e := &serviceEntry{watch: []<-chan struct{}{make(chan struct{}), fired}}
	e.verified.Store(7)
	if !e.validAt(7) {
		t.Error("an entry at its stamped generation was not trusted")
	}
	if e.validAt(8) {
		t.Error("an entry whose channel fired was trusted at a new generation")
	}
	quiet := &serviceEntry{watch: []<-chan struct{}{make(chan struct{})}}
	quiet.verified.Store(7)
	if !quiet.validAt(8) || quiet.verified.Load() != 8 {
		t.Errorf("an entry with quiet channels at a new generation: valid %v, stamped %d; want true, 8", quiet.validAt(8), quiet.verified.Load())
	}
	watched := &serviceEntry{watched: true}
	watched.verified.Store(7)
	watched.stale.Store(true)
	if watched.validAt(7) {
		t.Error("a watched entry flagged stale was trusted because of its generation")
	}
}

// TestCacheKeys: the cache finds entries by key alone, so keys that differ
// only in how a string splits into name and tag, in order or in zone must
// differ.
func TestCacheKeys(t *testing.T) {
	keys := map[cacheKey]string{}
	for _, c := range []struct {
		zone      int
		name, tag string
	}{
		{0, "web", ""}, {1, "web", ""}, {0, "webv1", ""}, {0, "web", "v1"}, {0, "webv", "1"},
		{0, "v1", "web"}, {0, "", "web"}, {0, "a", "a"}, {0, "aa", ""}, {0, "", "aa"},
	} {
		k := cacheHash(c.zone, c.name, c.tag)
		what := fmt.Sprintf("zone %d, name %q, tag %q", c.zone, c.name, c.tag)
		if other, dup := keys[k]; dup {
			t.Errorf("%s has the key of %s", what, other)
		}
		keys[k] = what
		if k != cacheHash(c.zone, c.name, c.tag) {
			t.Errorf("%s: the key changes from one call to the next", what)
		}
	}
}
