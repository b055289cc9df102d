package discovery

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/corefile"
	"github.com/beacon-dns/beacon/state"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/hashicorp/go-memdb"
	"github.com/miekg/dns"
)

const pluginName = "discovery"

// Catalog is what the handler reads from the state store. It is satisfied by
// *state.Store; the agent is never needed on the query path.
type Catalog interface {
	// HealthyInstances appends to dst the instances of a service (with
	// tag, when not empty) that have no critical check.
	HealthyInstances(dst []state.ServiceNode, name, tag string, onlyPassing bool) []state.ServiceNode
	// ServiceNodes returns the instances of a service (with tag, when not
	// empty) with their nodes and checks, adding to ws the channels that
	// fire when that may have changed: the answer cache relies on them.
	ServiceNodes(ws memdb.WatchSet, name, tag string) (uint64, []state.ServiceNode, error)
	// AbandonCh fires when a restore replaces the store's contents.
	AbandonCh() <-chan struct{}
	// CatalogGeneration moves after every write to nodes, services or
	// checks and every restore, once their watch channels are closed.
	CatalogGeneration() uint64
	// GetNode returns the named node, or nil.
	GetNode(ws memdb.WatchSet, name string) (uint64, *state.Node, error)
	// NodesByAddress and ServicesByAddress serve reverse lookups.
	NodesByAddress(addr string) []*state.Node
	ServicesByAddress(addr string) []*state.Service
}

// Discovery is the handler of the discovery plugin: it answers Consul's DNS
// names in its zones from the local replica of the catalog.
type Discovery struct {
	Next plugin.Handler
	// Readiness reports whether the agent serves reads; nil means ready.
	Readiness func() bool
	// Authorizer, when set, is what DNS may answer (the agent's default
	// token's ACLs); it returns nil while ACLs are off. A service or node
	// it may not read is NXDOMAIN, as Consul answers it.
	Authorizer func() *acl.Authorizer
	// Remote, when set, answers for other datacenters (remote.go); without
	// it their names are NXDOMAIN.
	Remote RemoteCatalog
	// Staleness is how long ago the local replica last heard from the
	// leader (0 on the leader); nil means never stale. It must be cheap and
	// lock-free: it is read on every query.
	Staleness func() time.Duration
	// Queries executes prepared queries (<query>.query); nil answers them
	// NXDOMAIN.
	Queries PreparedQueries

	store Catalog
	// zones, longest first so the most specific zone wins.
	zones  []*zone
	dc     string // the agent's datacenter, lowercase
	domain string // e.g. "consul."
	// nsName is the name server the SOA and NS answers name, ns.<domain>;
	// node is the agent's node, whose address it resolves to.
	nsName string
	node   string

	nodeTTL       uint32
	negTTL        uint32
	svcTTL        map[string]uint32 // lowercase service name -> seconds
	svcTTLDefault uint32
	onlyPassing   bool
	allowStale    bool
	maxStale      time.Duration
	aLimit        int
	fall          fall.F

	cache       serviceCache
	remoteCache remoteCache
	metrics     metricsCache
}

// zoneKind says which of Consul's name forms a zone takes.
type zoneKind uint8

const (
	// zoneDomain is the domain, or another multi-label zone used as an
	// alternative domain: <svc>.service[.<dc>].<zone>.
	zoneDomain zoneKind = iota
	// zoneDC is a datacenter name used as a zone: <svc>.service.<dc>.
	zoneDC
	// zoneReverse is in-addr.arpa or ip6.arpa, or a zone under them.
	zoneReverse
)

type zone struct {
	name string // lowercase, fully qualified
	kind zoneKind
	dc   string // zoneDC: the datacenter the zone names
	// suffix follows "<node>.node", "<hex>.addr" and "<svc>.service" in the
	// names we hand out: ".<dc>.<domain>.".
	suffix string
	soa    dns.SOA // template; copied per answer, never shared
	index  int     // into the metric tables
}

// New returns a handler reading store, answering for dnsCfg.Zones with the
// agent's datacenter and domain.
func New(store Catalog, dnsCfg corefile.DNSConfig, agentCfg corefile.AgentConfig) *Discovery {
	domain := strings.ToLower(dns.Fqdn(agentCfg.Domain))
	if agentCfg.Domain == "" {
		domain = corefile.DefaultDomain
	}
	d := &Discovery{
		store:         store,
		dc:            strings.ToLower(agentCfg.Datacenter),
		domain:        domain,
		nsName:        "ns." + domain,
		node:          agentCfg.Node,
		nodeTTL:       seconds(dnsCfg.NodeTTL),
		negTTL:        seconds(dnsCfg.NegativeTTL),
		svcTTL:        make(map[string]uint32, len(dnsCfg.ServiceTTL)),
		onlyPassing:   dnsCfg.OnlyPassing,
		allowStale:    dnsCfg.AllowStale,
		maxStale:      dnsCfg.MaxStale,
		aLimit:        dnsCfg.ARecordLimit,
		fall:          dnsCfg.Fall,
		svcTTLDefault: seconds(dnsCfg.ServiceTTL["*"]),
	}
	for name, ttl := range dnsCfg.ServiceTTL {
		if name != "*" {
			d.svcTTL[strings.ToLower(name)] = seconds(ttl)
		}
	}
	// The serial only has to be plausible: nothing transfers these zones.
	serial := uint32(time.Now().Unix())
	seen := map[string]bool{}
	for _, zn := range dnsCfg.Zones {
		z := d.classify(strings.ToLower(dns.Fqdn(zn)))
		if z == nil || seen[z.name] {
			continue
		}
		seen[z.name] = true
		z.soa = dns.SOA{
			Hdr:     dns.RR_Header{Name: z.name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: d.negTTL},
			Ns:      d.nsName,
			Mbox:    "hostmaster." + domain,
			Serial:  serial,
			Refresh: 3600,
			Retry:   600,
			Expire:  86400,
			Minttl:  d.negTTL,
		}
		d.zones = append(d.zones, z)
	}
	slices.SortStableFunc(d.zones, func(a, b *zone) int { return len(b.name) - len(a.name) })
	for i, z := range d.zones {
		z.index = i
	}
	d.cache.init()
	d.metrics.init(d.zones)
	return d
}

// classify decides what a server block zone means to us.
func (d *Discovery) classify(name string) *zone {
	z := &zone{name: name, suffix: "." + d.dc + "." + d.domain}
	switch {
	case isReverseZone(name):
		z.kind = zoneReverse
	case name == d.domain:
		z.kind = zoneDomain
	case dns.IsSubDomain(name, d.domain):
		// A parent of the domain (".", say): only the domain is ours, the
		// rest of the parent goes to the next plugin.
		z.name, z.kind = d.domain, zoneDomain
	case dns.CountLabel(name) == 1:
		z.kind, z.dc = zoneDC, strings.TrimSuffix(name, ".")
	case dns.IsSubDomain(d.domain, name) && dns.CountLabel(name) == dns.CountLabel(d.domain)+1:
		// dc1.consul. listed on its own is the datacenter's zone.
		z.kind, z.dc = zoneDC, name[:strings.IndexByte(name, '.')]
	default:
		// Any other name is an alternative domain, as Consul's alt_domain:
		// the names we hand out stay under it.
		z.kind = zoneDomain
		z.suffix = "." + d.dc + "." + name
	}
	return z
}

func isReverseZone(name string) bool {
	return dns.IsSubDomain("in-addr.arpa.", name) || dns.IsSubDomain("ip6.arpa.", name)
}

func seconds(d time.Duration) uint32 {
	s := d / time.Second
	if s < 0 {
		return 0
	}
	if s > 1<<31-1 {
		return 1<<31 - 1
	}
	return uint32(s)
}

// match returns the zone qname is in and the part of qname before it,
// without the dot ("" at the apex). It lowercases nothing: the comparison
// folds case.
func (d *Discovery) match(qname string) (*zone, string, bool) {
	n := len(qname)
	for _, z := range d.zones {
		zl := len(z.name)
		if n < zl || !strings.EqualFold(qname[n-zl:], z.name) {
			continue
		}
		if n == zl {
			return z, "", true
		}
		if qname[n-zl-1] == '.' {
			return z, qname[:n-zl-1], true
		}
	}
	return nil, "", false
}

// ServeDNS implements plugin.Handler.
func (d *Discovery) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) == 0 {
		return dns.RcodeFormatError, nil
	}
	qname := r.Question[0].Name
	z, rest, ok := d.match(qname)
	if !ok {
		return plugin.NextOrFailure(d.Name(), d.Next, ctx, w, r)
	}
	m := d.metrics.forServer(ctx)
	qtype := r.Question[0].Qtype

	if d.tooStale() {
		// The replica lags the leader by more than allowed: no answer
		// rather than a stale one. The server writes the SERVFAIL.
		m.answered(z.index, qtype, dns.RcodeServerFailure)
		return dns.RcodeServerFailure, nil
	}
	resp, rcode := d.answer(r, z, rest)
	if resp == nil {
		// Not written: the server sends the error (FORMERR, REFUSED...).
		m.answered(z.index, qtype, rcode)
		return rcode, nil
	}
	if resp.Rcode == dns.RcodeNameError && d.fall.Through(qname) {
		m.passed(z.index, qtype)
		return plugin.NextOrFailure(d.Name(), d.Next, ctx, w, r)
	}
	err := w.WriteMsg(resp)
	m.answered(z.index, qtype, resp.Rcode)
	if err != nil {
		return dns.RcodeServerFailure, plugin.Error(pluginName, err)
	}
	return dns.RcodeSuccess, nil
}

// tooStale reports whether the local replica may not answer: it lags the
// leader by more than max_stale, or by anything at all without allow_stale.
func (d *Discovery) tooStale() bool {
	if d.Staleness == nil {
		return false
	}
	stale := d.Staleness()
	if !d.allowStale {
		return stale != 0
	}
	return stale > d.maxStale
}

// Name implements plugin.Handler.
func (d *Discovery) Name() string { return pluginName }

// answer builds the response to r, whose name is in z. It returns a nil
// message and an rcode for the errors the server itself writes.
func (d *Discovery) answer(r *dns.Msg, z *zone, rest string) (*dns.Msg, int) {
	q := r.Question[0]
	switch {
	case len(r.Question) != 1:
		return nil, dns.RcodeFormatError
	case r.Opcode != dns.OpcodeQuery:
		return nil, dns.RcodeNotImplemented
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY:
		return nil, dns.RcodeRefused
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		return nil, dns.RcodeRefused // no zone transfers: the catalog is not a zone file
	}

	// As m.SetReply(r), without allocating the question section apart.
	rep := new(reply)
	m := &rep.msg
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	m.Authoritative = true
	rep.q[0] = q
	m.Question = rep.q[:1:1]
	if z.kind == zoneReverse {
		d.reverse(m, z, q, rest, d.authorizer())
	} else {
		d.forward(rep, z, q, rest)
	}
	if len(m.Answer) == 0 {
		// NXDOMAIN or NODATA: the SOA tells resolvers how long to cache it.
		soa := new(dns.SOA)
		*soa = z.soa
		rep.rr[0] = soa // unused by an empty answer section
		m.Ns = rep.rr[:1:1]
	}
	return m, dns.RcodeSuccess
}

// reply is a response together with room for its usual answer, a
// service's few A records, so that it takes one allocation. The sections
// that use the arrays are sliced to their length as capacity: a plugin
// appending to one gets a new array.
type reply struct {
	msg dns.Msg
	q   [1]dns.Question
	rr  [inlineAnswers]dns.RR
	a   [inlineAnswers]dns.A
}

// inlineAnswers: up to eight A records in the reply's one allocation (736
// bytes); four left a service of five instances two more a query.
const inlineAnswers = 8

// authorizer is what DNS may answer; nil when ACLs are off.
func (d *Discovery) authorizer() *acl.Authorizer {
	if d.Authorizer == nil {
		return nil
	}
	return d.Authorizer()
}

// mayRead reports whether authz lets DNS answer the service or node pq
// names (anything else has no ACL of its own).
func mayRead(authz *acl.Authorizer, pq parsedName) bool {
	switch {
	case authz == nil:
		return true
	case pq.kind == kindService:
		return authz.ServiceRead(pq.name)
	case pq.kind == kindNode:
		return authz.NodeRead(pq.name)
	}
	return true
}

// forward answers a name in a domain or datacenter zone.
func (d *Discovery) forward(rep *reply, z *zone, q dns.Question, rest string) {
	m := &rep.msg
	pq := d.parse(z, rest)
	if pq.kind == kindQuery {
		// Executed by the agent, in another datacenter too, with ACLs.
		d.preparedQuery(rep, z, q, pq)
		return
	}
	authz := d.authorizer()
	if !mayRead(authz, pq) {
		m.Rcode = dns.RcodeNameError
		return
	}
	if pq.dc != "" && !strings.EqualFold(pq.dc, d.dc) {
		d.remote(rep, z, q, pq, authz)
		return
	}
	switch pq.kind {
	case kindApex:
		d.apex(m, z, q)
	case kindNS:
		d.nameServer(m, z, q)
	case kindService:
		d.service(rep, z, q, pq.name, pq.tag, authz)
	case kindNode:
		d.nodeLookup(m, q, pq.name)
	case kindAddr:
		d.addr(m, q, pq.name)
	default:
		// Names of no form of ours.
		m.Rcode = dns.RcodeNameError
	}
}
