package raftstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// testCA is a CA whose certificates tests hand to servers and clients.
type testCA struct {
	t          *testing.T
	dir        string
	cert, key  []byte
	bundleFile string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	cert, key, err := tlsutil.GenerateCA(tlsutil.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key}
	ca.bundleFile = ca.write("ca.pem", cert)
	return ca
}

func (ca *testCA) write(name string, b []byte) string {
	ca.t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return path
}

// material is kind's certificate from ca, trusting the CA bundle trust,
// with the verify_* settings: "i" verify_incoming, "o" verify_outgoing,
// "h" verify_server_hostname.
func (ca *testCA) material(kind tlsutil.Kind, trust *testCA, verify string) *tlsutil.Configurator {
	return ca.materialIn("dc1", kind, trust, verify)
}

// materialIn is material for an agent of datacenter dc.
func (ca *testCA) materialIn(dc string, kind tlsutil.Kind, trust *testCA, verify string) *tlsutil.Configurator {
	return ca.materialWith(tlsutil.CertOptions{Kind: kind, Datacenter: dc}, trust, verify)
}

// relayMaterial is material for a relay of dc1: a client certificate that
// also names relay.dc1.consul.
func (ca *testCA) relayMaterial(trust *testCA, verify string) *tlsutil.Configurator {
	return ca.materialWith(tlsutil.CertOptions{Kind: tlsutil.KindClient, Datacenter: "dc1",
		DNSNames: []string{"relay.dc1.consul"}}, trust, verify)
}

// materialWith is material for a certificate made with opts.
func (ca *testCA) materialWith(opts tlsutil.CertOptions, trust *testCA, verify string) *tlsutil.Configurator {
	ca.t.Helper()
	cert, key, err := tlsutil.GenerateCert(ca.cert, ca.key, opts)
	if err != nil {
		ca.t.Fatal(err)
	}
	dc, kind := opts.Datacenter, opts.Kind
	name := dc + "-" + string(kind) + "-" + strings.Join(opts.DNSNames, "-") + "-" + strings.NewReplacer("/", "_", " ", "_").Replace(ca.t.Name())
	cfg := tlsutil.Config{CertFile: ca.write(name+".pem", cert), KeyFile: ca.write(name+"-key.pem", key),
		CAFile: trust.bundleFile, ServerName: "server." + dc + ".consul",
		VerifyIncoming: strings.Contains(verify, "i"), VerifyOutgoing: strings.Contains(verify, "o"),
		VerifyServerHostname: strings.Contains(verify, "h")}
	s, err := tlsutil.Load(cfg)
	if err != nil {
		ca.t.Fatal(err)
	}
	return tlsutil.NewConfigurator(s)
}

// echoMux is a mux whose every protocol (Raft's through the raft layer)
// answers the byte of the protocol and then echoes.
func echoMux(t *testing.T, tlsc *tlsutil.Configurator) *muxListener {
	t.Helper()
	echo := func(proto byte) func(net.Conn) {
		return func(c net.Conn) {
			defer c.Close()
			if _, err := c.Write([]byte{proto}); err != nil {
				return
			}
			_, _ = io.Copy(c, c)
		}
	}
	m, err := listenMux("127.0.0.1:0", tlsc, testLogger(t), map[byte]func(net.Conn){
		protoRPC: echo(protoRPC), protoStream: echo(protoStream), protoSnapshot: echo(protoSnapshot)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	layer := &raftLayer{mux: m}
	go func() {
		for {
			c, err := layer.Accept()
			if err != nil {
				return
			}
			go echo(protoRaft)(c)
		}
	}()
	return m
}

// exchange opens proto on the mux at addr with the dialler's material and
// reports whether the protocol answered.
func exchange(addr string, dialer *tlsutil.Configurator, proto byte) error {
	conn, err := dialServer(context.Background(), dialer, addr, proto, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		return err
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if got[0] != proto || string(got[1:]) != "ping" {
		return errors.New("routed to the wrong protocol: " + string(got))
	}
	return nil
}

// TestMuxTLS: which connections the server port takes, by its TLS
// settings and the dialler's, for every protocol.
func TestMuxTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	var plaintext *tlsutil.Configurator
	strict := ca.material(tlsutil.KindServer, ca, "ioh") // verify_incoming, verify_server_hostname
	lenient := ca.material(tlsutil.KindServer, ca, "o")  // TLS offered, plaintext still taken
	server := ca.material(tlsutil.KindServer, ca, "ioh")
	client := ca.material(tlsutil.KindClient, ca, "oh")
	rogue := other.material(tlsutil.KindClient, ca, "oh") // trusts our CA, signed by another
	certless := func() *tlsutil.Configurator {
		s, err := tlsutil.Load(tlsutil.Config{CAFile: ca.bundleFile, VerifyOutgoing: true})
		if err != nil {
			t.Fatal(err)
		}
		return tlsutil.NewConfigurator(s)
	}()
	mistrusting := ca.material(tlsutil.KindClient, other, "o") // does not trust the server's CA

	all := []byte{protoRaft, protoRPC, protoStream, protoSnapshot}
	notRaft := []byte{protoRPC, protoStream, protoSnapshot}
	tests := []struct {
		name      string
		mux       *tlsutil.Configurator
		dialer    *tlsutil.Configurator
		routed    []byte // protocols that answer; the others are refused
		wantError string // in the dialler's error, for the refused
	}{
		{"plaintext port, plaintext dialer", plaintext, plaintext, all, ""},
		{"plaintext port refuses TLS", plaintext, client, nil, ""},
		{"verify_incoming refuses plaintext", strict, plaintext, nil, ""},
		{"verify_incoming: a server's certificate", strict, server, all, ""},
		{"verify_incoming: a client's certificate, but not for Raft", strict, client, notRaft, ""},
		{"verify_incoming: no certificate", strict, certless, nil, "certificate required"},
		{"verify_incoming: a certificate of another CA", strict, rogue, nil, "unknown certificate authority"},
		{"the dialer does not trust the server", strict, mistrusting, nil, "certificate signed by unknown authority"},
		{"without verify_incoming: plaintext", lenient, plaintext, all, ""},
		{"without verify_incoming: TLS without a certificate", lenient, certless, all, ""},
		{"without verify_incoming: TLS with a client's certificate", lenient, client, all, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := echoMux(t, tc.mux)
			for _, proto := range all {
				err := exchange(m.ln.Addr().String(), tc.dialer, proto)
				want := bytes.IndexByte(tc.routed, proto) >= 0
				if (err == nil) != want {
					t.Errorf("protocol %d: answered %v, want %v (%v)", proto, err == nil, want, err)
				}
				if err != nil && tc.wantError != "" && !strings.Contains(err.Error(), tc.wantError) {
					t.Errorf("protocol %d: error %q, want it to say %q", proto, err, tc.wantError)
				}
			}
		})
	}
}

// TestMuxRefusesNestedTLS: TLS inside TLS is an unknown protocol.
func TestMuxRefusesNestedTLS(t *testing.T) {
	ca := newTestCA(t)
	m := echoMux(t, ca.material(tlsutil.KindServer, ca, "io"))
	if err := exchange(m.ln.Addr().String(), ca.material(tlsutil.KindClient, ca, "o"), protoTLS); err == nil {
		t.Error("a TLS byte inside TLS was routed")
	}
}

// TestMuxTLSReload: the port uses the material current when a connection
// arrives: after a switch to another CA, its clients are taken and the
// old CA's refused, while a connection made before goes on.
func TestMuxTLSReload(t *testing.T) {
	ca, next := newTestCA(t), newTestCA(t)
	material := ca.material(tlsutil.KindServer, ca, "io")
	m := echoMux(t, material)
	addr := m.ln.Addr().String()
	oldClient := ca.material(tlsutil.KindClient, ca, "o")
	open, err := dialServer(context.Background(), oldClient, addr, protoRPC, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	roundTrip := func(conn net.Conn, msg string) error {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte(msg)); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		_, err := io.ReadFull(conn, got)
		return err
	}
	if err := roundTrip(open, "xping"); err != nil { // the protocol byte, then the echo
		t.Fatal(err)
	}

	material.Use(next.material(tlsutil.KindServer, next, "io").Current())
	if err := exchange(addr, next.material(tlsutil.KindClient, next, "o"), protoRPC); err != nil {
		t.Errorf("a client of the new CA after the switch: %v", err)
	}
	if err := exchange(addr, oldClient, protoRPC); err == nil {
		t.Error("a client of the old CA got through after the switch")
	}
	if err := roundTrip(open, "again"); err != nil {
		t.Errorf("the connection made before the switch broke: %v", err)
	}
}

// TestConnAliveUnderTLS: connAlive looks at the socket under TLS.
func TestConnAliveUnderTLS(t *testing.T) {
	ca := newTestCA(t)
	hold := make(chan net.Conn, 1)
	m, err := listenMux("127.0.0.1:0", ca.material(tlsutil.KindServer, ca, "io"), testLogger(t),
		map[byte]func(net.Conn){protoRPC: func(c net.Conn) { hold <- c }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	conn, err := dialServer(context.Background(), ca.material(tlsutil.KindClient, ca, "o"), m.ln.Addr().String(), protoRPC, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := conn.(*tls.Conn); !ok {
		t.Fatalf("dialServer with verify_outgoing returned a %T", conn)
	}
	server := <-hold
	time.Sleep(50 * time.Millisecond) // anything the server might send unasked would be there by now
	if !connAlive(conn) {
		t.Fatal("an open idle TLS connection is reported dead")
	}
	server.Close()
	waitFor(t, 5*time.Second, "the closed TLS connection to be seen dead", func() bool { return !connAlive(conn) })
}

// TestClusterOverTLS: servers with verify_incoming and
// verify_server_hostname elect a leader, forward writes and reads; a
// client agent with a certificate of the CA follows the state, writes and
// saves a snapshot through them; one with another CA's certificate cannot.
func TestClusterOverTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	servers, stores := startClusterWith(t, 3, func(c *ServerConfig) {
		c.TLS = ca.material(tlsutil.KindServer, ca, "ioh")
	})
	var follower *Server
	var followerStore *state.Store
	for i, s := range servers {
		if !s.IsLeader() {
			follower, followerStore = s, stores[i]
			break
		}
	}
	idx, err := follower.Apply(state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"), 5*time.Second)
	if err != nil {
		t.Fatalf("Apply on a follower over TLS: %v", err)
	}
	if err := follower.ConsistentRead(true, 5*time.Second); err != nil {
		t.Fatalf("ConsistentRead on a follower over TLS: %v", err)
	}
	if n := statetest.GetNode(t, followerStore, "n1"); n == nil || n.ModifyIndex != idx {
		t.Fatalf("the follower has n1 = %+v, want index %d", n, idx)
	}

	addrs := func() []string {
		var out []string
		for _, s := range servers {
			out = append(out, string(s.trans.LocalAddr()))
		}
		return out
	}
	store := state.NewStore()
	client := startClient(t, ClientConfig{Servers: addrs, Logger: testLogger(t), TLS: ca.material(tlsutil.KindClient, ca, "oh")}, store)
	waitFor(t, 10*time.Second, "the client to sync over TLS", client.Replica().Synced)
	if _, err := client.Apply(state.RegisterRequestType, statetest.NodeReq("c1", "10.0.0.9"), 5*time.Second); err != nil {
		t.Fatalf("Apply through the client over TLS: %v", err)
	}
	if statetest.GetNode(t, store, "c1") == nil {
		t.Error("the client's replica does not show its write")
	}
	var archive bytes.Buffer
	if _, err := client.SaveSnapshot(&archive); err != nil || archive.Len() == 0 {
		t.Fatalf("SaveSnapshot through the client over TLS: %d bytes, %v", archive.Len(), err)
	}

	rogue := startClient(t, ClientConfig{Servers: addrs, Logger: testLogger(t), TLS: other.material(tlsutil.KindClient, ca, "oh")},
		state.NewStore())
	if _, err := rogue.Apply(state.RegisterRequestType, statetest.NodeReq("rogue", "10.6.6.6"), time.Second); err == nil {
		t.Error("a client with another CA's certificate wrote through the servers")
	}
	if rogue.Replica().Synced() {
		t.Error("a client with another CA's certificate got the state")
	}
	if statetest.GetNode(t, followerStore, "rogue") != nil {
		t.Error("the rogue client's write reached the state")
	}

	// A server with another CA's certificate (it could still have the
	// gossip key) is not made a voter: it would raise the quorum without
	// ever voting.
	var leader *Server
	for _, s := range servers {
		if s.IsLeader() {
			leader = s
		}
	}
	rogueAddr := freeAddr(t)
	rogueServer, err := NewServer(ServerConfig{NodeID: "rogue", DataDir: t.TempDir(), RPCAddr: rogueAddr, BootstrapExpect: 3,
		Logger: testLogger(t), TLS: other.material(tlsutil.KindServer, other, "ioh")}, state.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rogueServer.Shutdown() })
	if err := leader.AddVoter(Peer{ID: "rogue", Address: rogueAddr}); err == nil {
		t.Error("the leader made a server with another CA's certificate a voter")
	}
	conf, err := leader.Configuration()
	if err != nil || len(conf) != 3 {
		t.Errorf("configuration after refusing the rogue server: %v, %v", conf, err)
	}
}

// A server forwards a request to another datacenter's server over TLS
// with verify_server_hostname: the peer's certificate must name that
// datacenter (server.dc2.consul), so a dc1 server's cannot stand in.
func TestDatacenterForwardOverTLS(t *testing.T) {
	ca := newTestCA(t)
	dc2Addr := freeAddr(t)
	dc2, err := NewServer(ServerConfig{NodeID: "dc2-s1", DataDir: t.TempDir(), RPCAddr: dc2Addr, BootstrapExpect: 1,
		Logger: testLogger(t), Datacenter: "dc2", TLS: ca.materialIn("dc2", tlsutil.KindServer, ca, "ioh")}, state.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc2.Shutdown() })
	dc2.SetAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("dc2 answers")) }))

	impostorAddr := freeAddr(t) // a dc1 server's certificate, listed as dc3's
	impostor, err := NewServer(ServerConfig{NodeID: "dc1-s2", DataDir: t.TempDir(), RPCAddr: impostorAddr, BootstrapExpect: 1,
		Logger: testLogger(t), Datacenter: "dc3", TLS: ca.materialIn("dc1", tlsutil.KindServer, ca, "ioh")}, state.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { impostor.Shutdown() })
	impostor.SetAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("impostor")) }))

	dc1, err := NewServer(ServerConfig{NodeID: "dc1-s1", DataDir: t.TempDir(), RPCAddr: freeAddr(t), BootstrapExpect: 1,
		Logger: testLogger(t), Datacenter: "dc1", TLS: ca.materialIn("dc1", tlsutil.KindServer, ca, "ioh"),
		RemoteServers: func(dc string) []string {
			switch dc {
			case "dc2":
				return []string{dc2Addr}
			case "dc3":
				return []string{impostorAddr}
			}
			return nil
		}}, state.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc1.Shutdown() })

	get := func(dc string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		dc1.DatacenterAPI(dc).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/kv/x?dc="+dc, nil))
		return rec
	}
	if rec := get("dc2"); rec.Code != http.StatusOK || rec.Body.String() != "dc2 answers" {
		t.Errorf("dc2 over TLS: %d %q", rec.Code, rec.Body.String())
	}
	if rec := get("dc3"); rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "impostor") {
		t.Errorf("a server whose certificate names another datacenter: %d %q", rec.Code, rec.Body.String())
	}
	if rec := get("dc9"); rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "No path to datacenter") {
		t.Errorf("an unknown datacenter: %d %q", rec.Code, rec.Body.String())
	}
}
