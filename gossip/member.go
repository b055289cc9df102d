package gossip

import (
	"maps"
	"strconv"

	"github.com/hashicorp/serf/serf"
)

// Role is what an agent is in its datacenter.
type Role string

// Roles.
const (
	RoleServer Role = "server" // a Raft voter
	RoleClient Role = "client"
)

// MemberStatus is a member's state, numbered as serf's (and so Consul's) so
// the HTTP API can report it unchanged.
type MemberStatus int

// Member statuses.
const (
	StatusNone    MemberStatus = MemberStatus(serf.StatusNone)
	StatusAlive   MemberStatus = MemberStatus(serf.StatusAlive)
	StatusLeaving MemberStatus = MemberStatus(serf.StatusLeaving) // announced its leave, not gone yet
	StatusLeft    MemberStatus = MemberStatus(serf.StatusLeft)    // left gracefully, or forced out
	StatusFailed  MemberStatus = MemberStatus(serf.StatusFailed)  // declared dead by failure detection
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

// Tag keys, as Consul names them where it has them.
const (
	TagRole    = "role"     // "consul" for servers, "node" for clients
	TagDC      = "dc"       // datacenter
	TagID      = "id"       // node ID
	TagRPCAddr = "rpc_addr" // servers: where they take Raft and RPC
	TagExpect  = "expect"   // servers started with bootstrap_expect
	TagWANAddr = "wan_addr" // servers, in the LAN pool: their WAN pool's address
	TagVsn     = "vsn"      // beacon's gossip protocol version
	// TagRelayAddr is beacon's: where a client agent that relays the
	// state stream takes its followers.
	TagRelayAddr = "relay_addr"
)

// Values of TagRole.
const (
	roleTagServer = "consul"
	roleTagClient = "node"
)

// ProtocolVersion is advertised in TagVsn. Raise it when what members expect
// of each other changes.
const ProtocolVersion = 2

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
	RelayAddr       string
	BootstrapExpect int
}

// IsServer reports whether the member advertises itself as a server.
func (m Member) IsServer() bool { return m.Role == RoleServer }

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
		if cfg.WANAddr != "" {
			tags[TagWANAddr] = cfg.WANAddr
		}
		if cfg.BootstrapExpect > 0 {
			tags[TagExpect] = strconv.Itoa(cfg.BootstrapExpect)
		}
	default:
		tags[TagRole] = roleTagClient
		if cfg.RelayAddr != "" {
			tags[TagRelayAddr] = cfg.RelayAddr
		}
	}
	return tags
}

// memberFromSerf is serf's member as a Member, with its own copy of the
// tags so callers may keep or change it.
func memberFromSerf(sm serf.Member) Member {
	m := Member{Name: sm.Name, Port: sm.Port, Tags: maps.Clone(sm.Tags), Status: MemberStatus(sm.Status)}
	if m.Tags == nil {
		m.Tags = map[string]string{}
	}
	if sm.Addr != nil {
		m.Addr = sm.Addr.String()
	}
	m.parseTags()
	return m
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
	m.RelayAddr = m.Tags[TagRelayAddr]
	if v, ok := m.Tags[TagExpect]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			m.BootstrapExpect = n
		}
	}
}
