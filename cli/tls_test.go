package cli

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}

func TestTLSCACreate(t *testing.T) {
	t.Chdir(t.TempDir())
	r := runCLI("tls", "ca", "create")
	if r.code != 0 || r.stdout != "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n" {
		t.Fatalf("tls ca create: %v", r)
	}
	ca := readCert(t, "consul-agent-ca.pem")
	if !ca.IsCA || !strings.HasPrefix(ca.Subject.CommonName, "Beacon Agent CA") {
		t.Errorf("the CA: IsCA %v, CN %q", ca.IsCA, ca.Subject.CommonName)
	}
	checkMode(t, "consul-agent-ca-key.pem", 0o600)
	checkMode(t, "consul-agent-ca.pem", 0o644)

	// Never overwritten.
	before, _ := os.ReadFile("consul-agent-ca-key.pem")
	if r := runCLI("tls", "ca", "create"); r.code != 1 || !strings.Contains(r.stderr, "CA file consul-agent-ca.pem already exists") {
		t.Errorf("a second tls ca create: %v", r)
	}
	if after, _ := os.ReadFile("consul-agent-ca-key.pem"); string(after) != string(before) {
		t.Error("the CA key was overwritten")
	}

	if r := runCLI("tls", "ca", "create", "-domain", "example.", "-days", "30", "-common-name", "Test CA"); r.code != 0 ||
		!strings.Contains(r.stdout, "Saved example-agent-ca.pem") {
		t.Fatalf("tls ca create -domain example.: %v", r)
	}
	if c := readCert(t, "example-agent-ca.pem"); c.Subject.CommonName != "Test CA" {
		t.Errorf("-common-name: CN %q", c.Subject.CommonName)
	}
	for _, bad := range [][]string{{"-days", "0"}, {"extra"}} {
		if r := runCLI(append([]string{"tls", "ca", "create"}, bad...)...); r.code != 1 || !strings.Contains(r.stderr, "Usage: beacon tls ca create") {
			t.Errorf("tls ca create %v: %v", bad, r)
		}
	}
}

func TestTLSCertCreate(t *testing.T) {
	t.Chdir(t.TempDir())
	if r := runCLI("tls", "ca", "create"); r.code != 0 {
		t.Fatal(r)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, "consul-agent-ca.pem"))
	tests := []struct {
		args  []string
		files string // the certificate's file; its key's ends -key.pem
		dns   []string
		ips   []string
	}{
		{[]string{"-server"}, "dc1-server-consul-0.pem", []string{"server.dc1.consul", "localhost"}, []string{"127.0.0.1"}},
		{[]string{"-server", "-node", "s2", "-additional-dnsname", "beacon.example.com", "-additional-ipaddress", "10.0.0.2"},
			"dc1-server-consul-1.pem", []string{"server.dc1.consul", "s2.server.dc1.consul", "localhost", "beacon.example.com"},
			[]string{"127.0.0.1", "10.0.0.2"}},
		{[]string{"-client", "-dc", "east"}, "east-client-consul-0.pem", []string{"client.east.consul", "localhost"}, []string{"127.0.0.1"}},
		{[]string{"-cli"}, "dc1-cli-consul-0.pem", []string{"cli.dc1.consul", "localhost"}, nil},
	}
	for _, tc := range tests {
		r := runCLI(append([]string{"tls", "cert", "create"}, tc.args...)...)
		key := strings.TrimSuffix(tc.files, ".pem") + "-key.pem"
		if r.code != 0 || !strings.Contains(r.stdout, "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n==> Saved "+tc.files+"\n==> Saved "+key+"\n") {
			t.Fatalf("tls cert create %v: %v", tc.args, r)
		}
		if server := tc.args[0] == "-server"; server != strings.Contains(r.stdout, "WARNING: Server Certificates") {
			t.Errorf("tls cert create %v: the server certificate warning shown: %v", tc.args, !server)
		}
		c := readCert(t, tc.files)
		if !slices.Equal(c.DNSNames, tc.dns) {
			t.Errorf("%s: DNS names %v, want %v", tc.files, c.DNSNames, tc.dns)
		}
		var ips []string
		for _, ip := range c.IPAddresses {
			ips = append(ips, ip.String())
		}
		if !slices.Equal(ips, tc.ips) {
			t.Errorf("%s: IP addresses %v, want %v", tc.files, ips, tc.ips)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.dns[0], KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s does not verify against the CA: %v", tc.files, err)
		}
		checkMode(t, key, 0o600)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Please provide one of -server, -client or -cli"},
		{[]string{"-server", "-client"}, "Please provide one of -server, -client or -cli"},
		{[]string{"-client", "-node", "c1"}, "-node is only for server certificates"},
		{[]string{"-server", "-additional-ipaddress", "ten"}, `-additional-ipaddress "ten" is not an IP address`},
		{[]string{"-server", "-domain", "other"}, "Error reading the CA: open other-agent-ca.pem"},
		{[]string{"-server", "-days", "4000"}, "outlive its CA"},
	} {
		if r := runCLI(append([]string{"tls", "cert", "create"}, tc.args...)...); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("tls cert create %v: %v\nwant %q", tc.args, r, tc.want)
		}
	}
}
