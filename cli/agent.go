package cli

import (
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/consul/api"
)

// The commands on the local agent's membership and maintenance: join,
// leave, force-leave, maint.

var joinCommand = &command{
	name:     "join",
	synopsis: "Tell the agent to join the cluster through one or more members",
	help:     "beacon join [options] ADDRESS...",
	http:     true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) == 0 {
			return usageErr(e, "At least one address to join must be specified.")
		}
		c := e.client
		joins := 0
		for _, addr := range args {
			// Each address on its own, as Consul does: one that fails
			// does not stop the others.
			if err := c.Agent().Join(addr, false); err != nil {
				fmt.Fprintf(e.stderr, "Error joining address '%s': %v\n", addr, err)
				continue
			}
			joins++
		}
		if joins == 0 {
			fmt.Fprintln(e.stderr, "Failed to join any nodes.")
			return exitError
		}
		fmt.Fprintf(e.stdout, "Successfully joined cluster by contacting %d nodes.\n", joins)
		return exitOK
	},
}

var leaveCommand = &command{
	name:     "leave",
	synopsis: "Gracefully leaves the cluster and shuts the agent down",
	help:     "beacon leave [options]",
	http:     true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 0 {
			return usageErr(e, "found unexpected args: %v", args)
		}
		c := e.client
		if err := c.Agent().Leave(); err != nil {
			return fail(e, "leaving", err)
		}
		fmt.Fprintln(e.stdout, "Graceful leave complete")
		return exitOK
	},
}

var forceLeaveCommand = &command{
	name:     "force-leave",
	synopsis: `Forces a member of the cluster to enter the "left" state`,
	help:     "beacon force-leave [options] NODE",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("prune", false, "Remove the member from the list of members altogether, not only mark it left.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) != 1 || args[0] == "" {
			return usageErr(e, "A single node name must be specified to force leave.")
		}
		c := e.client
		if err := c.Agent().ForceLeaveOptions(args[0], api.ForceLeaveOpts{Prune: flagOf[bool](fs, "prune")}, nil); err != nil {
			return fail(e, "force leaving", err)
		}
		return exitOK // Consul prints nothing on success
	},
}

// Consul's maintenance check IDs.
const (
	nodeMaintCheckID       = "_node_maintenance"
	serviceMaintCheckIDPre = "_service_maintenance:"
)

var maintCommand = &command{
	name:     "maint",
	synopsis: "Controls node or service maintenance mode",
	help:     "beacon maint [options]",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("enable", false, "Enable maintenance mode.")
		fs.Bool("disable", false, "Disable maintenance mode.")
		fs.String("reason", "", "Why the node or service is in maintenance (the check's Notes); only with -enable.")
		fs.String("service", "", "The ID of a service to put in or take out of maintenance, instead of the whole node.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if code := noArgs(e, args); code != exitOK {
			return code
		}
		enable, disable := flagOf[bool](fs, "enable"), flagOf[bool](fs, "disable")
		reason, service := flagString(fs, "reason"), flagString(fs, "service")
		switch {
		case enable && disable:
			return usageErr(e, "Only one of -enable or -disable may be provided")
		case !enable && reason != "":
			return usageErr(e, "Reason may only be provided with -enable")
		case !enable && !disable && service != "":
			return usageErr(e, "Service requires either -enable or -disable")
		}
		c := e.client
		if !enable && !disable {
			return listMaintenance(e, c)
		}
		agent := c.Agent()
		var err error
		switch {
		case service == "" && enable:
			err = agent.EnableNodeMaintenance(reason)
		case service == "":
			err = agent.DisableNodeMaintenance()
		case enable:
			err = agent.EnableServiceMaintenance(service, reason)
		default:
			err = agent.DisableServiceMaintenance(service)
		}
		verb, what := "disabl", "node maintenance"
		if enable {
			verb = "enabl"
		}
		if service != "" {
			what = "service maintenance"
		}
		if err != nil {
			return fail(e, verb+"ing "+what, err)
		}
		if service == "" {
			fmt.Fprintf(e.stdout, "Node maintenance is now %sed\n", verb)
		} else {
			fmt.Fprintf(e.stdout, "Service maintenance is now %sed for %q\n", verb, service)
		}
		return exitOK
	},
}

// listMaintenance prints what is in maintenance, as Consul's `maint`
// without flags: a "Node:" block for the node, a "Service:" block per
// service, each followed by a blank line; nothing when nothing is. The node
// comes first and services follow by ID (Consul's order is its map's).
func listMaintenance(e *env, c *client) int {
	checks, err := c.Agent().Checks()
	if err != nil {
		return fail(e, "getting checks", decoded("/v1/agent/checks", err))
	}
	var node *api.AgentCheck
	var services []*api.AgentCheck
	for id, ch := range checks {
		if ch == nil {
			continue
		}
		if ch.CheckID == "" {
			ch.CheckID = id
		}
		switch {
		case ch.CheckID == nodeMaintCheckID:
			node = ch
		case strings.HasPrefix(ch.CheckID, serviceMaintCheckIDPre):
			if ch.ServiceID == "" {
				ch.ServiceID = strings.TrimPrefix(ch.CheckID, serviceMaintCheckIDPre)
			}
			services = append(services, ch)
		}
	}
	sort.Slice(services, func(i, j int) bool { return services[i].ServiceID < services[j].ServiceID })

	var b strings.Builder
	if node != nil {
		name := node.Node
		if name == "" {
			// The check does not say whose it is: ask the agent its
			// name, as Consul's command always does.
			self, err := c.Agent().Self()
			if err != nil {
				return fail(e, "querying the agent", decoded("/v1/agent/self", err))
			}
			name, _ = self["Config"]["NodeName"].(string)
		}
		fmt.Fprintf(&b, "Node:\n  Name:   %s\n  Reason: %s\n\n", name, node.Notes)
	}
	for _, s := range services {
		fmt.Fprintf(&b, "Service:\n  ID:     %s\n  Reason: %s\n\n", s.ServiceID, s.Notes)
	}
	if _, err := fmt.Fprint(e.stdout, b.String()); err != nil {
		return fail(e, "writing output", err)
	}
	return exitOK
}
