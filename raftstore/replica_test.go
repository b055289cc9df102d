package raftstore

import (
	"bytes"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/snapshot"
	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// serverList is a mutable list of server addresses for a replica to follow.
type serverList struct {
	mu    sync.Mutex
	addrs []string
}

func (l *serverList) set(addrs ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = addrs
}

func (l *serverList) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.addrs...)
}

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

// restoreAndWait restores on the leader a snapshot saved before one more
// write (node n3), and waits until store, a replica's, holds the restored
// state, without n3.
func restoreAndWait(t *testing.T, leader *Server, leaderStore, store *state.Store, who string) {
	t.Helper()
	archive, _ := saveSnapshot(t, leader)
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n3", "10.0.0.3"))
	if err := leader.RestoreSnapshot(bytes.NewReader(archive)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	waitSameTables(t, who+" to hold the restored state", leaderStore, store)
	if statetest.GetNode(t, store, "n3") != nil {
		t.Errorf("n3, written after the snapshot, survived the restore in %s", who)
	}
}

func waitSameTables(t *testing.T, what string, want, got *state.Store) {
	t.Helper()
	waitFor(t, 10*time.Second, what, func() bool { return reflect.DeepEqual(statetest.Tables(t, got), statetest.Tables(t, want)) })
}

func TestReplicaFollowsServerThroughRestore(t *testing.T) {
	leaderStore := state.NewStore()
	addr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), addr, leaderStore)
	mustApply(t, leader, state.RegisterRequestType, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil))

	servers := &serverList{}
	servers.set(addr)
	replica := startReplica(t, replicaConfig{servers: servers.get, logger: testLogger(t)})
	waitFor(t, 10*time.Second, "the replica to sync", replica.Synced)
	waitSameTables(t, "the replica to hold the leader's state", leaderStore, replica.Store())

	// Commands stream in; WaitApplied sees them.
	idx := mustApply(t, leader, state.RegisterRequestType, statetest.SvcReq("n2", "10.0.0.2", "web-2", "web", 80, nil))
	if err := replica.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := statetest.GetService(t, replica.Store(), "n2", "web-2"); got == nil {
		t.Fatal("web-2 is not in the replica once WaitApplied returned")
	}
	if replica.Source() != addr || replica.Leader() != addr {
		t.Errorf("source %q, leader %q; want both %q", replica.Source(), replica.Leader(), addr)
	}
	if s := replica.Staleness(); s < 0 || s > 5*time.Second {
		t.Errorf("staleness of a following replica = %v", s)
	}
	if n := replica.SnapshotsInstalled(); n != 1 {
		t.Errorf("snapshots installed = %d, want 1 (the initial state)", n)
	}

	// A restore replaces the state: the replica starts over from a snapshot.
	restoreAndWait(t, leader, leaderStore, replica.Store(), "the replica")
	if n := replica.SnapshotsInstalled(); n != 2 {
		t.Errorf("snapshots installed = %d, want 2", n)
	}
	// And it follows on from there.
	idx = mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n4", "10.0.0.4"))
	if err := replica.WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitSameTables(t, "the replica to follow after the restore", leaderStore, replica.Store())
}

func TestReplicaResumesOnAnotherServer(t *testing.T) {
	leaderStore := state.NewStore()
	leaderAddr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), leaderAddr, leaderStore)
	follower, followerAddr, _ := startFollower(t, leader, "server-2", state.NewStore())
	mustApply(t, leader, state.RegisterRequestType, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil))

	servers := &serverList{}
	servers.set(followerAddr)
	replica := startReplica(t, replicaConfig{servers: servers.get, logger: testLogger(t)})
	waitSameTables(t, "the replica to hold the state", leaderStore, replica.Store())
	if replica.Source() != followerAddr {
		t.Fatalf("source = %q, want the follower %q", replica.Source(), followerAddr)
	}

	// The follower goes away; gossip now names both.
	servers.set(followerAddr, leaderAddr)
	if err := follower.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("m"+string(rune('a'+i)), "10.0.1.1"))
	}
	waitSameTables(t, "the replica to catch up through the leader", leaderStore, replica.Store())
	if replica.Source() != leaderAddr {
		t.Errorf("source = %q, want the leader %q", replica.Source(), leaderAddr)
	}
	if n := replica.SnapshotsInstalled(); n != 1 {
		t.Errorf("snapshots installed = %d, want 1: the leader's feed should resume the replica", n)
	}
}

func TestReplicaWithoutServers(t *testing.T) {
	replica := startReplica(t, replicaConfig{servers: func() []string { return nil }, logger: testLogger(t)})
	if replica.Synced() || replica.Leader() != "" {
		t.Error("a replica with no server claims a state or a leader")
	}
	if s := replica.Staleness(); s < 1e6*time.Hour {
		t.Errorf("staleness without a state = %v, want the largest duration", s)
	}
	if err := replica.WaitApplied(1, 50*time.Millisecond); err == nil {
		t.Error("WaitApplied succeeded without a state")
	}
}

func TestClientForwardsToTheLeader(t *testing.T) {
	leaderStore := state.NewStore()
	leaderAddr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), leaderAddr, leaderStore)
	_, followerAddr, _ := startFollower(t, leader, "server-2", state.NewStore())

	servers := &serverList{}
	servers.set(followerAddr)
	store := state.NewStore()
	client := startClient(t, ClientConfig{Servers: servers.get, Logger: testLogger(t)}, store)
	waitFor(t, 10*time.Second, "the client to sync", client.Replica().Synced)

	// A write through the follower reaches the leader, and the client reads
	// it from its own replica as soon as Apply returns.
	idx, err := client.Apply(state.RegisterRequestType, statetest.SvcReq("c1", "10.0.0.9", "redis-1", "redis", 6379, nil), 5*time.Second)
	if err != nil {
		t.Fatalf("Apply through the client: %v", err)
	}
	if statetest.GetService(t, store, "c1", "redis-1") == nil {
		t.Error("the client's replica does not show its own acknowledged write")
	}
	if statetest.GetService(t, leaderStore, "c1", "redis-1") == nil || leader.fsm.AppliedIndex() < idx {
		t.Error("the leader does not have the write")
	}
	// Errors come back typed.
	_, err = client.Apply(state.RegisterRequestType, &state.RegisterRequest{Node: "nope", SkipNodeUpdate: true,
		Service: &state.Service{ID: "x", Service: "x"}}, 5*time.Second)
	if err != nil && !errors.Is(err, state.ErrMissingNode) {
		t.Errorf("Apply of a service on a missing node = %v, want ErrMissingNode", err)
	}
	for _, verify := range []bool{false, true} {
		if err := client.ConsistentRead(verify, 5*time.Second); err != nil {
			t.Errorf("ConsistentRead(verify=%v): %v", verify, err)
		}
	}
	conf, err := client.RaftConfiguration()
	if err != nil || len(conf.Servers) != 2 {
		t.Errorf("RaftConfiguration through the client = %+v, %v; want 2 servers", conf, err)
	}
	if err := client.RemovePeer("nope", ""); !errors.Is(err, state.ErrPeerNotFound) {
		t.Errorf("RemovePeer(nope) through the client = %v, want ErrPeerNotFound", err)
	}

	// Snapshots through the client are the leader's.
	var archive bytes.Buffer
	snapIdx, err := client.SaveSnapshot(&archive)
	if err != nil || snapIdx < idx {
		t.Fatalf("SaveSnapshot through the client = %d, %v; want an index ≥ %d", snapIdx, err, idx)
	}
	if _, err := snapshot.Inspect(bytes.NewReader(archive.Bytes())); err != nil {
		t.Fatalf("the archive saved through the client does not inspect: %v", err)
	}
	saved := statetest.Tables(t, leaderStore)
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("later", "10.0.0.7"))
	if err := client.RestoreSnapshot(bytes.NewReader(archive.Bytes())); err != nil {
		t.Fatalf("RestoreSnapshot through the client: %v", err)
	}
	waitFor(t, 10*time.Second, "the restored state on the leader and in the client's replica", func() bool {
		return reflect.DeepEqual(statetest.Tables(t, leaderStore), saved) && reflect.DeepEqual(statetest.Tables(t, store), saved)
	})
	if err := client.RestoreSnapshot(bytes.NewReader([]byte("garbage"))); !errors.Is(err, snapshot.ErrInvalid) {
		t.Errorf("RestoreSnapshot of garbage through the client = %v, want snapshot.ErrInvalid", err)
	}

	// No known server: an immediate, clear error.
	servers.set()
	start := time.Now()
	if _, err := client.Apply(state.RegisterRequestType, statetest.NodeReq("z", "10.0.0.1"), 5*time.Second); !errors.Is(err, state.ErrNoServers) {
		t.Errorf("Apply with no known server = %v, want ErrNoServers", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Apply with no known server took %v", d)
	}
	// Known but unreachable servers: tried until the timeout, then ErrNoLeader.
	servers.set(freeAddr(t))
	if _, err := client.Apply(state.RegisterRequestType, statetest.NodeReq("z", "10.0.0.1"), 300*time.Millisecond); !errors.Is(err, state.ErrNoLeader) {
		t.Errorf("Apply with an unreachable server = %v, want ErrNoLeader", err)
	}
}
