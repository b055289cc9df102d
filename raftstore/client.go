package raftstore

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
)

// Client is a client agent's link to its datacenter's servers: it keeps a
// Replica of the state for reads and passes writes and read-index requests
// to a server, which hands them on to the leader. It holds no Raft state.
type Client struct {
	replica *Replica
	servers func() []string
	conns   rpcConns
	logger  hclog.Logger
}

// ClientConfig is what a Client needs.
type ClientConfig struct {
	// Servers returns the RPC addresses of the datacenter's alive servers
	// (from gossip); it is called whenever a server is needed.
	Servers func() []string
	// Relays, when set, returns the addresses of the alive relays of the
	// datacenter (from gossip), which the replica follows in preference
	// to a server (relay.go). A client that relays itself ignores it: a
	// relay follows servers only, so the tree has no cycle.
	Relays func() []string
	// RelayAddr, when set, makes this client a relay: it serves its
	// replica's state stream to other client agents there.
	RelayAddr string
	Logger    hclog.Logger
	// TLS is the agent's TLS material for its connections to servers;
	// nil is plaintext only.
	TLS *tlsutil.Configurator
}

// readYourWritesWait bounds how long a write through a client waits for its
// own replica to show it before answering: the stream is usually there in
// milliseconds, and a slow stream must not fail a committed write.
const readYourWritesWait = time.Second

// NewClient starts following a relay or a server into store, and serves
// the stream on when cfg.RelayAddr says so.
func NewClient(cfg ClientConfig, store *state.Store) (*Client, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	replica, err := newReplica(store, replicaConfig{servers: cfg.Servers, relays: cfg.Relays, relayAddr: cfg.RelayAddr,
		tls: cfg.TLS, logger: logger.Named("replica")})
	if err != nil {
		return nil, err
	}
	c := &Client{replica: replica, servers: cfg.Servers, logger: logger}
	c.conns.tls = cfg.TLS
	return c, nil
}

// Replica is the client's copy of the state.
func (c *Client) Replica() *Replica { return c.replica }

// candidates are the servers to try, the one the replica follows first (it
// is known to answer), the others in random order.
func (c *Client) candidates() []string {
	all := c.servers()
	src := c.replica.Source()
	out := make([]string, 0, len(all))
	for _, s := range all {
		if s == src {
			out = append(out, s)
		}
	}
	first := len(out)
	for _, s := range all {
		if s != src {
			out = append(out, s)
		}
	}
	rest := out[first:]
	rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	return out
}

// call sends req to a server and returns its answer, or its error
// (remoteError's for the server's own). It moves on to the next server,
// and after a round of them waits a little and starts over, while retry
// says the error is worth it and until timeout: writes move on only when
// the request certainly was not acted on (no leader there, never sent),
// reads on any error.
func (c *Client) call(req *rpcRequest, timeout time.Duration, retry func(error) bool) (*rpcResponse, error) {
	deadline := time.Now().Add(timeout)
	var lastErr error = state.ErrNoServers
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		servers := c.candidates()
		if len(servers) == 0 {
			return nil, state.ErrNoServers
		}
		resp, final, err := c.conns.callEach("", servers, req, deadline, retry)
		if final {
			return resp, err
		}
		if !errors.Is(err, errNoTimeLeft) {
			lastErr = err
		}
		// No server could take it (all restarting, or no leader yet):
		// wait a little for them, or for gossip to tell of others.
		select {
		case <-c.replica.stop:
			return nil, state.ErrNoLeader
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, time.Second, time.Until(deadline))):
		}
	}
	if errors.Is(lastErr, errNotSent) {
		return nil, fmt.Errorf("%w: no server reachable: %v", state.ErrNoLeader, lastErr)
	}
	return nil, lastErr
}

// Apply commits a command through a server and the leader, and returns its
// index once committed and applied; it then waits (briefly) for the local
// replica to show it, so this agent reads its own writes.
func (c *Client) Apply(t state.MessageType, msg any, timeout time.Duration) (uint64, error) {
	idx, _, err := c.ApplyWithResult(t, msg, timeout)
	return idx, err
}

// ApplyWithResult is Apply returning the command's result too.
func (c *Client) ApplyWithResult(t state.MessageType, msg any, timeout time.Duration) (uint64, *state.CommandResult, error) {
	buf, err := Encode(t, msg)
	if err != nil {
		return 0, nil, err
	}
	timeout = min(timeout, maxApplyTimeout)
	resp, err := c.call(&rpcRequest{Method: rpcMethodApply, Entry: buf, Forward: true}, timeout, noLeaderYet)
	if err != nil {
		if resp != nil {
			return resp.Index, nil, err
		}
		return 0, nil, err
	}
	if err := c.replica.WaitApplied(resp.Index, readYourWritesWait); err != nil {
		c.logger.Debug("committed write not yet in the local replica", "index", resp.Index, "error", err)
	}
	return resp.Index, resp.Result, nil
}

// ConsistentRead readies the local replica for a read: it learns the
// leader's read index (confirmed by a quorum with verify) through a server
// and waits for the replica to reach it.
func (c *Client) ConsistentRead(verify bool, timeout time.Duration) error {
	resp, err := c.call(&rpcRequest{Method: rpcMethodReadIndex, Forward: true, Verify: verify}, timeout, anyFailure)
	if err != nil {
		return err
	}
	return c.replica.WaitApplied(resp.Index, timeout)
}

// Leader is the leader's RPC address as the followed server reports it.
func (c *Client) Leader() string { return c.replica.Leader() }

// LastContact is how stale the replica may be; negative before it has a
// state.
func (c *Client) LastContact() time.Duration {
	if !c.replica.Synced() {
		return -1
	}
	return c.replica.Staleness()
}

// RaftConfiguration asks a server for the Raft configuration.
func (c *Client) RaftConfiguration() (state.RaftConfigurationInfo, error) {
	resp, err := c.call(&rpcRequest{Method: rpcMethodRaftConfiguration}, configChangeTimeout, anyFailure)
	if err != nil {
		return state.RaftConfigurationInfo{}, err
	}
	if resp.Configuration == nil {
		return state.RaftConfigurationInfo{}, errors.New("server sent no raft configuration")
	}
	return *resp.Configuration, nil
}

// RemovePeer has the leader remove a server from the Raft configuration.
func (c *Client) RemovePeer(id, address string) error {
	if err := checkPeerArgs(id, address); err != nil {
		return err
	}
	_, err := c.call(&rpcRequest{Method: rpcMethodRemovePeer, PeerID: id, PeerAddress: address, Forward: true},
		configChangeTimeout, noLeaderYet)
	return err
}

// SaveSnapshot has the leader save a snapshot archive into w, as a save
// through a server does; it returns the snapshot's index.
func (c *Client) SaveSnapshot(w io.Writer) (uint64, error) {
	leader := c.Leader()
	if leader == "" {
		return 0, state.ErrNoLeader
	}
	return forwardSave(c.conns.tls, leader, w)
}

// RestoreSnapshot sends an archive to the leader to restore.
func (c *Client) RestoreSnapshot(r io.Reader) error {
	leader := c.Leader()
	if leader == "" {
		return state.ErrNoLeader
	}
	return forwardRestore(c.conns.tls, leader, r)
}

// Stats describe the client's link, for /v1/agent/self.
func (c *Client) Stats() map[string]string {
	out := map[string]string{
		"server":        "false",
		"known_servers": fmt.Sprint(len(c.servers())),
		"source":        c.replica.Source(),
		"synced":        fmt.Sprint(c.replica.Synced()),
		"applied_index": fmt.Sprint(c.replica.AppliedIndex()),
		"snapshots":     fmt.Sprint(c.replica.SnapshotsInstalled()),
		"leader":        c.replica.Leader(),
	}
	if addr := c.replica.RelayAddr(); addr != "" {
		out["relay"] = addr
		stats := c.replica.RelayStats()
		out["streams"] = fmt.Sprint(stats.Streams)
		out["streams_refused"] = fmt.Sprint(stats.Refused)
	}
	if c.replica.relays != nil {
		out["known_relays"] = fmt.Sprint(len(c.replica.relays()))
	}
	return out
}

// Shutdown stops following the servers and closes connections.
func (c *Client) Shutdown() error {
	c.replica.Close()
	c.conns.close()
	return nil
}
