package raftstore

import (
	"net"
	"time"
)

// Relays: a client agent that relays keeps a change feed of what it is
// streamed, as a server keeps one of what it applies, and serves the same
// state stream on a port of its own (the stream protocol alone), so other
// client agents can follow it rather than a server. A server then streams
// to a few relays whatever the size of the fleet, and the fleet's cost
// falls on the relays, at one more hop of lag.
//
// A relay follows servers only; the other clients follow a relay when
// gossip lists one, and a server otherwise, and move from a server to a
// relay when one appears. So the tree is two levels deep and has no
// cycle. A relay's heartbeats pass on its leader and its own staleness
// (which includes its server's), so a client's staleness adds up along
// the tree. A relay refuses streams until it holds a state; a client whose
// relay dies resumes from its own index on another relay, or a server,
// from their feeds: the indexes are the cluster's.

// serveRelay opens the relay's port at addr; the replica keeps a feed from
// the first command on.
func (r *Replica) serveRelay(addr string) error {
	r.fsm.feed = newChangeFeed(feedMaxEntries, feedMaxBytes)
	r.relaySrc = &streamSource{fsm: r.fsm, stop: r.stop, logger: r.logger.Named("relay"),
		ready: r.Synced,
		view:  func() (string, time.Duration) { return r.Leader(), r.Staleness() }}
	port, err := listenPort(addr, r.tls, r.logger.Named("relay"), map[byte]func(net.Conn){protoStream: r.relaySrc.serve}, false)
	if err != nil {
		return err
	}
	r.port = port
	return nil
}

// RelayStats are the relay's feed and followers; zero when the replica
// does not relay.
func (r *Replica) RelayStats() FeedStats {
	if r.relaySrc == nil {
		return FeedStats{}
	}
	return r.relaySrc.stats()
}

// RelayAddr is the address the relay's port listens on, "" when the
// replica does not relay.
func (r *Replica) RelayAddr() string {
	if r.port == nil {
		return ""
	}
	return r.port.ln.Addr().String()
}
