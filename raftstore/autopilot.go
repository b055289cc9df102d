package raftstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/beacon-dns/beacon/state"
)

// What autopilot needs of Raft: each server's own view of its log
// (rpcMethodServerStats, asked of every server by whichever server answers
// /v1/operator/autopilot/health), and a leadership transfer.

const (
	rpcMethodServerStats    = "ServerStats"
	rpcMethodTransferLeader = "TransferLeader"
	// serverStatsTimeout bounds asking one server for its stats: a server
	// that does not answer within it is reported unhealthy.
	serverStatsTimeout = 2 * time.Second
)

// ServerStats is one server's view of its Raft log.
type ServerStats struct {
	LastIndex uint64
	LastTerm  uint64
	// LastContact is how long ago it heard from the leader: 0 on the
	// leader, negative when never.
	LastContact time.Duration
}

// LocalStats are this server's stats.
func (s *Server) LocalStats() ServerStats {
	st := s.raft.Stats()
	term, _ := strconv.ParseUint(st["last_log_term"], 10, 64)
	return ServerStats{LastIndex: s.raft.LastIndex(), LastTerm: term, LastContact: s.LastContact()}
}

// StatsOf asks the server at addr for its stats (this server's own when
// addr is its address).
func (s *Server) StatsOf(addr string) (ServerStats, error) {
	if addr == string(s.trans.LocalAddr()) {
		return s.LocalStats(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), serverStatsTimeout)
	defer cancel()
	resp, err := s.conns.call(ctx, addr, &rpcRequest{Method: rpcMethodServerStats})
	if err == nil {
		err = remoteError(resp)
	}
	if err != nil {
		return ServerStats{}, fmt.Errorf("asking %s for its raft stats: %w", addr, err)
	}
	if resp.Stats == nil {
		return ServerStats{}, fmt.Errorf("server %s sent no raft stats", addr)
	}
	return *resp.Stats, nil
}

// TransferLeadership has the leader hand leadership to the server with ID
// id, or to the most up-to-date one when id is "". A follower passes the
// request on to the leader.
func (s *Server) TransferLeadership(id string) error {
	deadline := time.Now().Add(configChangeTimeout)
	return s.untilLeader(deadline, noLeaderYet, func(time.Duration) error {
		if s.IsLeader() {
			return s.transferLocal(id)
		}
		leader := s.Leader()
		if leader == "" {
			return state.ErrNoLeader
		}
		// Not leaderCtx: the leader changing is what the request is for.
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		resp, err := s.conns.call(ctx, leader, &rpcRequest{Method: rpcMethodTransferLeader, PeerID: id})
		if err != nil {
			return fmt.Errorf("passing the leadership transfer on to the leader: %w", err)
		}
		return remoteError(resp)
	})
}

// transferLocal is TransferLeadership on the leader.
func (s *Server) transferLocal(id string) error {
	if !s.IsLeader() {
		return s.notLeader()
	}
	if id == "" {
		if err := s.raft.LeadershipTransfer().Error(); err != nil {
			return fmt.Errorf("transferring leadership: %w", err)
		}
		return nil
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("reading raft configuration: %w", err)
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) != id {
			continue
		}
		if srv.Suffrage != raft.Voter {
			return fmt.Errorf("%w: server %s does not vote", state.ErrInvalidRegistration, id)
		}
		if err := s.raft.LeadershipTransferToServer(srv.ID, srv.Address).Error(); err != nil {
			return fmt.Errorf("transferring leadership to %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("id %q was %w", id, state.ErrPeerNotFound)
}
