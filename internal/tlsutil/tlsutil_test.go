package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki is a CA and the files of certificates it signed, in a test's
// temporary directory.
type pki struct {
	t             *testing.T
	dir           string
	name          string
	caCert, caKey []byte
	caFile        string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	cert, key, err := GenerateCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &pki{t: t, dir: dir, name: name, caCert: cert, caKey: key, caFile: filepath.Join(dir, name+"-ca.pem")}
	writeFile(t, p.caFile, cert)
	return p
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue makes a certificate of kind for dc1/consul and returns its files.
func (p *pki) issue(kind Kind, file string) (certFile, keyFile string) {
	p.t.Helper()
	cert, key, err := GenerateCert(p.caCert, p.caKey, CertOptions{Kind: kind, Datacenter: "dc1", Domain: "consul."})
	if err != nil {
		p.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, file+".pem"), filepath.Join(p.dir, file+"-key.pem")
	writeFile(p.t, certFile, cert)
	writeFile(p.t, keyFile, key)
	return certFile, keyFile
}

// config is a Config of kind's certificate from p, trusting trust's CA.
func (p *pki) config(kind Kind, trust *pki, set func(*Config)) Config {
	p.t.Helper()
	cert, key := p.issue(kind, string(kind)+"-"+strings.ReplaceAll(p.t.Name(), "/", "_"))
	c := Config{CertFile: cert, KeyFile: key, CAFile: trust.caFile, ServerName: "server.dc1.consul"}
	if set != nil {
		set(&c)
	}
	return c
}

func mustLoad(t *testing.T, c Config) *State {
	t.Helper()
	s, err := Load(c)
	if err != nil {
		t.Fatalf("Load(%+v): %v", c, err)
	}
	return s
}

// handshake runs a TLS handshake between a server with serverCfg and a
// client with clientCfg over loopback TCP, and returns each side's error
// (the client's includes its first read, where TLS 1.3 reports a refused
// client certificate), with the server's view of the connection.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (cs tls.ConnectionState, serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		srv := tls.Server(conn, serverCfg)
		defer srv.Close()
		_ = srv.SetDeadline(time.Now().Add(5 * time.Second))
		err = srv.Handshake()
		if err == nil {
			cs = srv.ConnectionState()
			_, err = srv.Write([]byte{1})
		}
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cli := tls.Client(raw, clientCfg)
	_ = cli.SetDeadline(time.Now().Add(5 * time.Second))
	clientErr = cli.Handshake()
	if clientErr == nil {
		var buf [1]byte
		_, clientErr = io.ReadFull(cli, buf[:])
	}
	cli.Close() // a client that gave up must not keep the server waiting
	serverErr = <-done
	return cs, serverErr, clientErr
}

// TestHandshakes: who may talk to whom on the server port, by the
// Consul meanings of the verify_* settings.
func TestHandshakes(t *testing.T) {
	ca, other := newPKI(t, "ca"), newPKI(t, "other")
	vi := func(c *Config) { c.VerifyIncoming = true }
	vo := func(c *Config) { c.VerifyOutgoing = true }
	vsh := func(c *Config) { c.VerifyOutgoing, c.VerifyServerHostname = true, true }
	all := func(c *Config) { vi(c); vsh(c) }
	tests := []struct {
		name   string
		server Config
		client Config
		ok     bool
	}{
		{"mutual TLS with server names", ca.config(KindServer, ca, all), ca.config(KindClient, ca, all), true},
		{"server to server", ca.config(KindServer, ca, all), ca.config(KindServer, ca, all), true},
		{"client certificate from another CA", ca.config(KindServer, ca, all), other.config(KindClient, ca, vsh), false},
		{"no client certificate under verify_incoming", ca.config(KindServer, ca, all),
			Config{CAFile: ca.caFile, VerifyOutgoing: true}, false},
		{"no client certificate without verify_incoming", ca.config(KindServer, ca, vo),
			Config{CAFile: ca.caFile, VerifyOutgoing: true}, true},
		{"a server whose certificate another CA signed", other.config(KindServer, other, nil),
			ca.config(KindClient, ca, vo), false},
		{"verify_server_hostname: a client certificate posing as a server", ca.config(KindClient, ca, vi),
			ca.config(KindClient, ca, vsh), false},
		{"verify_outgoing alone takes any certificate of the CA", ca.config(KindClient, ca, vi),
			ca.config(KindClient, ca, vo), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := mustLoad(t, tc.server), mustLoad(t, tc.client)
			if srv.IncomingRPC() == nil || cli.OutgoingRPC() == nil {
				t.Fatalf("IncomingRPC = %v, OutgoingRPC = %v: want both", srv.IncomingRPC(), cli.OutgoingRPC())
			}
			_, serr, cerr := handshake(t, srv.IncomingRPC(), cli.OutgoingRPC())
			if got := serr == nil && cerr == nil; got != tc.ok {
				t.Errorf("handshake succeeded = %v, want %v (server: %v; client: %v)", got, tc.ok, serr, cerr)
			}
		})
	}
}

func TestMinimumVersionIsTLS12(t *testing.T) {
	ca := newPKI(t, "ca")
	srv := mustLoad(t, ca.config(KindServer, ca, nil))
	old := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if _, serr, cerr := handshake(t, srv.IncomingRPC(), old); serr == nil || cerr == nil {
		t.Fatalf("a TLS 1.1 client was accepted (server: %v; client: %v)", serr, cerr)
	}
	c := mustLoad(t, Config{CAFile: ca.caFile, VerifyOutgoing: true}).OutgoingRPC()
	for _, cfg := range []*tls.Config{srv.IncomingRPC(), c, srv.incomingHTTPS} {
		if cfg.MinVersion != tls.VersionTLS12 {
			t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
		}
	}
}

func TestAuthorizeServer(t *testing.T) {
	ca := newPKI(t, "ca")
	all := func(c *Config) { c.VerifyIncoming, c.VerifyOutgoing, c.VerifyServerHostname = true, true, true }
	srv := mustLoad(t, ca.config(KindServer, ca, all))
	for _, tc := range []struct {
		kind Kind
		ok   bool
	}{{KindServer, true}, {KindClient, false}} {
		cli := mustLoad(t, ca.config(tc.kind, ca, all))
		cs, serr, cerr := handshake(t, srv.IncomingRPC(), cli.OutgoingRPC())
		if serr != nil || cerr != nil {
			t.Fatalf("%s: handshake: server %v, client %v", tc.kind, serr, cerr)
		}
		if err := srv.AuthorizeServer(cs); (err == nil) != tc.ok {
			t.Errorf("AuthorizeServer of a %s certificate = %v, want ok %v", tc.kind, err, tc.ok)
		}
	}
	// Without verify_server_hostname any accepted certificate may speak
	// Raft, as in Consul.
	loose := mustLoad(t, ca.config(KindServer, ca, func(c *Config) { c.VerifyIncoming = true }))
	if err := loose.AuthorizeServer(tls.ConnectionState{}); err != nil {
		t.Errorf("AuthorizeServer without verify_server_hostname = %v, want nil", err)
	}
}

func TestLoadErrors(t *testing.T) {
	ca, other := newPKI(t, "ca"), newPKI(t, "other")
	cert, key := ca.issue(KindServer, "server")
	otherCert, _ := other.issue(KindServer, "other-server")
	garbage := filepath.Join(ca.dir, "garbage.pem")
	writeFile(t, garbage, []byte("not a PEM file\n"))
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing certificate", Config{CertFile: filepath.Join(ca.dir, "nope.pem"), KeyFile: key}, "reading the certificate"},
		{"missing key", Config{CertFile: cert, KeyFile: filepath.Join(ca.dir, "nope.pem")}, "reading the key"},
		{"key of another certificate", Config{CertFile: otherCert, KeyFile: key}, "does not match"},
		{"certificate without key", Config{CertFile: cert}, "go together"},
		{"missing CA", Config{CAFile: filepath.Join(ca.dir, "nope.pem")}, "reading the CA bundle"},
		{"garbage CA", Config{CAFile: garbage}, "no PEM certificate"},
		{"a key as the CA", Config{CAFile: key}, `"EC PRIVATE KEY"`},
		{"verify_incoming without CA", Config{CertFile: cert, KeyFile: key, VerifyIncoming: true}, "verify_incoming needs"},
		{"verify_incoming without certificate", Config{CAFile: ca.caFile, VerifyIncoming: true}, "verify_incoming needs"},
		{"verify_outgoing without CA", Config{VerifyOutgoing: true}, "need a CA bundle"},
		{"verify_server_hostname without a name", Config{CAFile: ca.caFile, VerifyServerHostname: true}, "servers' name"},
	}
	keyPEM, _ := os.ReadFile(key)
	block, _ := pem.Decode(keyPEM)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
			// Key material never appears in an error.
			if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), string(keyPEM[30:60])) ||
				strings.Contains(err.Error(), string(block.Bytes[:8])) {
				t.Errorf("the error shows key material: %v", err)
			}
		})
	}
}

// TestReloadSwapsMaterialForNewHandshakes: Reload reads the files again;
// a handshake after it gets the new certificate, a connection made before
// it carries on, and a reload whose files do not load keeps the old
// material.
func TestReloadSwapsMaterialForNewHandshakes(t *testing.T) {
	ca := newPKI(t, "ca")
	cfg := ca.config(KindServer, ca, func(c *Config) { c.VerifyIncoming = true })
	c := NewConfigurator(mustLoad(t, cfg))
	client := mustLoad(t, ca.config(KindClient, ca, func(c *Config) { c.VerifyOutgoing = true })).OutgoingRPC()

	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.IncomingHTTPS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); _, _ = io.Copy(conn, conn) }() // echo
		}
	}()
	dial := func() (*tls.Conn, *x509.Certificate) {
		t.Helper()
		conn, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		return conn, conn.ConnectionState().PeerCertificates[0]
	}
	echo := func(conn *tls.Conn) error {
		if _, err := conn.Write([]byte("x")); err != nil {
			return err
		}
		var b [1]byte
		_, err := io.ReadFull(conn, b[:])
		return err
	}
	before, first := dial()
	defer before.Close()
	if err := echo(before); err != nil {
		t.Fatal(err)
	}

	// New files in place of the old ones, then SIGHUP's Reload.
	newCert, newKey := ca.issue(KindServer, "rotated")
	for _, f := range [][2]string{{newCert, cfg.CertFile}, {newKey, cfg.KeyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, f[1], b)
	}
	if changed, err := c.Reload(); err != nil || !changed {
		t.Fatalf("Reload = %v, %v; want changed", changed, err)
	}
	after, second := dial()
	defer after.Close()
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Error("a handshake after the reload got the old certificate")
	}
	if err := echo(before); err != nil {
		t.Errorf("the connection made before the reload broke: %v", err)
	}
	if changed, err := c.Reload(); err != nil || changed {
		t.Errorf("a reload of unchanged files = %v, %v; want unchanged", changed, err)
	}

	// A broken file: the reload fails and the material stays.
	writeFile(t, cfg.KeyFile, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	if _, err := c.Reload(); err == nil {
		t.Fatal("a reload with a broken key succeeded")
	}
	again, third := dial()
	defer again.Close()
	if third.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Error("after a failed reload the listener serves another certificate")
	}

	// Use with a new CA: a client of the old CA is refused from then on.
	other := newPKI(t, "other")
	if !c.Use(mustLoad(t, other.config(KindServer, other, func(c *Config) { c.VerifyIncoming = true }))) {
		t.Error("Use of new material reported no change")
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		err = echo(conn)
		conn.Close()
	}
	if err == nil {
		t.Error("after a switch to another CA, a client of the old one still got through")
	}
}

func TestNilIsPlaintext(t *testing.T) {
	var c *Configurator
	s := c.Current()
	if s.IncomingRPC() != nil || s.OutgoingRPC() != nil || s.PlaintextRefused() || s.AuthorizeServer(tls.ConnectionState{}) != nil {
		t.Error("a nil Configurator is not plain TCP")
	}
	// Without verify_outgoing the agent dials in plaintext, even with
	// certificates (Consul's upgrade path).
	ca := newPKI(t, "ca")
	if s := mustLoad(t, ca.config(KindServer, ca, nil)); s.OutgoingRPC() != nil || s.PlaintextRefused() {
		t.Error("certificates alone turned on outgoing TLS or refused plaintext")
	}
	if _, err := (&Configurator{}).IncomingHTTPS().GetConfigForClient(nil); !errors.Is(err, errNoCertificate) {
		t.Errorf("HTTPS without a certificate: %v", err)
	}
}

// TestRelayHandshakes: which certificates a client agent takes from a relay.
// With verify_server_hostname, only one issued to relay (its name
// relay.<dc>.<domain>) or a server's: not any client agent's.
func TestRelayHandshakes(t *testing.T) {
	ca, other := newPKI(t, "ca"), newPKI(t, "other")
	relayCert := func(p *pki, kind Kind, dc, name string) Config {
		t.Helper()
		cert, key, err := GenerateCert(p.caCert, p.caKey, CertOptions{Kind: kind, Datacenter: "dc1", Domain: "consul.",
			DNSNames: []string{"relay." + dc + ".consul"}})
		if err != nil {
			t.Fatal(err)
		}
		c := Config{CertFile: filepath.Join(p.dir, name+".pem"), KeyFile: filepath.Join(p.dir, name+"-key.pem"),
			CAFile: p.caFile, ServerName: "server.dc1.consul"}
		writeFile(t, c.CertFile, cert)
		writeFile(t, c.KeyFile, key)
		return c
	}
	vo := func(c *Config) { c.VerifyOutgoing = true }
	vsh := func(c *Config) { c.VerifyOutgoing, c.VerifyServerHostname = true, true }
	tests := []struct {
		name     string
		relay    Config
		follower Config
		ok       bool
	}{
		{"a client certificate issued to relay", relayCert(ca, KindClient, "dc1", "relay"), ca.config(KindClient, ca, vsh), true},
		{"a server's certificate", ca.config(KindServer, ca, nil), ca.config(KindClient, ca, vsh), true},
		{"any client agent's certificate", ca.config(KindClient, ca, nil), ca.config(KindClient, ca, vsh), false},
		{"issued to relay in another datacenter", relayCert(ca, KindClient, "dc2", "relay-dc2"), ca.config(KindClient, ca, vsh), false},
		{"a CLI certificate issued to relay", relayCert(ca, KindCLI, "dc1", "relay-cli"), ca.config(KindClient, ca, vsh), false},
		{"issued to relay by another CA", relayCert(other, KindClient, "dc1", "relay-other"), ca.config(KindClient, ca, vsh), false},
		{"verify_outgoing alone takes any certificate of the CA", ca.config(KindClient, ca, nil), ca.config(KindClient, ca, vo), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			relay, follower := mustLoad(t, tc.relay), mustLoad(t, tc.follower)
			if relay.IncomingRPC() == nil || follower.OutgoingRelay() == nil {
				t.Fatalf("IncomingRPC = %v, OutgoingRelay = %v: want both", relay.IncomingRPC(), follower.OutgoingRelay())
			}
			_, serr, cerr := handshake(t, relay.IncomingRPC(), follower.OutgoingRelay())
			if got := serr == nil && cerr == nil; got != tc.ok {
				t.Errorf("handshake succeeded = %v, want %v (relay: %v; follower: %v)", got, tc.ok, serr, cerr)
			}
		})
	}
	if got := mustLoad(t, ca.config(KindClient, ca, vsh)).RelayName(); got != "relay.dc1.consul" {
		t.Errorf("RelayName = %q", got)
	}
}
