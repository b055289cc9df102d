package agent

import (
	"sync"
	"time"

	"github.com/beacon-dns/beacon/adminapi"
	"github.com/beacon-dns/beacon/gossip"
	"github.com/beacon-dns/beacon/state"
)

// Autopilot, as Consul's: the health of each Raft server (gossip status,
// contact with the leader, how far its log trails), the cluster's failure
// tolerance, and, with CleanupDeadServers, the leader removing servers
// gossip holds failed for longer than ServerStabilizationTime when a
// quorum stays.

var _ adminapi.Autopilot = (*Agent)(nil)

// autopilotTracker remembers since when each server has been healthy, and
// failed, across reads.
type autopilotTracker struct {
	mu           sync.Mutex
	healthySince map[string]time.Time
	failedSince  map[string]time.Time
	// lastCleanup is when the leader last ran cleanupDeadServers.
	lastCleanup time.Time
}

// since records that the server id is (or is not) in the condition the
// map tracks at now, and returns since when it has been.
func since(m map[string]time.Time, id string, in bool, now time.Time) time.Time {
	if !in {
		delete(m, id)
		return time.Time{}
	}
	t, ok := m[id]
	if !ok {
		t = now
		m[id] = t
	}
	return t
}

// AutopilotConfig is autopilot's configuration as the state holds it.
func (a *Agent) AutopilotConfig() (uint64, state.AutopilotConfig, error) {
	return a.store.AutopilotConfig(nil)
}

// AutopilotHealth is the health of every server in the Raft configuration.
func (a *Agent) AutopilotHealth() (adminapi.AutopilotHealth, error) {
	if a.server == nil {
		return adminapi.AutopilotHealth{}, state.ErrNoServers
	}
	conf, err := a.server.RaftConfiguration()
	if err != nil {
		return adminapi.AutopilotHealth{}, err
	}
	_, cfg, err := a.store.AutopilotConfig(nil)
	if err != nil {
		return adminapi.AutopilotHealth{}, err
	}
	members := map[string]gossip.Member{}
	for _, m := range a.lan.Members() {
		if m.IsServer() && m.ID != "" {
			members[m.ID] = m
		}
	}
	stats := make([]struct {
		st  raftStats
		err error
	}, len(conf.Servers))
	var wg sync.WaitGroup
	for i, srv := range conf.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := a.server.StatsOf(srv.Address)
			stats[i].st, stats[i].err = raftStats(st), err
		}()
	}
	wg.Wait()
	var leader raftStats
	for i, srv := range conf.Servers {
		if srv.Leader && stats[i].err == nil {
			leader = stats[i].st
		}
	}
	now := time.Now()
	out := adminapi.AutopilotHealth{Healthy: true}
	a.autopilot.mu.Lock()
	defer a.autopilot.mu.Unlock()
	if a.autopilot.healthySince == nil {
		a.autopilot.healthySince = map[string]time.Time{}
	}
	healthyVoters, voters := 0, 0
	for i, srv := range conf.Servers {
		m, known := members[srv.ID]
		st, statsErr := stats[i].st, stats[i].err
		h := adminapi.ServerHealth{ID: srv.ID, Name: m.Name, Address: srv.Address, SerfStatus: "none",
			Version: m.Tags["build"], Leader: srv.Leader, Voter: srv.Voter,
			LastTerm: st.LastTerm, LastIndex: st.LastIndex}
		if known {
			h.SerfStatus = m.Status.String()
		}
		if h.Version == "" {
			h.Version = Version
		}
		if st.LastContact > 0 {
			h.LastContact = state.Duration(st.LastContact)
		}
		h.Healthy = statsErr == nil && known && m.Status == gossip.StatusAlive &&
			(srv.Leader || (st.LastContact >= 0 && st.LastContact <= time.Duration(cfg.LastContactThreshold))) &&
			st.LastTerm == leader.LastTerm && leader.LastIndex <= st.LastIndex+cfg.MaxTrailingLogs
		h.StableSince = since(a.autopilot.healthySince, srv.ID, h.Healthy, now)
		if srv.Voter {
			voters++
			if h.Healthy {
				healthyVoters++
			}
		}
		out.Healthy = out.Healthy && h.Healthy
		out.Servers = append(out.Servers, h)
	}
	out.FailureTolerance = max(healthyVoters-(voters/2+1), 0)
	return out, nil
}

// raftStats is a server's raft stats as autopilot reads them.
type raftStats struct {
	LastIndex, LastTerm uint64
	LastContact         time.Duration
}

// cleanupDeadServers removes from the Raft configuration the servers gossip
// holds failed (or no longer knows) for longer than ServerStabilizationTime,
// as Consul's autopilot does with CleanupDeadServers: never so many that
// fewer than MinQuorum voters stay, nor half of them or more at once (the
// leader may be the one cut off). It runs on the leader.
func (a *Agent) cleanupDeadServers(conf []raftPeer) {
	now := time.Now()
	a.autopilot.mu.Lock()
	// Failures seen before a pause in these calls (leadership lost and
	// gained again, cleanup turned off and on) are not this leader's:
	// start their stabilization over.
	if now.Sub(a.autopilot.lastCleanup) > 3*clusterCheckInterval {
		a.autopilot.failedSince = nil
	}
	a.autopilot.lastCleanup = now
	a.autopilot.mu.Unlock()
	_, cfg, err := a.store.AutopilotConfig(nil)
	if err != nil || !cfg.CleanupDeadServers {
		a.autopilot.mu.Lock()
		a.autopilot.failedSince = nil
		a.autopilot.mu.Unlock()
		return
	}
	status := map[string]gossip.MemberStatus{}
	for _, m := range a.lan.Members() {
		if m.IsServer() && m.ID != "" {
			status[m.ID] = m.Status
		}
	}
	a.autopilot.mu.Lock()
	if a.autopilot.failedSince == nil {
		a.autopilot.failedSince = map[string]time.Time{}
	}
	var dead []raftPeer
	for _, p := range conf {
		st, known := status[p.ID]
		gone := p.ID != a.nodeID && (!known || st == gossip.StatusFailed || st == gossip.StatusLeft)
		if t := since(a.autopilot.failedSince, p.ID, gone, now); gone && now.Sub(t) >= time.Duration(cfg.ServerStabilizationTime) {
			dead = append(dead, p)
		}
	}
	a.autopilot.mu.Unlock()
	if len(dead) == 0 || len(dead)*2 >= len(conf) || uint(len(conf)-len(dead)) < cfg.MinQuorum {
		return
	}
	for _, p := range dead {
		if err := a.server.RemoveServer(p.ID); err != nil {
			a.logger.Warn("autopilot: removing a dead server", "server", p.ID, "error", err)
			continue
		}
		a.logger.Info("autopilot: removed a dead server from raft", "server", p.ID, "address", p.Address)
	}
}

// raftPeer is a server of the Raft configuration.
type raftPeer struct{ ID, Address string }

// TransferLeadership has the leader hand leadership over (to the server
// with ID id when given).
func (a *Agent) TransferLeadership(id string) error {
	if a.server == nil {
		return state.ErrNoServers
	}
	return a.server.TransferLeadership(id)
}
