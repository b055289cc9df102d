package cli

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/consul/api"
)

// The commands on the agent and the cluster's membership: join, leave,
// force-leave, maint, members, keygen, keyring, operator raft.

var joinCommand = &command{name: "join", synopsis: "Tell the agent to join the cluster through one or more members",
	help: "beacon join [options] ADDRESS...", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("wan", false, "Join the WAN pool (a server joining another datacenter's servers).")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) == 0 {
			return usageErr(e, "At least one address to join must be specified.")
		}
		joins := 0
		for _, addr := range args { // each on its own, as Consul does: one that fails does not stop the others
			if err := e.client.Agent().Join(addr, flagOf[bool](fs, "wan")); err != nil {
				fmt.Fprintf(e.stderr, "Error joining address '%s': %v\n", addr, err)
			} else {
				joins++
			}
		}
		if joins == 0 {
			return e.fail("Failed to join any nodes.")
		}
		fmt.Fprintf(e.stdout, "Successfully joined cluster by contacting %d nodes.\n", joins)
		return exitOK
	},
}

var leaveCommand = &command{name: "leave", synopsis: "Gracefully leaves the cluster and shuts the agent down",
	help: "beacon leave [options]", http: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 0 {
			return usageErr(e, "found unexpected args: %v", args)
		}
		if err := e.client.Agent().Leave(); err != nil {
			return e.fail("Error leaving: %v", err)
		}
		fmt.Fprintln(e.stdout, "Graceful leave complete")
		return exitOK
	},
}

var forceLeaveCommand = &command{name: "force-leave", help: "beacon force-leave [options] NODE", http: true,
	synopsis: `Forces a member of the cluster to enter the "left" state`,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("prune", false, "Remove the member from the list of members altogether, not only mark it left.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) != 1 || args[0] == "" {
			return usageErr(e, "A single node name must be specified to force leave.")
		}
		prune := api.ForceLeaveOpts{Prune: flagOf[bool](fs, "prune")}
		if err := e.client.Agent().ForceLeaveOptions(args[0], prune, nil); err != nil {
			return e.fail("Error force leaving: %v", err)
		}
		return exitOK // Consul prints nothing on success
	},
}

// Consul's maintenance check IDs.
const nodeMaintCheckID, serviceMaintCheckIDPrefix = "_node_maintenance", "_service_maintenance:"

var maintCommand = &command{name: "maint", synopsis: "Controls node or service maintenance mode",
	help: "beacon maint [options]", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("enable", false, "Enable maintenance mode.")
		fs.Bool("disable", false, "Disable maintenance mode.")
		fs.String("reason", "", "Why the node or service is in maintenance (the check's Notes); only with -enable.")
		fs.String("service", "", "The ID of a service to put in or take out of maintenance, instead of the whole node.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		enable, disable := flagOf[bool](fs, "enable"), flagOf[bool](fs, "disable")
		reason, service := flagString(fs, "reason"), flagString(fs, "service")
		switch {
		case enable && disable:
			return usageErr(e, "Only one of -enable or -disable may be provided")
		case !enable && reason != "":
			return usageErr(e, "Reason may only be provided with -enable")
		case !enable && !disable && service != "":
			return usageErr(e, "Service requires either -enable or -disable")
		case !enable && !disable:
			return listMaintenance(e)
		}
		agent, verb, err := e.client.Agent(), "disabl", error(nil)
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
		if enable {
			verb = "enabl"
		}
		switch {
		case err != nil && service == "":
			return e.fail("Error %sing node maintenance: %v", verb, err)
		case err != nil:
			return e.fail("Error %sing service maintenance: %v", verb, err)
		case service == "":
			e.info("Node maintenance is now %sed", verb)
		default:
			e.info("Service maintenance is now %sed for %q", verb, service)
		}
		return exitOK
	},
}

// listMaintenance prints what is in maintenance as Consul's `maint` does,
// the node first and services by ID (Consul's order is its map's).
func listMaintenance(e *env) int {
	checks, err := e.client.Agent().Checks()
	if err != nil {
		return e.fail("Error getting checks: %v", decoded("/v1/agent/checks", err))
	}
	var node *api.AgentCheck
	var services []*api.AgentCheck
	for id, check := range checks {
		if check == nil {
			continue
		}
		if check.CheckID == "" {
			check.CheckID = id
		}
		switch {
		case check.CheckID == nodeMaintCheckID:
			node = check
		case strings.HasPrefix(check.CheckID, serviceMaintCheckIDPrefix):
			if check.ServiceID == "" {
				check.ServiceID = strings.TrimPrefix(check.CheckID, serviceMaintCheckIDPrefix)
			}
			services = append(services, check)
		}
	}
	sort.Slice(services, func(i, j int) bool { return services[i].ServiceID < services[j].ServiceID })
	var b strings.Builder
	if node != nil {
		name := node.Node
		if name == "" { // the check does not say whose it is: ask the agent, as Consul's command always does
			self, err := e.client.Agent().Self()
			if err != nil {
				return e.fail("Error querying the agent: %v", decoded("/v1/agent/self", err))
			}
			name, _ = self["Config"]["NodeName"].(string)
		}
		fmt.Fprintf(&b, "Node:\n  Name:   %s\n  Reason: %s\n\n", name, node.Notes)
	}
	for _, s := range services {
		fmt.Fprintf(&b, "Service:\n  ID:     %s\n  Reason: %s\n\n", s.ServiceID, s.Notes)
	}
	return writeOutput(e, b.String())
}

// exitNoMembers is Consul's exit code of `members` when no member matches
// -status: nothing is printed.
const exitNoMembers = 2

// Member tags, as Consul names them.
const (
	tagRole, tagDC, tagSegment, tagPartition = "role", "dc", "segment", "ap"
	tagBuild, tagVsn                         = "build", "vsn"
	roleServer, roleClient, partitionDflt    = "consul", "node", "default"
)

// memberStatus names serf's numeric member status as serf does.
func memberStatus(s int) string {
	if names := []string{"none", "alive", "leaving", "left", "failed"}; s >= 0 && s < len(names) {
		return names[s]
	}
	return "unknown"
}

func isDefaultPartition(p string) bool { return p == "" || p == partitionDflt }

var membersCommand = &command{name: "members", synopsis: "Lists the members of the cluster (LAN gossip pool)",
	help: "beacon members [options]", http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("detailed", false, "Show each member's tags instead of the summary columns.")
		fs.String("status", ".*", "Show only members whose status (alive, leaving, left, failed) matches this regexp.")
		fs.Bool("wan", false, "List the WAN pool's members (every datacenter's servers) instead.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		statusRe, err := regexp.Compile(flagString(fs, "status"))
		if err != nil {
			return usageErr(e, "Failed to compile status regexp: %v", err)
		}
		all, err := e.client.Agent().Members(flagOf[bool](fs, "wan"))
		if err != nil {
			return e.fail("Error retrieving members: %v", decoded("/v1/agent/members", err))
		}
		members := make([]*api.AgentMember, 0, len(all))
		for _, m := range all {
			if m != nil && statusRe.MatchString(memberStatus(m.Status)) {
				normalizeMemberTags(m)
				members = append(members, m)
			}
		}
		if len(members) == 0 {
			return exitNoMembers
		}
		// Consul's order: servers first, then the default partition, then
		// by segment, partition and name ("false" sorts before "true").
		order := func(m *api.AgentMember) []string {
			return []string{strconv.FormatBool(m.Tags[tagRole] != roleServer),
				strconv.FormatBool(!isDefaultPartition(m.Tags[tagPartition])), m.Tags[tagSegment], m.Tags[tagPartition], m.Name}
		}
		slices.SortStableFunc(members, func(a, b *api.AgentMember) int { return slices.Compare(order(a), order(b)) })

		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		detailed := flagOf[bool](fs, "detailed")
		if detailed {
			row(tw, "Node", "Address", "Status", "Tags")
		} else {
			row(tw, "Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment")
		}
		for _, m := range members {
			addr, status := net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port))), memberStatus(m.Status)
			switch kind := map[string]string{roleServer: "server", roleClient: "client"}[m.Tags[tagRole]]; {
			case detailed: // the tags as key=value,... by key
				tags := make([]string, 0, len(m.Tags))
				for _, k := range slices.Sorted(maps.Keys(m.Tags)) {
					tags = append(tags, k+"="+m.Tags[k])
				}
				row(tw, m.Name, addr, status, strings.Join(tags, ","))
			case kind == "":
				row(tw, m.Name, addr, status, "unknown", "", "", "", "", "")
			default:
				build, _, _ := strings.Cut(m.Tags[tagBuild], ":") // "version:revision"
				if m.Tags[tagBuild] == "" {
					build = "< 0.3" // Consul's rendering of a member that does not say
				}
				row(tw, m.Name, addr, status, kind, build, m.Tags[tagVsn], m.Tags[tagDC], m.Tags[tagPartition], m.Tags[tagSegment])
			}
		}
		tw.Flush()
		return writeOutput(e, b.String())
	},
}

// normalizeMemberTags fills the partition and segment tags as Consul's
// command does before it sorts and prints (so -detailed shows them too).
func normalizeMemberTags(m *api.AgentMember) {
	tags := map[string]string{}
	maps.Copy(tags, m.Tags)
	if tags[tagPartition] == "" {
		tags[tagPartition] = partitionDflt
	}
	switch {
	case !isDefaultPartition(tags[tagPartition]):
		tags[tagSegment] = ""
	case tags[tagRole] == roleServer:
		tags[tagSegment] = "<all>"
	case tags[tagSegment] == "":
		tags[tagSegment] = "<default>"
	}
	m.Tags = tags
}

// row writes one row of cells, each with no tabs or line breaks of its own
// (a tag value is whatever a member advertised) and no surrounding space.
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = strings.TrimSpace(strings.Map(func(r rune) rune {
			if strings.ContainsRune("\t\n\r\v\f", r) {
				return ' '
			}
			return r
		}, c))
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// gossipKeySize is the size of a key keygen makes: 32 bytes, AES-256, as
// Consul's keygen makes them (memberlist takes 16, 24 or 32).
const gossipKeySize = 32

var keygenCommand = &command{name: "keygen", synopsis: "Generates a new gossip encryption key",
	help: "beacon keygen", noArgs: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		key := make([]byte, gossipKeySize)
		if _, err := rand.Read(key); err != nil {
			return e.fail("Error reading random data: %v", err)
		}
		fmt.Fprintln(e.stdout, base64.StdEncoding.EncodeToString(key))
		return exitOK
	},
}

// maxRelayFactor is Consul's bound on -relay-factor.
const maxRelayFactor = 5

var keyringCommand = &command{name: "keyring", synopsis: "Manages gossip layer encryption keys",
	help: "beacon keyring [options] (-list | -list-primary | -install=KEY | -use=KEY | -remove=KEY)",
	http: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("list", false, "List the keys installed in each gossip pool, with how many members have each.")
		fs.Bool("list-primary", false, "List the primary key of each gossip pool, with how many members use each.")
		fs.String("install", "", "Install KEY (base64) on every member, beside the keys they have.")
		fs.String("use", "", "Make KEY, installed already, the primary key: the one messages are encrypted with.")
		fs.String("remove", "", "Remove KEY, which must not be the primary key, from every member.")
		fs.Int("relay-factor", 0, "Have members relay their answers through this many other members (0 to 5).")
		fs.Bool("local-only", false, "Ask only this datacenter's servers (lists only).")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		list, listPrimary := flagOf[bool](fs, "list"), flagOf[bool](fs, "list-primary")
		install, use, remove := flagString(fs, "install"), flagString(fs, "use"), flagString(fs, "remove")
		relay, local := flagOf[int](fs, "relay-factor"), flagOf[bool](fs, "local-only")
		unset := func(set bool) bool { return !set }
		actions := len(slices.DeleteFunc([]bool{list, listPrimary, install != "", use != "", remove != ""}, unset))
		switch {
		case actions == 0:
			return usageErr(e, "give one of -list, -list-primary, -install, -use or -remove")
		case actions > 1:
			return usageErr(e, "Only a single action is allowed")
		case relay < 0 || relay > maxRelayFactor:
			return usageErr(e, "Relay factor must be in range: [0, %d]", maxRelayFactor)
		case local && !list && !listPrimary:
			return usageErr(e, "local-only can only be set for list requests")
		}
		operator := e.client.Operator()
		if list || listPrimary {
			if list {
				fmt.Fprintln(e.stdout, "==> Gathering installed encryption keys...")
			} else {
				fmt.Fprintln(e.stdout, "==> Gathering installed primary encryption keys...")
			}
			pools, err := operator.KeyringList(&api.QueryOptions{RelayFactor: uint8(relay), LocalOnly: local})
			if err != nil {
				return e.fail("error: %v", decoded("/v1/operator/keyring", err)) // Consul's words for it
			}
			// Each pool as Consul's command writes it, with the messages and
			// keys sorted (Consul prints them in its map's order).
			var b strings.Builder
			for _, p := range pools {
				if p == nil {
					continue
				}
				pool, keys := p.Datacenter+" (LAN)", p.Keys
				if p.WAN {
					pool = "WAN"
				}
				if listPrimary {
					keys = p.PrimaryKeys
				}
				if p.Segment != "" {
					pool += " [" + p.Segment + "]"
				} else if !isDefaultPartition(p.Partition) {
					pool += " [partition: " + p.Partition + "]"
				}
				fmt.Fprintf(&b, "\n%s:\n", pool)
				for _, from := range slices.Sorted(maps.Keys(p.Messages)) {
					fmt.Fprintf(&b, "  ===> %s: %s\n", from, p.Messages[from])
				}
				for _, k := range slices.Sorted(maps.Keys(keys)) {
					fmt.Fprintf(&b, "  %s [%d/%d]\n", k, keys[k], p.NumNodes)
				}
			}
			return writeOutput(e, b.String())
		}
		change, key, doing := operator.KeyringInstall, install, "Installing new gossip encryption key..."
		switch {
		case use != "":
			change, key, doing = operator.KeyringUse, use, "Changing primary gossip encryption key..."
		case remove != "":
			change, key, doing = operator.KeyringRemove, remove, "Removing gossip encryption key..."
		}
		fmt.Fprintln(e.stdout, "==> "+doing)
		if err := change(key, &api.WriteOptions{RelayFactor: uint8(relay)}); err != nil {
			return e.fail("error: %v", err)
		}
		return exitOK
	},
}

var operatorCommand = &command{name: "operator", synopsis: "Operate the cluster's servers: the Raft peer set, autopilot",
	subs: []*command{{
		name:     "raft",
		synopsis: "Inspect and change the Raft configuration",
		subs:     []*command{listPeersCommand, removePeerCommand, transferLeaderCommand},
	}, autopilotCommand},
}

var listPeersCommand = &command{name: "list-peers", help: "beacon operator raft list-peers [options]",
	http: true, noArgs: true,
	synopsis: "List the servers of the Raft configuration, marking the leader",
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		conf, err := e.client.Operator().RaftGetConfiguration(nil)
		if err != nil {
			return e.fail("Error getting peers: %v", decoded("/v1/operator/raft/configuration", err))
		}
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "Node\tID\tAddress\tState\tVoter\tRaftProtocol\tCommit Index\tTrails Leader By")
		var leaderIndex uint64
		for _, s := range conf.Servers {
			if s != nil && s.Leader {
				leaderIndex = s.LastIndex
			}
		}
		for _, s := range conf.Servers {
			if s == nil {
				continue
			}
			state, trails := "follower", "-"
			if s.Leader {
				state = "leader"
			} else if leaderIndex >= s.LastIndex {
				trails = fmt.Sprintf("%d commits", leaderIndex-s.LastIndex)
			}
			// "<=1" is Consul's rendering of a server that does not say.
			node, proto := cmp.Or(s.Node, "(unknown)"), cmp.Or(s.ProtocolVersion, "<=1")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%d\t%s\n", node, s.ID, s.Address, state, s.Voter, proto, s.LastIndex, trails)
		}
		tw.Flush()
		return writeOutput(e, b.String())
	},
}

var removePeerCommand = &command{name: "remove-peer",
	synopsis: "Remove a server from the Raft configuration (one that is gone for good)",
	help:     "beacon operator raft remove-peer [options] (-id=ID | -address=IP:port)", http: true,
	noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("id", "", "The Raft ID of the server to remove.")
		fs.String("address", "", "The Raft address (IP:port) of the server to remove.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		id, address := flagString(fs, "id"), flagString(fs, "address")
		switch {
		case id == "" && address == "":
			return usageErr(e, "give either -id or -address")
		case id != "" && address != "":
			return usageErr(e, "give only one of -id or -address")
		}
		operator, by, peer := e.client.Operator(), "address", address
		remove := operator.RaftRemovePeerByAddress
		if id != "" {
			remove, by, peer = operator.RaftRemovePeerByID, "id", id
		}
		if err := remove(peer, nil); err != nil {
			return e.fail("Error removing peer: %v", err)
		}
		fmt.Fprintf(e.stdout, "Removed peer with %s %q\n", by, peer)
		return exitOK
	},
}
