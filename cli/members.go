package cli

import (
	"flag"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/consul/api"
)

// exitNoMembers is Consul's exit code of `members` when no member matches
// -status: nothing is printed.
const exitNoMembers = 2

// Member tags, as Consul names them.
const (
	tagRole       = "role"
	tagDC         = "dc"
	tagSegment    = "segment"
	tagPartition  = "ap"
	tagBuild      = "build"
	tagVsn        = "vsn"
	roleServer    = "consul"
	roleClient    = "node"
	partitionDflt = "default"
)

// memberStatus names serf's numeric member status as serf does.
func memberStatus(s int) string {
	switch s {
	case 0:
		return "none"
	case 1:
		return "alive"
	case 2:
		return "leaving"
	case 3:
		return "left"
	case 4:
		return "failed"
	}
	return "unknown"
}

func isDefaultPartition(p string) bool { return p == "" || p == partitionDflt }

var membersCommand = &command{
	name:     "members",
	synopsis: "Lists the members of the cluster (LAN gossip pool)",
	help:     "beacon members [options]",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("detailed", false, "Show each member's tags instead of the summary columns.")
		fs.String("status", ".*", "Show only members whose status (alive, leaving, left, failed) matches this regular expression.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if code := noArgs(e, args); code != exitOK {
			return code
		}
		statusRe, err := regexp.Compile(flagString(fs, "status"))
		if err != nil {
			return usageErr(e, "Failed to compile status regexp: %v", err)
		}
		c := e.client
		all, err := c.Agent().Members(false)
		if err != nil {
			return fail(e, "retrieving members", decoded("/v1/agent/members", err))
		}
		members := make([]*api.AgentMember, 0, len(all))
		for _, m := range all {
			if m == nil {
				continue
			}
			normalizeMemberTags(m)
			if statusRe.MatchString(memberStatus(m.Status)) {
				members = append(members, m)
			}
		}
		if len(members) == 0 {
			return exitNoMembers
		}
		sort.SliceStable(members, func(i, j int) bool { return memberLess(members[i], members[j]) })

		tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
		if flagOf[bool](fs, "detailed") {
			writeMembersDetailed(tw, members)
		} else {
			writeMembers(tw, members)
		}
		if err := tw.Flush(); err != nil {
			return fail(e, "writing output", err)
		}
		return exitOK
	},
}

// normalizeMemberTags fills the partition and segment tags as Consul's
// command does before it filters, sorts and prints (so -detailed shows
// them too): partition "default" when unset; in the default partition a
// server's segment is "<all>" and a client's "<default>" when unset; other
// partitions have no segment.
func normalizeMemberTags(m *api.AgentMember) {
	tags := make(map[string]string, len(m.Tags)+2)
	for k, v := range m.Tags {
		tags[k] = v
	}
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

// memberLess is Consul's order: servers first, then the default partition,
// then by segment, by partition, and by name.
func memberLess(a, b *api.AgentMember) bool {
	if sa, sb := a.Tags[tagRole] == roleServer, b.Tags[tagRole] == roleServer; sa != sb {
		return sa
	}
	if da, db := isDefaultPartition(a.Tags[tagPartition]), isDefaultPartition(b.Tags[tagPartition]); da != db {
		return da
	}
	if sa, sb := a.Tags[tagSegment], b.Tags[tagSegment]; sa != sb {
		return sa < sb
	}
	if pa, pb := a.Tags[tagPartition], b.Tags[tagPartition]; pa != pb {
		return pa < pb
	}
	return a.Name < b.Name
}

// memberAddr is Addr:Port, an IPv6 address in brackets.
func memberAddr(m *api.AgentMember) string {
	if ip := net.ParseIP(m.Addr); ip != nil {
		return (&net.TCPAddr{IP: ip, Port: int(m.Port)}).String()
	}
	return net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
}

// cell makes s one column cell: no tabs or line breaks of its own (a tag
// value is whatever a member advertised), no surrounding space.
func cell(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' {
			return ' '
		}
		return r
	}, s))
}

func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// writeMembers is Consul's default output.
func writeMembers(tw *tabwriter.Writer, members []*api.AgentMember) {
	row(tw, "Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment")
	for _, m := range members {
		build := m.Tags[tagBuild]
		if build == "" {
			build = "< 0.3" // Consul's rendering of a member that does not say
		} else if i := strings.Index(build, ":"); i >= 0 {
			build = build[:i] // "version:revision"
		}
		var kind string
		switch m.Tags[tagRole] {
		case roleServer:
			kind = "server"
		case roleClient:
			kind = "client"
		default:
			row(tw, m.Name, memberAddr(m), memberStatus(m.Status), "unknown", "", "", "", "", "")
			continue
		}
		row(tw, m.Name, memberAddr(m), memberStatus(m.Status), kind, build, m.Tags[tagVsn], m.Tags[tagDC],
			m.Tags[tagPartition], m.Tags[tagSegment])
	}
}

// writeMembersDetailed is Consul's -detailed output: the tags as
// key=value,... sorted by key.
func writeMembersDetailed(tw *tabwriter.Writer, members []*api.AgentMember) {
	row(tw, "Node", "Address", "Status", "Tags")
	for _, m := range members {
		keys := sortedKeys(m.Tags)
		pairs := make([]string, len(keys))
		for i, k := range keys {
			pairs[i] = k + "=" + m.Tags[k]
		}
		row(tw, m.Name, memberAddr(m), memberStatus(m.Status), strings.Join(pairs, ","))
	}
}
