package discovery

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

// Names in another datacenter (web.service.dc2.consul, n1.node.dc2.consul)
// are answered by asking that datacenter through the agent's servers
// (RemoteCatalog). What it said is kept for remoteCacheTTL, so a busy name
// costs one request per datacenter every couple of seconds; concurrent
// misses of one name share one request. A datacenter that does not answer
// within remoteTimeout gets SERVFAIL, remembered as briefly, while local
// names go on answering from the replica. The instances kept are those
// the agent's DNS token may read when they were asked for: an ACL change
// shows within remoteCacheTTL.

// RemoteCatalog reads another datacenter's catalog.
type RemoteCatalog interface {
	// RemoteServiceInstances are the instances of a service (with tag,
	// when not empty) in datacenter dc, with their checks.
	RemoteServiceInstances(ctx context.Context, dc, name, tag string) ([]state.ServiceNode, error)
	// RemoteNode is datacenter dc's node of that name, nil when none.
	RemoteNode(ctx context.Context, dc, name string) (*state.Node, error)
}

const (
	// remoteCacheTTL is how long an answer from another datacenter, or
	// its failure, is reused.
	remoteCacheTTL = 2 * time.Second
	// remoteTimeout bounds a request to another datacenter: well under a
	// resolver's 5-second retry, so a dead datacenter is a quick SERVFAIL.
	remoteTimeout = 2 * time.Second
	// maxRemoteEntries bounds the cache; past it, it starts over.
	maxRemoteEntries = 4096
)

// remoteCache holds recent answers from other datacenters.
type remoteCache struct {
	mu       sync.Mutex
	entries  map[string]*remoteResult
	inflight map[string]*remoteResult
}

// remoteResult is one answer: a service's entry (nil: no healthy
// instance) or a node (nil: none), or the error asking it met.
type remoteResult struct {
	svc     *serviceEntry
	node    *state.Node
	err     error
	expires time.Time
	done    chan struct{} // closed once the fields above are set
}

// fetch returns the result for key, asking with ask when nothing fresh is
// kept and nobody is asking already.
func (c *remoteCache) fetch(key string, ask func() *remoteResult) *remoteResult {
	now := time.Now()
	c.mu.Lock()
	if r, ok := c.entries[key]; ok && now.Before(r.expires) {
		c.mu.Unlock()
		return r
	}
	if r, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-r.done
		return r
	}
	if c.inflight == nil {
		c.inflight = map[string]*remoteResult{}
	}
	wait := &remoteResult{done: make(chan struct{}), err: errRemoteFailed}
	c.inflight[key] = wait
	c.mu.Unlock()
	// Whatever ask does (a panic CoreDNS recovers included), the waiters
	// are released and the name is asked again next time.
	defer func() {
		wait.expires = time.Now().Add(remoteCacheTTL)
		c.mu.Lock()
		delete(c.inflight, key)
		if c.entries == nil || len(c.entries) >= maxRemoteEntries {
			c.entries = map[string]*remoteResult{}
		}
		c.entries[key] = wait
		c.mu.Unlock()
		close(wait.done)
	}()
	got := ask()
	wait.svc, wait.node, wait.err = got.svc, got.node, got.err
	return wait
}

// errRemoteFailed is the result of an ask that did not return.
var errRemoteFailed = errors.New("asking another datacenter failed")

// remote answers a name in datacenter pq.dc, another than ours.
func (d *Discovery) remote(rep *reply, z *zone, q dns.Question, pq parsedName, authz *acl.Authorizer) {
	m := &rep.msg
	dc := strings.ToLower(pq.dc)
	switch pq.kind {
	case kindAddr:
		d.addr(m, q, pq.name)
		return
	case kindService, kindNode:
	default:
		m.Rcode = dns.RcodeNameError
		return
	}
	if d.Remote == nil {
		m.Rcode = dns.RcodeNameError
		return
	}
	suffix := d.zoneOfDatacenter(z, dc).suffix
	var got *remoteResult
	if pq.kind == kindService {
		name, tag := strings.ToLower(pq.name), strings.ToLower(pq.tag)
		got = d.remoteCache.fetch("s\x00"+dc+"\x00"+name+"\x00"+tag, func() *remoteResult {
			ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
			defer cancel()
			all, err := d.Remote.RemoteServiceInstances(ctx, dc, name, tag)
			if err != nil {
				return &remoteResult{err: err}
			}
			insts := all[:0]
			for _, sn := range all {
				if sn.Node != nil && sn.Service != nil && state.Healthy(sn.Checks, d.onlyPassing) &&
					(authz == nil || authz.NodeRead(sn.Node.Node)) {
					insts = append(insts, sn)
				}
			}
			if len(insts) == 0 {
				return &remoteResult{}
			}
			return &remoteResult{svc: newServiceEntry(suffix, insts, d.serviceTTL(insts[0].Service.Service))}
		})
	} else {
		got = d.remoteCache.fetch("n\x00"+dc+"\x00"+strings.ToLower(pq.name), func() *remoteResult {
			ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
			defer cancel()
			node, err := d.Remote.RemoteNode(ctx, dc, pq.name)
			return &remoteResult{node: node, err: err}
		})
	}
	if got.err != nil {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	if pq.kind == kindNode {
		d.answerNode(m, q, got.node)
		return
	}
	d.answerService(rep, q, got.svc)
}
