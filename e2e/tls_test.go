package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// TLS end to end: certificates made with `beacon tls`, a cluster whose
// every connection (HTTPS, Raft, agent-to-server RPC, the client's state
// stream, snapshot transfers) is TLS with verify_incoming and
// verify_server_hostname, agents without a certificate of the CA kept out,
// and the CA rotated by reloads while writes go on.

// runBeacon runs the binary with args in dir, with env added to the
// environment, and returns its exit code, stdout and stderr.
func runBeacon(t testing.TB, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(beaconBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("beacon %v: %v", args, err)
	return 0, "", ""
}

// certAuthority is a CA made with `beacon tls ca create`, in its own
// directory, where `beacon tls cert create` puts the certificates it signs.
type certAuthority struct {
	dir, certFile string
}

func newCertAuthority(t *testing.T) *certAuthority {
	t.Helper()
	dir := t.TempDir()
	if code, out, errOut := runBeacon(t, dir, nil, "tls", "ca", "create", "-days", "2"); code != 0 {
		t.Fatalf("beacon tls ca create: exit %d\n%s%s", code, out, errOut)
	}
	return &certAuthority{dir: dir, certFile: filepath.Join(dir, "consul-agent-ca.pem")}
}

// issue runs `beacon tls cert create -<kind>` and returns the files it
// saved: the certificate and its key.
func (ca *certAuthority) issue(t *testing.T, kind string) (certFile, keyFile string) {
	t.Helper()
	code, out, errOut := runBeacon(t, ca.dir, nil, "tls", "cert", "create", "-"+kind, "-days", "1")
	if code != 0 {
		t.Fatalf("beacon tls cert create -%s: exit %d\n%s%s", kind, code, out, errOut)
	}
	var saved []string
	for _, line := range strings.Split(out, "\n") {
		if f, ok := strings.CutPrefix(line, "==> Saved "); ok {
			saved = append(saved, filepath.Join(ca.dir, f))
		}
	}
	if len(saved) != 2 {
		t.Fatalf("beacon tls cert create -%s saved %v, want a certificate and its key:\n%s", kind, saved, out)
	}
	return saved[0], saved[1]
}

func (ca *certAuthority) pool(t *testing.T) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(ca.certFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// writeBundle writes the certificates of cas into path, in place: the
// agents that trust path read it again on reload.
func writeBundle(t *testing.T, path string, cas ...*certAuthority) {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		pem, err := os.ReadFile(ca.certFile)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, pem...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsLines are the discovery block's lines of an agent with every TLS
// setting on.
func tlsLines(certFile, keyFile, caFile string) []string {
	return []string{
		"https 127.0.0.1:HTTPSPORT",
		fmt.Sprintf("tls %s %s %s", certFile, keyFile, caFile),
		"verify_incoming", "verify_outgoing", "verify_server_hostname",
	}
}

// withTLS replaces the tls line of lines.
func withTLS(lines []string, certFile, keyFile, caFile string) []string {
	out := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return strings.HasPrefix(l, "tls ") })
	return append(out, fmt.Sprintf("tls %s %s %s", certFile, keyFile, caFile))
}

// httpsClient is an official client of a's HTTPS API with tlsConf.
func httpsClient(t *testing.T, a *Agent, tlsConf api.TLSConfig) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Scheme, cfg.TLSConfig = a.HTTPSAddr, "https", tlsConf
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	tlsConfig, err := api.SetupTLSConfig(&tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	tr.TLSClientConfig = tlsConfig
	cfg.Transport = tr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signal sends sig to a's process.
func (a *Agent) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	p := a.process()
	if p == nil || p.exited() {
		t.Fatalf("agent %s is not running", a.Opts.Node)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", a.Opts.Node, err)
	}
}

// waitLog waits until a's output after off says what.
func waitLog(t testing.TB, a *Agent, off int, what string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(a.LogSince(off), what) {
			return fmt.Errorf("%s has not logged %q", a.Opts.Node, what)
		}
		return nil
	})
}

// httpsIssuedBy checks that a's HTTPS API presents, to a new connection, a
// certificate signed by ca.
func httpsIssuedBy(a *Agent, ca *x509.CertPool, clientCert tls.Certificate) error {
	// localhost: the name servers' and client agents' certificates share.
	conn, err := tls.Dial("tcp", a.HTTPSAddr, &tls.Config{RootCAs: ca, ServerName: "localhost",
		Certificates: []tls.Certificate{clientCert}})
	if err != nil {
		return fmt.Errorf("%s's HTTPS: %w", a.Opts.Node, err)
	}
	return conn.Close()
}

func raftTerm(t *testing.T, a *Agent) string {
	t.Helper()
	self, err := a.Client.Agent().Self()
	if err != nil {
		t.Fatalf("agent self on %s: %v", a.Opts.Node, err)
	}
	raft, _ := self["Stats"]["raft"].(map[string]any)
	term, _ := raft["term"].(string)
	return term
}

// rogue is an agent without a certificate of the cluster's CA, and the
// outcome of what it tried.
type rogue struct {
	*Agent
	// wrote gets what to report of its write to the KV store: nil when
	// it failed, as it must.
	wrote chan error
}

// startRogue launches a client agent with opts (not waiting for it to be
// ready: it never is) and has it, in the background, register a service
// and write to the KV store, which must fail.
func startRogue(t *testing.T, opts Options) *rogue {
	t.Helper()
	opts.Datacenter, opts.Client = "dc1", true
	r := &rogue{Agent: &Agent{Opts: opts, Dir: t.TempDir()}, wrote: make(chan error, 1)}
	r.ConfPath, r.LogPath = filepath.Join(r.Dir, "Corefile"), filepath.Join(r.Dir, "agent.log")
	t.Cleanup(func() { r.cleanup(t) })
	r.setPorts(allocatePorts(t))
	r.writeCorefile(t)
	if err := r.launch(); err != nil {
		t.Fatal(err)
	}
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, err := r.Client.Agent().Self()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				r.wrote <- fmt.Errorf("its API never answered: %w", err)
				return
			}
			time.Sleep(50 * time.Millisecond) // a poll interval
		}
		// The registration is kept locally (the agent's sync to the
		// catalog fails and retries), the write fails: both take the
		// agent's apply timeout, so they go side by side.
		go func() {
			_ = r.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "evil", Name: "evil-" + r.Opts.Node, Address: "10.6.6.6", Port: 666})
		}()
		if _, err := r.Client.KV().Put(&api.KVPair{Key: "tls/evil/" + r.Opts.Node, Value: []byte("x")}, nil); err == nil {
			r.wrote <- errors.New("a write through it was accepted")
			return
		}
		r.wrote <- nil
	}()
	return r
}

// checkKeptOut fails the test unless r never took part: its write failed,
// it knows no leader and holds no state, and neither its write nor its
// service reached the servers.
func (r *rogue) checkKeptOut(t *testing.T, servers []*Agent) {
	t.Helper()
	select {
	case err := <-r.wrote:
		if err != nil {
			t.Errorf("%s: %v", r.Opts.Node, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("a write through %s still hangs", r.Opts.Node)
	}
	if leader, err := r.Client.Status().Leader(); err != nil || leader != "" {
		t.Errorf("status/leader on %s = %q, %v; want no leader known", r.Opts.Node, leader, err)
	}
	self, err := r.Client.Agent().Self()
	if err != nil {
		t.Fatalf("agent self on %s: %v", r.Opts.Node, err)
	}
	if stats, _ := self["Stats"]["consul"].(map[string]any); stats["synced"] != "false" || stats["snapshots"] != "0" {
		t.Errorf("%s's replica: %v; want never synced", r.Opts.Node, stats)
	}
	if m := r.Query(t, "redis.service.consul.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("DNS on %s = %s, want SERVFAIL (it has no state)", r.Opts.Node, rcode(m))
	}
	for _, s := range servers {
		svcs, _, err := s.Client.Catalog().Service("evil-"+r.Opts.Node, "", &api.QueryOptions{RequireConsistent: true})
		if err != nil || len(svcs) != 0 {
			t.Errorf("catalog on %s lists %s's service: %v, %v", s.Opts.Node, r.Opts.Node, svcs, err)
		}
		if kv, _, err := s.Client.KV().Get("tls/evil/"+r.Opts.Node, nil); err != nil || kv != nil {
			t.Errorf("KV on %s has %s's write: %+v, %v", s.Opts.Node, r.Opts.Node, kv, err)
		}
	}
}

// TestTLSCluster: 3 servers and a client agent with TLS on HTTPS and the
// server port, verify_incoming and verify_server_hostname.
func TestTLSCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	mainCA, nextCA, evilCA := newCertAuthority(t), newCertAuthority(t), newCertAuthority(t)
	// What the agents trust, rewritten in place as the CA rotates; the
	// test's own clients trust both CAs throughout.
	bundle := filepath.Join(t.TempDir(), "ca-bundle.pem")
	writeBundle(t, bundle, mainCA)
	trust := filepath.Join(t.TempDir(), "trust.pem")
	writeBundle(t, trust, mainCA, nextCA)
	cliCert, cliKey := mainCA.issue(t, "cli")
	apiTLS := &api.TLSConfig{CAFile: trust, CertFile: cliCert, KeyFile: cliKey}

	servers := StartClusterWith(t, 3, func(i int, o *Options) {
		cert, key := mainCA.issue(t, "server")
		o.Discovery, o.APITLS = tlsLines(cert, key, bundle), apiTLS
	})
	var join []string
	for _, s := range servers {
		join = append(join, addr(s.Ports.SerfLAN))
	}
	cert, key := mainCA.issue(t, "client")
	client := StartAgent(t, Options{Node: "c1", Client: true, Join: join, Discovery: tlsLines(cert, key, bundle), APITLS: apiTLS})
	agents := append(slices.Clone(servers), client)
	t.Logf("3 servers and a client agent with TLS ready after %v", time.Since(start).Round(time.Millisecond))

	// Agents without a certificate of the CA, started now (they take a
	// while to give up) and checked at the end: one with no TLS at all
	// (it speaks plaintext to the server port), one with another CA's
	// certificate (it trusts ours).
	logOffsets := make([]int, len(servers))
	for i, s := range servers {
		logOffsets[i] = len(s.Log())
	}
	rogueBundle := filepath.Join(t.TempDir(), "rogue-bundle.pem")
	writeBundle(t, rogueBundle, mainCA, evilCA)
	rogueCert, rogueKey := evilCA.issue(t, "client")
	rogues := []*rogue{
		startRogue(t, Options{Node: "plain", Join: join}),
		startRogue(t, Options{Node: "rogue", Join: join, Discovery: tlsLines(rogueCert, rogueKey, rogueBundle)}),
	}

	// ---- the cluster works over TLS ----
	leader := leaderOf(t, servers)
	var follower *Agent
	for _, s := range servers {
		if s != leader {
			follower = s
			break
		}
	}
	if peers, err := client.Client.Status().Peers(); err != nil || len(peers) != 3 {
		t.Fatalf("status/peers through the client = %v, %v; want 3 servers", peers, err)
	}
	// A write through a follower, read linearizably on every server.
	if err := follower.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379}); err != nil {
		t.Fatalf("register through follower %s: %v", follower.Opts.Node, err)
	}
	for _, s := range servers {
		svcs, _, err := s.Client.Catalog().Service("redis", "", &api.QueryOptions{RequireConsistent: true})
		if err != nil || len(svcs) != 1 {
			t.Fatalf("consistent read on %s = %v, %v; want redis-1", s.Opts.Node, svcs, err)
		}
	}
	// Writes through the client agent; its replica follows the stream.
	if err := client.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "web-1", Name: "web", Address: "10.0.1.1", Port: 80}); err != nil {
		t.Fatalf("register through the client: %v", err)
	}
	if _, err := client.Client.KV().Put(&api.KVPair{Key: "tls/kept", Value: []byte("v1")}, nil); err != nil {
		t.Fatalf("KV put through the client: %v", err)
	}
	if kv, _, err := client.Client.KV().Get("tls/kept", &api.QueryOptions{RequireConsistent: true}); err != nil || kv == nil || string(kv.Value) != "v1" {
		t.Fatalf("consistent KV read through the client = %+v, %v", kv, err)
	}
	waitForAddrs(t, client, "redis.service.consul.", dns.TypeA, "10.0.0.5")
	for _, a := range agents {
		waitForAddrs(t, a, "web.service.consul.", dns.TypeA, "10.0.1.1")
	}
	// Snapshots over the server port: saved through the client agent
	// (from the leader), restored through a follower (passed on to it).
	rc, _, err := client.Client.Snapshot().Save(nil)
	if err != nil {
		t.Fatalf("snapshot save through the client: %v", err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(archive) == 0 {
		t.Fatalf("reading the snapshot: %d bytes, %v", len(archive), err)
	}
	if _, err := client.Client.KV().Put(&api.KVPair{Key: "tls/after-snapshot", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := follower.Client.Snapshot().Restore(nil, bytes.NewReader(archive)); err != nil {
		t.Fatalf("snapshot restore through follower %s: %v", follower.Opts.Node, err)
	}
	for _, a := range agents {
		eventually(t, 10*time.Second, func() error {
			gone, _, err := a.Client.KV().Get("tls/after-snapshot", &api.QueryOptions{AllowStale: true})
			if err != nil || gone != nil {
				return fmt.Errorf("%s after the restore: tls/after-snapshot = %+v, %v; want gone", a.Opts.Node, gone, err)
			}
			kept, _, err := a.Client.KV().Get("tls/kept", &api.QueryOptions{AllowStale: true})
			if err != nil || kept == nil {
				return fmt.Errorf("%s after the restore: tls/kept = %+v, %v; want kept", a.Opts.Node, kept, err)
			}
			return nil
		})
	}
	t.Logf("the cluster works over TLS, %v in", time.Since(start).Round(time.Millisecond))

	// ---- who is refused at the HTTPS port ----
	// Plain HTTP gets Go's 400, never the API.
	resp, err := http.Get("http://" + leader.HTTPSAddr + "/v1/kv/tls/kept")
	if err != nil {
		t.Fatalf("plain HTTP to the HTTPS port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP to the HTTPS port: %s %q, want 400", resp.Status, body)
	}
	// verify_incoming applies to HTTPS: a client needs a certificate of
	// the CA.
	evilCert, evilKey := evilCA.issue(t, "cli")
	for name, conf := range map[string]api.TLSConfig{
		"no certificate":              {CAFile: trust},
		"another CA's certificate":    {CAFile: trust, CertFile: evilCert, KeyFile: evilKey},
		"a certificate without trust": {CAFile: evilCA.certFile, CertFile: cliCert, KeyFile: cliKey},
	} {
		if _, _, err := httpsClient(t, leader, conf).KV().Keys("", "", nil); err == nil {
			t.Errorf("HTTPS client with %s read the KV store", name)
		} else {
			t.Logf("HTTPS client with %s: %v", name, err)
		}
	}

	// ---- the CLI over HTTPS: flags, BEACON_ and CONSUL_ variables ----
	https := "https://" + leader.HTTPSAddr
	if code, out, errOut := runBeacon(t, t.TempDir(), nil, "members", "-http-addr", https, "-ca-file", trust,
		"-client-cert", cliCert, "-client-key", cliKey); code != 0 || !strings.Contains(out, "s2") || !strings.Contains(out, "c1") {
		t.Errorf("beacon members with -ca-file, -client-cert, -client-key: exit %d\n%s%s", code, out, errOut)
	}
	beaconEnv := []string{"BEACON_HTTP_ADDR=" + https, "BEACON_CACERT=" + trust, "BEACON_CLIENT_CERT=" + cliCert,
		"BEACON_CLIENT_KEY=" + cliKey}
	if code, out, errOut := runBeacon(t, t.TempDir(), beaconEnv, "kv", "get", "tls/kept"); code != 0 || out != "v1\n" {
		t.Errorf("beacon kv get with BEACON_ variables: exit %d %q %s", code, out, errOut)
	}
	consulEnv := []string{"CONSUL_HTTP_ADDR=" + leader.HTTPSAddr, "CONSUL_HTTP_SSL=true", "CONSUL_CACERT=" + trust,
		"CONSUL_CLIENT_CERT=" + cliCert, "CONSUL_CLIENT_KEY=" + cliKey}
	if code, out, errOut := runBeacon(t, t.TempDir(), consulEnv, "operator", "raft", "list-peers"); code != 0 || !strings.Contains(out, "leader") {
		t.Errorf("beacon operator raft list-peers with CONSUL_ variables: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runBeacon(t, t.TempDir(), nil, "members", "-http-addr", https, "-ca-file", trust); code != 1 ||
		!strings.Contains(errOut, "certificate") {
		t.Errorf("beacon members without a client certificate: exit %d\n%s%s", code, out, errOut)
	}

	// ---- the CA rotated by reloads, while writes go on ----
	term := raftTerm(t, leader)
	var writes, failed atomic.Int64
	var firstFailure atomic.Pointer[error]
	stopWriting := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			if _, err := client.Client.KV().Put(&api.KVPair{Key: fmt.Sprintf("tls/rotation/%d", i%10), Value: []byte{byte(i)}}, nil); err != nil {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, &err)
			}
			writes.Add(1)
		}
	}()
	rotationStart := time.Now()
	// writesGoOn waits for writes after a step of the rotation.
	writesGoOn := func(step string) {
		t.Helper()
		n := writes.Load()
		eventually(t, 10*time.Second, func() error {
			if writes.Load() < n+3 {
				return fmt.Errorf("writes stalled after %s: %d failed", step, failed.Load())
			}
			return nil
		})
	}
	sighupAll := func() {
		t.Helper()
		offs := make([]int, len(agents))
		for i, a := range agents {
			offs[i] = len(a.Log())
			a.signal(t, syscall.SIGHUP)
		}
		for i, a := range agents {
			waitLog(t, a, offs[i], "SIGHUP: TLS reloaded")
		}
	}
	// 1. Every agent trusts both CAs (the bundle rewritten, SIGHUP).
	writeBundle(t, bundle, mainCA, nextCA)
	sighupAll()
	writesGoOn("both CAs trusted")
	// 2. Every agent gets a certificate of the new CA (new files in the
	// Corefile, SIGUSR1).
	for _, a := range agents {
		kind := "server"
		if a.Opts.Client {
			kind = "client"
		}
		cert, key := nextCA.issue(t, kind)
		off := a.Reload(t, func(o *Options) { o.Discovery = withTLS(o.Discovery, cert, key, bundle) })
		waitLog(t, a, off, "TLS reloaded: new connections use it")
	}
	writesGoOn("new certificates")
	// 3. The old CA is trusted no more (SIGHUP).
	writeBundle(t, bundle, nextCA)
	sighupAll()
	writesGoOn("the old CA dropped")
	close(stopWriting)
	writer.Wait()
	t.Logf("the CA rotated in %v; %d writes through the client meanwhile, %d failed",
		time.Since(rotationStart).Round(time.Millisecond), writes.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d of %d writes through the client failed during the rotation; the first: %v", failed.Load(), writes.Load(), *firstFailure.Load())
	}
	if writes.Load() == 0 {
		t.Error("no write went through during the rotation")
	}
	if now := leaderOf(t, servers); now != leader || raftTerm(t, leader) != term {
		t.Errorf("the rotation cost the leadership: leader %s (was %s), term %s (was %s)", now.Opts.Node, leader.Opts.Node, raftTerm(t, now), term)
	}
	// New connections see the rotation: every agent presents a
	// certificate of the new CA, and the old CA's client certificate is
	// refused.
	newCLICert, newCLIKey := nextCA.issue(t, "cli")
	newClientCert, err := tls.LoadX509KeyPair(newCLICert, newCLIKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if err := httpsIssuedBy(a, nextCA.pool(t), newClientCert); err != nil {
			t.Errorf("after the rotation: %v", err)
		}
	}
	if _, _, err := httpsClient(t, follower, *apiTLS).KV().Keys("", "", nil); err == nil {
		t.Error("after the rotation, a client certificate of the old CA is still accepted")
	}
	// A reload to files that do not load is refused, saying why, and the
	// running certificates stay.
	off := follower.Reload(t, func(o *Options) {
		o.Discovery = withTLS(o.Discovery, filepath.Join(t.TempDir(), "gone.pem"), filepath.Join(t.TempDir(), "gone-key.pem"), bundle)
	})
	waitLog(t, follower, off, `property "tls": reading the certificate`)
	if err := httpsIssuedBy(follower, nextCA.pool(t), newClientCert); err != nil || !follower.Running() {
		t.Errorf("after a refused reload: running %v, %v", follower.Running(), err)
	}
	apiTLS = &api.TLSConfig{CAFile: trust, CertFile: newCLICert, KeyFile: newCLIKey}
	for _, a := range agents {
		a.Opts.APITLS = apiTLS
		a.setPorts(a.Ports) // new clients, with the new CA's certificate
	}
	// A new client agent that knows only the new CA joins, follows and
	// writes: the server port speaks the new material to new connections,
	// both ways.
	newBundle := filepath.Join(t.TempDir(), "next-bundle.pem")
	writeBundle(t, newBundle, nextCA)
	cert, key = nextCA.issue(t, "client")
	c2 := StartAgent(t, Options{Node: "c2", Client: true, Join: join, Discovery: tlsLines(cert, key, newBundle), APITLS: apiTLS})
	if _, err := c2.Client.KV().Put(&api.KVPair{Key: "tls/c2", Value: []byte("new")}, nil); err != nil {
		t.Fatalf("a write through a client agent of the new CA: %v", err)
	}
	for _, a := range append(agents, c2) {
		kv, _, err := a.Client.KV().Get("tls/c2", &api.QueryOptions{RequireConsistent: true})
		if err != nil || kv == nil || string(kv.Value) != "new" {
			t.Errorf("consistent read of tls/c2 on %s = %+v, %v", a.Opts.Node, kv, err)
		}
	}

	// ---- the agents without a certificate of the CA never took part ----
	for _, want := range []string{"refused a plaintext connection", "TLS handshake failed"} {
		found := false
		for i, s := range servers {
			found = found || strings.Contains(s.LogSince(logOffsets[i]), want)
		}
		if !found {
			t.Errorf("no server logged %q", want)
		}
	}
	for _, r := range rogues {
		r.checkKeptOut(t, servers)
	}
	t.Logf("TestTLSCluster took %v", time.Since(start).Round(time.Millisecond))

	// Client agents leave gracefully on SIGTERM, a second or so each: stop
	// them together rather than one after the other in the cleanups.
	var stopping sync.WaitGroup
	for _, a := range []*Agent{client, c2, rogues[0].Agent, rogues[1].Agent} {
		stopping.Add(1)
		go func() { defer stopping.Done(); a.stopProcess() }()
	}
	stopping.Wait()
}
