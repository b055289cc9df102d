package raftstore

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/raft"
)

// The operator's calls on the Raft cluster: its configuration, and removing
// a server from it.

// configChangeTimeout bounds how long a peer removal waits to be taken up by
// Raft.
const configChangeTimeout = 30 * time.Second

// notLeader is the error for an operation only the leader performs.
func (s *Server) notLeader() error {
	if s.Leader() == "" {
		return state.ErrNoLeader
	}
	return state.ErrNotLeader
}

// leaderErr turns raft's leadership errors into ours.
func (s *Server) leaderErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return s.notLeader()
	}
	return err
}

// RaftConfiguration returns the servers of the latest Raft configuration
// this server knows, sorted by ID, with the leader marked.
func (s *Server) RaftConfiguration() (state.RaftConfigurationInfo, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return state.RaftConfigurationInfo{}, fmt.Errorf("reading raft configuration: %w", err)
	}
	leaderAddr, leaderID := s.raft.LeaderWithID()
	proto := s.raft.Stats()["protocol_version"]
	info := state.RaftConfigurationInfo{Index: s.configurationIndex(), Servers: []state.RaftServerInfo{}}
	for _, srv := range f.Configuration().Servers {
		leader := leaderID != "" && srv.ID == leaderID
		if leaderID == "" && leaderAddr != "" {
			leader = srv.Address == leaderAddr
		}
		info.Servers = append(info.Servers, state.RaftServerInfo{
			ID: string(srv.ID), Address: string(srv.Address), Leader: leader,
			ProtocolVersion: proto, Voter: srv.Suffrage == raft.Voter,
		})
	}
	sort.Slice(info.Servers, func(i, j int) bool { return info.Servers[i].ID < info.Servers[j].ID })
	return info, nil
}

// configurationIndex is the index of the latest configuration entry in the
// log or, when compaction has removed it, of the latest snapshot, which
// carries the configuration. raft's ConfigurationFuture.Index() would say,
// but since raft made GetConfiguration non-blocking it is always 0.
func (s *Server) configurationIndex() uint64 {
	first, err1 := s.logs.FirstIndex()
	last, err2 := s.logs.LastIndex()
	if err1 == nil && err2 == nil && first > 0 {
		var l raft.Log
		for i := last; i >= first; i-- {
			// A restore leaves a hole in the log at the restored
			// snapshot's index: skip missing entries.
			if err := s.logs.GetLog(i, &l); err == nil && l.Type == raft.LogConfiguration {
				return i
			}
		}
	}
	idx, _ := strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64)
	return idx
}

// RemovePeer removes a server from the Raft configuration, by ID or, when
// id is empty, by address. A follower passes the request on to the leader;
// while no leader is known it waits for one up to the hold timeout, then
// returns ErrNoLeader. A server not in the configuration is an
// ErrPeerNotFound.
func (s *Server) RemovePeer(id, address string) error {
	if err := checkPeerArgs(id, address); err != nil {
		return err
	}
	deadline := time.Now().Add(configChangeTimeout)
	return s.untilLeader(deadline, noLeaderYet, func(time.Duration) error {
		if s.IsLeader() {
			return s.removePeerLocal(id, address)
		}
		leader := s.Leader()
		if leader == "" {
			return state.ErrNoLeader
		}
		ctx, cancel := s.leaderCtx(leader, deadline)
		defer cancel()
		resp, err := s.conns.call(ctx, leader, &rpcRequest{Method: rpcMethodRemovePeer, PeerID: id, PeerAddress: address})
		if err != nil {
			return fmt.Errorf("passing the peer removal on to the leader: %w", err)
		}
		return remoteError(resp)
	})
}

func checkPeerArgs(id, address string) error {
	switch {
	case id == "" && address == "":
		return errors.New("removing a raft peer needs its ID or its address")
	case id != "" && address != "":
		return errors.New("removing a raft peer takes its ID or its address, not both")
	}
	return nil
}

// removePeerLocal is RemovePeer on the leader.
func (s *Server) removePeerLocal(id, address string) error {
	if err := checkPeerArgs(id, address); err != nil {
		return err
	}
	if !s.IsLeader() {
		return s.notLeader()
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("reading raft configuration: %w", err)
	}
	var found raft.ServerID
	for _, srv := range f.Configuration().Servers {
		if (id != "" && string(srv.ID) == id) || (id == "" && string(srv.Address) == address) {
			found = srv.ID
			break
		}
	}
	if found == "" {
		if id != "" {
			return fmt.Errorf("id %q was %w", id, state.ErrPeerNotFound)
		}
		return fmt.Errorf("address %q was %w", address, state.ErrPeerNotFound)
	}
	// prevIndex 0: unconditional. Removing a server that a concurrent
	// change already removed is a no-op for raft.
	if err := s.raft.RemoveServer(found, 0, configChangeTimeout).Error(); err != nil {
		return s.leaderErr(fmt.Errorf("removing raft peer %s: %w", found, err))
	}
	return nil
}
