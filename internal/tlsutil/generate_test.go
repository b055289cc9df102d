package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", b)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerateCA(t *testing.T) {
	certPEM, keyPEM, err := GenerateCA(CAOptions{Days: 10})
	if err != nil {
		t.Fatal(err)
	}
	ca := parseCert(t, certPEM)
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || !strings.HasPrefix(ca.Subject.CommonName, "Beacon Agent CA ") {
		t.Errorf("CA: IsCA %v, key usage %b, CN %q", ca.IsCA, ca.KeyUsage, ca.Subject.CommonName)
	}
	if d := time.Until(ca.NotAfter); d < 9*24*time.Hour || d > 10*24*time.Hour {
		t.Errorf("CA valid for %v, want 10 days", d)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := key.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", key)
	}
	if !strings.Contains(string(keyPEM), "EC PRIVATE KEY") {
		t.Errorf("CA key PEM type: %q", keyPEM[:40])
	}
}

func TestGenerateCert(t *testing.T) {
	caPEM, caKey, err := GenerateCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca := parseCert(t, caPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	tests := []struct {
		opts  CertOptions
		dns   []string
		ips   []string
		usage []x509.ExtKeyUsage
	}{
		{CertOptions{Kind: KindServer, Datacenter: "dc1"}, []string{"server.dc1.consul", "localhost"}, []string{"127.0.0.1"}, both},
		{CertOptions{Kind: KindServer, Datacenter: "east", Domain: "beacon.", Node: "s1",
			DNSNames: []string{"s1.example.com", "localhost"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("127.0.0.1")}},
			[]string{"server.east.beacon", "s1.server.east.beacon", "localhost", "s1.example.com"}, []string{"127.0.0.1", "10.0.0.1"}, both},
		{CertOptions{Kind: KindClient, Datacenter: "dc1"}, []string{"client.dc1.consul", "localhost"}, []string{"127.0.0.1"}, both},
		{CertOptions{Kind: KindCLI, Datacenter: "dc1", Node: "ignored"}, []string{"cli.dc1.consul", "localhost"}, nil,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	}
	for _, tc := range tests {
		t.Run(string(tc.opts.Kind)+"/"+tc.opts.Datacenter, func(t *testing.T) {
			certPEM, keyPEM, err := GenerateCert(caPEM, caKey, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			c := parseCert(t, certPEM)
			if !slices.Equal(c.DNSNames, tc.dns) {
				t.Errorf("DNS names %v, want %v", c.DNSNames, tc.dns)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tc.ips) {
				t.Errorf("IP addresses %v, want %v", ips, tc.ips)
			}
			if !slices.Equal(c.ExtKeyUsage, tc.usage) {
				t.Errorf("extended key usage %v, want %v", c.ExtKeyUsage, tc.usage)
			}
			if c.Subject.CommonName != tc.dns[0] {
				t.Errorf("CN %q, want %q", c.Subject.CommonName, tc.dns[0])
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.dns[0], KeyUsages: tc.usage}); err != nil {
				t.Errorf("does not verify against its CA: %v", err)
			}
			if d := time.Until(c.NotAfter); d < 364*24*time.Hour || d > 365*24*time.Hour {
				t.Errorf("valid for %v, want a year", d)
			}
			if _, err := parseKey(keyPEM); err != nil {
				t.Errorf("key: %v", err)
			}
		})
	}
}

func TestGenerateCertRefuses(t *testing.T) {
	caPEM, caKey, err := GenerateCA(CAOptions{Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := GenerateCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, err := GenerateCert(caPEM, caKey, CertOptions{Kind: KindClient, Datacenter: "dc1", Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		caCert, caKey []byte
		opts          CertOptions
		want          string
	}{
		{"unknown kind", caPEM, caKey, CertOptions{Kind: "admin", Datacenter: "dc1"}, "unknown certificate kind"},
		{"no datacenter", caPEM, caKey, CertOptions{Kind: KindServer}, "datacenter"},
		{"another CA's key", caPEM, otherKey, CertOptions{Kind: KindServer, Datacenter: "dc1"}, "does not match"},
		{"a leaf as the CA", leaf, caKey, CertOptions{Kind: KindServer, Datacenter: "dc1"}, "not a CA"},
		{"no key", caPEM, nil, CertOptions{Kind: KindServer, Datacenter: "dc1"}, "no PEM data"},
		{"outliving the CA", caPEM, caKey, CertOptions{Kind: KindServer, Datacenter: "dc1", Days: 365}, "outlive its CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := GenerateCert(tc.caCert, tc.caKey, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("GenerateCert = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
