package raftstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/beacon-dns/beacon/internal/wire"
	"github.com/beacon-dns/beacon/snapshot"
	"github.com/beacon-dns/beacon/state"
)

// Agent-to-server calls on the server port (first byte protoRPC): a stream
// of length-prefixed JSON requests, each answered in order. Followers and
// client agents use them to reach the leader: to apply a write, and to learn
// the index a linearizable read must wait for.

const (
	rpcMethodApply     = "Apply"
	rpcMethodReadIndex = "ReadIndex"
	// rpcMethodApplyBatch is Apply of several entries (forward.go).
	rpcMethodApplyBatch = "ApplyBatch"
	// rpcMethodLastIndex answers a server's last Raft index: 0 means it has
	// never been part of a cluster, so bootstrapping with it is safe.
	rpcMethodLastIndex = "LastIndex"
	// rpcMethodRaftConfiguration and rpcMethodRemovePeer are the operator
	// calls a client agent forwards.
	rpcMethodRaftConfiguration = "RaftConfiguration"
	rpcMethodRemovePeer        = "RemovePeer"

	// maxRPCFrame bounds one request; maxRPCAnswer one answer (a
	// forwarded HTTP answer's body, in JSON's base64).
	maxRPCFrame  = 4 << 20
	maxRPCAnswer = 16 << 20
	// rpcIdleTimeout closes a server-side connection nobody uses.
	rpcIdleTimeout = 2 * time.Minute
	// rpcDialTimeout bounds a connection to a server: far above a LAN's
	// round trip, so that a leader cut off is given up on (and the request
	// sent to the next one) quickly.
	rpcDialTimeout = 2 * time.Second
	// rpcAnswerMargin is how long past a request's timeout its answer may
	// take to arrive.
	rpcAnswerMargin = 2 * time.Second
	// rpcMaxIdle is how many idle connections rpcConns keeps per server:
	// one connection carries one call at a time, so it is sized for the
	// concurrent writes a server forwards; fewer means a dial and a close
	// per call under load.
	rpcMaxIdle = 128
)

type rpcRequest struct {
	Method string
	// Entry is an encoded command (Encode's output) for Apply.
	Entry []byte `json:",omitempty"`
	// Entries are the encoded commands of ApplyBatch.
	Entries [][]byte `json:",omitempty"`
	// TimeoutMs bounds how long the server may take.
	TimeoutMs int64
	// Forward asks a follower to pass Apply or ReadIndex on to the leader
	// (client agents talk to any server); without it only the leader
	// answers them.
	Forward bool `json:",omitempty"`
	// Verify asks ReadIndex for a linearizable index, which a quorum
	// confirms.
	Verify bool `json:",omitempty"`
	// PeerID and PeerAddress name the server RemovePeer removes.
	PeerID      string `json:",omitempty"`
	PeerAddress string `json:",omitempty"`
	// Secret is the token ResolveToken resolves.
	Secret string `json:",omitempty"`
	// HTTP is the request of the HTTP method (apiforward.go).
	HTTP *forwardedRequest `json:",omitempty"`
}

type rpcResponse struct {
	Index uint64
	Error string `json:",omitempty"`
	// Code classifies Error so the caller can rebuild a typed error.
	Code string `json:",omitempty"`
	// Configuration answers RaftConfiguration.
	Configuration *state.RaftConfigurationInfo `json:",omitempty"`
	// Result is an applied command's result, when it has one.
	Result *state.CommandResult `json:",omitempty"`
	// Batch answers ApplyBatch, an answer per entry, in order.
	Batch []rpcResponse `json:",omitempty"`
	// Token answers ResolveToken.
	Token *resolvedToken `json:",omitempty"`
	// HTTP answers HTTP.
	HTTP *forwardedResponse `json:",omitempty"`
	// Stats answers ServerStats.
	Stats *ServerStats `json:",omitempty"`
}

// Error codes carried by rpcResponse.Code.
const (
	codeNotLeader   = "not_leader"
	codeNoLeader    = "no_leader"
	codeInvalid     = "invalid"
	codeMissingNode = "missing_node"
	codePeerMissing = "peer_not_found"
	codeBadSnapshot = "invalid_snapshot"
	codeBadSession  = "invalid_session"
	codeNoSession   = "session_not_found"
	codeLostLeader  = "leadership_lost"
	codeACLDone     = "acl_bootstrapped"
	codeACLMissing  = "acl_not_found"
	codeACLInvalid  = "acl_invalid"
	codeNoQuery     = "query_not_found"
)

// errorKinds are the typed errors that cross the wire, by their code, in
// the order errorCode tries them.
var errorKinds = []struct {
	code string
	err  error
}{
	{codeNotLeader, state.ErrNotLeader}, {codeNoLeader, state.ErrNoLeader},
	{codeInvalid, state.ErrInvalidRegistration}, {codeMissingNode, state.ErrMissingNode},
	{codePeerMissing, state.ErrPeerNotFound}, {codeBadSnapshot, snapshot.ErrInvalid},
	{codeBadSession, state.ErrInvalidSession}, {codeNoSession, state.ErrSessionNotFound},
	{codeLostLeader, state.ErrLeadershipLost},
	{codeACLDone, state.ErrACLBootstrapped}, {codeACLMissing, state.ErrACLNotFound}, {codeACLInvalid, state.ErrACLInvalid},
	{codeNoQuery, state.ErrQueryNotFound},
}

func errorCode(err error) string {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.code
		}
	}
	return ""
}

// remoteError rebuilds a typed error from a response: it reads as the
// server's error and matches the sentinel its code names.
func remoteError(resp *rpcResponse) error {
	if resp.Error == "" {
		return nil
	}
	for _, k := range errorKinds {
		if k.code == resp.Code {
			return &typedError{msg: resp.Error, kind: k.err}
		}
	}
	return &typedError{msg: resp.Error, kind: errServer}
}

// errServer is the kind of a server's error that has no code of its own.
var errServer = errors.New("server error")

// typedError is a server's error as it worded it, of the kind its code says.
type typedError struct {
	msg  string
	kind error
}

func (e *typedError) Error() string { return e.msg }
func (e *typedError) Unwrap() error { return e.kind }

// serveRPC answers requests on one connection until it fails or idles out.
func (s *Server) serveRPC(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := bufio.NewWriter(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(rpcIdleTimeout))
		var req rpcRequest
		if err := wire.ReadMsg(r, &req, maxRPCFrame); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger.Debug("rpc connection closed", "remote", conn.RemoteAddr(), "error", err)
			}
			return
		}
		_ = conn.SetReadDeadline(time.Time{})
		timeout := time.Duration(req.TimeoutMs) * time.Millisecond
		limit := maxApplyTimeout
		if req.Method == rpcMethodHTTP {
			limit = forwardedBlockingTimeout
		}
		if timeout <= 0 || timeout > limit {
			timeout = limit
		}
		var resp *rpcResponse
		if req.Method == rpcMethodHTTP {
			resp = s.handleForwarded(&req, remoteAddr(conn), timeout)
		} else {
			resp = s.handleRPC(&req, timeout)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(raftIOTimeout))
		if err := wire.WriteMsg(w, resp); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// maxApplyTimeout bounds any one write, local or forwarded.
const maxApplyTimeout = 30 * time.Second

func (s *Server) handleRPC(req *rpcRequest, timeout time.Duration) *rpcResponse {
	var idx uint64
	var err error
	var conf *state.RaftConfigurationInfo
	var res *state.CommandResult
	switch req.Method {
	case rpcMethodApply:
		switch {
		case s.IsLeader():
			idx, res, err = s.applyLocal(req.Entry, timeout)
		case req.Forward:
			// Waits for a leader through an election, as local writes do.
			idx, res, err = s.applyEncoded(req.Entry, timeout)
		default:
			err = state.ErrNotLeader
		}
	case rpcMethodApplyBatch:
		if !s.IsLeader() {
			err = state.ErrNotLeader
			break
		}
		if len(req.Entries) > forwardMaxBatch {
			err = fmt.Errorf("%w: %d entries in one batch, at most %d", state.ErrInvalidRegistration, len(req.Entries), forwardMaxBatch)
			break
		}
		batch := s.applyBatchLocal(req.Entries, timeout)
		return &rpcResponse{Batch: batch}
	case rpcMethodReadIndex:
		if req.Forward {
			idx, err = s.readIndex(req.Verify, timeout)
		} else {
			idx, err = s.readIndexLocal(req.Verify)
		}
	case rpcMethodLastIndex:
		idx = s.raft.LastIndex()
	case rpcMethodRaftConfiguration:
		var info state.RaftConfigurationInfo
		if info, err = s.RaftConfiguration(); err == nil {
			conf = &info
		}
	case rpcMethodResolveToken:
		resolved, rerr := s.resolveToken(req.Secret)
		if rerr != nil {
			err = rerr
			break
		}
		return &rpcResponse{Token: resolved}
	case rpcMethodServerStats:
		st := s.LocalStats()
		return &rpcResponse{Stats: &st}
	case rpcMethodTransferLeader:
		err = s.transferLocal(req.PeerID)
	case rpcMethodRemovePeer:
		if req.Forward {
			err = s.RemovePeer(req.PeerID, req.PeerAddress)
		} else {
			err = s.removePeerLocal(req.PeerID, req.PeerAddress)
		}
	default:
		err = fmt.Errorf("unknown rpc method %q", req.Method)
	}
	resp := &rpcResponse{Index: idx, Configuration: conf, Result: res}
	if err != nil {
		resp.Error, resp.Code = err.Error(), errorCode(err)
	}
	return resp
}

// handleForwarded answers rpcMethodHTTP.
func (s *Server) handleForwarded(req *rpcRequest, remote string, timeout time.Duration) *rpcResponse {
	if req.HTTP == nil {
		return &rpcResponse{Error: "HTTP call without a request", Code: codeInvalid}
	}
	out, err := s.serveForwarded(req.HTTP, remote, timeout)
	if err != nil {
		return &rpcResponse{Error: err.Error(), Code: errorCode(err)}
	}
	return &rpcResponse{HTTP: out}
}

// rpcConns keeps connections to servers for reuse.
type rpcConns struct {
	// tls is the agent's TLS material for new connections; set before
	// the first call, nil is plaintext only.
	tls  *tlsutil.Configurator
	mu   sync.Mutex
	idle map[string][]*rpcConn
}

type rpcConn struct {
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	lastUsed time.Time
}

// alive reports whether the server still holds the idle connection open. The
// protocol never sends unsolicited data, so readable data or an EOF on an
// idle connection means the server closed it (it died or restarted): sending
// a request there would fail in a way that cannot tell whether it was acted
// on, so such a connection is dropped before use.
func (c *rpcConn) alive() bool { return connAlive(c.conn) }

// rpcConnReuse is how long an idle connection is reused: well under the
// server's rpcIdleTimeout, so a reused connection is not one the server is
// closing.
const rpcConnReuse = rpcIdleTimeout / 4

// errNotSent marks failures before the request left: safe to retry
// elsewhere, the server cannot have acted on it.
var errNotSent = errors.New("rpc request not sent")

func (p *rpcConns) get(ctx context.Context, dc, addr string) (*rpcConn, error) {
	key := poolKey(dc, addr)
	p.mu.Lock()
	for conns := p.idle[key]; len(conns) > 0; conns = p.idle[key] {
		c := conns[len(conns)-1]
		p.idle[key] = conns[:len(conns)-1]
		if time.Since(c.lastUsed) < rpcConnReuse && c.alive() {
			p.mu.Unlock()
			return c, nil
		}
		c.conn.Close()
	}
	p.mu.Unlock()
	conn, err := dialServerIn(ctx, p.tls, dc, addr, protoRPC, rpcDialTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w: dialing %s: %v", errNotSent, addr, callErr(ctx, err))
	}
	return &rpcConn{conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn)}, nil
}

func (p *rpcConns) put(dc, addr string, c *rpcConn) {
	key := poolKey(dc, addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle = map[string][]*rpcConn{}
	}
	if len(p.idle[key]) >= rpcMaxIdle {
		c.conn.Close()
		return
	}
	c.lastUsed = time.Now()
	p.idle[key] = append(p.idle[key], c)
}

// poolKey keys idle connections by datacenter and address: a connection
// whose TLS checked one datacenter's server name is not reused for
// another's, even at the same address.
func poolKey(dc, addr string) string { return dc + "\x00" + addr }

func (p *rpcConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, conns := range p.idle {
		for _, c := range conns {
			c.conn.Close()
		}
	}
	p.idle = nil
}

// call sends req to the server at addr and waits for the answer until ctx
// ends: at its deadline, or when it is cancelled (the caller learned that
// addr is no longer the leader), which ends the exchange at once. Only a
// failure before the request was written is marked errNotSent: after that
// the server may have acted on it, and the caller must not blindly send it
// again. The error of a call that ctx ended carries ctx's cause.
func (p *rpcConns) call(ctx context.Context, addr string, req *rpcRequest) (*rpcResponse, error) {
	return p.callIn(ctx, "", addr, req)
}

// callIn is call to a server of datacenter dc ("" is this one).
func (p *rpcConns) callIn(ctx context.Context, dc, addr string, req *rpcRequest) (*rpcResponse, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(maxApplyTimeout)
	}
	req.TimeoutMs = time.Until(deadline).Milliseconds()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("%w: rpc %s to %s: %w", errNotSent, req.Method, addr, err)
	}
	c, err := p.get(ctx, dc, addr)
	if err != nil {
		return nil, err
	}
	// The server answers within the request's timeout; the connection's
	// deadline adds a margin for the trip, and ctx's end cuts it short.
	_ = c.conn.SetDeadline(deadline.Add(rpcAnswerMargin))
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := wire.WriteMsg(c.w, req); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("%w: rpc %s to %s: %w", errNotSent, req.Method, addr, callErr(ctx, err))
	}
	if err := c.w.Flush(); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("%w: rpc %s to %s: %w", errNotSent, req.Method, addr, callErr(ctx, err))
	}
	var resp rpcResponse
	if err := wire.ReadMsg(c.r, &resp, maxRPCAnswer); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("rpc %s to %s: %w", req.Method, addr, callErr(ctx, err))
	}
	if !stop() { // ctx ended as the answer came: the deadline is spoiled
		c.conn.Close()
		return &resp, nil
	}
	_ = c.conn.SetDeadline(time.Time{})
	p.put(dc, addr, c)
	return &resp, nil
}

// callEach sends req to the servers at addrs (of datacenter dc, "" for
// this one) in turn until one answers, retry refuses an error, or deadline
// passes. final reports that the answer or error stands (a success, or an
// error retry refused); otherwise err is the last failure and the caller
// may go round again.
func (p *rpcConns) callEach(dc string, addrs []string, req *rpcRequest, deadline time.Time,
	retry func(error) bool) (resp *rpcResponse, final bool, err error) {
	err = errNoTimeLeft
	for _, addr := range addrs {
		if time.Until(deadline) <= 0 {
			break
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		resp, err = p.callIn(ctx, dc, addr, req)
		cancel()
		if err == nil {
			err = remoteError(resp)
		}
		if err == nil || !retry(err) {
			return resp, true, err
		}
	}
	return nil, false, err
}

// errNoTimeLeft: callEach reached its deadline before calling any server.
var errNoTimeLeft = fmt.Errorf("no time left to call a server: %w", context.DeadlineExceeded)

// callErr is err, or ctx's cause when ctx ending is what made the exchange
// fail.
func callErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}
