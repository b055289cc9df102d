package cli

import (
	"flag"
	"fmt"
	"text/tabwriter"
)

var operatorCommand = &command{
	name:     "operator",
	synopsis: "Operate the cluster's servers: the Raft peer set",
	subs: []*command{{
		name:     "raft",
		synopsis: "Inspect and change the Raft configuration",
		subs:     []*command{listPeersCommand, removePeerCommand},
	}},
}

var listPeersCommand = &command{
	name:     "list-peers",
	synopsis: "List the servers of the Raft configuration, marking the leader",
	help:     "beacon operator raft list-peers [options]",
	http:     true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 0 {
			return usageErr(e, "unexpected argument %q", args[0])
		}
		c := e.client
		conf, err := c.Operator().RaftGetConfiguration(nil)
		if err != nil {
			return fail(e, "getting peers", decoded("/v1/operator/raft/configuration", err))
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "Node\tID\tAddress\tState\tVoter\tRaftProtocol")
		for _, s := range conf.Servers {
			if s == nil {
				continue
			}
			state := "follower"
			if s.Leader {
				state = "leader"
			}
			node, proto := s.Node, s.ProtocolVersion
			if node == "" {
				node = "(unknown)"
			}
			if proto == "" {
				proto = "<=1" // Consul's rendering of a server that does not say
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", node, s.ID, s.Address, state, s.Voter, proto)
		}
		if err := tw.Flush(); err != nil {
			return fail(e, "writing output", err)
		}
		return exitOK
	},
}

var removePeerCommand = &command{
	name:     "remove-peer",
	synopsis: "Remove a server from the Raft configuration (one that is gone for good)",
	help:     "beacon operator raft remove-peer [options] (-id=ID | -address=IP:port)",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.String("id", "", "The Raft ID of the server to remove.")
		fs.String("address", "", "The Raft address (IP:port) of the server to remove.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 0 {
			return usageErr(e, "unexpected argument %q", args[0])
		}
		id, address := flagString(fs, "id"), flagString(fs, "address")
		switch {
		case id == "" && address == "":
			return usageErr(e, "give either -id or -address")
		case id != "" && address != "":
			return usageErr(e, "give only one of -id or -address")
		}
		c := e.client
		remove := func() error { return c.Operator().RaftRemovePeerByAddress(address, nil) }
		if id != "" {
			remove = func() error { return c.Operator().RaftRemovePeerByID(id, nil) }
		}
		if err := remove(); err != nil {
			return fail(e, "removing peer", err)
		}
		if id != "" {
			fmt.Fprintf(e.stdout, "Removed peer with id %q\n", id)
		} else {
			fmt.Fprintf(e.stdout, "Removed peer with address %q\n", address)
		}
		return exitOK
	},
}
