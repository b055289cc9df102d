package discovery

import (
	"github.com/beacon-dns/beacon/agent"
	"github.com/beacon-dns/beacon/corefile"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
)

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	a, err := agent.Acquire(cfg)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	// The agent outlives reloads: only the process's final shutdown stops it.
	c.OnFinalShutdown(agent.ShutdownFinal)

	d := New(a.Store(), cfg.DNS, a.Config())
	d.Readiness = a.Ready
	d.Staleness = a.Staleness
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
