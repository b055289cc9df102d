package raftstore

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

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
)

// muxHandshakeTimeout bounds how long an accepted connection may take to say
// which protocol it speaks, so idle dialers cannot pin goroutines.
const muxHandshakeTimeout = 5 * time.Second

// muxListener accepts on the server port and routes connections by their
// first byte.
type muxListener struct {
	ln     net.Listener
	logger hclog.Logger
	raft   chan net.Conn
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

func listenMux(addr string, logger hclog.Logger, serve map[byte]func(net.Conn)) (*muxListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for server RPC on %s: %w", addr, err)
	}
	m := &muxListener{ln: ln, logger: logger, raft: make(chan net.Conn), closed: make(chan struct{}),
		open: map[net.Conn]struct{}{}, serve: serve}
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
			m.logger.Error("accepting server connection", "error", err)
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		m.wg.Add(1)
		go m.route(conn)
	}
}

func (m *muxListener) route(conn net.Conn) {
	defer m.wg.Done()
	if !m.track(conn) {
		conn.Close()
		return
	}
	var b [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(muxHandshakeTimeout))
	_, err := conn.Read(b[:])
	m.untrack(conn)
	if err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if b[0] == protoRaft {
		select {
		case m.raft <- conn:
		case <-m.closed:
			conn.Close()
		}
		return
	}
	serve := m.serve[b[0]]
	if serve == nil {
		m.logger.Warn("server port: unknown protocol", "byte", b[0], "remote", conn.RemoteAddr())
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
	conn, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte{protoRaft}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raft handshake with %s: %w", addr, err)
	}
	return conn, nil
}
