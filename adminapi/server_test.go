package adminapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/hashicorp/go-hclog"
)

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

func TestListenServesAndShutsDown(t *testing.T) {
	if _, err := Listen("256.0.0.1:bad", newFakeAgent(t), hclog.NewNullLogger()); err == nil {
		t.Fatal("Listen on a bad address succeeded")
	}

	addr := freeAddr(t)
	srv, err := Listen(addr, newFakeAgent(t), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Shutdown(context.Background())
		}
	})
	resp, err := http.Get("http://" + addr + "/v1/status/leader")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != `"`+testLeader+`"` {
		t.Errorf("GET /v1/status/leader = %d %q", resp.StatusCode, b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	stopped = true
	if _, err := http.Get("http://" + addr + "/v1/status/leader"); err == nil {
		t.Error("still serving after Shutdown")
	}
}

// Shutdown's doc says blocking queries are cut short; http.Server.Shutdown
// does not cancel request contexts, so a client holding a blocking query
// (consul-template, Prometheus consul_sd: always) makes Shutdown wait for the
// whole ctx (the agent gives it 5 s) before it force-closes the connection.
func TestShutdownCutsBlockingQueriesShort(t *testing.T) {
	addr := freeAddr(t)
	agent := newFakeAgent(t)
	agent.registerSelf(t)
	srv, err := Listen(addr, agent, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	idx, _, _, _ := agent.store.NodeServices(nil, testNode)

	got := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/catalog/nodes?index=%d&wait=5m", addr, idx))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		got <- err
	}()
	// Wait until the query is inside the handler (it has asked for the
	// store to read from).
	waitFor(t, func() bool { return agent.storeCalls.Load() >= 2 })
	select {
	case err := <-got:
		t.Fatalf("blocking query returned early: %v", err)
	default:
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	srv.Shutdown(ctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Shutdown took %v with one blocking query in flight: it waited for ctx instead of cutting the query short", d.Round(time.Millisecond))
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Error("the blocking query was still open after Shutdown")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With http off the API listens on nothing but what ListenTLS adds; the
// HTTPS listener serves the same API, answers plain HTTP with a 400 and
// stops with Shutdown.
func TestListenTLS(t *testing.T) {
	caPEM, caKey, err := tlsutil.GenerateCA(tlsutil.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := tlsutil.GenerateCert(caPEM, caKey, tlsutil.CertOptions{Kind: tlsutil.KindServer, Datacenter: "dc1"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	material, err := tlsutil.Load(tlsutil.Config{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen("", newFakeAgent(t), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	if err := srv.ListenTLS(addr, tlsutil.NewConfigurator(material).IncomingHTTPS()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Shutdown(context.Background())
		}
	})
	if err := srv.ListenTLS(addr, nil); err == nil {
		t.Error("a second listener on the same address succeeded")
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	resp, err := client.Get("https://" + addr + "/v1/status/leader")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != `"`+testLeader+`"` || resp.TLS == nil {
		t.Errorf("GET /v1/status/leader over HTTPS = %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get("http://" + addr + "/v1/status/leader")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), testLeader) {
		t.Errorf("plain HTTP to the HTTPS port = %d %q, want 400", resp.StatusCode, b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	stopped = true
	if _, err := client.Get("https://" + addr + "/v1/status/leader"); err == nil {
		t.Error("still serving HTTPS after Shutdown")
	}
}
