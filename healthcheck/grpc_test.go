package healthcheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startGRPCHealthServer serves the gRPC health protocol (grpc's own health
// server) on a local port, over TLS with cert if it is not nil: the whole
// server and ok.Service are SERVING, down.Service NOT_SERVING.
func startGRPCHealthServer(t *testing.T, cert *tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("ok.Service", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down.Service", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return ln.Addr().String()
}

// selfSignedCert is a certificate for 127.0.0.1 that no one trusts.
func selfSignedCert(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "healthcheck test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestGRPCCheck(t *testing.T) {
	t.Parallel()
	plain := startGRPCHealthServer(t, nil)
	secure := startGRPCHealthServer(t, selfSignedCert(t))
	closed := closedPort(t)

	tests := []struct {
		name       string
		def        state.CheckDefinition
		wantStatus string
		wantOutput string // exact for passing, contained for critical
	}{
		{"whole server SERVING", state.CheckDefinition{GRPC: plain},
			pass, "gRPC check " + plain + ": success"},
		{"service SERVING", state.CheckDefinition{GRPC: plain + "/ok.Service"},
			pass, "gRPC check " + plain + "/ok.Service: success"},
		{"service NOT_SERVING", state.CheckDefinition{GRPC: plain + "/down.Service"},
			crit, "gRPC " + plain + "/down.Service serving status: NOT_SERVING"},
		{"unknown service", state.CheckDefinition{GRPC: plain + "/no.Service"},
			crit, "code = NotFound"},
		{"nothing listening", state.CheckDefinition{GRPC: closed},
			crit, "code = Unavailable"},
		{"TLS with TLSSkipVerify", state.CheckDefinition{GRPC: secure, GRPCUseTLS: true, TLSSkipVerify: true},
			pass, "gRPC check " + secure + ": success"},
		{"TLS with an untrusted certificate", state.CheckDefinition{GRPC: secure, GRPCUseTLS: true},
			crit, "certificate"},
		{"plaintext to a TLS server", state.CheckDefinition{GRPC: secure, Timeout: "2s"},
			crit, "code = Unavailable"},
	}
	m, rec := newTestMonitor(t, false)
	for i, tt := range tests {
		id := fmt.Sprintf("grpc-%d", i)
		mustAdd(t, m, id, TypeGRPC, tt.def)
		t.Run(tt.name, func(t *testing.T) {
			e := rec.waitCount(t, id, 1)[0]
			if e.status != tt.wantStatus || !strings.Contains(e.output, tt.wantOutput) ||
				tt.wantStatus == pass && e.output != tt.wantOutput {
				t.Errorf("got %s %q, want %s %q", e.status, e.output, tt.wantStatus, tt.wantOutput)
			}
		})
	}
}
