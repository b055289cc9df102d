package state

import "errors"

// ErrNoServers is returned by a client agent that knows no alive server
// (gossip has found none), as Consul's "No known Consul servers".
var ErrNoServers = errors.New("no known servers")

// ForwardedHopHeader marks a request a server answers for another
// datacenter's agent: its API must not forward it again (a ?dc= naming yet
// another datacenter, or an address two datacenters share, would bounce
// it between servers until its deadline).
const ForwardedHopHeader = "X-Beacon-Forwarded-Hops"

// ErrNoPathToDC is returned for a request for a datacenter no server of
// the WAN pool belongs to (Consul's "No path to datacenter").
var ErrNoPathToDC = errors.New("no path to datacenter")

// ErrNoLeader is returned for a write when the cluster has no leader.
var ErrNoLeader = errors.New("no cluster leader")

// ErrNotLeader is returned for a write proposed on a follower.
var ErrNotLeader = errors.New("not the cluster leader")

// ErrLeadershipLost is returned for a write whose leader lost its
// leadership before it answered: the write may or may not be committed
// (raft's text, which Consul reports too).
var ErrLeadershipLost = errors.New("leadership lost while committing log")

// ErrPeerNotFound is returned by RemovePeer for a server that is not in the
// Raft configuration.
var ErrPeerNotFound = errors.New("not found in the Raft configuration")

// RaftServerInfo is one server of the Raft configuration, in the shape of
// Consul's /v1/operator/raft/configuration.
type RaftServerInfo struct {
	ID string
	// Node is the server's node name; raftstore does not know it and
	// leaves it empty for the caller to fill in.
	Node            string
	Address         string
	Leader          bool
	ProtocolVersion string
	Voter           bool
	// LastIndex is the last index of the server's own log.
	LastIndex uint64
}

// RaftConfigurationInfo is the Raft configuration and the index it was
// committed at.
type RaftConfigurationInfo struct {
	Servers []RaftServerInfo
	Index   uint64
}
