package raftstore

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// Early elections: a follower only calls an election once it has not heard
// from the leader for raft's heartbeat timeout (1 to 2 s, then as long
// again when another follower, still believing in the leader, turns the
// pre-vote down). When the leader's process dies, its host closes its
// connections at once, and its server port refuses new ones: a follower
// that sees the leader's Raft connection end, or its forwarded call
// refused, checks the leader's port, and if it is refused, shortens its
// timeouts (raft's reloadable configuration) until a new leader is known.
// A leader that is merely slow or unreachable is left to the normal
// timeouts: only a refused connection counts.

const (
	// fastElectionTimeout is the heartbeat and election timeout used
	// while the leader is known to be dead. It cannot go below raft's
	// LeaderLeaseTimeout, which is not reloadable.
	fastElectionTimeout = 500 * time.Millisecond
	// leaderProbeTimeout bounds the check of the leader's port.
	leaderProbeTimeout = 500 * time.Millisecond
	// fastElectionMax bounds how long the short timeouts stay.
	fastElectionMax = 10 * time.Second
	// leaderProbes, leaderProbeGap: a process that exits may close its
	// connections a moment before its listener (a graceful shutdown
	// closes Raft's connections first), so a port that still accepts is
	// probed again before the suspicion is dropped.
	leaderProbes   = 4
	leaderProbeGap = 100 * time.Millisecond
)

// suspectLeader asks the failover loop to check whether the leader is
// dead. It never blocks.
func (s *Server) suspectLeader() {
	select {
	case s.suspect <- struct{}{}:
	default:
	}
}

// failoverLoop checks the leader when asked, and runs an early election
// when its port refuses connections.
func (s *Server) failoverLoop(normal raft.ReloadableConfig) {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.suspect:
		}
		select {
		case <-s.stop: // our own connections closing
			return
		default:
		}
		if s.IsLeader() {
			continue
		}
		leader := s.Leader()
		if leader == "" || !s.refusedSoon(leader) || s.Leader() != leader {
			continue
		}
		s.logger.Warn("the leader's server port refuses connections: shortening the election timeouts", "leader", leader)
		s.earlyElections.Add(1)
		fast := normal
		fast.HeartbeatTimeout, fast.ElectionTimeout = fastElectionTimeout, fastElectionTimeout
		if err := s.raft.ReloadConfig(fast); err != nil {
			s.logger.Error("shortening the election timeouts", "error", err)
			continue
		}
		s.waitNewLeader(leader)
		if err := s.raft.ReloadConfig(normal); err != nil {
			s.logger.Error("restoring the election timeouts", "error", err)
		}
		// Suspicions raised meanwhile were about the dead leader.
		select {
		case <-s.suspect:
		default:
		}
	}
}

// waitNewLeader waits until a leader other than dead is known, or
// fastElectionMax passes.
func (s *Server) waitNewLeader(dead string) {
	deadline := time.NewTimer(fastElectionMax)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-deadline.C:
			return
		case <-tick.C:
			if l := s.Leader(); l != "" && l != dead {
				return
			}
		}
	}
}

// refusedSoon reports whether addr refuses a connection within
// leaderProbes probes, leaderProbeGap apart.
func (s *Server) refusedSoon(addr string) bool {
	for i := range leaderProbes {
		if i > 0 {
			select {
			case <-s.stop:
				return false
			case <-time.After(leaderProbeGap):
			}
		}
		if refused(addr) {
			return true
		}
	}
	return false
}

// refused reports whether a connection to addr is refused: nothing
// listens there, so the process that did is gone.
func refused(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, leaderProbeTimeout)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// watchedConn reports, once, that a Raft connection from a peer ended
// other than by a timeout.
type watchedConn struct {
	net.Conn
	once  sync.Once
	ended func()
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		var ne net.Error
		if errors.Is(err, io.EOF) || !errors.As(err, &ne) || !ne.Timeout() {
			c.once.Do(c.ended)
		}
	}
	return n, err
}
