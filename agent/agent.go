package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/adminapi"
	"github.com/beacon-dns/beacon/corefile"
	"github.com/beacon-dns/beacon/gossip"
	"github.com/beacon-dns/beacon/healthcheck"
	"github.com/beacon-dns/beacon/internal/atomicfile"
	"github.com/beacon-dns/beacon/internal/telemetry"
	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/beacon-dns/beacon/raftstore"
	"github.com/beacon-dns/beacon/state"
)

// Version is the beacon release, set at build time with
// -ldflags "-X github.com/beacon-dns/beacon/agent.Version=…".
var Version = "0.1.0-dev"

// applyTimeout bounds how long a write waits to be committed, including the
// wait for a leader during an election.
const applyTimeout = 10 * time.Second

// catchUpTimeout bounds how long a default or consistent read waits for the
// replica to reach the leader's index, once it has it (the wait for a
// leader is rpc_hold_timeout's).
const catchUpTimeout = 3 * time.Second

// backend is how the agent reaches the replicated state: as a Raft server
// (*raftstore.Server) or as a client agent of the servers
// (*raftstore.Client).
type backend interface {
	Apply(t state.MessageType, msg any, timeout time.Duration) (uint64, error)
	ApplyWithResult(t state.MessageType, msg any, timeout time.Duration) (uint64, *state.CommandResult, error)
	ConsistentRead(verify bool, timeout time.Duration) error
	Leader() string
	LastContact() time.Duration
	RaftConfiguration() (state.RaftConfigurationInfo, error)
	RemovePeer(id, address string) error
	SaveSnapshot(w io.Writer) (uint64, error)
	RestoreSnapshot(r io.Reader) error
	Shutdown() error
}

// Agent is the running agent: the process's one Raft server or client of
// the servers, its local services, and its HTTP API.
type Agent struct {
	cfg    corefile.AgentConfig
	nodeID string
	logger hclog.Logger

	store *state.Store
	// acl resolves ACL tokens; nil when ACLs are off.
	acl adminapi.TokenResolver
	// tokens are the agent's own tokens: the Corefile's, as
	// /v1/agent/token changed them since.
	tokens atomic.Pointer[corefile.ACLTokens]
	// backend is server or client, whichever this agent is.
	backend backend
	server  *raftstore.Server
	client  *raftstore.Client
	local   *healthcheck.Local
	sync    *healthcheck.Syncer
	checks  checkRunner
	http    *adminapi.Server
	// api is the HTTP API's handler, for requests the agent makes of
	// itself (remote.go).
	api http.Handler
	lan *gossip.Pool
	// wan is a server's WAN pool: the servers of every datacenter; nil
	// on a client agent. wanJoining is set while a flood join runs.
	wan        *gossip.Pool
	wanJoining atomic.Bool
	// tls is the TLS material every connection of the agent takes when it
	// starts: the server port's, those to servers, HTTPS's (tls.go).
	tls *tlsutil.Configurator
	// telemetry are the process's metrics sinks (telemetry.go).
	telemetry *telemetry.Sinks

	// cancelJoin stops retrying join addresses.
	cancelJoin context.CancelFunc
	// leadership wakes the cluster loop on a leadership change.
	leadership chan struct{}
	// staleness is how long ago this replica last heard from the leader,
	// refreshed every stalenessInterval so that DNS reads it without
	// taking raft's lock.
	staleness atomic.Int64
	started   time.Time

	// bootstrapped is set once this server has (or joined) Raft state; only
	// the cluster loop touches it.
	bootstrapped bool

	// autopilot tracks servers' health and failures across reads.
	autopilot autopilotTracker

	// sessions are the leader's session TTL timers.
	sessions *sessionTimers

	// left is set once the agent left the pool gracefully.
	left atomic.Bool

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// start brings up an agent from cfg. On error nothing is left running.
func start(cfg corefile.AgentConfig) (*Agent, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data_dir %s: %w", cfg.DataDir, err)
	}
	// An intercept logger: /v1/agent/monitor taps it with sinks of their
	// own level, without changing what goes to stderr.
	logger := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:   "beacon",
		Level:  hclog.LevelFromString(envOr("BEACON_LOG_LEVEL", "info")),
		Output: os.Stderr,
	})
	nodeID, err := loadOrCreateNodeID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	local, err := healthcheck.LoadLocal(filepath.Join(cfg.DataDir, "local.json"))
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, nodeID: nodeID, logger: logger, store: state.NewStore(), local: local,
		stop: make(chan struct{}), leadership: make(chan struct{}, 1),
	}
	a.started = time.Now()
	a.tokens.Store(&cfg.ACLTokens)
	// Before Raft and gossip start: they emit into the global from then on.
	if a.telemetry, err = telemetry.Process(); err != nil {
		return nil, err
	}
	if a.tls, err = loadTLS(cfg, logger); err != nil {
		return nil, err
	}
	a.sessions = newSessionTimers(a.expireSession)
	// Before Raft starts: gaining leadership triggers a sync.
	a.sync = healthcheck.NewSyncer(healthcheck.SyncConfig{Local: a.local, Store: a.store, Catalog: a,
		Node: a.nodeRegistration, Logger: logger.Named("sync"),
		Keep: func(id string) bool { return cfg.Server && id == consulService }}) // the leader's, from gossip
	if cfg.Server {
		a.server, err = raftstore.NewServer(raftstore.ServerConfig{
			NodeID: nodeID, DataDir: cfg.DataDir, RPCAddr: cfg.RPC,
			BootstrapExpect: cfg.BootstrapExpect, Logger: logger, LeadershipChanged: a.onLeadership,
			SessionTouched: a.sessions.touch, HoldTimeout: cfg.RPCHoldTimeout, TLS: a.tls,
			Datacenter: cfg.Datacenter, RemoteServers: a.remoteServers,
		}, a.store)
		if err != nil {
			return nil, err
		}
		a.backend = a.server
	}
	if err := a.startGossip(); err != nil {
		if a.server != nil {
			_ = a.server.Shutdown()
		}
		return nil, err
	}
	if !cfg.Server {
		// After gossip: the client finds its servers there.
		cc := raftstore.ClientConfig{Servers: a.serverAddrs, Relays: a.relayAddrs, RelayAddr: a.relayAddr(),
			Logger: logger.Named("client"), TLS: a.tls}
		if a.client, err = raftstore.NewClient(cc, a.store); err != nil {
			a.abortStart()
			return nil, err
		}
		a.backend = a.client
	}
	a.acl = a.newACLResolver()
	a.http, err = listenAPI(cfg, a, a.tls, logger.Named("http"))
	if err != nil {
		a.abortStart()
		return nil, err
	}
	a.api = a.http.Handler()
	if a.server != nil {
		a.server.SetAPI(a.api)
	}
	a.checks = newCheckRunner(a)
	a.startChecks()
	a.wg.Add(4)
	go func() {
		defer a.wg.Done()
		a.sync.Run(a.stop)
	}()
	go a.coordinateLoop()
	go a.reapLoop()
	go a.reloadTLSOnSIGHUP(watchSIGHUP())
	a.wg.Add(1)
	go a.telemetryLoop()
	if a.server != nil {
		a.wg.Add(1)
		go a.stalenessLoop()
	}
	role := "client"
	if cfg.Server {
		role = "server"
	}
	logger.Info("agent started", "role", role, "node", cfg.Node, "id", nodeID, "datacenter", cfg.Datacenter,
		"rpc", cfg.RPC, "http", cfg.HTTP, "https", cfg.HTTPS)
	return a, nil
}

// abortStart stops what start started once gossip runs, when a later step
// fails.
func (a *Agent) abortStart() {
	close(a.stop)
	a.cancelJoin()
	a.wg.Wait()
	_ = a.lan.Shutdown()
	if a.wan != nil {
		_ = a.wan.Shutdown()
	}
	if a.backend != nil {
		_ = a.backend.Shutdown()
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// loadOrCreateNodeID returns the node's stable ID, kept in data_dir/node-id.
func loadOrCreateNodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) != 36 {
			return "", fmt.Errorf("%s holds %q, which is not a node ID", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading node ID: %w", err)
	}
	id := acl.NewUUID()
	if err := atomicfile.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing node ID: %w", err)
	}
	return id, nil
}

// shutdown stops everything the agent started.
func (a *Agent) shutdown() error {
	var errs []error
	a.stopOnce.Do(func() {
		close(a.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		a.cancelJoin()
		a.sessions.lead(nil)
		a.wg.Wait()
		a.checks.Stop()
		if a.client != nil {
			// A client leaves on terminate (Consul's leave_on_terminate
			// default): its services go at once, not after failure
			// detection. A server does not: it is likely to come back.
			if err := a.leave(); err != nil {
				a.logger.Warn("graceful leave on shutdown", "error", err)
			}
		}
		if err := a.lan.Shutdown(); err != nil {
			errs = append(errs, err)
		}
		if a.wan != nil {
			if err := a.wan.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := a.backend.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// ---- what the DNS plugin and the HTTP API read ----

// Store is the local replica of the catalog.
func (a *Agent) Store() *state.Store { return a.store }

// Config is the configuration the agent was started with.
func (a *Agent) Config() corefile.AgentConfig { return a.cfg }

// Ready reports whether a leader is known, so reads reflect the cluster;
// on a client, also that its replica holds the servers' state.
func (a *Agent) Ready() bool {
	if a.client != nil && !a.client.Replica().Synced() {
		return false
	}
	return a.backend.Leader() != ""
}

// NodeName is the agent's node.
func (a *Agent) NodeName() string { return a.cfg.Node }

// NodeID is the agent's stable node ID.
func (a *Agent) NodeID() string { return a.nodeID }

// Datacenter is the agent's datacenter.
func (a *Agent) Datacenter() string { return a.cfg.Datacenter }

// stalenessInterval is how often the replica's staleness is refreshed: the
// resolution of max_stale.
const stalenessInterval = 100 * time.Millisecond

func (a *Agent) stalenessLoop() {
	defer a.wg.Done()
	t := time.NewTicker(stalenessInterval)
	defer t.Stop()
	for {
		a.staleness.Store(int64(a.server.Staleness()))
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// Staleness is how long ago this replica last heard from the leader: 0 on
// the leader; on a client, through its server, and the largest duration
// until it holds a state. Lock-free, for the DNS hot path.
func (a *Agent) Staleness() time.Duration {
	if a.client != nil {
		return a.client.Replica().Staleness()
	}
	return time.Duration(a.staleness.Load())
}

// ConsistentRead readies the local replica for a default-mode or (verify)
// linearizable read.
func (a *Agent) ConsistentRead(verify bool) error {
	return a.backend.ConsistentRead(verify, a.cfg.RPCHoldTimeout+catchUpTimeout)
}

// Apply commits a command through Raft.
func (a *Agent) Apply(t state.MessageType, msg any) (uint64, error) {
	defer measureApply(t, time.Now())
	return a.backend.Apply(t, msg, applyTimeout)
}

// ApplyWithResult commits a command through Raft and returns its result.
func (a *Agent) ApplyWithResult(t state.MessageType, msg any) (uint64, *state.CommandResult, error) {
	defer measureApply(t, time.Now())
	return a.backend.ApplyWithResult(t, msg, applyTimeout)
}

// Leader is the leader's RPC address, "" when there is none.
func (a *Agent) Leader() string { return a.backend.Leader() }

// LastContact is how stale this replica may be.
func (a *Agent) LastContact() time.Duration { return a.backend.LastContact() }

// Peers are the RPC addresses of the Raft voters.
func (a *Agent) Peers() ([]string, error) {
	conf, err := a.backend.RaftConfiguration()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		if s.Voter {
			out = append(out, s.Address)
		}
	}
	return out, nil
}

// The HTTP API finds the operator endpoints' backend by assertion: keep the
// agent providing it.
var _ adminapi.Operator = (*Agent)(nil)

// SaveSnapshot writes a snapshot archive of the replicated state: this
// server's, or on a client the leader's.
func (a *Agent) SaveSnapshot(w io.Writer) (uint64, error) { return a.backend.SaveSnapshot(w) }

// RestoreSnapshot replaces the replicated state with an archive's, through
// the leader.
func (a *Agent) RestoreSnapshot(r io.Reader) error { return a.backend.RestoreSnapshot(r) }

// RaftConfiguration describes the Raft servers.
// On a server each server carries its node name (from gossip) and the
// last index of its log (asked of it; 0 when it does not answer), as
// Consul's list-peers shows them.
func (a *Agent) RaftConfiguration() (state.RaftConfigurationInfo, error) {
	conf, err := a.backend.RaftConfiguration()
	if err != nil || a.server == nil {
		return conf, err
	}
	names := map[string]string{}
	for _, m := range a.lan.Members() {
		if m.IsServer() && m.ID != "" {
			names[m.ID] = m.Name
		}
	}
	var wg sync.WaitGroup
	for i := range conf.Servers {
		srv := &conf.Servers[i]
		if srv.Node == "" {
			srv.Node = names[srv.ID]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := a.server.StatsOf(srv.Address); err == nil {
				srv.LastIndex = st.LastIndex
			}
		}()
	}
	wg.Wait()
	return conf, nil
}

// RemovePeer removes a server from the Raft configuration.
func (a *Agent) RemovePeer(id, address string) error { return a.backend.RemovePeer(id, address) }
