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

// startReplica starts a replica on a new store, closed when the test ends.
func startReplica(t *testing.T, cfg replicaConfig) *Replica {
	t.Helper()
	r, err := newReplica(state.NewStore(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// startClient starts a client, shut down when the test ends.
func startClient(t *testing.T, cfg ClientConfig, store *state.Store) *Client {
	t.Helper()
	c, err := NewClient(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown() })
	return c
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
	leaderStore := state.NewStore()
	addr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), addr, leaderStore)
	mustApply(t, leader, state.RegisterRequestType, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil))
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
	archive, _ := saveSnapshot(t, leader)
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n3", "10.0.0.3"))
	if err := leader.RestoreSnapshot(bytes.NewReader(archive)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	waitSameTables(t, "the leaf to hold the restored state", leaderStore, leaf.Store())
	if statetest.GetNode(t, leaf.Store(), "n3") != nil {
		t.Error("n3, written after the snapshot, survived the restore in the leaf")
	}

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

// TestReplicaMovesToARelay: a client following a server moves to a relay
// once gossip lists one; a relay without a state refuses it, and it stays
// with the server.
func TestReplicaMovesToARelay(t *testing.T) {
	leaderStore := state.NewStore()
	addr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), addr, leaderStore)
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"))
	servers, relays := &serverList{}, &serverList{}
	servers.set(addr)
	leaf := startReplica(t, replicaConfig{servers: servers.get, relays: relays.get, relayCheck: 100 * time.Millisecond,
		logger: testLogger(t)})
	waitSameTables(t, "the leaf to hold the state from the server", leaderStore, leaf.Store())

	// A relay that follows no server holds no state: it refuses.
	empty := startRelay(t, &serverList{})
	relays.set(empty.RelayAddr())
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if src := leaf.Source(); src == empty.RelayAddr() {
			// It may dial the relay; it must not stay on it.
			if leaf.IndexLag() != 0 {
				t.Fatalf("the leaf follows a relay with no state")
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	idx := mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n2", "10.0.0.2"))
	if err := leaf.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatalf("the leaf lost the state to a relay with none: %v", err)
	}

	relay := startRelay(t, servers)
	waitFor(t, 10*time.Second, "the relay to sync", relay.Synced)
	relays.set(relay.RelayAddr())
	waitFor(t, 10*time.Second, "the leaf to move to the relay", func() bool { return leaf.Source() == relay.RelayAddr() })
	idx = mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n3", "10.0.0.3"))
	if err := leaf.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := leaf.SnapshotsInstalled(); n != 1 {
		t.Errorf("snapshots installed = %d, want 1: moving to the relay resumes", n)
	}
	waitFor(t, 5*time.Second, "the server to stream to the relay alone", func() bool { return leader.FeedStats().Streams == 1 })
}

// TestRelayOverTLS: with verify_server_hostname, a client follows a relay
// whose certificate is a client agent's of the CA, and refuses one with
// another CA's certificate (it follows a server instead).
func TestRelayOverTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
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
		tls: ca.material(tlsutil.KindClient, ca, "ioh")})
	rogue := startReplica(t, replicaConfig{servers: func() []string { return nil }, relayAddr: "127.0.0.1:0", logger: testLogger(t),
		tls: other.material(tlsutil.KindClient, other, "ioh")})
	waitFor(t, 10*time.Second, "the relay to sync over TLS", relay.Synced)

	relays := &serverList{}
	relays.set(relay.RelayAddr())
	leaf := startReplica(t, replicaConfig{servers: servers.get, relays: relays.get, logger: testLogger(t),
		tls: ca.material(tlsutil.KindClient, ca, "ioh")})
	waitSameTables(t, "the leaf to hold the state through the relay over TLS", leaderStore, leaf.Store())
	if leaf.Source() != relay.RelayAddr() {
		t.Fatalf("the leaf follows %q, want the relay %q", leaf.Source(), relay.RelayAddr())
	}

	// A relay with another CA's certificate is refused.
	other2 := startReplica(t, replicaConfig{servers: servers.get, relays: func() []string { return []string{rogue.RelayAddr()} },
		logger: testLogger(t), tls: ca.material(tlsutil.KindClient, ca, "ioh")})
	waitSameTables(t, "a leaf offered a rogue relay to get the state from the server", leaderStore, other2.Store())
	if other2.Source() != addr {
		t.Errorf("a leaf offered a rogue relay follows %q, want the server %q", other2.Source(), addr)
	}
}
