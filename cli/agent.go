package cli

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
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
		c, err := newClient(e, fs, false)
		if err != nil {
			return usageErr(e, "%v", err)
		}
		joins := 0
		for _, addr := range args {
			// Each address on its own, as Consul does: one that fails
			// does not stop the others.
			if err := c.send(http.MethodPut, "/v1/agent/join/"+addr, nil, nil); err != nil {
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
		c, err := newClient(e, fs, false)
		if err != nil {
			return usageErr(e, "%v", err)
		}
		if err := c.send(http.MethodPut, "/v1/agent/leave", nil, nil); err != nil {
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
		c, err := newClient(e, fs, false)
		if err != nil {
			return usageErr(e, "%v", err)
		}
		var q url.Values
		if flagBool(fs, "prune") {
			q = url.Values{"prune": {"1"}} // as Consul's client sends it
		}
		if err := c.send(http.MethodPut, "/v1/agent/force-leave/"+args[0], q, nil); err != nil {
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

// agentCheck is the part of a /v1/agent/checks entry maint reads.
type agentCheck struct {
	Node      string
	CheckID   string
	ServiceID string
	Notes     string
}

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
		enable, disable := flagBool(fs, "enable"), flagBool(fs, "disable")
		reason, service := flagString(fs, "reason"), flagString(fs, "service")
		switch {
		case enable && disable:
			return usageErr(e, "Only one of -enable or -disable may be provided")
		case !enable && reason != "":
			return usageErr(e, "Reason may only be provided with -enable")
		case !enable && !disable && service != "":
			return usageErr(e, "Service requires either -enable or -disable")
		}
		c, err := newClient(e, fs, false)
		if err != nil {
			return usageErr(e, "%v", err)
		}
		if !enable && !disable {
			return listMaintenance(e, c)
		}

		path, what := "/v1/agent/maintenance", "node maintenance"
		if service != "" {
			path, what = "/v1/agent/service/maintenance/"+service, "service maintenance"
		}
		// The query Consul's client sends: reason always with enable (an
		// empty one makes the agent use its default).
		q := url.Values{"enable": {"false"}}
		verb := "disabl"
		if enable {
			q = url.Values{"enable": {"true"}, "reason": {reason}}
			verb = "enabl"
		}
		if err := c.send(http.MethodPut, path, q, nil); err != nil {
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
	var checks map[string]agentCheck
	if err := c.getJSON("/v1/agent/checks", nil, &checks); err != nil {
		return fail(e, "getting checks", err)
	}
	var node *agentCheck
	var services []agentCheck
	for id, ch := range checks {
		if ch.CheckID == "" {
			ch.CheckID = id
		}
		switch {
		case ch.CheckID == nodeMaintCheckID:
			node = &ch
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
			var self struct{ Config struct{ NodeName string } }
			if err := c.getJSON("/v1/agent/self", nil, &self); err != nil {
				return fail(e, "querying the agent", err)
			}
			name = self.Config.NodeName
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
