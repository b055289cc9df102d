package discovery

import (
	"context"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-memdb"
)

// The service answer cache.
//
// Reading a service's healthy instances from go-memdb costs a read
// transaction, radix iterators and a key per index lookup: tens of
// allocations for three instances, several times the cost of the rest of
// the query. So the handler keeps, per service and tag, what its answers
// are made of (addresses, SRV targets, TTL) together with the store's watch
// channels for exactly the rows it was built from: the service's instances,
// their nodes, their nodes' and their own checks, and the store's restore
// channel. Any write that may change the answer closes one of them.
//
// A query checks an entry's channels without blocking, so it sees every
// write committed before it started; but only once per catalog generation
// (state.Store.CatalogGeneration, which every catalog write moves after
// closing its channels): while the catalog is quiet a query reads one
// shared word instead of a cache line per channel, which is what kept
// lookups from holding their speed at tens of thousands of instances.
// Checking channels stays cheap up to a few dozen; an entry with more (a service with more than about twenty
// instances) gets a goroutine that waits on them and flags the entry
// instead, and so sees a write as soon as that goroutine runs, a few
// microseconds after the commit.
//
// Nothing on the query path takes a lock shared by other queries: a hash
// table of immutable chains read with atomic loads (cacheTable),
// non-blocking channel receives, atomics.
//
// Only names with healthy instances are cached, so random names cannot fill
// the cache, and it is bounded all the same: past maxCacheEntries it starts
// afresh, and past maxWatchers big services are read from the store.

const (
	maxCacheEntries  = 1 << 14
	maxInlineWatches = 64
	maxWatchers      = 1024
)

type serviceCache struct {
	entries atomic.Pointer[cacheTable]
	// abandon is the store's restore channel, kept so that a miss does
	// not take the store's lock to get it; renewed once it fires.
	abandon atomic.Pointer[<-chan struct{}]
	// watchers counts the goroutines watching big entries; ctx stops them
	// when the handler is shut down.
	watchers atomic.Int32
	ctx      context.Context
	cancel   context.CancelFunc
}

func (c *serviceCache) init() {
	c.entries.Store(new(cacheTable))
	c.ctx, c.cancel = context.WithCancel(context.Background())
}

// cacheTable is a hash table of immutable chains, read without locks or
// allocations: a lookup hashes the (lowercase) name and tag with
// hash/maphash and walks one short chain. Writers, on a miss, replace a
// bucket's chain with a compare-and-swap.
type cacheTable struct {
	buckets [cacheBuckets]atomic.Pointer[cacheNode]
	size    atomic.Int32
}

const cacheBuckets = 1 << 13

// cacheNode is one entry of a chain; it never changes once published.
//
// A node is found by a 128-bit key, two hashes of the zone, name and tag
// with independent random seeds, without comparing the names: their bytes
// are elsewhere in memory, one more cache miss a query. Two keys of a
// process's cache collide with a probability of 2⁻¹²⁸ per pair, and the
// seeds, made at start, cannot be known to pick names that do.
type cacheNode struct {
	key   cacheKey
	entry *serviceEntry
	next  *cacheNode
}

type cacheKey struct{ h1, h2 uint64 }

// cacheSeeds: for each half of a key, one for the name and one for the tag.
var cacheSeeds = [4]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed(), maphash.MakeSeed()}

// cacheHash is the key of service name with tag (both lowercase) in the
// zone of that index (SRV targets end with its suffix). Each half is the
// name's hash XOR the tag's, with seeds of their own (a name and a tag
// swapped hash apart), plus the zone's multiple of an odd constant.
func cacheHash(zone int, name, tag string) cacheKey {
	z := uint64(zone) * 0x9e3779b97f4a7c15
	k := cacheKey{maphash.String(cacheSeeds[0], name) + z, maphash.String(cacheSeeds[1], name) + z}
	if tag != "" {
		k.h1 ^= maphash.String(cacheSeeds[2], tag)
		k.h2 ^= maphash.String(cacheSeeds[3], tag)
	}
	return k
}

func (t *cacheTable) bucket(k cacheKey) *atomic.Pointer[cacheNode] {
	return &t.buckets[(k.h1^k.h1>>32)&(cacheBuckets-1)]
}

func (t *cacheTable) load(k cacheKey) *serviceEntry {
	for n := t.bucket(k).Load(); n != nil; n = n.next {
		if n.key == k {
			return n.entry
		}
	}
	return nil
}

// store puts e (nil: nothing) under the key in place of old (nil: no
// entry), and reports whether it did: not when another query replaced old
// first.
func (t *cacheTable) store(k cacheKey, old, e *serviceEntry) bool {
	b := t.bucket(k)
	for {
		head := b.Load()
		var cur *cacheNode
		for n := head; n != nil; n = n.next {
			if n.key == k {
				cur = n
				break
			}
		}
		if cur == nil && old != nil || cur != nil && cur.entry != old {
			return false
		}
		chain := head // the chain without the key's node
		if cur != nil {
			chain = prependCopy(head, cur, cur.next)
		}
		if e != nil {
			chain = &cacheNode{key: k, entry: e, next: chain}
		}
		if !b.CompareAndSwap(head, chain) {
			continue // another key of the bucket changed meanwhile
		}
		switch {
		case cur == nil && e != nil:
			t.size.Add(1)
		case cur != nil && e == nil:
			t.size.Add(-1)
		}
		return true
	}
}

// prependCopy returns a copy of the nodes of chain before stop, linked to
// rest.
func prependCopy(chain, stop, rest *cacheNode) *cacheNode {
	if chain == stop {
		return rest
	}
	n := *chain
	n.next = prependCopy(chain.next, stop, rest)
	return &n
}

// serviceEntry is what the answers for one service and tag are built from.
// What an A query reads comes first, with a service's few addresses in the
// entry itself: with ten thousand services every line a query touches is
// a cache miss, which is what a lookup costs.
type serviceEntry struct {
	// verified is a catalog generation at which the entry was known to be
	// fresh: while the store's generation is still that one, no write can
	// have touched it, and a query trusts it without its channels (not
	// used for a watched entry, whose flag is set after the write).
	verified atomic.Uint64
	watched  bool
	ttl      uint32
	// authz is the authorizer the entry was built for (nil: ACLs off).
	authz *acl.Authorizer
	// ips are the A and AAAA answers' addresses, unique and sorted: n4
	// IPv4 addresses of 4 bytes, then IPv6 addresses of 16; in inlineIPs
	// when they fit. A query makes its records around slices of them
	// (records shared between answers could be changed by the plugins
	// that see the response after us: cache sets TTLs in place; the
	// address bytes nothing changes).
	ips       []byte
	n4        int
	inlineIPs [32]byte
	// host is a hostname address to CNAME to, set only when no instance
	// has an IP address.
	host string
	// The SRV answer is made on the first SRV query (most services are
	// only asked for by address) from the instances and the suffix of the
	// names it hands out.
	insts  []instanceRef
	suffix string
	srv    atomic.Pointer[srvAnswer]

	// Either the channels a query checks, or, when watched (above) by a
	// goroutine, the flag it sets.
	watch []<-chan struct{}
	stale atomic.Bool
}

// validAt reports whether no write has touched what e was read from; gen
// is the store's catalog generation, loaded before the call. Checking
// the channels costs a cache line each (a dozen for five instances), so
// that is done once per generation: under a quiet catalog a query reads
// one shared word and the entry.
func (e *serviceEntry) validAt(gen uint64) bool {
	if e.watched {
		return !e.stale.Load() // one word already
	}
	if e.verified.Load() == gen {
		return true
	}
	if !e.valid() {
		return false
	}
	// Every write after gen was loaded moves the generation past it, so
	// recording an older one than another query did only costs a check.
	e.verified.Store(gen)
	return true
}

// valid reports whether no write has touched what e was read from.
func (e *serviceEntry) valid() bool {
	if e.watched {
		return !e.stale.Load()
	}
	for _, ch := range e.watch {
		select {
		case <-ch:
			return false
		default:
		}
	}
	return true
}

type srvRecord struct {
	target       string
	port, weight uint16
}

// instanceRef is an instance an entry was made from.
type instanceRef struct {
	svc  *state.Service
	node *state.Node
}

// srvAnswer is what an entry's SRV answers are made of.
type srvAnswer struct {
	srv []srvRecord
	// The additional section: one address per target that has one, in
	// two slices as appendAddrRRs takes them.
	glueNames []string
	glueIPs   []netip.Addr
}

// abandonCh returns the store's current restore channel.
func (d *Discovery) abandonCh() <-chan struct{} {
	if p := d.cache.abandon.Load(); p != nil {
		select {
		case <-*p:
		default:
			return *p // not fired: still the current one
		}
	}
	ch := d.store.AbandonCh()
	d.cache.abandon.Store(&ch)
	return ch
}

// lookup returns the entry for service name with tag, answered in zone z,
// or nil when it has no healthy instance on a node authz may read. An
// entry is built for one authorizer: the agent's default token's changes
// when tokens or policies do, and the entry is then built again.
func (d *Discovery) lookup(z *zone, name, tag string, authz *acl.Authorizer) *serviceEntry {
	c := &d.cache
	// First: what is read below is at least this generation.
	gen := d.store.CatalogGeneration()
	t := c.entries.Load()
	// No allocation unless the query has upper case letters.
	name, tag = strings.ToLower(name), strings.ToLower(tag)
	k := cacheHash(z.index, name, tag)
	old := t.load(k)
	if old != nil && old.authz == authz && old.validAt(gen) {
		return old
	}
	e, ws := d.readService(z, name, tag, authz)
	if e != nil {
		e.verified.Store(gen)
	}
	if e == nil || !c.keep(e, ws) {
		if old != nil {
			t.store(k, old, nil) // not left to be found stale again
		}
		return e
	}
	if old == nil && t.size.Load() >= maxCacheEntries {
		// Full, likely of services long gone: start afresh.
		t = new(cacheTable)
		c.entries.Store(t)
	}
	// Losing a race to store is harmless: the other query's entry is as
	// fresh as this one, and a stale one is replaced by the next query.
	t.store(k, old, e)
	return e
}

// keep arranges for e to learn of writes to what it was read from, and
// reports whether it may be cached.
func (c *serviceCache) keep(e *serviceEntry, ws memdb.WatchSet) bool {
	if len(ws) <= maxInlineWatches {
		e.watch = make([]<-chan struct{}, 0, len(ws))
		for ch := range ws {
			e.watch = append(e.watch, ch)
		}
		return true
	}
	if c.watchers.Add(1) > maxWatchers {
		c.watchers.Add(-1)
		return false
	}
	e.watched = true
	go func() {
		defer c.watchers.Add(-1)
		ws.WatchCtx(c.ctx) // returns when a channel fires or the handler is shut down
		e.stale.Store(true)
	}()
	return true
}

// shutdown ends the cache's watcher goroutines; their entries read as
// stale after, so a query still in flight reads the store.
func (d *Discovery) shutdown() error {
	d.cache.cancel()
	return nil
}

// readService reads the healthy instances of a service on nodes authz may
// read from the store and prepares its answers, returning with them the
// watch channels that fire when they may have changed.
func (d *Discovery) readService(z *zone, name, tag string, authz *acl.Authorizer) (*serviceEntry, memdb.WatchSet) {
	// Names with no healthy instance are not cached, and queried at
	// random they are the common miss: answer them with the store's
	// cheapest read, without watches.
	var probe [1]state.ServiceNode
	if len(d.store.HealthyInstances(probe[:0], name, tag, d.onlyPassing)) == 0 {
		return nil, nil
	}
	ws := memdb.NewWatchSet()
	// The restore channel first: a restore after it is taken closes it,
	// whichever database the read below sees.
	ws.Add(d.abandonCh())
	_, all, err := d.store.ServiceNodes(ws, name, tag)
	if err != nil {
		return nil, nil
	}
	insts := all[:0]
	for _, sn := range all {
		if state.Healthy(sn.Checks, d.onlyPassing) && (authz == nil || authz.NodeRead(sn.Node.Node)) {
			insts = append(insts, sn)
		}
	}
	if len(insts) == 0 {
		return nil, nil
	}
	e := newServiceEntry(z.suffix, insts, d.serviceTTL(insts[0].Service.Service))
	e.authz = authz
	return e, ws
}

// newServiceEntry prepares the answers for instances insts, the names it
// hands out ending in suffix (".<dc>.<domain>."), records of TTL ttl.
func newServiceEntry(suffix string, insts []state.ServiceNode, ttl uint32) *serviceEntry {
	e := &serviceEntry{ttl: ttl, suffix: suffix, insts: make([]instanceRef, len(insts))}
	anyIP := false
	addrs := make([]netip.Addr, 0, len(insts))
	for i := range insts {
		svc, node := insts[i].Service, insts[i].Node
		e.insts[i] = instanceRef{svc, node}
		a := svc.Address
		if a == "" {
			a = node.Address
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			anyIP = true
			addrs = append(addrs, ip.Unmap().WithZone(""))
		} else if e.host == "" {
			e.host = a
		}
	}
	if anyIP {
		e.host = ""
	}
	// IPv4 sorts before IPv6, so the families are two contiguous runs.
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	n6 := 0
	for _, ip := range addrs {
		if ip.Is4() {
			e.n4++
		} else {
			n6++
		}
	}
	if size := 4*e.n4 + 16*n6; size <= len(e.inlineIPs) {
		e.ips = e.inlineIPs[:0:size]
	} else {
		e.ips = make([]byte, 0, size)
	}
	for _, ip := range addrs {
		if ip.Is4() {
			b := ip.As4()
			e.ips = append(e.ips, b[:]...)
		} else {
			b := ip.As16()
			e.ips = append(e.ips, b[:]...)
		}
	}
	return e
}

// srvAnswer returns the entry's SRV answer, made on first use.
func (e *serviceEntry) srvAnswer() *srvAnswer {
	if a := e.srv.Load(); a != nil {
		return a
	}
	a := &srvAnswer{srv: make([]srvRecord, len(e.insts))}
	var seen map[string]bool // glue targets, when too many for a linear scan
	if len(e.insts) > 32 {
		seen = make(map[string]bool, len(e.insts))
	}
	for i, in := range e.insts {
		target, ip, hasIP := srvTarget(e.suffix, in.svc, in.node)
		weight := in.svc.Weights.Passing
		if weight <= 0 {
			weight = 1
		}
		a.srv[i] = srvRecord{target: target, port: uint16(in.svc.Port), weight: uint16(min(weight, 65535))}
		// Several instances on one node share a target: one glue record.
		if !hasIP {
			continue
		}
		if seen != nil {
			if seen[target] {
				continue
			}
			seen[target] = true
		} else if slices.Contains(a.glueNames, target) {
			continue
		}
		a.glueNames = append(a.glueNames, target)
		a.glueIPs = append(a.glueIPs, ip)
	}
	// Two queries may both make it: either answer is the same.
	e.srv.Store(a)
	return a
}
