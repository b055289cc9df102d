package tlsutil

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MinVersion is the oldest TLS version beacon speaks or accepts.
const MinVersion = tls.VersionTLS12

// Config names an agent's TLS files and how strictly its connections are
// checked, with Consul's meanings.
type Config struct {
	// CertFile is the agent's certificate (PEM: the leaf, then any
	// intermediates) and KeyFile its private key; CAFile is the PEM bundle
	// of the CAs a peer's certificate must chain to. Each may be empty.
	CertFile, KeyFile, CAFile string
	// VerifyIncoming: every connection to the server port must be TLS with
	// a client certificate signed by a CA of CAFile (plaintext protocols
	// are refused), and so must every HTTPS client.
	VerifyIncoming bool
	// VerifyOutgoing: connections to servers use TLS and check the
	// server's certificate against CAFile.
	VerifyOutgoing bool
	// VerifyServerHostname: a server's certificate must also be for
	// ServerName; it implies VerifyOutgoing, as in Consul. With
	// VerifyIncoming, a Raft connection to the server port must present
	// such a certificate too, so that a client's certificate cannot make
	// its holder a Raft peer.
	VerifyServerHostname bool
	// ServerName is server.<datacenter>.<domain> (no trailing dot): the
	// name servers' certificates carry.
	ServerName string
}

// outgoingTLS reports whether connections to servers use TLS.
func (c Config) outgoingTLS() bool { return c.VerifyOutgoing || c.VerifyServerHostname }

// State is a Config with its files loaded: the material a generation of
// handshakes uses, with the *tls.Config of each side built from it. It is
// immutable; a reload makes a new one.
type State struct {
	cfg  Config
	cert *tls.Certificate // nil without CertFile
	pool *x509.CertPool   // nil without CAFile
	cas  int              // certificates in CAFile
	// digest covers the config and the certificates (not the key: it
	// must match the certificate), to tell whether a reload changed
	// anything.
	digest [sha256.Size]byte

	incomingRPC, incomingHTTPS, outgoing, outgoingRelay *tls.Config
}

// Load reads cfg's files and builds the configurations. Its errors name
// the files, never their contents.
func Load(cfg Config) (*State, error) {
	s := &State{cfg: cfg}
	h := sha256.New()
	fmt.Fprintf(h, "%+v\n", cfg)
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("a certificate and its key go together: name both or neither")
	}
	if cfg.CertFile != "" {
		certPEM, err := os.ReadFile(cfg.CertFile)
		if err != nil {
			return nil, fmt.Errorf("reading the certificate: %w", err)
		}
		keyPEM, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading the key: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// X509KeyPair's errors describe, and do not quote, the key.
			return nil, fmt.Errorf("loading the certificate %s with the key %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		if cert.Leaf == nil {
			if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, fmt.Errorf("parsing the certificate %s: %w", cfg.CertFile, err)
			}
		}
		s.cert = &cert
		for _, der := range cert.Certificate {
			h.Write(der)
		}
	}
	if cfg.CAFile != "" {
		caPEM, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA bundle: %w", err)
		}
		if s.pool, s.cas, err = parseCAs(caPEM); err != nil {
			return nil, fmt.Errorf("CA bundle %s: %w", cfg.CAFile, err)
		}
		h.Write(caPEM)
	}
	switch {
	case cfg.VerifyIncoming && (s.cert == nil || s.pool == nil):
		return nil, errors.New("verify_incoming needs a certificate, its key and a CA bundle")
	case cfg.outgoingTLS() && s.pool == nil:
		return nil, errors.New("verify_outgoing and verify_server_hostname need a CA bundle to check servers with")
	case cfg.VerifyServerHostname && cfg.ServerName == "":
		return nil, errors.New("verify_server_hostname needs the servers' name (server.<datacenter>.<domain>)")
	}
	copy(s.digest[:], h.Sum(nil))
	s.build()
	return s, nil
}

// parseCAs reads every certificate of a PEM bundle; anything else in it is
// an error, so that a key or a truncated file is not silently ignored.
func parseCAs(b []byte) (*x509.CertPool, int, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if n > 0 && len(bytes.TrimSpace(rest)) > 0 {
				return nil, 0, errors.New("holds something after its last PEM block")
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, 0, fmt.Errorf("holds a PEM block of type %q; want only CERTIFICATE blocks", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, 0, errors.New("holds no PEM certificate")
	}
	return pool, n, nil
}

// build makes the configurations of every side from the loaded material.
// Session tickets are off on the accepting sides: a resumed session skips
// the certificate checks, and would let a client go on past a reload that
// no longer trusts its CA; it also keeps the server from sending anything
// the protocols on the server port do not expect.
func (s *State) build() {
	if s.cert != nil {
		clientAuth := tls.NoClientCert
		if s.cfg.VerifyIncoming {
			clientAuth = tls.RequireAndVerifyClientCert
		}
		s.incomingRPC = &tls.Config{
			MinVersion: MinVersion, Certificates: []tls.Certificate{*s.cert},
			ClientAuth: clientAuth, ClientCAs: s.pool, SessionTicketsDisabled: true,
		}
		s.incomingHTTPS = s.incomingRPC.Clone()
		s.incomingHTTPS.NextProtos = []string{"http/1.1"}
	}
	if s.cfg.outgoingTLS() {
		cert, pool := s.cert, s.pool
		c := &tls.Config{
			MinVersion: MinVersion, RootCAs: pool,
			// Offered whenever the server asks, even one it may refuse:
			// a server with verify_incoming says why it refused.
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if cert == nil {
					return &tls.Certificate{}, nil
				}
				return cert, nil
			},
		}
		if s.cfg.VerifyServerHostname {
			c.ServerName = s.cfg.ServerName
		} else {
			// verify_outgoing alone checks that the certificate chains to
			// the CA, not the name: servers are dialled by address, and
			// their certificates name them by role.
			c.InsecureSkipVerify = true
			c.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, pool) }
		}
		s.outgoing = c
		s.outgoingRelay = c
		if s.cfg.VerifyServerHostname {
			// A relay is a client agent whose certificate was issued to
			// relay on purpose: any client certificate would let any
			// client agent pose as a source of the state. A server's is
			// taken too.
			names := s.relayNames()
			r := c.Clone()
			r.ServerName = ""
			r.InsecureSkipVerify = true
			r.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("tls: the relay sent no certificate")
				}
				if err := verifyRelay(cs.PeerCertificates, pool, names); err != nil {
					return fmt.Errorf("tls: the relay's certificate: %w", err)
				}
				return nil
			}
			s.outgoingRelay = r
		}
	}
}

// verifyChain checks that the peer's certificate chains to a CA of pool
// and may serve.
func verifyChain(cs tls.ConnectionState, pool *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("tls: the server's certificate: %w", err)
	}
	return nil
}

// Config is what s was loaded from.
func (s *State) Config() Config {
	if s == nil {
		return Config{}
	}
	return s.cfg
}

// IncomingRPC is the server port's configuration for a connection that
// asks for TLS; nil when there is no certificate to serve it with.
func (s *State) IncomingRPC() *tls.Config {
	if s == nil {
		return nil
	}
	return s.incomingRPC
}

// PlaintextRefused reports whether the server port refuses connections
// that do not start with TLS (verify_incoming).
func (s *State) PlaintextRefused() bool { return s != nil && s.cfg.VerifyIncoming }

// OutgoingRPC is the configuration of connections to servers; nil means
// they are plaintext (neither verify_outgoing nor verify_server_hostname).
func (s *State) OutgoingRPC() *tls.Config {
	if s == nil {
		return nil
	}
	return s.outgoing
}

// RelayName is the name a relay's certificate must carry under
// verify_server_hostname: relay.<dc>.<domain>, beside the servers'.
func (s *State) RelayName() string {
	return "relay." + strings.TrimPrefix(s.cfg.ServerName, "server.")
}

// relayNames are the names a relay's certificate may carry under
// verify_server_hostname: RelayName, or the servers'.
func (s *State) relayNames() []string { return []string{s.RelayName(), s.cfg.ServerName} }

// verifyRelay checks a relay's certificate chain (leaf first): it chains
// to a CA of pool for server authentication and names one of names.
func verifyRelay(chain []*x509.Certificate, pool *x509.CertPool, names []string) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	var errs []error
	for _, name := range names {
		_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: name,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CanRelay reports whether followers with verify_server_hostname would
// take the agent's certificate from a relay: OutgoingRelay's check on its
// own chain. An error says why not.
func (s *State) CanRelay() error {
	if s == nil || s.cert == nil || s.cert.Leaf == nil {
		return errors.New("no certificate")
	}
	chain := []*x509.Certificate{s.cert.Leaf}
	for _, der := range s.cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("parsing the certificate chain: %w", err)
		}
		chain = append(chain, c)
	}
	return verifyRelay(chain, s.pool, s.relayNames())
}

// OutgoingRelay is the configuration of connections to relays, client
// agents that pass the state stream on (nil: plaintext). It checks what
// OutgoingRPC checks, but for the name: with verify_server_hostname a
// relay's certificate must be for RelayName (or the servers' name).
func (s *State) OutgoingRelay() *tls.Config {
	if s == nil {
		return nil
	}
	return s.outgoingRelay
}

// OutgoingRPCTo is OutgoingRPC for a server of datacenter dc ("" is this
// one's): with verify_server_hostname, its certificate must be for
// server.<dc>.<domain>, as Consul checks a server of another datacenter.
func (s *State) OutgoingRPCTo(dc string) *tls.Config {
	c := s.OutgoingRPC()
	if c == nil || dc == "" || !s.cfg.VerifyServerHostname {
		return c
	}
	_, domain, ok := strings.Cut(strings.TrimPrefix(s.cfg.ServerName, "server."), ".")
	if !ok {
		return c
	}
	c = c.Clone()
	c.ServerName = "server." + dc + "." + domain
	return c
}

// AuthorizeServer checks, for a protocol only servers speak (Raft), that
// the TLS peer is a server: with verify_incoming and
// verify_server_hostname, its certificate must be for ServerName.
// Otherwise anyone with a certificate the handshake accepted may.
func (s *State) AuthorizeServer(cs tls.ConnectionState) error {
	if s == nil || !s.cfg.VerifyIncoming || !s.cfg.VerifyServerHostname {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer sent no certificate")
	}
	if err := cs.PeerCertificates[0].VerifyHostname(s.cfg.ServerName); err != nil {
		return fmt.Errorf("the peer's certificate is not a server's (%s): %w", s.cfg.ServerName, err)
	}
	return nil
}

// Summary describes the material for the log: names, serials and dates,
// never key material.
func (s *State) Summary() []any {
	if s == nil {
		return []any{"tls", false}
	}
	kv := []any{"verify_incoming", s.cfg.VerifyIncoming, "verify_outgoing", s.cfg.outgoingTLS(),
		"verify_server_hostname", s.cfg.VerifyServerHostname}
	if s.cert != nil {
		leaf := s.cert.Leaf
		kv = append(kv, "cert", s.cfg.CertFile, "cert_subject", leaf.Subject.CommonName,
			"cert_serial", leaf.SerialNumber.Text(16), "cert_expires", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if s.pool != nil {
		kv = append(kv, "ca_file", s.cfg.CAFile, "ca_certificates", s.cas)
	}
	return kv
}

// Configurator holds the agent's current State. Every new handshake takes
// the material current when it starts; established connections keep
// theirs, so a reload drops none.
type Configurator struct {
	state atomic.Pointer[State]
	// reloadMu serializes reloads, so that two (a SIGHUP and a Corefile
	// reload) cannot interleave a load and an install.
	reloadMu sync.Mutex
}

// NewConfigurator starts with s.
func NewConfigurator(s *State) *Configurator {
	c := &Configurator{}
	c.state.Store(s)
	return c
}

// Current is the material new handshakes use; nil for a nil Configurator,
// which speaks plaintext only.
func (c *Configurator) Current() *State {
	if c == nil {
		return nil
	}
	return c.state.Load()
}

// Use installs s for every handshake from now on, and reports whether it
// differs from the material it replaces.
func (c *Configurator) Use(s *State) bool {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	return c.use(s)
}

func (c *Configurator) use(s *State) bool {
	old := c.state.Swap(s)
	return old == nil || old.digest != s.digest
}

// Reload reads the current Config's files again (their contents may have
// changed: SIGHUP) and installs them. On an error the current material
// stays.
func (c *Configurator) Reload() (bool, error) {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	s, err := Load(c.state.Load().Config())
	if err != nil {
		return false, err
	}
	return c.use(s), nil
}

var errNoCertificate = errors.New("no certificate is configured (the tls property)")

// IncomingHTTPS is the HTTPS listener's configuration: each handshake
// takes the current material, so a listener made once serves reloaded
// certificates. With verify_incoming (which, as Consul's, applies to HTTPS
// too) clients need a certificate signed by the CA.
func (c *Configurator) IncomingHTTPS() *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s := c.Current()
			if s == nil || s.incomingHTTPS == nil {
				return nil, errNoCertificate
			}
			return s.incomingHTTPS, nil
		},
	}
}
