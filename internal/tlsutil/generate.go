package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// Certificates as Consul's `tls ca create` and `tls cert create` make them:
// ECDSA P-256 keys, a self-signed CA, and agent certificates named by role
// (server.<dc>.<domain>, client.<dc>.<domain>, cli.<dc>.<domain>) that
// also carry localhost and 127.0.0.1, so that the agent and the CLI on the
// same machine verify each other without more names.

// Kind is what an agent certificate is for.
type Kind string

const (
	// KindServer may serve and dial as a server: Raft peers, RPC.
	KindServer Kind = "server"
	// KindClient is a client agent's: it dials servers and serves HTTPS.
	KindClient Kind = "client"
	// KindCLI only authenticates the CLI to an agent's HTTPS API.
	KindCLI Kind = "cli"
)

// Defaults as Consul's.
const (
	DefaultCADays   = 1825
	DefaultCertDays = 365
	DefaultDomain   = "consul"
)

// clockSkew backdates certificates, so that an agent whose clock is a
// little behind does not refuse one made a moment ago.
const clockSkew = time.Minute

// CAOptions shape a new CA.
type CAOptions struct {
	// Days the CA is valid for; 0 is DefaultCADays.
	Days int
	// CommonName defaults to "Beacon Agent CA <serial>".
	CommonName string
}

// GenerateCA makes a self-signed CA and returns its certificate and key,
// PEM-encoded.
func GenerateCA(opts CAOptions) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	name := opts.CommonName
	if name == "" {
		name = "Beacon Agent CA " + serial.String()
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"beacon"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(0, 0, orDefault(opts.Days, DefaultCADays)),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// CertOptions shape an agent certificate.
type CertOptions struct {
	Kind Kind
	// Datacenter and Domain make the role's name: server.dc1.consul.
	// Domain defaults to DefaultDomain; a trailing dot is ignored.
	Datacenter, Domain string
	// Node, for a server, adds <node>.server.<dc>.<domain>.
	Node string
	// Days the certificate is valid for; 0 is DefaultCertDays.
	Days int
	// DNSNames and IPAddresses are added to the role's names, localhost
	// and (but for the CLI's) 127.0.0.1.
	DNSNames    []string
	IPAddresses []net.IP
}

// RoleName is the name a certificate of kind carries first:
// server.<dc>.<domain> for servers.
func RoleName(kind Kind, datacenter, domain string) string {
	if domain = strings.TrimSuffix(domain, "."); domain == "" {
		domain = DefaultDomain
	}
	return fmt.Sprintf("%s.%s.%s", kind, datacenter, domain)
}

// GenerateCert makes a certificate for opts signed by the CA (its
// certificate and key, PEM) and returns it and its new key, PEM-encoded.
func GenerateCert(caCertPEM, caKeyPEM []byte, opts CertOptions) (certPEM, keyPEM []byte, err error) {
	switch opts.Kind {
	case KindServer, KindClient, KindCLI:
	default:
		return nil, nil, fmt.Errorf("unknown certificate kind %q", opts.Kind)
	}
	if opts.Datacenter == "" {
		return nil, nil, errors.New("a certificate needs a datacenter")
	}
	ca, caKey, err := parseCA(caCertPEM, caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	role := RoleName(opts.Kind, opts.Datacenter, opts.Domain)
	dns := []string{role}
	if opts.Kind == KindServer && opts.Node != "" {
		dns = append(dns, opts.Node+"."+role)
	}
	dns = appendNew(dns, "localhost")
	dns = appendNew(dns, opts.DNSNames...)
	var ips []net.IP
	if opts.Kind != KindCLI {
		ips = append(ips, net.IPv4(127, 0, 0, 1))
	}
	for _, ip := range opts.IPAddresses {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	// Servers and client agents both dial (so authenticate as clients)
	// and serve (RPC, HTTPS); the CLI only dials.
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if opts.Kind == KindCLI {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	now := time.Now()
	notAfter := now.AddDate(0, 0, orDefault(opts.Days, DefaultCertDays))
	if notAfter.After(ca.NotAfter) {
		return nil, nil, fmt.Errorf("the certificate would outlive its CA, which expires %s: ask for fewer days",
			ca.NotAfter.UTC().Format(time.RFC3339))
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: role},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// parseCA reads a CA's certificate and key, and checks that they belong
// together and that the certificate may sign.
func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, errors.New("the CA file holds no PEM certificate")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the CA certificate: %w", err)
	}
	if !ca.IsCA {
		return nil, nil, errors.New("the CA file's certificate is not a CA's")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("the CA key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, errors.New("the CA key does not match the CA certificate")
	}
	return ca, key, nil
}

// parseKey reads a private key in any of the PEM forms tools write: SEC 1
// (EC PRIVATE KEY, as Consul writes them), PKCS #8, PKCS #1.
func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM data")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		if signer, ok := k.(crypto.Signer); ok {
			return signer, nil
		}
		return nil, errors.New("a PKCS #8 key that cannot sign")
	}
	return nil, fmt.Errorf("a PEM block of type %q, not a private key", block.Type)
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// newSerial is a random 128-bit serial number, as RFC 5280 recommends
// (unpredictable, positive, at most 20 octets).
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// appendNew appends the names not in list yet (DNS names compare without
// case).
func appendNew(list []string, names ...string) []string {
	for _, n := range names {
		if !slices.ContainsFunc(list, func(m string) bool { return strings.EqualFold(m, n) }) {
			list = append(list, n)
		}
	}
	return list
}
