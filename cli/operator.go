package cli

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/consul/api"
)

// operator raft transfer-leader and operator autopilot, as Consul's.

var transferLeaderCommand = &command{name: "transfer-leader",
	synopsis: "Have the leader hand leadership to another server",
	help:     "beacon operator raft transfer-leader [options] [-id=ID]", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("id", "", "The Raft ID of the server to hand leadership to (the most up to date one when not given).")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		resp, err := e.client.Operator().RaftLeaderTransfer(flagString(fs, "id"), nil)
		if err != nil {
			return e.fail("Error transferring leadership: %v", err)
		}
		if !resp.Success {
			return e.fail("Error transferring leadership: the leader did not confirm it")
		}
		fmt.Fprintln(e.stdout, "Success")
		return exitOK
	},
}

var autopilotCommand = &command{name: "autopilot", synopsis: "Read and change autopilot's configuration and state",
	subs: []*command{autopilotGetCommand, autopilotSetCommand, autopilotStateCommand}}

var autopilotGetCommand = &command{name: "get-config", synopsis: "Display autopilot's configuration",
	help: "beacon operator autopilot get-config [options]", http: true, noArgs: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		c, err := e.client.Operator().AutopilotGetConfiguration(nil)
		if err != nil {
			return e.fail("Error querying Autopilot configuration: %v", err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "CleanupDeadServers = %v\n", c.CleanupDeadServers)
		fmt.Fprintf(&b, "LastContactThreshold = %s\n", c.LastContactThreshold.String())
		fmt.Fprintf(&b, "MaxTrailingLogs = %d\n", c.MaxTrailingLogs)
		fmt.Fprintf(&b, "MinQuorum = %d\n", c.MinQuorum)
		fmt.Fprintf(&b, "ServerStabilizationTime = %s\n", c.ServerStabilizationTime.String())
		fmt.Fprintf(&b, "RedundancyZoneTag = %q\n", c.RedundancyZoneTag)
		fmt.Fprintf(&b, "DisableUpgradeMigration = %v\n", c.DisableUpgradeMigration)
		fmt.Fprintf(&b, "UpgradeVersionTag = %q\n", c.UpgradeVersionTag)
		return writeOutput(e, b.String())
	},
}

var autopilotSetCommand = &command{name: "set-config", synopsis: "Change autopilot's configuration",
	help: "beacon operator autopilot set-config [options]", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("cleanup-dead-servers", "", "true or false: remove servers gossip holds failed, when a quorum stays.")
		fs.Duration("last-contact-threshold", 0, "A server not heard from by the leader for longer is unhealthy.")
		fs.Int("max-trailing-logs", -1, "A server further behind the leader's log is unhealthy.")
		fs.Int("min-quorum", -1, "Dead servers are not removed below this many voters.")
		fs.Duration("server-stabilization-time", 0, "How long a server must be healthy to be stable, and failed to be removed.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		op := e.client.Operator()
		c, err := op.AutopilotGetConfiguration(nil)
		if err != nil {
			return e.fail("Error querying Autopilot configuration: %v", err)
		}
		switch v := flagString(fs, "cleanup-dead-servers"); v {
		case "":
		case "true", "false":
			c.CleanupDeadServers = v == "true"
		default:
			return usageErr(e, "-cleanup-dead-servers takes true or false, got %q", v)
		}
		if d := flagOf[time.Duration](fs, "last-contact-threshold"); d != 0 {
			c.LastContactThreshold = api.NewReadableDuration(d)
		}
		if d := flagOf[time.Duration](fs, "server-stabilization-time"); d != 0 {
			c.ServerStabilizationTime = api.NewReadableDuration(d)
		}
		if n := flagOf[int](fs, "max-trailing-logs"); n >= 0 {
			c.MaxTrailingLogs = uint64(n)
		}
		if n := flagOf[int](fs, "min-quorum"); n >= 0 {
			c.MinQuorum = uint(n)
		}
		ok, err := op.AutopilotCASConfiguration(c, nil)
		if err != nil {
			return e.fail("Error setting Autopilot configuration: %v", err)
		}
		if !ok {
			return e.fail("Configuration could not be atomically updated, please try again")
		}
		fmt.Fprintln(e.stdout, "Configuration updated!")
		return exitOK
	},
}

var autopilotStateCommand = &command{name: "state", synopsis: "Display autopilot's view of the servers",
	help: "beacon operator autopilot state [options]", http: true, noArgs: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		st, err := e.client.Operator().AutopilotState(nil)
		if err != nil {
			return e.fail("Error querying Autopilot state: %v", err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Healthy:                      %v\n", st.Healthy)
		fmt.Fprintf(&b, "Failure Tolerance:            %d\n", st.FailureTolerance)
		fmt.Fprintf(&b, "Optimistic Failure Tolerance: %d\n", st.OptimisticFailureTolerance)
		fmt.Fprintf(&b, "Leader:                       %s\n", st.Leader)
		fmt.Fprintf(&b, "Voters:\n")
		for _, v := range st.Voters {
			fmt.Fprintf(&b, "   %s\n", v)
		}
		fmt.Fprintf(&b, "\nServers:\n")
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		for _, id := range st.Voters {
			s := st.Servers[id]
			fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\thealthy %v\tindex %d\n", s.ID, s.Name, s.Address, s.Status, s.Healthy, s.LastIndex)
		}
		tw.Flush()
		return writeOutput(e, b.String())
	},
}
