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
// gossip lists one, and a server otherwise. So the tree is two levels deep
// and has no cycle. A client that follows a server probes a relay every
// 5–15 s and moves once one answers with a heartbeat at least at the
// client's index, its stream to the server going on meanwhile (the probe
// only asks; the replica then opens a new stream from its index of the
// moment, and a relay that offers it an older state first is left). A
// relay's heartbeats pass on its leader and its own staleness (which
// includes its server's), so a client's staleness adds up along the tree. A
// relay refuses streams, and ends those it serves, while it holds no state
// or its state stood still (nothing applied, not caught up with its server)
// for relayStaleAfter: cut off from the servers, or stuck on a command it
// cannot apply, its clients move to another relay or a server rather than
// stay with a state that no longer moves. A client whose relay dies resumes
// from its own index on another relay, or a server, from their feeds: the
// indexes are the cluster's.
//
// Clients move between relays only when theirs fails: relays added later,
// or restarted, take new clients and those of failed relays, and the load
// is not rebalanced otherwise.

// serveRelay opens the relay's port at addr; the replica keeps a feed from
// its first state on.
func (r *Replica) serveRelay(addr string) error {
	r.fsm.feed = newChangeFeed(feedMaxEntries, feedMaxBytes)
	r.relaySrc = &streamSource{fsm: r.fsm, stop: r.stop, logger: r.logger.Named("relay"),
		ready: func() bool { return r.Synced() && r.current() },
		view:  func() (string, time.Duration) { return r.Leader(), r.Staleness() }}
	port, err := listenPort("relay port", addr, r.tls, r.logger.Named("relay"), map[byte]func(net.Conn){protoStream: r.relaySrc.serve}, false)
	if err != nil {
		return err
	}
	r.port = port
	return nil
}

// relayStaleAfter is how long a relay's state may stand still, nothing
// applied and not caught up with its server, before it stops serving: two
// read timeouts, so that a relay that notices its server died (after one)
// has the other to reach another before its followers are sent away.
const relayStaleAfter = 2 * streamReadTimeout

// current reports whether the replica's state moved (a command or a state
// applied, or its source heard to be no further ahead) within
// relayStaleAfter.
func (r *Replica) current() bool {
	p := r.progress.Load()
	return p != 0 && time.Duration(r.sinceEpoch()-p) < relayStaleAfter
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
