package raftstore

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// ServerConfig is what a Raft server needs to start.
type ServerConfig struct {
	// NodeID is the server's Raft ID: the agent's node ID, stable across
	// restarts and renames.
	NodeID string
	// DataDir holds raft/raft.db and raft/snapshots.
	DataDir string
	// RPCAddr is where the server port listens; it is also advertised.
	RPCAddr string
	// BootstrapExpect is how many servers must be known before the first
	// election. A server with 1 bootstraps itself.
	BootstrapExpect int
	Logger          hclog.Logger
}

// Server is a Raft voter holding the replicated state.
type Server struct {
	raft   *raft.Raft
	store  *Store
	logs   *raftboltdb.BoltStore
	mux    *muxListener
	trans  *raft.NetworkTransport
	logger hclog.Logger
}

// Timeouts on the server port.
const (
	raftIOTimeout = 10 * time.Second
	raftPool      = 3
)

// NewServer opens (or creates) the Raft state under cfg.DataDir, starts the
// server port and joins the Raft cluster.
func NewServer(cfg ServerConfig, store *Store) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.RPCAddr)
	if err != nil {
		return nil, fmt.Errorf("rpc address %q: %w", cfg.RPCAddr, err)
	}

	// One bolt file is both the log and the stable store; bbolt fsyncs every
	// commit (NoSync stays false), so an acknowledged entry is on disk.
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("opening raft log %s: %w", filepath.Join(dir, "raft.db"), err)
	}
	s := &Server{store: store, logs: logs, logger: logger}
	ok := false
	defer func() {
		if !ok {
			s.closeResources()
		}
	}()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, logger.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("opening snapshot store: %w", err)
	}
	s.mux, err = listenMux(cfg.RPCAddr, logger.Named("rpc"))
	if err != nil {
		return nil, err
	}
	s.trans = raft.NewNetworkTransportWithLogger(&raftLayer{mux: s.mux, advertise: advertise},
		raftPool, raftIOTimeout, logger.Named("transport"))

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = logger.Named("raft")
	rc.SnapshotThreshold = 16384
	rc.TrailingLogs = 10240

	if cfg.BootstrapExpect == 1 {
		existing, err := raft.HasExistingState(logs, logs, snaps)
		if err != nil {
			return nil, fmt.Errorf("reading raft state: %w", err)
		}
		if !existing {
			conf := raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(cfg.RPCAddr)}}}
			if err := raft.BootstrapCluster(rc, logs, logs, snaps, s.trans, conf); err != nil {
				return nil, fmt.Errorf("bootstrapping raft: %w", err)
			}
		}
	}
	s.raft, err = raft.NewRaft(rc, NewFSM(store, logger.Named("fsm")), logs, logs, snaps, s.trans)
	if err != nil {
		return nil, fmt.Errorf("starting raft: %w", err)
	}
	ok = true
	return s, nil
}

// ErrNoLeader is returned for a write when the cluster has no leader.
var ErrNoLeader = errors.New("no cluster leader")

// ErrNotLeader is returned for a write proposed on a follower.
var ErrNotLeader = errors.New("not the cluster leader")

// Apply proposes a command and waits until it is committed by a quorum,
// fsynced and applied here. It returns the entry's Raft index.
func (s *Server) Apply(t MessageType, msg any, timeout time.Duration) (uint64, error) {
	buf, err := Encode(t, msg)
	if err != nil {
		return 0, err
	}
	f := s.raft.Apply(buf, timeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
			if addr, _ := s.raft.LeaderWithID(); addr == "" {
				return 0, ErrNoLeader
			}
			return 0, ErrNotLeader
		}
		return 0, fmt.Errorf("raft apply of %s: %w", t, err)
	}
	if resp, isErr := f.Response().(error); isErr && resp != nil {
		return f.Index(), resp
	}
	return f.Index(), nil
}

// IsLeader reports whether this server leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's server address, or "" when there is none.
func (s *Server) Leader() string {
	addr, _ := s.raft.LeaderWithID()
	return string(addr)
}

// LastContact is the time since this server last heard from the leader;
// zero on the leader itself.
func (s *Server) LastContact() time.Duration {
	if s.IsLeader() {
		return 0
	}
	last := s.raft.LastContact()
	if last.IsZero() {
		return -1
	}
	return time.Since(last)
}

// Peers returns the servers of the Raft configuration.
func (s *Server) Peers() ([]raft.Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("reading raft configuration: %w", err)
	}
	return f.Configuration().Servers, nil
}

// VerifyLeader confirms with a quorum that this server still leads, for
// linearizable reads.
func (s *Server) VerifyLeader() error {
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return ErrNotLeader
	}
	return nil
}

// LeaderCh delivers true when this server gains leadership, false when it
// loses it.
func (s *Server) LeaderCh() <-chan bool { return s.raft.LeaderCh() }

// Barrier waits until every entry committed before it is applied here: a
// new leader calls it before serving reads.
func (s *Server) Barrier(timeout time.Duration) error {
	return s.raft.Barrier(timeout).Error()
}

// Stats are raft's counters, for /v1/agent/self.
func (s *Server) Stats() map[string]string { return s.raft.Stats() }

// Shutdown stops Raft and closes the log and the server port.
func (s *Server) Shutdown() error {
	err := s.raft.Shutdown().Error()
	s.closeResources()
	if err != nil {
		return fmt.Errorf("raft shutdown: %w", err)
	}
	return nil
}

func (s *Server) closeResources() {
	if s.trans != nil {
		s.trans.Close()
	}
	if s.mux != nil {
		s.mux.Close()
	}
	if s.logs != nil {
		s.logs.Close()
	}
}
