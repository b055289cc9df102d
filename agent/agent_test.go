package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/beacon-dns/beacon/gossip"
)

// Agent.shutdown closes the agent in this order; each step relies on what
// is still open below it:
//
//  1. close(stop): the agent's loops (cluster, anti-entropy, reaping,
//     staleness) take no new work.
//  2. The HTTP API stops accepting, cuts blocking queries short and waits
//     for the requests in flight, which may still write through Raft: so it
//     closes before the backend does (TestShutdownDrainsHTTPBeforeRaft).
//  3. Join retries and the session TTL timers stop; the loops are waited
//     for; the check runners stop, so that no check result writes to the
//     catalog after the backend is gone (TestMain fails the package if a
//     runner, or any goroutine of the agent, outlives it).
//  4. A client agent leaves the LAN pool gracefully, which needs gossip
//     still up (TestClientLeavesOnShutdown); a server does not leave
//     (TestServerDoesNotLeaveOnShutdown).
//  5. Gossip shuts down; then the backend: Raft stops, its port closes and
//     raft.db is closed, which releases its file lock
//     (TestShutdownReleasesPortsAndDataDir).

// TestShutdownDrainsHTTPBeforeRaft: a write that is inside the HTTP API
// when shutdown begins still commits. The test holds a PUT in its handler
// (the handler is reading the body, which the test has not sent yet: the
// server's "100 Continue" says the handler is there), starts the shutdown,
// waits until the API refuses new connections, and only then sends the
// body. The API must stop accepting first and wait for the write while Raft
// is still open: the write is answered 200, and is there after a restart on
// the same data_dir. Were Raft closed before the HTTP API, the write would
// reach a closed Raft and be answered 500.
func TestShutdownDrainsHTTPBeforeRaft(t *testing.T) {
	t.Parallel()
	c := newAgentConf(t, "n1")
	a := startAgent(t, c)
	waitWritable(t, c.HTTP)

	const value = "committed-during-shutdown"
	body, sendBody := io.Pipe()
	t.Cleanup(func() { sendBody.Close() })
	var inHandler atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // for a test that failed early: ends the request
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		Got100Continue: func() { inHandler.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+c.HTTP+"/v1/kv/held", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(value))
	req.Header.Set("Expect", "100-continue")
	// The client waits for the 100 before it sends the body.
	held := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: time.Minute}}
	type answer struct {
		code int
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := held.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(b), err}
	}()
	eventually(t, 10*time.Second, func() error {
		if !inHandler.Load() {
			return errors.New("the PUT has not reached its handler")
		}
		return nil
	})

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- a.shutdown() }()
	eventually(t, 10*time.Second, func() error {
		conn, err := net.Dial("tcp", c.HTTP)
		if refused(err) {
			return nil
		}
		if err == nil {
			conn.Close()
			err = errors.New("the HTTP API still accepts connections")
		}
		return err
	})
	select {
	case err := <-shutdownDone:
		t.Fatalf("shutdown returned (%v) while a request was still in its handler", err)
	default:
	}
	if _, err := io.WriteString(sendBody, value); err != nil {
		t.Fatalf("sending the held body: %v", err)
	}
	sendBody.Close()
	select {
	case r := <-answered:
		if r.err != nil || r.code != http.StatusOK || strings.TrimSpace(r.body) != "true" {
			t.Errorf("the PUT in flight during shutdown: %d %q %v; want 200 true (committed before Raft closed)", r.code, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the PUT in flight during shutdown was never answered")
	}
	select {
	case err := <-shutdownDone:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not return")
	}
	if _, _, err := call(http.MethodGet, c.HTTP, "/v1/agent/self", ""); !refused(err) {
		t.Errorf("GET /v1/agent/self after shutdown: %v, want the connection refused", err)
	}

	// The acknowledged write is durable: a restart on the same data_dir
	// has it.
	startAgent(t, c)
	waitWritable(t, c.HTTP)
	if v := mustCall(t, http.MethodGet, c.HTTP, "/v1/kv/held?raw", ""); v != value {
		t.Errorf("after the restart /v1/kv/held = %q, want %q", v, value)
	}
}

// TestShutdownReleasesPortsAndDataDir: once shutdown returns, the API
// refuses connections, every port of the agent can be bound again, raft.db
// is unlocked, and an agent with the same configuration starts in the same
// process at once.
func TestShutdownReleasesPortsAndDataDir(t *testing.T) {
	t.Parallel()
	c := newAgentConf(t, "n1")
	a := startAgent(t, c)
	// A service with a TCP check (on the agent's own API), so that a check
	// runner is running when the agent shuts down: TestMain fails the
	// package if its goroutine outlives the agent.
	mustCall(t, http.MethodPut, c.HTTP, "/v1/agent/service/register",
		`{"ID": "web-1", "Name": "web", "Port": 80, "Check": {"TCP": "`+c.HTTP+`", "Interval": "1s"}}`)
	id := a.NodeID()

	if err := a.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := a.shutdown(); err != nil {
		t.Errorf("a second shutdown: %v", err)
	}
	if _, _, err := call(http.MethodGet, c.HTTP, "/v1/agent/self", ""); !refused(err) {
		t.Errorf("GET /v1/agent/self after shutdown: %v, want the connection refused", err)
	}
	portsFree(t, []string{c.HTTP, c.RPC, c.SerfLAN}, []string{c.SerfLAN})

	// raft.db's lock is free: bolt opens it without waiting.
	db, err := bbolt.Open(filepath.Join(c.DataDir, "raft", "raft.db"), 0o600, &bbolt.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("raft.db after shutdown: %v (its lock is still held?)", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The same configuration starts again in this process, well within
	// bolt's 5s wait for a held lock, as the same node.
	begin := time.Now()
	b := startAgent(t, c)
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("restarting took %v", d)
	}
	if b.NodeID() != id {
		t.Errorf("node ID %s after the restart, want %s", b.NodeID(), id)
	}
	mustCall(t, http.MethodGet, c.HTTP, "/v1/agent/self", "")
}

// memberStatus is how a sees the member named name.
func memberStatus(a *Agent, name string) (gossip.MemberStatus, error) {
	for _, m := range a.lan.Members() {
		if m.Name == name {
			return m.Status, nil
		}
	}
	return 0, fmt.Errorf("%s does not know %s", a.NodeName(), name)
}

// waitGone waits until observer sees name neither alive nor leaving, and
// returns what it sees then: left, or failed. An agent that shut down
// without leaving is found failed within seconds.
func waitGone(t *testing.T, observer *Agent, name string) gossip.MemberStatus {
	t.Helper()
	var st gossip.MemberStatus
	eventually(t, 15*time.Second, func() error {
		var err error
		st, err = memberStatus(observer, name)
		if err == nil && (st == gossip.StatusAlive || st == gossip.StatusLeaving) {
			err = fmt.Errorf("%s still sees %s %v", observer.NodeName(), name, st)
		}
		return err
	})
	return st
}

// waitAlive waits until observer sees name alive.
func waitAlive(t *testing.T, observer *Agent, name string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		st, err := memberStatus(observer, name)
		if err == nil && st != gossip.StatusAlive {
			err = fmt.Errorf("%s sees %s %v", observer.NodeName(), name, st)
		}
		return err
	})
}

// TestClientLeavesOnShutdown: a client agent leaves the LAN pool on
// shutdown (Consul's leave_on_terminate default for clients), so the
// servers see it left, not failed, and deregister it at once.
func TestClientLeavesOnShutdown(t *testing.T) {
	t.Parallel()
	sc := newAgentConf(t, "s1")
	s := startAgent(t, sc)
	cc := newAgentConf(t, "c1")
	cc.Client = true
	cc.Join = []string{sc.SerfLAN}
	cl := startAgent(t, cc)
	waitAlive(t, s, "c1")

	if err := cl.shutdown(); err != nil {
		t.Fatalf("client shutdown: %v", err)
	}
	if st := waitGone(t, s, "c1"); st != gossip.StatusLeft {
		t.Errorf("after the client's shutdown the server sees c1 %v, want left", st)
	}
	portsFree(t, []string{cc.HTTP, cc.SerfLAN}, []string{cc.SerfLAN})
}

// TestServerDoesNotLeaveOnShutdown: a server does not leave on shutdown: it
// is likely to come back, and a server that left would be removed from the
// Raft configuration by the leader (a rolling restart would shrink the
// cluster). The others see it failed.
func TestServerDoesNotLeaveOnShutdown(t *testing.T) {
	t.Parallel()
	sc := newAgentConf(t, "s1")
	s := startAgent(t, sc)
	cc := newAgentConf(t, "c1")
	cc.Client = true
	cc.Join = []string{sc.SerfLAN}
	cl := startAgent(t, cc)
	waitAlive(t, cl, "s1")

	if err := s.shutdown(); err != nil {
		t.Fatalf("server shutdown: %v", err)
	}
	if st := waitGone(t, cl, "s1"); st != gossip.StatusFailed {
		t.Errorf("after the server's shutdown the client sees s1 %v, want failed (a server does not leave)", st)
	}
}
