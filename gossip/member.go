package gossip

import (
	"maps"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// Role is what an agent is in its datacenter.
type Role string

// Roles.
const (
	RoleServer Role = "server" // a Raft voter
	RoleClient Role = "client"
)

// MemberStatus is a member's state, numbered as Consul's (serf's) so the
// HTTP API can report it unchanged.
type MemberStatus int

// Member statuses.
const (
	StatusNone    MemberStatus = 0
	StatusAlive   MemberStatus = 1
	StatusLeaving MemberStatus = 2 // announced its leave, not gone yet
	StatusLeft    MemberStatus = 3 // left gracefully
	StatusFailed  MemberStatus = 4 // declared dead by failure detection
)

func (s MemberStatus) String() string {
	switch s {
	case StatusNone:
		return "none"
	case StatusAlive:
		return "alive"
	case StatusLeaving:
		return "leaving"
	case StatusLeft:
		return "left"
	case StatusFailed:
		return "failed"
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// Member is one agent of the pool as this agent last heard of it.
type Member struct {
	Name   string
	Addr   string // IP, as advertised in gossip
	Port   uint16 // gossip port
	Tags   map[string]string
	Status MemberStatus

	// Parsed from Tags; zero when the tag is missing or malformed.
	Role            Role
	Datacenter      string
	ID              string
	RPCAddr         string
	BootstrapExpect int
}

// IsServer reports whether the member advertises itself as a server.
func (m Member) IsServer() bool { return m.Role == RoleServer }

// clone returns m with its own copy of the tags, so callers may keep or
// change what they are given without touching the table.
func (m Member) clone() Member {
	m.Tags = maps.Clone(m.Tags)
	return m
}

// localTags are the tags this agent advertises.
func localTags(cfg *Config) map[string]string {
	tags := map[string]string{
		TagDC:  cfg.Datacenter,
		TagID:  cfg.NodeID,
		TagVsn: strconv.Itoa(ProtocolVersion),
	}
	switch cfg.Role {
	case RoleServer:
		tags[TagRole] = roleTagServer
		tags[TagRPCAddr] = cfg.RPCAddr
		if cfg.BootstrapExpect > 0 {
			tags[TagExpect] = strconv.Itoa(cfg.BootstrapExpect)
		}
	default:
		tags[TagRole] = roleTagClient
	}
	return tags
}

// memberFromNode builds a Member from what memberlist knows of a node; the
// caller sets its Status. Its metadata is decoded defensively: when it cannot
// be, the member keeps empty tags and the error is returned for the caller to
// log. leaving reports the node's leave intent (tagLeaving), which is not
// kept among the tags: it shows in the status.
func memberFromNode(n *memberlist.Node) (m Member, leaving bool, err error) {
	m = Member{Name: n.Name, Port: n.Port}
	if n.Addr != nil {
		m.Addr = n.Addr.String()
	}
	tags, err := decodeMeta(n.Meta)
	if err != nil {
		m.Tags = map[string]string{}
		return m, false, err
	}
	_, leaving = tags[tagLeaving]
	delete(tags, tagLeaving)
	m.Tags = tags
	m.parseTags()
	return m, leaving, nil
}

// parseTags fills the fields that come from the tags. Unknown or malformed
// values leave the field zero.
func (m *Member) parseTags() {
	switch m.Tags[TagRole] {
	case roleTagServer:
		m.Role = RoleServer
	case roleTagClient:
		m.Role = RoleClient
	}
	m.Datacenter = m.Tags[TagDC]
	m.ID = m.Tags[TagID]
	m.RPCAddr = m.Tags[TagRPCAddr]
	if v, ok := m.Tags[TagExpect]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			m.BootstrapExpect = n
		}
	}
}
