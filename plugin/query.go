package discovery

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/miekg/dns"
)

// Prepared queries over DNS: <query>.query[.<dc>].<domain>, answered with
// the instances an execution of the query (by ID or name) finds. The
// execution is the agent's, the same as the HTTP API's: the default
// token's ACLs (or the token the query captured), Near, failover to other
// datacenters, and another datacenter's own execution for .query.<dc>.

// PreparedQueries executes prepared queries for DNS. The agent implements
// it; setup hands it to the handler when the agent has it.
type PreparedQueries interface {
	// ExecutePreparedQuery executes the query ID or name idOrName, in
	// datacenter dc when that is not "" (nor the agent's own).
	// state.ErrQueryNotFound when nothing matches.
	ExecutePreparedQuery(ctx context.Context, idOrName, dc string) (*state.PreparedQueryExecuteResponse, error)
}

// queryTimeout bounds an execution, failover to other datacenters
// included: past it a resolver has given up on the answer.
const queryTimeout = 5 * time.Second

// preparedQuery answers <query>.query: the instances of the query's
// answer (they are healthy, on nodes the token may read, sorted or
// shuffled, wherever they came from) as A/AAAA/SRV records, as a service's
// are, SRV targets in the datacenter of the instances. The TTL is the
// query's DNS TTL, else the service's. No query, or no instance:
// NXDOMAIN; an execution that failed (another datacenter unreachable):
// SERVFAIL.
func (d *Discovery) preparedQuery(rep *reply, z *zone, q dns.Question, pq parsedName) {
	m := &rep.msg
	if d.Queries == nil {
		m.Rcode = dns.RcodeNameError
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	// Names are executed in lowercase, as Consul's DNS executes them: a
	// template's Regexp sees the same name whatever the client's case.
	res, err := d.Queries.ExecutePreparedQuery(ctx, strings.ToLower(pq.name), strings.ToLower(pq.dc))
	switch {
	case errors.Is(err, state.ErrQueryNotFound):
		m.Rcode = dns.RcodeNameError
		return
	case err != nil:
		m.Rcode = dns.RcodeServerFailure
		return
	case len(res.Nodes) == 0:
		m.Rcode = dns.RcodeNameError
		return
	}
	ttl := d.serviceTTL(res.Service)
	if res.DNS.TTL != "" {
		// Validated when the query was written; one that does not parse
		// (written by something else) falls back to the service's.
		if t, err := time.ParseDuration(res.DNS.TTL); err == nil {
			ttl = seconds(t)
		}
	}
	d.answerService(rep, q, newServiceEntry(d.zoneOfDatacenter(z, res.Datacenter).suffix, res.Nodes, ttl))
}

// zoneOfDatacenter is z with the names it hands out (SRV targets) in
// datacenter dc rather than the agent's.
func (d *Discovery) zoneOfDatacenter(z *zone, dc string) *zone {
	dc = strings.ToLower(dc)
	if dc == "" || dc == d.dc {
		return z
	}
	other := *z
	other.suffix = "." + dc + strings.TrimPrefix(z.suffix, "."+d.dc)
	return &other
}
