package raftstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/raft"
)

// startCluster starts n servers in this process on real TCP ports, bootstraps
// them together, and waits for a ready leader.
func startCluster(t *testing.T, n int) ([]*Server, []*state.Store) {
	t.Helper()
	return startClusterWith(t, n, nil)
}

// startClusterWith is startCluster with set, when not nil, changing each
// server's configuration.
func startClusterWith(t *testing.T, n int, set func(*ServerConfig)) ([]*Server, []*state.Store) {
	t.Helper()
	var servers []*Server
	var stores []*state.Store
	var peers []Peer
	for i := 0; i < n; i++ {
		peers = append(peers, Peer{ID: string(rune('a' + i)), Address: freeAddr(t)})
	}
	for _, p := range peers {
		store := state.NewStore()
		cfg := ServerConfig{NodeID: p.ID, DataDir: t.TempDir(), RPCAddr: p.Address, BootstrapExpect: n, Logger: testLogger(t)}
		if set != nil {
			set(&cfg)
		}
		srv, err := NewServer(cfg, store)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Shutdown() })
		if srv.HasExistingState() {
			t.Fatal("a new server reports existing state")
		}
		if err := srv.BootstrapWith(peers); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, srv)
		stores = append(stores, store)
	}
	waitFor(t, 10*time.Second, "cluster condition", func() bool {
		for _, s := range servers {
			if s.IsLeader() && s.leaderReady.Load() {
				return true
			}
		}
		return false
	})
	return servers, stores
}

func TestClusterForwardsWritesAndReadsConsistently(t *testing.T) {
	servers, stores := startCluster(t, 3)
	var follower *Server
	var followerStore *state.Store
	for i, s := range servers {
		if !s.IsLeader() {
			follower, followerStore = s, stores[i]
			break
		}
	}
	if follower.HasExistingState() == false {
		t.Error("a bootstrapped server reports no existing state")
	}
	// A write on a follower is forwarded to the leader and acknowledged
	// once committed.
	idx, err := follower.Apply(state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"), 5*time.Second)
	if err != nil {
		t.Fatalf("Apply on a follower: %v", err)
	}
	// A linearizable read on the follower sees it at once.
	if err := follower.ConsistentRead(true, 5*time.Second); err != nil {
		t.Fatalf("ConsistentRead on a follower: %v", err)
	}
	if n := statetest.GetNode(t, followerStore, "n1"); n == nil || n.ModifyIndex != idx {
		t.Fatalf("after a consistent read the follower has n1 = %+v, want index %d", n, idx)
	}
	// Typed errors survive forwarding.
	_, err = follower.Apply(state.RegisterRequestType, &state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Check: &state.HealthCheck{CheckID: "c", ServiceID: "missing"}}, 5*time.Second)
	if !errors.Is(err, state.ErrInvalidRegistration) {
		t.Fatalf("forwarded invalid registration = %v, want ErrInvalidRegistration", err)
	}
	// Every replica converges.
	waitFor(t, 10*time.Second, "cluster condition", func() bool {
		for _, st := range stores {
			if statetest.GetNode(t, st, "n1") == nil {
				return false
			}
		}
		return true
	})
}

func TestClusterWriteDuringElectionWaitsForLeader(t *testing.T) {
	servers, _ := startCluster(t, 3)
	var leader *Server
	var others []*Server
	for _, s := range servers {
		if s.IsLeader() {
			leader = s
		} else {
			others = append(others, s)
		}
	}
	if err := leader.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// The write is sent while the survivors elect a new leader: it must
	// wait for one rather than fail.
	idx, err := others[0].Apply(state.RegisterRequestType, statetest.NodeReq("n2", "10.0.0.2"), 10*time.Second)
	if err != nil {
		t.Fatalf("Apply during an election: %v", err)
	}
	if idx == 0 {
		t.Fatal("Apply returned index 0")
	}
}

// A read on a follower while its leader is gone waits for the next one,
// as writes do, rather than failing at once.
func TestClusterReadDuringElectionWaitsForLeader(t *testing.T) {
	servers, _ := startCluster(t, 3)
	var leader *Server
	var others []*Server
	for _, s := range servers {
		if s.IsLeader() {
			leader = s
		} else {
			others = append(others, s)
		}
	}
	if err := leader.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, verify := range []bool{true, false} {
		if err := others[0].ConsistentRead(verify, 10*time.Second); err != nil {
			t.Errorf("ConsistentRead(verify %v) during an election: %v", verify, err)
		}
	}
}

func TestClusterEarlyElectionWhenTheLeaderDies(t *testing.T) {
	servers, _ := startCluster(t, 3)
	var leader *Server
	var rest []*Server
	for _, s := range servers {
		if s.IsLeader() {
			leader = s
		} else {
			rest = append(rest, s)
		}
	}
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"))
	// The leader's process ends: its port closes, its connections with it.
	killed := time.Now()
	if err := leader.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "a new leader", func() bool {
		for _, s := range rest {
			if s.IsLeader() {
				return true
			}
		}
		return false
	})
	t.Logf("new leader %v after the old one shut down", time.Since(killed).Round(time.Millisecond))
	early := rest[0].earlyElections.Load() + rest[1].earlyElections.Load()
	if early == 0 {
		t.Error("no follower noticed the leader's closed port: the election waited for the full heartbeat timeout")
	}
	// Once a leader is there the followers go back to raft's timeouts.
	waitFor(t, 5*time.Second, "the normal timeouts back", func() bool {
		for _, s := range rest {
			if s.raft.ReloadableConfig().HeartbeatTimeout != raft.DefaultConfig().HeartbeatTimeout {
				return false
			}
		}
		return true
	})
	for _, s := range rest {
		if _, err := s.Apply(state.RegisterRequestType, statetest.NodeReq("n2", "10.0.0.2"), 10*time.Second); err != nil {
			t.Fatalf("write after the failover: %v", err)
		}
	}
}

// TestClusterForwardsConcurrentWritesInBatches sends many concurrent
// create-only writes through a follower: they go to the leader in batches,
// and each still gets its own answer — one winner per key, typed errors.
func TestClusterForwardsConcurrentWritesInBatches(t *testing.T) {
	servers, stores := startCluster(t, 3)
	var follower *Server
	for _, s := range servers {
		if !s.IsLeader() {
			follower = s
			break
		}
	}
	const writers, keys = 200, 40
	type outcome struct {
		key string
		ok  bool
		idx uint64
		err error
	}
	out := make(chan outcome, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := state.DirEntry{Key: fmt.Sprintf("k/%d", i%keys), Value: []byte(fmt.Sprint(i))}
			if i%keys == 7 {
				e.Value = make([]byte, state.MaxKVValueBytes+1) // refused by the FSM
			}
			idx, res, err := follower.ApplyWithResult(state.KVSRequestType, &state.KVSRequest{Op: state.KVCAS, DirEnt: e}, 10*time.Second)
			out <- outcome{e.Key, err == nil && res != nil && res.OK, idx, err}
		}()
	}
	wg.Wait()
	close(out)
	winners := map[string]int{}
	for o := range out {
		switch {
		case o.key == "k/7":
			if !errors.Is(o.err, state.ErrInvalidRegistration) {
				t.Errorf("oversized write: %v, want ErrInvalidRegistration", o.err)
			}
		case o.err != nil:
			t.Errorf("write of %s: %v", o.key, o.err)
		case o.ok:
			winners[o.key]++
			if o.idx == 0 {
				t.Errorf("write of %s acknowledged without an index", o.key)
			}
		}
	}
	for i := range keys {
		k := fmt.Sprintf("k/%d", i)
		if want := map[bool]int{true: 0, false: 1}[k == "k/7"]; winners[k] != want {
			t.Errorf("%s: %d create-only writes won, want %d", k, winners[k], want)
		}
	}
	if n := follower.forwarder.batched.Load(); n == 0 {
		t.Error("no forwarded write went in a batch")
	} else {
		t.Logf("%d of %d forwarded writes went in batches", n, writers)
	}
	waitFor(t, 10*time.Second, "every replica holds every key", func() bool {
		for _, st := range stores {
			for i := range keys {
				if _, e, err := st.KVGet(nil, fmt.Sprintf("k/%d", i)); err != nil || (e == nil) != (i == 7) {
					return false
				}
			}
		}
		return true
	})
}

// A follower passes a leadership transfer on to the leader, which hands
// leadership to the server named; every server reports its log's stats.
func TestClusterTransfersLeadership(t *testing.T) {
	servers, _ := startCluster(t, 3)
	var leader *Server
	var followers []*Server
	for _, s := range servers {
		if s.IsLeader() {
			leader = s
		} else {
			followers = append(followers, s)
		}
	}
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"))
	for _, s := range servers {
		st, err := leader.StatsOf(string(s.trans.LocalAddr()))
		if err != nil || st.LastIndex == 0 || st.LastTerm == 0 {
			t.Errorf("stats of %s: %+v, %v", s.trans.LocalAddr(), st, err)
		}
	}
	target := followers[1]
	targetID := ""
	conf, _ := leader.Configuration()
	for _, p := range conf {
		if p.Address == string(target.trans.LocalAddr()) {
			targetID = p.ID
		}
	}
	if err := followers[0].TransferLeadership(targetID); err != nil {
		t.Fatalf("transfer through a follower: %v", err)
	}
	waitFor(t, 10*time.Second, "the chosen server to lead", target.IsLeader)
	if err := target.TransferLeadership("no-such-server"); !errors.Is(err, state.ErrPeerNotFound) {
		t.Errorf("a transfer to an unknown server: %v", err)
	}
}
