package cli

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
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

// raftServer and raftConfiguration are the shape of
// /v1/operator/raft/configuration (Consul's).
type raftServer struct {
	ID              string
	Node            string
	Address         string
	Leader          bool
	ProtocolVersion string
	Voter           bool
}

type raftConfiguration struct {
	Servers []raftServer
	Index   uint64
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
		c, err := newClient(e, fs, false)
		if err != nil {
			return usageErr(e, "%v", err)
		}
		var conf raftConfiguration
		if err := c.getJSON("/v1/operator/raft/configuration", nil, &conf); err != nil {
			return fail(e, "getting peers", err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "Node\tID\tAddress\tState\tVoter\tRaftProtocol")
		for _, s := range conf.Servers {
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
		id, address := fs.Lookup("id").Value.String(), fs.Lookup("address").Value.String()
		q := url.Values{}
		switch {
		case id == "" && address == "":
			return usageErr(e, "give either -id or -address")
		case id != "" && address != "":
			return usageErr(e, "give only one of -id or -address")
		case id != "":
			q.Set("id", id)
		default:
			q.Set("address", address)
		}
		c, err := newClient(e, fs, false)
		if err != nil {
			return usageErr(e, "%v", err)
		}
		resp, cancel, err := c.do(request{method: http.MethodDelete, path: "/v1/operator/raft/peer", query: q})
		if err != nil {
			return fail(e, "removing peer", err)
		}
		resp.Body.Close()
		cancel()
		if id != "" {
			fmt.Fprintf(e.stdout, "Removed peer with id %q\n", id)
		} else {
			fmt.Fprintf(e.stdout, "Removed peer with address %q\n", address)
		}
		return exitOK
	},
}
