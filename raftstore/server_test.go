package raftstore

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: testWriter{t}})
}

// testWriter sends log lines to t.Log, so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startServer starts a single-server cluster and shuts it down with the test.
// The returned stop function shuts it down earlier; it is idempotent.
func startServer(t *testing.T, dir, addr string, store *state.Store) (*Server, func()) {
	t.Helper()
	srv, err := NewServer(ServerConfig{NodeID: "server-1", DataDir: dir, RPCAddr: addr,
		BootstrapExpect: 1, Logger: testLogger(t)}, store)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := srv.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	waitFor(t, 10*time.Second, "leadership", srv.IsLeader)
	return srv, stop
}

func TestServerSingleNode(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	store := state.NewStore()
	srv, _ := startServer(t, dir, addr, store)

	if got := srv.Leader(); got != addr {
		t.Errorf("Leader() = %q, want %q", got, addr)
	}
	if got := srv.LastContact(); got != 0 {
		t.Errorf("LastContact() on the leader = %v, want 0", got)
	}
	if err := srv.VerifyLeader(); err != nil {
		t.Errorf("VerifyLeader: %v", err)
	}
	peers, err := srv.Peers()
	if err != nil || len(peers) != 1 || peers[0].ID != "server-1" || string(peers[0].Address) != addr ||
		peers[0].Suffrage != raft.Voter {
		t.Errorf("Peers() = %+v, %v", peers, err)
	}
	if st := srv.Stats(); st["state"] != "Leader" {
		t.Errorf("Stats()[state] = %q", st["state"])
	}

	var last uint64
	for i, node := range []string{"n1", "n2", "n3"} {
		idx, err := srv.Apply(state.RegisterRequestType, &state.RegisterRequest{Node: node, Address: "10.0.0.1",
			Service: &state.Service{ID: "web-" + node, Service: "web", Port: 80 + i}}, 5*time.Second)
		if err != nil {
			t.Fatalf("Apply #%d: %v", i, err)
		}
		if idx <= last {
			t.Fatalf("Apply #%d returned index %d, not above %d", i, idx, last)
		}
		last = idx
		// Apply returns after the FSM applied the entry locally.
		n := statetest.GetNode(t, store, node)
		if n == nil || n.CreateIndex != idx {
			t.Fatalf("after Apply #%d (index %d) node = %+v", i, idx, n)
		}
	}
	if got := statetest.Indexes(t, store)[statetest.TableServices]; got != last {
		t.Errorf("services index = %d, want %d", got, last)
	}

	// A command the FSM rejects comes back as its error, with the index it
	// took in the log.
	idx, err := srv.Apply(state.RegisterRequestType, &state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Check: &state.HealthCheck{CheckID: "c", Name: "c", ServiceID: "nope"}}, 5*time.Second)
	if err == nil || idx <= last {
		t.Errorf("Apply of a bad registration = %d, %v; want an error and index > %d", idx, err, last)
	}
	if err := srv.Barrier(5 * time.Second); err != nil {
		t.Errorf("Barrier: %v", err)
	}
	// An unencodable command fails before reaching raft.
	if _, err := srv.Apply(state.RegisterRequestType, func() {}, time.Second); err == nil {
		t.Error("Apply of an unencodable command succeeded")
	}
}

func TestServerRestartReplaysState(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		name := "from the log"
		if snapshot {
			name = "from a snapshot"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			srv, stop := startServer(t, dir, addr, state.NewStore())
			var n1Index uint64
			for _, node := range []string{"n1", "n2"} {
				idx, err := srv.Apply(state.RegisterRequestType, &state.RegisterRequest{Node: node, Address: "10.0.0.1",
					Service: &state.Service{ID: "web", Service: "web", Port: 80}}, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if node == "n1" {
					n1Index = idx
				}
			}
			last, err := srv.Apply(state.DeregisterRequestType, &state.DeregisterRequest{Node: "n2"}, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if snapshot {
				if err := srv.raft.Snapshot().Error(); err != nil {
					t.Fatalf("snapshot: %v", err)
				}
			}
			stop()

			store := state.NewStore()
			srv2, _ := startServer(t, dir, addr, store) // fails if it tried to bootstrap again
			if err := srv2.Barrier(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			n := statetest.GetNode(t, store, "n1")
			if n == nil || n.CreateIndex != n1Index {
				t.Fatalf("after restart node n1 = %+v, want it back with CreateIndex %d", n, n1Index)
			}
			if svc := statetest.GetService(t, store, "n1", "web"); svc == nil || svc.Node != "n1" {
				t.Fatalf("after restart service = %+v", svc)
			}
			if n := statetest.GetNode(t, store, "n2"); n != nil {
				t.Fatalf("after restart the deregistered node n2 is back: %+v", n)
			}
			peers, err := srv2.Peers()
			if err != nil || len(peers) != 1 {
				t.Fatalf("peers after restart = %+v, %v", peers, err)
			}
			idx, err := srv2.Apply(state.RegisterRequestType, statetest.NodeReq("n3", "10.0.0.3"), 5*time.Second)
			if err != nil || idx <= last {
				t.Fatalf("Apply after restart = %d, %v; want an index above %d", idx, err, last)
			}
		})
	}
}

func TestNewServerErrorsReleaseResources(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	_, err = NewServer(ServerConfig{NodeID: "s", DataDir: dir, RPCAddr: busy.Addr().String(), BootstrapExpect: 1}, state.NewStore())
	if err == nil {
		t.Fatal("NewServer on a port in use succeeded")
	}
	if _, err := NewServer(ServerConfig{NodeID: "s", DataDir: dir, RPCAddr: "not an address", BootstrapExpect: 1}, state.NewStore()); err == nil {
		t.Fatal("NewServer with a bad RPC address succeeded")
	}

	// The failed start must have closed the bolt file: bbolt locks it, and a
	// second open in this process would block forever.
	done := make(chan error, 1)
	var srv *Server
	go func() {
		var err error
		srv, err = NewServer(ServerConfig{NodeID: "s", DataDir: dir, RPCAddr: freeAddr(t), BootstrapExpect: 1,
			Logger: testLogger(t)}, state.NewStore())
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Shutdown() })
	case <-time.After(10 * time.Second):
		t.Fatal("NewServer blocked: the failed start left the raft log open")
	}
}

// ---- the multiplexed port ----

func startMux(t *testing.T) *muxListener {
	t.Helper()
	m, err := listenMux("127.0.0.1:0", nil, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMuxClosesUnknownProtocol(t *testing.T) {
	m := startMux(t)
	conn, err := net.Dial("tcp", m.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{0x7f, 'h', 'i'}); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err = conn.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the mux kept a connection with an unknown first byte open")
	}
	if err == nil {
		t.Fatal("read data from a connection the mux should have closed")
	}
}

func TestMuxRoutesRaft(t *testing.T) {
	m := startMux(t)
	layer := &raftLayer{mux: m, advertise: m.ln.Addr()}

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := layer.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	out, err := layer.Dial(raft.ServerAddress(m.ln.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var in net.Conn
	select {
	case in = <-accepted:
		defer in.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a raft connection was not handed to the raft layer")
	}
	// The protocol byte is consumed; what follows reaches raft intact.
	if _, err := out.Write([]byte("payload")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	in.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "payload" {
		t.Fatalf("raft side read %q, %v", buf, err)
	}
	if layer.Addr() != m.ln.Addr() {
		t.Errorf("Addr() = %v", layer.Addr())
	}
}

func TestMuxCloseUnblocksAccept(t *testing.T) {
	m, err := listenMux("127.0.0.1:0", nil, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	layer := &raftLayer{mux: m}
	// A raft connection nobody accepts: route blocks handing it over.
	conn, err := net.Dial("tcp", m.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{protoRaft}); err != nil {
		t.Fatal(err)
	}

	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a raft connection waited to be accepted")
	}
	// The pending connection was closed, not leaked.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the pending raft connection is still open after Close")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the pending raft connection is still open after Close")
	}

	errc := make(chan error, 1)
	go func() {
		_, err := layer.Accept()
		errc <- err
	}()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Accept after Close returned a connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept blocked after Close")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Close (and so Server.Shutdown) should not wait for dialers that have not
// said which protocol they speak: route holds such a connection for up to
// muxHandshakeTimeout (5 s) and Close waits for route, so a single idle
// connection delays shutdown by up to 5 s.
func TestMuxCloseDoesNotWaitForIdleHandshakes(t *testing.T) {
	m, err := listenMux("127.0.0.1:0", nil, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", m.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Make sure the mux has accepted it: connections are accepted in order,
	// so once a later one with an unknown byte has been closed, route is
	// already waiting on the idle one.
	probe, err := net.Dial("tcp", m.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probe.Write([]byte{0x7f})
	probe.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := probe.Read(make([]byte, 1)); err == nil {
		t.Fatal("probe connection not closed")
	}
	start := time.Now()
	m.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with one idle connection open; it waits for the %v handshake timeout", d.Round(time.Millisecond), muxHandshakeTimeout)
	}
}

// A server waiting for peers (BootstrapExpect > 1) has no leader: writes
// fail with ErrNoLeader rather than hanging, and the read helpers say so.
func TestServerWithoutLeader(t *testing.T) {
	const hold = 300 * time.Millisecond
	srv, err := NewServer(ServerConfig{NodeID: "s1", DataDir: t.TempDir(), RPCAddr: freeAddr(t),
		BootstrapExpect: 3, Logger: testLogger(t), HoldTimeout: hold}, state.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown() })

	if srv.IsLeader() || srv.Leader() != "" {
		t.Errorf("IsLeader %v, Leader %q before any election", srv.IsLeader(), srv.Leader())
	}
	if got := srv.LastContact(); got >= 0 {
		t.Errorf("LastContact() = %v, want negative (never heard from a leader)", got)
	}
	if err := srv.VerifyLeader(); !errors.Is(err, state.ErrNotLeader) {
		t.Errorf("VerifyLeader() = %v, want ErrNotLeader", err)
	}
	// A write, a read and an operator call wait for a leader (an election
	// may be under way), but no longer than the hold timeout, nor than
	// their own timeout when it is shorter.
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		call    func(timeout time.Duration) error
	}{
		{"Apply", 5 * time.Second, func(d time.Duration) error {
			_, err := srv.Apply(state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"), d)
			return err
		}},
		{"Apply with a short timeout", 100 * time.Millisecond, func(d time.Duration) error {
			_, err := srv.Apply(state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"), d)
			return err
		}},
		{"ConsistentRead", 5 * time.Second, func(d time.Duration) error { return srv.ConsistentRead(true, d) }},
		{"default read", 5 * time.Second, func(d time.Duration) error { return srv.ConsistentRead(false, d) }},
		{"RemovePeer", 5 * time.Second, func(time.Duration) error { return srv.RemovePeer("s9", "") }},
	} {
		start := time.Now()
		if err := tc.call(tc.timeout); !errors.Is(err, state.ErrNoLeader) {
			t.Errorf("%s without a leader = %v, want ErrNoLeader", tc.name, err)
		}
		want := min(hold, tc.timeout)
		if d := time.Since(start); d < want || d > want+time.Second {
			t.Errorf("%s without a leader returned after %v, want about %v", tc.name, d, want)
		}
	}
}

func TestNewServerRejectsEmptyNodeID(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewServer(ServerConfig{DataDir: dir, RPCAddr: freeAddr(t), BootstrapExpect: 1}, state.NewStore()); err == nil {
		t.Fatal("NewServer without a NodeID succeeded")
	}
	// Its port and log were released: a proper start on the same dir works.
	startServer(t, dir, freeAddr(t), state.NewStore())
}
