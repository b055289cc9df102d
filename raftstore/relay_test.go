package raftstore

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// startLeader starts a server that leads alone, with node n1 registered,
// and returns it, its address and its store.
func startLeader(t *testing.T) (*Server, string, *state.Store) {
	t.Helper()
	store := state.NewStore()
	addr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), addr, store)
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"))
	return leader, addr, store
}

// startRelay starts a relaying replica following the servers of list.
func startRelay(t *testing.T, list *serverList) *Replica {
	t.Helper()
	return startReplica(t, replicaConfig{servers: list.get, relayAddr: "127.0.0.1:0", logger: testLogger(t)})
}

// TestRelayPassesTheStreamOn: a client that follows a relay gets every
// command, the leader and a bounded staleness through it, while the
// server streams to the relays only; it starts over with the relay after
// a restore, and resumes from its own index (no snapshot) on another
// relay when its relay dies, and on a server when no relay is left.
func TestRelayPassesTheStreamOn(t *testing.T) {
	leader, addr, leaderStore := startLeader(t)
	servers := &serverList{}
	servers.set(addr)
	relay1 := startRelay(t, servers)
	waitFor(t, 10*time.Second, "the relay to sync", relay1.Synced)

	relays := &serverList{}
	relays.set(relay1.RelayAddr())
	leaf := startReplica(t, replicaConfig{servers: servers.get, relays: relays.get, logger: testLogger(t)})
	waitSameTables(t, "the leaf to hold the state through the relay", leaderStore, leaf.Store())
	if leaf.Source() != relay1.RelayAddr() {
		t.Fatalf("the leaf follows %q, want the relay %q", leaf.Source(), relay1.RelayAddr())
	}
	if n := leader.FeedStats().Streams; n != 1 {
		t.Errorf("the server streams to %d replicas, want 1 (the relay)", n)
	}
	waitFor(t, 5*time.Second, "the relay to count its follower", func() bool { return relay1.RelayStats().Streams == 1 })

	idx := mustApply(t, leader, state.RegisterRequestType, statetest.SvcReq("n2", "10.0.0.2", "web-2", "web", 80, nil))
	if err := leaf.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if statetest.GetService(t, leaf.Store(), "n2", "web-2") == nil {
		t.Fatal("web-2 is not in the leaf once WaitApplied returned")
	}
	// The relay's feed holds what the server's does, as replicas are sent
	// it, byte for byte: each command's own bytes, not the stream
	// reader's buffer that the next frame reuses.
	for i := range 10 {
		idx = mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq(fmt.Sprintf("b%d", i), "10.0.1.1"))
	}
	if err := leaf.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	relayed, _, _ := relay1.fsm.feed.since(nil, 0, relay1.fsm.feed.generation(), true, feedMaxEntries)
	served, _, _ := leader.fsm.feed.since(nil, relayed[0].index-1, leader.fsm.feed.generation(), true, feedMaxEntries)
	if len(relayed) != len(served) {
		t.Fatalf("the relay's feed holds %d commands, the server's %d after the first of them", len(relayed), len(served))
	}
	for i := range relayed {
		if relayed[i].index != served[i].index || !bytes.Equal(relayed[i].data, forReplica(served[i].data)) {
			t.Fatalf("the relay's feed differs from the server's at index %d", served[i].index)
		}
	}
	waitFor(t, 5*time.Second, "the leaf to learn the leader through the relay", func() bool { return leaf.Leader() == addr })
	if s := leaf.Staleness(); s < 0 || s > 5*time.Second {
		t.Errorf("staleness through a relay = %v", s)
	}

	// A restore on the servers: the relay starts over, and so does the leaf.
	restoreAndWait(t, leader, leaderStore, leaf.Store(), "the leaf")

	// A second relay; the first dies. The leaf resumes on the second from
	// its own index.
	relay2 := startRelay(t, servers)
	waitFor(t, 10*time.Second, "the second relay to sync", relay2.Synced)
	idx = mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n4", "10.0.0.4"))
	for _, r := range []*Replica{relay2, leaf} {
		if err := r.WaitApplied(idx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	snapshots := leaf.SnapshotsInstalled()
	relays.set(relay1.RelayAddr(), relay2.RelayAddr()) // gossip still lists the dead one
	relay1.Close()
	idx = mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n5", "10.0.0.5"))
	if err := leaf.WaitApplied(idx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if leaf.Source() != relay2.RelayAddr() {
		t.Errorf("after its relay died the leaf follows %q, want the other relay %q", leaf.Source(), relay2.RelayAddr())
	}
	if n := leaf.SnapshotsInstalled(); n != snapshots {
		t.Errorf("the leaf installed %d snapshots moving relays, want none: the relay's feed should resume it", n-snapshots)
	}

	// No relay left: a server, still without a snapshot.
	relay2.Close()
	idx = mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n6", "10.0.0.6"))
	if err := leaf.WaitApplied(idx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if leaf.Source() != addr {
		t.Errorf("with every relay dead the leaf follows %q, want the server %q", leaf.Source(), addr)
	}
	if n := leaf.SnapshotsInstalled(); n != snapshots {
		t.Errorf("the leaf installed %d snapshots falling back to the server, want none", n-snapshots)
	}
	waitSameTables(t, "the leaf to hold the state", leaderStore, leaf.Store())
}

// TestReplicaMovesToARelay: a client following a server probes a relay
// once gossip lists one, and stays with the server, its stream unbroken,
// while the relay refuses (it holds no state); it moves, resuming, to a
// relay that answers.
func TestReplicaMovesToARelay(t *testing.T) {
	leader, addr, leaderStore := startLeader(t)
	servers, relays := &serverList{}, &serverList{}
	servers.set(addr)
	leaf := startReplica(t, replicaConfig{servers: servers.get, relays: relays.get, relayCheck: 100 * time.Millisecond,
		logger: testLogger(t)})
	waitSameTables(t, "the leaf to hold the state from the server", leaderStore, leaf.Store())

	// A relay that follows no server holds no state: it refuses the probes.
	empty := startRelay(t, &serverList{})
	relays.set(empty.RelayAddr())
	waitFor(t, 10*time.Second, "the empty relay to refuse three probes", func() bool {
		// A broken stream would show: Source reads "" for at least
		// replicaRetryMin (50 ms) before the next, polled every 10 ms.
		if src := leaf.Source(); src != addr {
			t.Fatalf("the leaf left the server (source %q) while a relay refused", src)
		}
		return empty.RelayStats().Refused >= 3
	})
	if n := leader.FeedStats().Streams; n != 1 {
		t.Errorf("the server streams to %d replicas, want the leaf's 1", n)
	}
	idx := mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n2", "10.0.0.2"))
	if err := leaf.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatalf("the leaf lost the state to a relay with none: %v", err)
	}

	relay := startRelay(t, servers)
	waitFor(t, 10*time.Second, "the relay to sync", relay.Synced)
	// A command after the relay's state: its feed resumes replicas from
	// there on (not before: see replaceState).
	idx = mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n3", "10.0.0.3"))
	if err := relay.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	relays.set(relay.RelayAddr())
	waitFor(t, 10*time.Second, "the leaf to move to the relay", func() bool { return leaf.Source() == relay.RelayAddr() })
	idx = mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n4", "10.0.0.4"))
	if err := leaf.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := leaf.SnapshotsInstalled(); n != 1 {
		t.Errorf("snapshots installed = %d, want 1: moving to the relay resumes", n)
	}
	waitFor(t, 5*time.Second, "the server to stream to the relay alone", func() bool { return leader.FeedStats().Streams == 1 })
	waitSameTables(t, "the leaf to hold the state through the relay", leaderStore, leaf.Store())
}

// TestRelayCutOffFromTheServers: a relay that stops hearing from the
// servers ends its clients' streams and refuses new ones, so they move to
// a server rather than stay with a state that no longer moves.
func TestRelayCutOffFromTheServers(t *testing.T) {
	leader, addr, leaderStore := startLeader(t)
	relayServers, servers, relays := &serverList{}, &serverList{}, &serverList{}
	relayServers.set(addr)
	servers.set(addr)
	relay := startRelay(t, relayServers)
	waitFor(t, 10*time.Second, "the relay to sync", relay.Synced)
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n2", "10.0.0.2"))
	relays.set(relay.RelayAddr())
	leaf := startReplica(t, replicaConfig{servers: servers.get, relays: relays.get, logger: testLogger(t)})
	waitSameTables(t, "the leaf to hold the state through the relay", leaderStore, leaf.Store())
	if leaf.Source() != relay.RelayAddr() {
		t.Fatalf("the leaf follows %q, want the relay", leaf.Source())
	}

	// The relay loses its server: the address it knows now leads nowhere,
	// and its stream is cut.
	relayServers.set(freeAddr(t))
	waitFor(t, 10*time.Second, "the relay's stream to be cut", func() bool {
		relay.connMu.Lock()
		defer relay.connMu.Unlock()
		if relay.conn == nil {
			return false // between streams: wait for the next
		}
		relay.conn.Close()
		return true
	})
	waitFor(t, relayStaleAfter+3*streamReadTimeout, "the leaf to move to the server", func() bool { return leaf.Source() == addr })
	idx := mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n3", "10.0.0.3"))
	if err := leaf.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the cut-off relay to serve no stream", func() bool { return relay.RelayStats().Streams == 0 })
	if n := leaf.SnapshotsInstalled(); n != 1 {
		t.Errorf("snapshots installed = %d, want 1: the server resumes the leaf", n)
	}
	// A new client is refused by it, and gets the state from the server.
	refused := relay.RelayStats().Refused
	leaf2 := startReplica(t, replicaConfig{servers: servers.get, relays: relays.get, logger: testLogger(t)})
	waitSameTables(t, "a new leaf to get the state from the server", leaderStore, leaf2.Store())
	if got := relay.RelayStats().Refused; got <= refused {
		t.Errorf("the cut-off relay refused %d streams since, want the new leaf's", got-refused)
	}
}

// TestRelayFeedAfterItsStateIsReplaced: a relay's feed resumes no replica
// from an index of its own until the first command after a streamed state
// arrives, since that state may come from a restore, and a replica's index
// from before it is of another history.
func TestRelayFeedAfterItsStateIsReplaced(t *testing.T) {
	fsm := NewFSM(state.NewStore(), testLogger(t))
	fsm.feed = newChangeFeed(feedMaxEntries, feedMaxBytes)
	fsm.replaceState(state.NewStore(), 10)
	gen := fsm.feed.generation()
	for _, after := range []uint64{5, 10, 50} {
		if _, ok, _ := fsm.feed.since(nil, after, gen, false, 10); ok {
			t.Errorf("a replica at %d resumes from a relay whose state was just replaced", after)
		}
	}
	// Streams that started from this state itself go on.
	if _, ok, _ := fsm.feed.since(nil, 10, gen, true, 10); !ok {
		t.Error("a stream that started from the relay's state cannot go on")
	}
	cmd, err := Encode(state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := fsm.applyStreamed(11, cmd); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := fsm.feed.since(nil, 10, gen, false, 10); !ok || len(got) != 1 || got[0].index != 11 {
		t.Errorf("after the next command a replica at 10 gets %v (ok %v), want command 11", got, ok)
	}
}

// TestPickRelaysWithoutServers: a replica that gave up on relays still
// tries one when no server is known, rather than nothing.
func TestPickRelaysWithoutServers(t *testing.T) {
	r := &Replica{servers: func() []string { return nil }, relays: func() []string { return []string{"10.0.0.7:8300"} }}
	if addr, relay := r.pick("10.0.0.7:8300", false); addr != "10.0.0.7:8300" || !relay {
		t.Errorf("pick with no servers = %q, relay %v; want the relay", addr, relay)
	}
	r.servers = func() []string { return []string{"10.0.0.1:8300"} }
	if addr, relay := r.pick("", false); addr != "10.0.0.1:8300" || relay {
		t.Errorf("pick after relays failed = %q, relay %v; want the server", addr, relay)
	}
	if addr, relay := r.pick("", true); addr != "10.0.0.7:8300" || !relay {
		t.Errorf("pick = %q, relay %v; want the relay", addr, relay)
	}
}

// TestRelayOverTLS: with verify_server_hostname, a client follows a relay
// whose certificate was issued to relay (relay.dc1.consul), and refuses
// one with any other client agent's certificate of the CA (it follows a
// server instead).
func TestRelayOverTLS(t *testing.T) {
	ca := newTestCA(t)
	leaderStore := state.NewStore()
	addr := freeAddr(t)
	leader, err := NewServer(ServerConfig{NodeID: "server-1", DataDir: t.TempDir(), RPCAddr: addr, BootstrapExpect: 1,
		Logger: testLogger(t), TLS: ca.material(tlsutil.KindServer, ca, "ioh")}, leaderStore)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = leader.Shutdown() })
	waitFor(t, 10*time.Second, "a leader", leader.IsLeader)
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"))
	servers := &serverList{}
	servers.set(addr)

	relay := startReplica(t, replicaConfig{servers: servers.get, relayAddr: "127.0.0.1:0", logger: testLogger(t),
		tls: ca.relayMaterial(ca, "ioh")})
	// One that holds the state but may not relay it: its certificate is a
	// client agent's of the CA, not issued to relay. (Another CA's is
	// tlsutil's TestRelayHandshakes: such a relay could not follow the
	// servers here, and would refuse for want of a state.)
	unnamed := startReplica(t, replicaConfig{servers: servers.get, relayAddr: "127.0.0.1:0", logger: testLogger(t),
		tls: ca.material(tlsutil.KindClient, ca, "ioh")})
	waitFor(t, 10*time.Second, "the relay to sync over TLS", relay.Synced)
	waitFor(t, 10*time.Second, "the unnamed relay to sync over TLS", unnamed.Synced)

	relays := &serverList{}
	relays.set(relay.RelayAddr())
	leaf := startReplica(t, replicaConfig{servers: servers.get, relays: relays.get, logger: testLogger(t),
		tls: ca.material(tlsutil.KindClient, ca, "ioh")})
	waitSameTables(t, "the leaf to hold the state through the relay over TLS", leaderStore, leaf.Store())
	if leaf.Source() != relay.RelayAddr() {
		t.Fatalf("the leaf follows %q, want the relay %q", leaf.Source(), relay.RelayAddr())
	}

	// It is not followed: the leaf takes the state from the server.
	other2 := startReplica(t, replicaConfig{servers: servers.get, relays: func() []string { return []string{unnamed.RelayAddr()} },
		relayCheck: 100 * time.Millisecond, logger: testLogger(t), tls: ca.material(tlsutil.KindClient, ca, "ioh")})
	waitSameTables(t, "a leaf offered a relay it may not follow to get the state from the server", leaderStore, other2.Store())
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n2", "10.0.0.2"))
	waitSameTables(t, "the leaf to follow the server", leaderStore, other2.Store())
	if other2.Source() != addr {
		t.Errorf("a leaf offered a relay it may not follow follows %q, want the server %q", other2.Source(), addr)
	}
	// The handshake failed, not the relay: it served nothing and refused
	// nothing (it holds a current state).
	if st := unnamed.RelayStats(); st.Streams != 0 || st.Refused != 0 {
		t.Errorf("the unnamed relay served %d streams and refused %d: want the TLS handshake to fail first", st.Streams, st.Refused)
	}
}
