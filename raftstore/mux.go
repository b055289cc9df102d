package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The server port carries several protocols. A connection's first byte says
// which; the listener hands it to the matching consumer.
const (
	protoRaft byte = 0x01
	protoRPC  byte = 0x02
	// protoStream is a client agent following this server's state.
	protoStream byte = 0x03
	// protoSnapshot is a snapshot save or restore passed on to this server.
	protoSnapshot byte = 0x04
	// protoTLS wraps the others, as Consul's RPCTLS byte does: a TLS
	// handshake follows, then, inside TLS, the byte of the protocol
	// spoken, which the server repeats once it accepts the connection.
	// That answer is beacon's: under TLS 1.3 a server refuses a client's
	// certificate only after the client's handshake is done, so without
	// it the dialler would learn of a refusal (and why) only from a
	// broken exchange, after it sent its request. With verify_incoming it
	// is the only first byte accepted.
	protoTLS byte = 0x05
)

// muxHandshakeTimeout bounds how long an accepted connection may take to say
// which protocol it speaks, so idle dialers cannot pin goroutines.
const muxHandshakeTimeout = 5 * time.Second

// muxListener accepts on the server port and routes connections by their
// first byte.
type muxListener struct {
	name   string // "server port", "relay port"
	ln     net.Listener
	logger hclog.Logger
	// tls is the agent's TLS material, read afresh for every connection
	// (a reload applies to the next handshake); nil: plaintext only.
	tls *tlsutil.Configurator
	// raft takes Raft's connections; nil on a port that refuses them.
	raft chan net.Conn
	// serve holds the handlers of the protocols other than Raft's, by
	// first byte; set before the first connection can arrive.
	serve map[byte]func(net.Conn)

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup

	// open are the connections the listener itself serves: those still
	// handshaking and the RPC ones. Close closes them rather than waiting
	// them out.
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

func listenMux(addr string, tlsc *tlsutil.Configurator, logger hclog.Logger, serve map[byte]func(net.Conn)) (*muxListener, error) {
	return listenPort("server port", addr, tlsc, logger, serve, true)
}

// listenPort is listenMux, taking Raft's connections only when raft is
// set: a relay's port (relay.go) speaks the state stream alone. name
// names the port in errors and logs.
func listenPort(name, addr string, tlsc *tlsutil.Configurator, logger hclog.Logger, serve map[byte]func(net.Conn), raft bool) (*muxListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("opening the %s on %s: %w", name, addr, err)
	}
	m := &muxListener{name: name, ln: ln, logger: logger, tls: tlsc, closed: make(chan struct{}),
		open: map[net.Conn]struct{}{}, serve: serve}
	if raft {
		m.raft = make(chan net.Conn)
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

func (m *muxListener) acceptLoop() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error(m.name+": accepting a connection", "error", err)
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		m.wg.Add(1)
		go m.route(conn)
	}
}

func (m *muxListener) route(raw net.Conn) {
	defer m.wg.Done()
	if !m.track(raw) {
		raw.Close()
		return
	}
	conn, proto, err := m.handshake(raw)
	m.untrack(raw)
	if err != nil {
		conn.Close()
		return
	}
	if proto == protoRaft && m.raft != nil {
		select {
		case m.raft <- conn:
		case <-m.closed:
			conn.Close()
		}
		return
	}
	serve := m.serve[proto]
	if serve == nil {
		m.logger.Warn(m.name+": unknown protocol", "byte", proto, "remote", conn.RemoteAddr())
		conn.Close()
		return
	}
	if !m.track(conn) {
		conn.Close()
		return
	}
	serve(conn)
	m.untrack(conn)
}

// handshake reads which protocol conn speaks, unwrapping TLS when it asks for
// it, within muxHandshakeTimeout. It returns the connection to speak it
// on (the TLS one, or conn itself) and the protocol's byte; on an error
// the connection is to be closed. The TLS material is the one current as
// the connection arrives.
func (m *muxListener) handshake(conn net.Conn) (net.Conn, byte, error) {
	_ = conn.SetDeadline(time.Now().Add(muxHandshakeTimeout))
	proto, err := readByte(conn)
	if err != nil {
		return conn, 0, err
	}
	material := m.tls.Current()
	if proto != protoTLS {
		if material.PlaintextRefused() {
			m.logger.Warn(m.name+": refused a plaintext connection: verify_incoming requires TLS with a certificate signed by the CA",
				"remote", conn.RemoteAddr(), "byte", proto)
			return conn, 0, errPlaintextRefused
		}
		_ = conn.SetDeadline(time.Time{})
		return conn, proto, nil
	}
	cfg := material.IncomingRPC()
	if cfg == nil {
		m.logger.Warn(m.name+": refused a TLS connection: this agent has no certificate (the tls property)", "remote", conn.RemoteAddr())
		return conn, 0, errNoTLS
	}
	tconn := tls.Server(conn, cfg)
	if err := tconn.Handshake(); err != nil {
		m.logger.Warn(m.name+": TLS handshake failed", "remote", conn.RemoteAddr(), "error", err)
		return tconn, 0, err
	}
	if proto, err = readByte(tconn); err != nil {
		return tconn, 0, err
	}
	if proto == protoRaft {
		// Raft is for servers only: with verify_server_hostname a
		// client agent's certificate does not make a peer.
		if err := material.AuthorizeServer(tconn.ConnectionState()); err != nil {
			m.logger.Warn(m.name+": refused Raft from a non-server", "remote", conn.RemoteAddr(), "error", err)
			return tconn, 0, err
		}
	}
	if _, err := tconn.Write([]byte{proto}); err != nil {
		return tconn, 0, err
	}
	_ = conn.SetDeadline(time.Time{})
	return tconn, proto, nil
}

var (
	errPlaintextRefused = errors.New("plaintext connection refused: verify_incoming requires TLS")
	errNoTLS            = errors.New("TLS connection refused: no certificate configured")
)

func readByte(conn net.Conn) (byte, error) {
	var b [1]byte
	_, err := conn.Read(b[:])
	return b[0], err
}

// track records conn as served by the listener; false once it is closed.
func (m *muxListener) track(conn net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.open == nil {
		return false
	}
	m.open[conn] = struct{}{}
	return true
}

func (m *muxListener) untrack(conn net.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.open, conn)
}

func (m *muxListener) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
		m.mu.Lock()
		for c := range m.open {
			c.Close()
		}
		m.open = nil
		m.mu.Unlock()
	})
	m.wg.Wait()
	return err
}

// raftLayer is raft's view of the multiplexed port.
type raftLayer struct {
	mux       *muxListener
	tls       *tlsutil.Configurator
	advertise net.Addr
	// ended, when set, is called when a peer's Raft connection ends other
	// than by a timeout: the peer may be gone (failover.go).
	ended func()
}

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.mux.raft:
		if l.ended != nil {
			return &watchedConn{Conn: c, ended: l.ended}, nil
		}
		return c, nil
	case <-l.mux.closed:
		return nil, errors.New("raft layer closed")
	}
}

// Close is a no-op: the multiplexed listener is closed once, by the server.
func (l *raftLayer) Close() error { return nil }

func (l *raftLayer) Addr() net.Addr { return l.advertise }

func (l *raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialServer(context.Background(), l.tls, string(addr), protoRaft, timeout)
}

// dialServer connects to the server port at addr and opens proto on it:
// inside TLS when the agent's TLS material says so (verify_outgoing,
// verify_server_hostname), in plaintext otherwise. Connecting, the TLS
// handshake and the protocol byte take at most timeout, and end with ctx.
func dialServer(ctx context.Context, tlsc *tlsutil.Configurator, addr string, proto byte, timeout time.Duration) (net.Conn, error) {
	return dialServerIn(ctx, tlsc, "", addr, proto, timeout)
}

// dialServerIn is dialServer to a server of datacenter dc ("" is this
// one), whose certificate names that datacenter.
func dialServerIn(ctx context.Context, tlsc *tlsutil.Configurator, dc, addr string, proto byte, timeout time.Duration) (net.Conn, error) {
	return dialPort(ctx, tlsc.Current().OutgoingRPCTo(dc), addr, proto, timeout)
}

// dialPort connects to a server port (or a relay's) at addr and opens
// proto on it, inside TLS with cfg unless it is nil.
func dialPort(ctx context.Context, cfg *tls.Config, addr string, proto byte, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dialer := net.Dialer{}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(step string, err error) (net.Conn, error) {
		conn.Close()
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
			err = cause
		}
		return nil, fmt.Errorf("%s with %s: %w", step, addr, err)
	}
	if cfg == nil {
		if _, err := conn.Write([]byte{proto}); err != nil {
			return fail("protocol handshake", err)
		}
		if !stop() {
			return fail("protocol handshake", context.Cause(ctx))
		}
		_ = conn.SetDeadline(time.Time{})
		return conn, nil
	}
	if _, err := conn.Write([]byte{protoTLS}); err != nil {
		return fail("protocol handshake", err)
	}
	tconn := tls.Client(conn, cfg)
	if err := tconn.Handshake(); err != nil {
		return fail("TLS handshake", err)
	}
	if _, err := tconn.Write([]byte{proto}); err != nil {
		return fail("protocol handshake", err)
	}
	// The server's answer: where a refusal of this agent's certificate
	// shows (TLS 1.3), and so before anything is sent.
	if answer, err := readByte(tconn); err != nil {
		return fail("TLS handshake", err)
	} else if answer != proto {
		return fail("protocol handshake", fmt.Errorf("the server answered protocol %d with %d", proto, answer))
	}
	if !stop() {
		return fail("protocol handshake", context.Cause(ctx))
	}
	_ = conn.SetDeadline(time.Time{})
	return tconn, nil
}
