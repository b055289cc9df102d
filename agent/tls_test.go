package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
)

// testCerts writes a CA and server certificates it signed into a
// directory.
type testCerts struct {
	t         *testing.T
	dir       string
	ca, caKey []byte
	caFile    string
}

func newTestCerts(t *testing.T) *testCerts {
	t.Helper()
	ca, key, err := tlsutil.GenerateCA(tlsutil.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := &testCerts{t: t, dir: t.TempDir(), ca: ca, caKey: key}
	c.caFile = c.write("ca.pem", ca)
	return c
}

func (c *testCerts) write(name string, b []byte) string {
	c.t.Helper()
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// server writes a new server certificate and key as name.pem and
// name-key.pem, and returns the certificate's serial.
func (c *testCerts) server(name string) (certFile, keyFile string, serial *big.Int) {
	c.t.Helper()
	cert, key, err := tlsutil.GenerateCert(c.ca, c.caKey, tlsutil.CertOptions{Kind: tlsutil.KindServer, Datacenter: "dc1"})
	if err != nil {
		c.t.Fatal(err)
	}
	certFile, keyFile = c.write(name+".pem", cert), c.write(name+"-key.pem", key)
	s, err := tlsutil.Load(tlsutil.Config{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		c.t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(s.IncomingRPC().Certificates[0].Certificate[0])
	if err != nil {
		c.t.Fatal(err)
	}
	return certFile, keyFile, leaf.SerialNumber
}

// httpsSerial is the serial of the certificate the HTTPS API at addr
// presents to a new connection, which must verify against the CA; the
// API must answer.
func (c *testCerts) httpsSerial(addr string) (*big.Int, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.ca)
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/v1/status/leader")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/status/leader over HTTPS: %s", resp.Status)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber, nil
}

// TestTLSChangesLive: the TLS properties change on reload, the HTTPS
// address does not; a reload whose files do not load keeps the running
// certificates; SIGHUP reads the files again.
func TestTLSChangesLive(t *testing.T) {
	certs := newTestCerts(t)
	certA, keyA, serialA := certs.server("a")
	orig := newAgentConf(t, "n1")
	https := freeAddr(t)
	withTLS := func(cert, key string, extra ...string) agentConf {
		changed := orig
		changed.Extra = append([]string{"https " + https, fmt.Sprintf("tls %s %s %s", cert, key, certs.caFile)}, extra...)
		return changed
	}
	c := withTLS(certA, keyA)
	a := acquire(t, c.parse(t))
	if err := ApplyLive(c.parse(t)); err != nil { // as the first start-up does
		t.Fatal(err)
	}
	waitFor := func(want *big.Int) {
		t.Helper()
		eventually(t, 5*time.Second, func() error {
			got, err := certs.httpsSerial(https)
			if err != nil {
				return err
			}
			if got.Cmp(want) != 0 {
				return fmt.Errorf("HTTPS presents serial %x, want %x", got, want)
			}
			return nil
		})
	}
	waitFor(serialA)

	// A reload to other files (and verify_outgoing): Acquire takes it,
	// ApplyLive installs it.
	certB, keyB, serialB := certs.server("b")
	reload := withTLS(certB, keyB, "verify_outgoing").parse(t)
	if got, err := Acquire(reload); err != nil || got != a {
		t.Fatalf("Acquire with new TLS files = %p, %v; want the running agent", got, err)
	}
	if err := ApplyLive(reload); err != nil {
		t.Fatalf("ApplyLive: %v", err)
	}
	waitFor(serialB)
	if !a.tls.Current().Config().VerifyOutgoing {
		t.Error("verify_outgoing did not change live")
	}

	// The HTTPS address cannot change live.
	moved := withTLS(certB, keyB, "https "+freeAddr(t)) // the later https wins
	if _, err := Acquire(moved.parse(t)); err == nil || !strings.Contains(err.Error(), "agent setting https (") {
		t.Errorf("Acquire with another https address = %v, want it refused naming https", err)
	}

	// Files that no longer load: the reload fails saying why, and the
	// running certificate stays.
	broken := withTLS(certB, keyB).parse(t) // they load as it is parsed…
	certs.write("b-key.pem", []byte("not a key"))
	err := ApplyLive(broken) // …and no longer when it is applied
	if err == nil || !strings.Contains(err.Error(), "the running certificates stay") || !strings.Contains(err.Error(), "b.pem") {
		t.Errorf("ApplyLive with a broken key = %v, want a refusal naming the files", err)
	}
	waitFor(serialB)

	// SIGHUP: new contents in the running configuration's files.
	certC, keyC, serialC := certs.server("c")
	for _, f := range [][2]string{{certC, certB}, {keyC, keyB}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		certs.write(filepath.Base(f[1]), b)
	}
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := self.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(serialC)
	// The agent still commits writes over plain HTTP.
	waitWritable(t, c.HTTP)
}
