package agent

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/beacon-dns/beacon/gossip"
	"github.com/beacon-dns/beacon/raftstore"
	"github.com/beacon-dns/beacon/state"
)

// Cluster membership of servers: gossip finds the other servers; the agent
// bootstraps Raft once bootstrap_expect of them are known, and the leader
// adds newly found servers as voters and removes those that left.

const (
	// clusterCheckInterval re-runs bootstrap and reconciliation even when
	// no member event arrives, so nothing missed stays missed.
	clusterCheckInterval = 2 * time.Second
	// retryJoinInterval is how often join addresses are retried.
	retryJoinInterval = 2 * time.Second
	peerQueryTimeout  = 2 * time.Second

	// LAN failure detection: memberlist probes twice as often as its LAN
	// default (1 s, 500 ms timeout), so that a dead agent is suspected
	// within about a second and declared dead after Lifeguard's suspicion
	// timeout (4 probe intervals in a small pool, more in a large one): its
	// services leave DNS 3–4 s after it dies instead of 5–6 s. The probe
	// timeout stays far above LAN round trips, and Lifeguard stretches it
	// on an agent that finds itself slow.
	lanProbeInterval = 500 * time.Millisecond
	lanProbeTimeout  = 250 * time.Millisecond
)

func (a *Agent) startGossip() error {
	role := gossip.RoleClient
	if a.cfg.Server {
		role = gossip.RoleServer
	}
	pool, err := gossip.NewLAN(gossip.Config{
		NodeName: a.cfg.Node, NodeID: a.nodeID, Datacenter: a.cfg.Datacenter, Role: role,
		BindAddr: a.cfg.SerfLAN, RPCAddr: a.cfg.RPC, RelayAddr: a.relayAddr(), BootstrapExpect: a.cfg.BootstrapExpect, WANAddr: a.wanAddr(),
		Logger: a.logger.Named("gossip"), ProbeInterval: lanProbeInterval, ProbeTimeout: lanProbeTimeout,
		EncryptKey: a.cfg.Encrypt, KeyringFile: filepath.Join(a.cfg.DataDir, "serf", "local.keyring"),
		SnapshotFile: filepath.Join(a.cfg.DataDir, "serf", "local.snapshot"), ReconnectTimeout: a.cfg.ReconnectTimeout,
		LocalServices: a.eventServices,
	})
	if err != nil {
		return err
	}
	a.lan = pool
	if a.cfg.Server {
		if err := a.startWAN(); err != nil {
			_ = pool.Shutdown()
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancelJoin = cancel
	if len(a.cfg.JoinWAN) > 0 {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := a.wan.RetryJoin(ctx, a.cfg.JoinWAN, retryJoinInterval); err != nil && ctx.Err() == nil {
				a.logger.Error("joining the WAN pool", "error", err)
			}
		}()
	}
	if len(a.cfg.Join) > 0 {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := pool.RetryJoin(ctx, a.cfg.Join, retryJoinInterval); err != nil && ctx.Err() == nil {
				a.logger.Error("joining the cluster", "error", err)
			}
		}()
	}
	a.wg.Add(1)
	go a.clusterLoop()
	return nil
}

// startWAN starts a server's WAN pool (serf_wan), which the servers of
// every datacenter share: how a server finds the others' servers. Its
// member events are not needed (the pool is read when a request for
// another datacenter comes), so they are drained.
func (a *Agent) startWAN() error {
	pool, err := gossip.NewWAN(gossip.Config{
		NodeName: a.cfg.Node, NodeID: a.nodeID, Datacenter: a.cfg.Datacenter, Role: gossip.RoleServer,
		BindAddr: a.cfg.SerfWAN, RPCAddr: a.cfg.RPC, Logger: a.logger.Named("gossip"),
		EncryptKey: a.cfg.Encrypt, KeyringFile: filepath.Join(a.cfg.DataDir, "serf", "remote.keyring"),
		SnapshotFile: filepath.Join(a.cfg.DataDir, "serf", "remote.snapshot"), ReconnectTimeout: a.cfg.ReconnectTimeout,
	})
	if err != nil {
		return err
	}
	a.wan = pool
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		events := pool.Events()
		for {
			select {
			case <-a.stop:
				return
			case _, ok := <-events:
				if !ok {
					return
				}
			}
		}
	}()
	return nil
}

// wanAddr is the WAN pool's address a server advertises in the LAN pool;
// "" on a client agent.
func (a *Agent) wanAddr() string {
	if !a.cfg.Server {
		return ""
	}
	return a.cfg.SerfWAN
}

// floodJoinWAN joins to the WAN pool the servers of this datacenter that
// the LAN pool knows and the WAN pool does not (Consul's flood join): a
// datacenter's servers find each other there, and the other datacenters'
// servers find them all, from one join_wan.
func (a *Agent) floodJoinWAN() {
	if a.wan == nil {
		return
	}
	inWAN := map[string]bool{}
	for _, m := range a.wan.Members() {
		inWAN[m.Name] = m.Status == gossip.StatusAlive
	}
	var addrs []string
	for _, m := range a.dcServers() {
		if addr := m.Tags[gossip.TagWANAddr]; addr != "" && m.Name != a.cfg.Node && !inWAN[gossip.WANName(m.Name, m.Datacenter)] {
			addrs = append(addrs, addr)
		}
	}
	if len(addrs) == 0 || !a.wanJoining.CompareAndSwap(false, true) {
		return
	}
	// A join waits on unreachable addresses (memberlist's WAN TCP timeout
	// is 30 s): never in the cluster loop, one at a time.
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer a.wanJoining.Store(false)
		if n, err := a.wan.Join(addrs); err != nil {
			a.logger.Debug("joining this datacenter's servers to the WAN pool", "servers", addrs, "error", err)
		} else {
			a.logger.Info("joined this datacenter's servers to the WAN pool", "joined", n)
		}
	}()
}

// remoteServers are the RPC addresses of datacenter dc's alive servers, as
// the WAN pool knows them.
func (a *Agent) remoteServers(dc string) []string {
	if a.wan == nil {
		return nil
	}
	var out []string
	for _, m := range a.wan.ServersByDatacenter()[dc] {
		out = append(out, m.RPCAddr)
	}
	return out
}

// Datacenters are the datacenters the WAN pool knows (this one at least),
// nearest first: by the median round-trip time estimated to their servers,
// those with no estimate last, ties by name (Consul's order).
func (a *Agent) Datacenters() []string {
	if a.wan == nil {
		return []string{a.cfg.Datacenter}
	}
	type dcRTT struct {
		name  string
		rtt   time.Duration
		known bool
	}
	var dcs []dcRTT
	seenLocal := false
	for dc, servers := range a.wan.ServersByDatacenter() {
		var rtts []time.Duration
		for _, m := range servers {
			if rtt, ok := a.wan.EstimatedRTT(m.Name); ok {
				rtts = append(rtts, rtt)
			}
		}
		d := dcRTT{name: dc}
		if dc == a.cfg.Datacenter {
			d.known, seenLocal = true, true
		} else if len(rtts) > 0 {
			slices.Sort(rtts)
			d.rtt, d.known = rtts[len(rtts)/2], true
		}
		dcs = append(dcs, d)
	}
	if !seenLocal {
		dcs = append(dcs, dcRTT{name: a.cfg.Datacenter, known: true})
	}
	slices.SortFunc(dcs, func(x, y dcRTT) int {
		if x.known != y.known {
			if x.known {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(x.rtt, y.rtt), cmp.Compare(x.name, y.name))
	})
	out := make([]string, len(dcs))
	for i, d := range dcs {
		out[i] = d.name
	}
	return out
}

// WANCoordinates are the WAN coordinates of every datacenter's alive
// servers this server has heard, by datacenter.
func (a *Agent) WANCoordinates() map[string]state.Coordinates {
	out := map[string]state.Coordinates{}
	if a.wan == nil {
		return out
	}
	for dc, servers := range a.wan.ServersByDatacenter() {
		for _, m := range servers {
			if c, ok := a.wan.MemberCoordinate(m.Name); ok {
				out[dc] = append(out[dc], &state.Coordinate{Node: m.Name, Coord: c})
			}
		}
	}
	return out
}

// serverAddrs are the RPC addresses of the datacenter's alive servers: where
// a client agent sends its requests and follows the state from.
func (a *Agent) serverAddrs() []string {
	servers := a.dcServers()
	out := make([]string, 0, len(servers))
	for _, m := range servers {
		out = append(out, m.RPCAddr)
	}
	return out
}

// relayAddr is where this agent relays the state stream, "" when it does
// not.
func (a *Agent) relayAddr() string {
	if a.cfg.Relay && !a.cfg.Server {
		return a.cfg.RPC
	}
	return ""
}

// relayAddrs are the addresses of this datacenter's alive relays, which a
// client agent follows in preference to a server.
func (a *Agent) relayAddrs() []string {
	var out []string
	for _, m := range a.lan.Members() {
		if m.RelayAddr != "" && m.Status == gossip.StatusAlive && m.Datacenter == a.cfg.Datacenter {
			out = append(out, m.RelayAddr)
		}
	}
	return out
}

// clusterLoop reacts to member events and leadership changes: on a server,
// bootstrap and, as the leader, the Raft configuration and the catalog's
// view of membership; on every agent, reaping of long-failed members.
func (a *Agent) clusterLoop() {
	defer a.wg.Done()
	tick := time.NewTicker(clusterCheckInterval)
	defer tick.Stop()
	events := a.lan.Events()
	lastFull := time.Time{}
	for {
		var changed *gossip.Event
		full, gained, restored := false, false, false
		select {
		case <-a.stop:
			return
		case <-a.store.AbandonCh():
			// A snapshot restore replaced the state (a leader's own
			// restore, or one it took from another).
			restored = true
		case ev, ok := <-events:
			if !ok {
				events = nil // the pool shut down
				continue
			}
			changed = &ev
		case <-a.leadership:
			full, gained = true, true
		case now := <-tick.C:
			full = now.Sub(lastFull) >= reconcileInterval
		}
		if restored {
			// The restored state may lack this agent's node and
			// services: sync them at once.
			a.triggerSync()
		}
		if a.server == nil {
			continue
		}
		a.floodJoinWAN()
		if a.cfg.BootstrapExpect > 1 && !a.bootstrapped {
			a.maybeBootstrap()
		}
		if !a.server.IsLeader() {
			continue
		}
		a.reconcileServers()
		switch {
		case restored:
			// As Consul's leader reasserts its leadership after a
			// restore: the initial management token back if the
			// restored ACL tables lack it, and the restored sessions'
			// TTL timers. Gossip's members are put back as it knows
			// them; nodes it does not know are reaped at the next full
			// reconcile (within reconcileInterval), as Consul's leader
			// reaps them.
			for _, m := range a.lan.Members() {
				a.reconcileMember(m)
			}
			a.ensureInitialManagement()
			if _, all, err := a.store.Sessions(nil, ""); err == nil {
				a.sessions.ensure(all)
			}
		case full:
			if gained {
				a.ensureInitialManagement()
			}
			a.reconcileAllMembers(gained)
			if _, all, err := a.store.Sessions(nil, ""); err == nil {
				a.sessions.ensure(all)
			}
			lastFull = time.Now()
		case changed != nil && changed.Type == gossip.MemberReap:
			// Failed for longer than reconnect_timeout, or pruned.
			if err := a.memberLeft(changed.Member.Name); err != nil {
				a.logger.Warn("deregistering a reaped member", "member", changed.Member.Name, "error", err)
			}
		case changed != nil:
			a.reconcileMember(changed.Member)
		}
	}
}

// onLeadership is called by raftstore when this server becomes a ready
// leader or stops leading.
func (a *Agent) onLeadership(leader bool) {
	a.sessionsLeadership(leader)
	if leader {
		a.logger.Info("cluster leadership acquired")
	} else {
		a.logger.Info("cluster leadership lost")
	}
	select {
	case a.leadership <- struct{}{}:
	default:
	}
	if leader {
		a.triggerSync()
	}
}

// dcServers are the alive servers of our datacenter that gossip knows.
func (a *Agent) dcServers() []gossip.Member {
	var out []gossip.Member
	for _, m := range a.lan.Servers() {
		if m.Datacenter == a.cfg.Datacenter && m.Status == gossip.StatusAlive && m.ID != "" && m.RPCAddr != "" {
			out = append(out, m)
		}
	}
	return out
}

// maybeBootstrap bootstraps Raft with the servers gossip found, once there
// are bootstrap_expect of them, all expecting the same number, and none of
// them is already part of a cluster. Every server runs the same check and
// bootstraps with the same set, so exactly one cluster forms; one that finds
// a peer with Raft state waits to be added by that cluster's leader instead.
func (a *Agent) maybeBootstrap() {
	if a.server.HasExistingState() {
		a.bootstrapped = true
		return
	}
	servers := a.dcServers()
	for _, m := range servers {
		if m.BootstrapExpect != 0 && m.BootstrapExpect != a.cfg.BootstrapExpect {
			a.logger.Error("servers disagree on bootstrap_expect; not bootstrapping",
				"server", m.Name, "expects", m.BootstrapExpect, "we expect", a.cfg.BootstrapExpect)
			return
		}
	}
	if len(servers) < a.cfg.BootstrapExpect {
		return
	}
	var peers []raftstore.Peer
	for _, m := range servers {
		if m.Name != a.cfg.Node {
			last, err := a.server.PeerLastIndex(m.RPCAddr, peerQueryTimeout)
			if err != nil {
				a.logger.Debug("cannot ask server for its raft state yet", "server", m.Name, "error", err)
				return
			}
			if last > 0 {
				a.logger.Info("a server already has raft state: waiting to be added to its cluster", "server", m.Name)
				a.bootstrapped = true
				return
			}
		}
		peers = append(peers, raftstore.Peer{ID: m.ID, Address: m.RPCAddr})
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].ID < peers[j].ID })
	if err := a.server.BootstrapWith(peers); err != nil {
		a.logger.Error("bootstrapping raft", "error", err)
		return
	}
	a.bootstrapped = true
	a.logger.Info("bootstrapped raft", "servers", len(peers))
}

// reconcileServers makes the Raft configuration follow gossip: alive
// servers of our datacenter become voters; servers that left gracefully are
// removed. Failed servers stay voters: they may come back, and removing them
// is the operator's call (DELETE /v1/operator/raft/peer).
func (a *Agent) reconcileServers() {
	conf, err := a.server.Configuration()
	if err != nil {
		return
	}
	inConf := map[string]string{}
	var peers []raftPeer
	for _, p := range conf {
		inConf[p.ID] = p.Address
		peers = append(peers, raftPeer{ID: p.ID, Address: p.Address})
	}
	a.cleanupDeadServers(peers)
	for _, m := range a.dcServers() {
		if addr, ok := inConf[m.ID]; ok && addr == m.RPCAddr {
			continue
		}
		if err := a.server.AddVoter(raftstore.Peer{ID: m.ID, Address: m.RPCAddr}); err != nil {
			a.logger.Warn("adding server to raft", "server", m.Name, "error", err)
			continue
		}
		a.logger.Info("added server to raft", "server", m.Name, "address", m.RPCAddr)
	}
	for _, m := range a.lan.Members() {
		if m.Status != gossip.StatusLeft || !m.IsServer() || m.Datacenter != a.cfg.Datacenter {
			continue
		}
		if _, ok := inConf[m.ID]; !ok || m.Name == a.cfg.Node {
			continue
		}
		if err := a.server.RemoveServer(m.ID); err != nil {
			a.logger.Warn("removing departed server from raft", "server", m.Name, "error", err)
			continue
		}
		a.logger.Info("removed departed server from raft", "server", m.Name)
	}
}
