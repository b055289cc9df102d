package discovery

import (
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/corefile"
	"github.com/beacon-dns/beacon/state"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
)

// Agent is what the plugin needs of the process's agent.
type Agent interface {
	// Store is the local replica of the state, which answers every query.
	Store() *state.Store
	Config() corefile.AgentConfig
	// Ready reports whether the agent can answer (the readiness of the
	// `ready` plugin).
	Ready() bool
	// Staleness is how long ago the replica last heard from the leader.
	Staleness() time.Duration
	// DNSAuthorizer is what DNS may answer; nil while ACLs are off.
	DNSAuthorizer() *acl.Authorizer
	// Other datacenters' catalogs, asked through the servers.
	RemoteCatalog
}

// Agents hands the plugin the process's one agent. main wires it to
// package agent: the plugin does not import it, so the DNS path does not
// link Raft.
type Agents struct {
	// Acquire returns the running agent, starting it from cfg when none
	// runs; it refuses a cfg that changes what cannot change live.
	Acquire func(cfg *corefile.Config) (Agent, error)
	// ShutdownFinal stops the agent when the process exits.
	ShutdownFinal func() error
	// ApplyLive, when set, applies the agent settings of cfg that change
	// live (TLS). It is called once the whole Corefile has set up, so a
	// reload that fails elsewhere changes none of them; its error fails
	// the reload.
	ApplyLive func(cfg *corefile.Config) error
}

// Register adds the `discovery` directive to CoreDNS, its blocks attached
// to the agent agents gives. main calls it once, before CoreDNS starts,
// where a CoreDNS plugin would register itself in init: the plugin cannot
// name the agent.
func Register(agents Agents) {
	plugin.Register(pluginName, func(c *caddy.Controller) error { return setup(c, agents) })
}

func setup(c *caddy.Controller, agents Agents) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	a, err := agents.Acquire(cfg)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	// The agent outlives reloads: only the process's final shutdown stops it.
	c.OnFinalShutdown(agents.ShutdownFinal)
	if agents.ApplyLive != nil && cfg.AgentSet {
		c.OnStartup(func() error { return agents.ApplyLive(cfg) })
	}

	d := New(a.Store(), cfg.DNS, a.Config())
	d.Readiness = a.Ready
	d.Staleness = a.Staleness
	d.Authorizer = a.DNSAuthorizer
	d.Remote = a
	if q, ok := a.(PreparedQueries); ok {
		d.Queries = q
	}
	// Shutdown of this server instance (a reload, or the end) stops the
	// handler's cache watchers; the agent carries on.
	c.OnShutdown(d.shutdown)
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		d.Next = next
		return d
	})
	return nil
}

// parse reads the block, refusing a second discovery directive in the same
// server block, which would otherwise be silently ignored.
func parse(c *caddy.Controller) (*corefile.Config, error) {
	cfg, err := corefile.Parse(c)
	if err != nil {
		return nil, err
	}
	if c.Next() {
		return nil, c.Errf("discovery: only one discovery block is allowed per server block")
	}
	return cfg, nil
}
