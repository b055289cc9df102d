package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
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
	// SessionTouched, when set, is called by the FSM (it must not block)
	// for every session created or renewed, with its TTL.
	SessionTouched func(id, ttl string)
	// HoldTimeout is how long a request that needs the leader waits for
	// one while none is known (Consul's rpc_hold_timeout); zero is
	// DefaultHoldTimeout.
	HoldTimeout time.Duration
	// LeadershipChanged, when set, is called from one goroutine, in order,
	// when this server becomes a ready leader (after its barrier: every
	// earlier entry is applied) and when it stops being leader.
	LeadershipChanged func(leader bool)
	// Datacenter is the server's datacenter; RemoteServers, when set,
	// returns the RPC addresses of another datacenter's alive servers (from
	// the WAN pool), where requests for it are sent.
	Datacenter    string
	RemoteServers func(dc string) []string
	// TLS is the agent's TLS material, for the server port (incoming) and
	// the connections to other servers (Raft, forwarded calls); nil is
	// plaintext only.
	TLS *tlsutil.Configurator
}

// Server is a Raft voter holding the replicated state.
type Server struct {
	raft  *raft.Raft
	fsm   *FSM
	store *state.Store
	logs  *raftboltdb.BoltStore
	mux   *muxListener
	trans *raft.NetworkTransport
	conns rpcConns
	// api answers HTTP requests client agents forward (apiforward.go).
	api apiHandler
	// datacenter is this server's; remoteServers the RPC addresses of
	// another datacenter's servers.
	datacenter    string
	remoteServers func(dc string) []string
	// forwarder batches the writes this follower forwards to the leader.
	forwarder applyForwarder
	logger    hclog.Logger
	// leaderWatch tells of every change of the leader (leader.go);
	// holdTimeout is how long a request waits for a leader.
	leaderWatch leaderWatch
	holdTimeout time.Duration

	// coordinates holds, on the leader, the coordinate updates of its
	// next batch (coordinates.go).
	coordinates coordinateBatcher

	// leaderReady is set once this server, as leader, has applied every
	// entry of earlier terms (its barrier); until then it serves no
	// linearizable read.
	leaderReady atomic.Bool
	notify      chan bool
	started     time.Time
	// suspect wakes the failover loop (failover.go); earlyElections
	// counts the times it shortened the timeouts.
	suspect        chan struct{}
	earlyElections atomic.Uint64
	stop           chan struct{}
	wg             sync.WaitGroup
	stopOnce       sync.Once
	stopErr        error

	// source serves the state stream client agents follow.
	source *streamSource
}

// Timeouts on the server port.
const (
	raftIOTimeout = 10 * time.Second
	raftPool      = 3
	// raftLogCache is how many recent entries the log cache holds.
	raftLogCache = 512
	// boltOpenTimeout bounds the wait for raft.db's file lock, which
	// another process using the same data_dir holds.
	boltOpenTimeout = 5 * time.Second
)

// NewServer opens (or creates) the Raft state under cfg.DataDir, starts the
// server port and joins the Raft cluster.
func NewServer(cfg ServerConfig, store *state.Store) (*Server, error) {
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
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: boltOpenTimeout}})
	if err != nil {
		return nil, fmt.Errorf("opening raft log %s: %w", filepath.Join(dir, "raft.db"), err)
	}
	s := &Server{store: store, logs: logs, logger: logger, notify: make(chan bool, 16), stop: make(chan struct{}),
		started: time.Now(), suspect: make(chan struct{}, 1), holdTimeout: cfg.HoldTimeout,
		datacenter: cfg.Datacenter, remoteServers: cfg.RemoteServers}
	if s.holdTimeout <= 0 {
		s.holdTimeout = DefaultHoldTimeout
	}
	s.forwarder.leaderCtx = s.leaderCtx
	s.conns.tls = cfg.TLS
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
	// The FSM exists before the port opens: the stream handler reads its feed.
	s.fsm = NewFSM(store, logger.Named("fsm"))
	s.fsm.feed = newChangeFeed(feedMaxEntries, feedMaxBytes)
	s.fsm.sessionTouched = cfg.SessionTouched
	s.source = &streamSource{fsm: s.fsm, stop: s.stop, logger: logger.Named("stream"),
		view: func() (string, time.Duration) { return s.Leader(), s.Staleness() }}
	s.mux, err = listenMux(cfg.RPCAddr, cfg.TLS, logger.Named("rpc"), map[byte]func(net.Conn){
		protoRPC: s.serveRPC, protoStream: s.source.serve, protoSnapshot: s.serveSnapshotRPC})
	if err != nil {
		return nil, err
	}
	s.trans = raft.NewNetworkTransportWithLogger(&raftLayer{mux: s.mux, tls: cfg.TLS, advertise: advertise, ended: s.suspectLeader},
		raftPool, raftIOTimeout, logger.Named("transport"))

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = logger.Named("raft")
	rc.SnapshotThreshold = 16384
	rc.TrailingLogs = 10240
	rc.NotifyCh = s.notify
	// Raft's per-peer metrics carry the peer in a label; the legacy copies
	// with the peer ID in the name would make a metric per server.
	rc.NoLegacyTelemetry = true
	// Writes queue for the leader's loop instead of handing over one at a
	// time, so concurrent writes go to disk, to the followers and to the FSM
	// (ApplyBatch) together: a quarter more writes per second. Raft leaves
	// the futures still queued unanswered when it shuts down, which
	// waitQueued deals with.
	rc.BatchApplyCh = true
	// A follower learns that an entry committed from the leader's next
	// AppendEntries; when no write follows, that is CommitTimeout (to twice
	// that) later. 20 ms instead of raft's 50 keeps a blocking query on a
	// follower within 100 ms of the write that wakes it, for about 2% of a
	// core across an idle 3-server cluster (5 ms cost 8%).
	rc.CommitTimeout = 20 * time.Millisecond

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
	// The leader reads back every entry it sends a follower: the cache
	// serves the latest from memory instead of decoding them from bolt.
	cached, err := raft.NewLogCache(raftLogCache, logs)
	if err != nil {
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, cached, logs, snaps, s.trans)
	if err != nil {
		return nil, fmt.Errorf("starting raft: %w", err)
	}
	ok = true
	s.wg.Add(4)
	go s.leaderLoop(cfg.LeadershipChanged)
	go s.failoverLoop(s.raft.ReloadableConfig())
	go s.observeLeader()
	go s.coordinateLoop()
	return s, nil
}

// leaderLoop follows leadership changes: a new leader first applies every
// entry of earlier terms (Barrier), and only then counts as ready.
func (s *Server) leaderLoop(changed func(bool)) {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case leader := <-s.notify:
			if !leader {
				if s.leaderReady.Swap(false) && changed != nil {
					changed(false)
				}
				continue
			}
			for {
				err := s.waitQueued(s.raft.Barrier(maxApplyTimeout))
				if err == nil {
					break
				}
				if s.raft.State() != raft.Leader {
					break
				}
				s.logger.Warn("leader barrier failed; retrying", "error", err)
				select {
				case <-s.stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			if s.raft.State() == raft.Leader && !s.leaderReady.Swap(true) && changed != nil {
				changed(true)
			}
		}
	}
}

// Apply proposes a command and waits until it is committed by a quorum,
// fsynced and applied on the leader. On a follower it forwards the command
// to the leader; while there is no leader (an election) it waits for one,
// up to timeout. It returns the entry's Raft index.
func (s *Server) Apply(t state.MessageType, msg any, timeout time.Duration) (uint64, error) {
	idx, _, err := s.ApplyWithResult(t, msg, timeout)
	return idx, err
}

// ApplyWithResult is Apply for commands that answer more than an error (conditional
// KV writes, transactions): it also returns the command's result, nil for
// commands that have none.
func (s *Server) ApplyWithResult(t state.MessageType, msg any, timeout time.Duration) (uint64, *state.CommandResult, error) {
	buf, err := Encode(t, msg)
	if err != nil {
		return 0, nil, err
	}
	return s.applyEncoded(buf, timeout)
}

// applyEncoded is ApplyWithResult of an encoded command. While no leader
// is known it waits for one, up to the hold timeout; a write forwarded to
// a leader deposed before it answered fails with ErrLeadershipLost, since
// it may yet be committed.
func (s *Server) applyEncoded(buf []byte, timeout time.Duration) (uint64, *state.CommandResult, error) {
	if len(buf) < 2 {
		return 0, nil, errShortEntry
	}
	timeout = min(timeout, maxApplyTimeout)
	deadline := time.Now().Add(timeout)
	var idx uint64
	var res *state.CommandResult
	err := s.untilLeader(deadline, noLeaderYet, func(remaining time.Duration) error {
		var err error
		switch leader := s.Leader(); {
		case s.IsLeader():
			idx, res, err = s.applyLocal(buf, remaining)
		case leader != "":
			idx, res, err = s.forwardApply(leader, buf, deadline)
		default:
			err = state.ErrNoLeader
		}
		return err
	})
	return idx, res, err
}

// applyLocal applies an encoded entry on this server, which must lead.
func (s *Server) applyLocal(buf []byte, timeout time.Duration) (uint64, *state.CommandResult, error) {
	return s.startApply(buf, timeout)()
}

// startApply proposes an encoded entry on this server, which must lead, and
// returns the wait for its outcome.
func (s *Server) startApply(buf []byte, timeout time.Duration) func() (uint64, *state.CommandResult, error) {
	if len(buf) < 2 {
		return func() (uint64, *state.CommandResult, error) { return 0, nil, errShortEntry }
	}
	if state.MessageType(buf[0]) == state.CoordinateBatchUpdateType {
		// Not proposed: queued for the leader's next coordinate batch.
		err := s.queueCoordinates(buf)
		idx := s.fsm.AppliedIndex()
		return func() (uint64, *state.CommandResult, error) { return idx, nil, err }
	}
	if s.lockDelayed(buf) {
		// Consul's lock-delay: a lock on a key whose holder's session was
		// just invalidated fails without being proposed.
		idx := s.fsm.AppliedIndex()
		return func() (uint64, *state.CommandResult, error) { return idx, &state.CommandResult{}, nil }
	}
	f := s.raft.Apply(buf, timeout)
	return func() (uint64, *state.CommandResult, error) { return s.applyOutcome(buf, f) }
}

// waitQueued waits for the future of an Apply or a Barrier. Those go
// through raft's buffered apply channel (BatchApplyCh), whose futures raft
// leaves unanswered when it shuts down, so the wait ends when this server
// stops too; the goroutine that waits for such a future stays until the
// process ends.
func (s *Server) waitQueued(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-s.stop:
		return raft.ErrRaftShutdown
	}
}

func (s *Server) applyOutcome(buf []byte, f raft.ApplyFuture) (uint64, *state.CommandResult, error) {
	if err := s.waitQueued(f); err != nil {
		// ErrNotLeader: the entry was never appended, another leader may
		// take it. ErrLeadershipLost is not that: the entry was appended
		// and the next leader may still commit it, so the outcome is
		// unknown and the write must not be sent again.
		if errors.Is(err, raft.ErrNotLeader) {
			return 0, nil, state.ErrNotLeader
		}
		if errors.Is(err, raft.ErrLeadershipLost) {
			err = state.ErrLeadershipLost
		}
		return 0, nil, fmt.Errorf("raft apply of %s: %w", state.MessageType(buf[0]), err)
	}
	switch resp := f.Response().(type) {
	case error:
		return f.Index(), nil, resp
	case *state.CommandResult:
		return f.Index(), resp, nil
	}
	return f.Index(), nil, nil
}

// lockDelayed reports whether buf is a KV lock on a key under a lock delay.
func (s *Server) lockDelayed(buf []byte) bool {
	if state.MessageType(buf[0]) != state.KVSRequestType || !s.store.AnyLockDelay() {
		return false
	}
	_, decode, err := decodeHeader(buf)
	if err != nil {
		return false
	}
	var req state.KVSRequest
	if decode(&req) != nil || req.Op != state.KVLock {
		return false
	}
	return s.store.KVLockDelayed(req.DirEnt.Key)
}

func (s *Server) forwardApply(leader string, buf []byte, deadline time.Time) (uint64, *state.CommandResult, error) {
	resp, err := s.forwarder.apply(&s.conns, leader, buf, deadline)
	switch {
	case errors.Is(err, errNotSent):
		s.suspectLeader()
		return 0, nil, err
	case errors.Is(err, errLeaderChanged):
		return 0, nil, fmt.Errorf("%w: forwarded to %s, which was deposed before it answered", state.ErrLeadershipLost, leader)
	case err != nil:
		return 0, nil, err
	}
	return resp.Index, resp.Result, remoteError(resp)
}

// readIndexLocal returns the index a read must see, as the leader:
// everything applied here. With verify (a linearizable read) a quorum
// confirms the leadership after the index was taken (hashicorp/raft#603:
// confirming first and reading the index later lets a deposed leader hand
// out a stale index); without it (Consul's default mode) the leader's word
// is taken, as Consul takes it.
func (s *Server) readIndexLocal(verify bool) (uint64, error) {
	if !s.IsLeader() {
		return 0, state.ErrNotLeader
	}
	if !s.leaderReady.Load() {
		return 0, state.ErrNoLeader // elected, but earlier terms not yet applied
	}
	// After the barrier every committed command is applied here, and every
	// acknowledged write was applied before it was acknowledged.
	idx := s.fsm.AppliedIndex()
	if verify {
		if err := s.raft.VerifyLeader().Error(); err != nil {
			return 0, state.ErrNotLeader
		}
	}
	return idx, nil
}

// readIndex returns the index a read must see from any server: the
// leader's read index, asked of it over RPC from a follower. While no
// leader is known it waits for one, up to the hold timeout; asking is
// harmless, so a leader that fails to answer is asked again, or its
// successor is.
func (s *Server) readIndex(verify bool, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	var idx uint64
	err := s.untilLeader(deadline, anyFailure, func(time.Duration) error {
		var err error
		idx, err = s.readIndexOnce(verify, deadline)
		return err
	})
	return idx, err
}

func (s *Server) readIndexOnce(verify bool, deadline time.Time) (uint64, error) {
	if s.IsLeader() {
		return s.readIndexLocal(verify)
	}
	leader := s.Leader()
	if leader == "" {
		return 0, state.ErrNoLeader
	}
	ctx, cancel := s.leaderCtx(leader, deadline)
	defer cancel()
	resp, err := s.conns.call(ctx, leader, &rpcRequest{Method: rpcMethodReadIndex, Verify: verify})
	if err != nil {
		return 0, fmt.Errorf("asking the leader for its read index: %w", err)
	}
	if err := remoteError(resp); err != nil {
		return 0, err
	}
	return resp.Index, nil
}

// ConsistentRead makes this replica safe for a read of the given mode:
// linearizable (verify) waits until it has applied everything the leader had
// applied when a quorum confirmed the leader; otherwise (Consul's default
// mode) until it has applied what the leader has, without the quorum round.
func (s *Server) ConsistentRead(verify bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	idx, err := s.readIndex(verify, timeout)
	if err != nil {
		return err
	}
	return s.waitApplied(idx, time.Until(deadline)) // at once on the leader
}

// waitApplied waits until this replica has applied index idx.
func (s *Server) waitApplied(idx uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	wait := 100 * time.Microsecond
	for s.fsm.AppliedIndex() < idx {
		if time.Now().After(deadline) {
			return fmt.Errorf("replica did not catch up to index %d within %s", idx, timeout)
		}
		select {
		case <-s.stop:
			return state.ErrNoLeader
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Millisecond)
	}
	return nil
}

// Peer is a server of the Raft configuration.
type Peer struct {
	ID      string
	Address string
}

// HasExistingState reports whether this server has Raft state (logs,
// snapshots or a term) from an earlier run or an earlier bootstrap, in which
// case it must never bootstrap again.
func (s *Server) HasExistingState() bool {
	last, err := s.logs.LastIndex()
	return err != nil || last > 0 || s.raft.LastIndex() > 0
}

// PeerLastIndex asks the server at addr for its last Raft index; 0 means it
// has no Raft state, so it has not been part of any cluster.
func (s *Server) PeerLastIndex(addr string, timeout time.Duration) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := s.conns.call(ctx, addr, &rpcRequest{Method: rpcMethodLastIndex})
	if err != nil {
		return 0, err
	}
	return resp.Index, remoteError(resp)
}

// Configuration returns the servers of the latest Raft configuration.
func (s *Server) Configuration() ([]Peer, error) {
	servers, err := s.Peers()
	if err != nil {
		return nil, err
	}
	out := make([]Peer, 0, len(servers))
	for _, srv := range servers {
		out = append(out, Peer{ID: string(srv.ID), Address: string(srv.Address)})
	}
	return out, nil
}

// BootstrapWith makes peers the first Raft configuration. Every server of a
// new cluster calls it with the same peers (those gossip found once
// bootstrap_expect were there); raft refuses it on a server with state.
func (s *Server) BootstrapWith(peers []Peer) error {
	conf := raft.Configuration{}
	for _, p := range peers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil {
		return fmt.Errorf("bootstrapping raft with %d servers: %w", len(peers), err)
	}
	return nil
}

// AddVoter adds (or re-addresses) a voting server; the leader only. The
// server must first answer a call on its server port: a server that gossip
// knows (it has the gossip key) but whose certificate the cluster's TLS
// refuses, or whose port cannot be reached, would only be a voter that
// never votes, raising the quorum without adding to it.
func (s *Server) AddVoter(p Peer) error {
	ctx, cancel := context.WithTimeout(context.Background(), rpcDialTimeout+rpcAnswerMargin)
	resp, err := s.conns.call(ctx, p.Address, &rpcRequest{Method: rpcMethodLastIndex})
	cancel()
	if err == nil {
		err = remoteError(resp)
	}
	if err != nil {
		return fmt.Errorf("not adding server %s at %s: its server port does not answer: %w", p.ID, p.Address, err)
	}
	if err := s.raft.AddVoter(raft.ServerID(p.ID), raft.ServerAddress(p.Address), 0, maxApplyTimeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return state.ErrNotLeader
		}
		return fmt.Errorf("adding server %s at %s: %w", p.ID, p.Address, err)
	}
	return nil
}

// RemoveServer removes a server from the configuration; the leader only.
func (s *Server) RemoveServer(id string) error {
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, maxApplyTimeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return state.ErrNotLeader
		}
		return fmt.Errorf("removing server %s: %w", id, err)
	}
	return nil
}

// IsLeader reports whether this server leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's server address, or "" when there is none.
func (s *Server) Leader() string {
	addr, _ := s.raft.LeaderWithID()
	return string(addr)
}

// Staleness is how out of date this server's replica may be: 0 on the
// leader, the time since it last heard from the leader on a follower, and
// the time since it started when it never has.
func (s *Server) Staleness() time.Duration {
	lc := s.LastContact()
	if lc < 0 {
		return max(time.Since(s.started), time.Nanosecond)
	}
	return lc
}

// LastContact is the time since this server last heard from the leader;
// zero on the leader itself, negative when it never has.
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
		return state.ErrNotLeader
	}
	return nil
}

// Barrier waits until every entry committed before it is applied here: a
// new leader calls it before serving reads.
func (s *Server) Barrier(timeout time.Duration) error {
	return s.waitQueued(s.raft.Barrier(timeout))
}

// FeedStats describe the change feed client replicas follow: the commands
// it holds, their bytes, the replicas streaming from this server (or
// relay), and the streams a relay refused while it had no current state.
type FeedStats struct {
	Entries, Bytes   int
	Streams, Refused int64
}

// FeedStats reads the change feed's size and followers, for the metrics.
func (s *Server) FeedStats() FeedStats { return s.source.stats() }

// Stats are raft's counters, for /v1/agent/self.
func (s *Server) Stats() map[string]string { return s.raft.Stats() }

// Shutdown stops Raft and closes the log and the server port. Calls after
// the first return its result.
func (s *Server) Shutdown() error {
	s.stopOnce.Do(func() {
		close(s.stop)
		err := s.raft.Shutdown().Error()
		s.wg.Wait()
		s.conns.close()
		s.closeResources()
		if err != nil {
			s.stopErr = fmt.Errorf("raft shutdown: %w", err)
		}
	})
	return s.stopErr
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
