package e2e

// The harness: build beacon once, start agents as separate processes on free
// ports, wait for them to be ready, and talk to them over DNS and HTTP.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// beaconBin is the binary under test, built by TestMain.
var beaconBin string

const (
	// startTimeout bounds how long an agent may take to elect itself,
	// register its node and answer DNS.
	startTimeout = 60 * time.Second
	// stopGrace is how long a SIGTERM is given before SIGKILL.
	stopGrace = 5 * time.Second
	// dnsTimeout bounds every DNS exchange.
	dnsTimeout = 2 * time.Second
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if bin := os.Getenv("BEACON_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: BEACON_BIN: %v\n", err)
			return 1
		}
		beaconBin = abs
		return m.Run()
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "beacon-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "beacon")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build -o %s . (in %s): %v\n%s", bin, root, err, out)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built %s in %v\n", bin, time.Since(start).Round(time.Millisecond))
	}
	beaconBin = bin
	return m.Run()
}

// repoRoot is the module root: the parent of this package's directory
// (go test runs a package's tests in its directory).
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := filepath.Dir(wd)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("finding the repository root from %s: %w", wd, err)
	}
	if !bytes.Contains(b, []byte("module github.com/beacon-dns/beacon")) {
		return "", fmt.Errorf("%s/go.mod is not beacon's", root)
	}
	return root, nil
}

// ---- ports ----

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freePort returns a 127.0.0.1 port that is free for both TCP and UDP (DNS
// and gossip listen on both) and that no other agent of this test run has
// been given.
func freePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("allocating a port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue // taken for UDP
		}
		u.Close()
		portsMu.Lock()
		used := portsUsed[port]
		portsUsed[port] = true
		portsMu.Unlock()
		if !used {
			return port
		}
	}
	t.Fatal("no free port for both TCP and UDP after 200 tries")
	return 0
}

// Ports are an agent's listening ports, all on 127.0.0.1. HTTPS is
// reserved for every agent; a Corefile uses it as HTTPSPORT.
type Ports struct {
	DNS, HTTP, HTTPS, RPC, SerfLAN, SerfWAN int
}

func allocatePorts(t testing.TB) Ports {
	t.Helper()
	return Ports{DNS: freePort(t), HTTP: freePort(t), HTTPS: freePort(t), RPC: freePort(t), SerfLAN: freePort(t),
		SerfWAN: freePort(t)}
}

// ---- agents ----

// Options shape an agent's Corefile. In every string, DNSPORT, HTTPPORT,
// HTTPSPORT, RPCPORT and DATADIR are replaced with the agent's values.
type Options struct {
	// Node defaults to "n1", Datacenter to "dc1".
	Node, Datacenter string
	// DataDir defaults to <temp dir>/data.
	DataDir string
	// Discovery are extra lines inside the discovery block, after the
	// standard ones.
	Discovery []string
	// ServerBlock are extra lines in the consul/dc1 server block, after the
	// discovery block.
	ServerBlock []string
	// NoDefaultBlock leaves out the `.:DNSPORT { whoami }` block.
	NoDefaultBlock bool
	// Blocks are extra server blocks, written after the others.
	Blocks []string
	// Env is added to the agent's environment.
	Env []string
	// BootstrapExpect defaults to 1: a single server that bootstraps alone.
	BootstrapExpect int
	// Client makes a client agent: no `server`, no bootstrap_expect; it
	// needs Join to find the servers.
	Client bool
	// Join are LAN gossip addresses to join.
	Join []string
	// Bind is the address the agent listens on and advertises, for DNS,
	// HTTP, RPC and gossip alike; default 127.0.0.1.
	Bind string
	// Netns, when set, runs the agent in that network namespace (`ip netns
	// exec`, which execs: the process is still beacon's).
	Netns string
	// Token is the ACL token the harness's API client sends.
	Token string
	// Corefile, when set, is the whole Corefile, used as it is but for
	// the placeholders above and the Corefile.example's own addresses
	// (127.0.0.1:8600, :8500, :8300, :8301, :8302 and data/dev), which
	// become the agent's.
	Corefile string
	// APITLS, when set, points Client (and HTTP) at the agent's HTTPS
	// address with these files, for an agent whose Discovery lines have
	// `https BIND:HTTPSPORT`.
	APITLS *api.TLSConfig
}

// Agent is one beacon process and the clients that talk to it.
type Agent struct {
	Opts      Options
	Dir       string // the agent's temporary directory (and working directory)
	ConfPath  string
	LogPath   string
	Ports     Ports
	DNSAddr   string // Bind:port
	HTTPAddr  string
	HTTPSAddr string
	RPCAddr   string

	// Client is the official Consul API client, pointed at the agent.
	Client *api.Client
	// HTTP is a plain client for requests the API client will not make.
	HTTP      *http.Client
	transport *http.Transport

	mu   sync.Mutex
	proc *process
}

// process is one run of the binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, once done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

var errPortInUse = errors.New("a port was taken before the agent could bind it")

// StartAgent starts an agent with opts and waits until it is ready: a leader
// is known, its node is in the catalog, and DNS answers. The process is
// stopped when the test ends; if the test failed, its Corefile and output are
// logged.
func StartAgent(t *testing.T, opts Options) *Agent {
	t.Helper()
	if opts.Node == "" {
		opts.Node = "n1"
	}
	if opts.Datacenter == "" {
		opts.Datacenter = "dc1"
	}
	dir := t.TempDir()
	a := &Agent{
		Opts: opts, Dir: dir,
		ConfPath: filepath.Join(dir, "Corefile"),
		LogPath:  filepath.Join(dir, "agent.log"),
	}
	t.Cleanup(func() { a.cleanup(t) })
	for attempt := 1; ; attempt++ {
		a.setPorts(allocatePorts(t))
		a.writeCorefile(t)
		if err := a.launch(); err != nil {
			t.Fatalf("starting %s: %v", beaconBin, err)
		}
		err := a.waitReady(startTimeout)
		if err == nil {
			return a
		}
		if errors.Is(err, errPortInUse) && attempt < 3 {
			// Another process took a port between allocation and bind:
			// start over on new ports with a clean data_dir (Raft
			// remembers its address).
			t.Logf("agent %s: %v; retrying on other ports", opts.Node, err)
			a.stopProcess()
			if err := os.RemoveAll(a.dataDir()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Fatalf("agent %s did not become ready: %v", opts.Node, err)
	}
}

// StartCluster starts n servers of one datacenter (s1…sn) as separate
// processes, each expecting n servers and joining the others through LAN
// gossip, and waits until every one of them is ready. configure, when
// given, changes each server's options before it starts.
func StartCluster(t *testing.T, n int, configure ...func(*Options)) []*Agent {
	t.Helper()
	return StartClusterWith(t, n, func(_ int, o *Options) {
		for _, c := range configure {
			c(o)
		}
	})
}

// StartClusterWith is StartCluster with set, when not nil, changing the
// options of server i (from 0) before it starts.
func StartClusterWith(t *testing.T, n int, set func(i int, o *Options)) []*Agent {
	t.Helper()
	agents := make([]*Agent, n)
	for i := range agents {
		dir := t.TempDir()
		a := &Agent{
			Opts: Options{Node: fmt.Sprintf("s%d", i+1), Datacenter: "dc1", BootstrapExpect: n},
			Dir:  dir, ConfPath: filepath.Join(dir, "Corefile"), LogPath: filepath.Join(dir, "agent.log"),
		}
		if set != nil {
			set(i, &a.Opts)
		}
		t.Cleanup(func() { a.cleanup(t) })
		a.setPorts(allocatePorts(t))
		agents[i] = a
	}
	for i, a := range agents {
		for j, b := range agents {
			if i != j {
				a.Opts.Join = append(a.Opts.Join, addr(b.Ports.SerfLAN))
			}
		}
		a.writeCorefile(t)
		if err := a.launch(); err != nil {
			t.Fatalf("starting %s: %v", a.Opts.Node, err)
		}
	}
	for _, a := range agents {
		if err := a.waitReady(startTimeout); err != nil {
			t.Fatalf("server %s did not become ready: %v", a.Opts.Node, err)
		}
	}
	return agents
}

// StartClient starts a client agent named node that joins the servers'
// LAN gossip, and waits until it is ready (it follows a server's state and
// its own node is in the catalog).
func StartClient(t *testing.T, node string, servers []*Agent) *Agent {
	t.Helper()
	var join []string
	for _, s := range servers {
		join = append(join, addr(s.Ports.SerfLAN))
	}
	return StartAgent(t, Options{Node: node, Client: true, Join: join})
}

func (a *Agent) setPorts(p Ports) {
	a.Ports = p
	a.DNSAddr = a.addr(p.DNS)
	a.HTTPAddr = a.addr(p.HTTP)
	a.HTTPSAddr = a.addr(p.HTTPS)
	a.RPCAddr = a.addr(p.RPC)
	if a.transport != nil {
		a.transport.CloseIdleConnections()
	}
	a.transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	a.HTTP = &http.Client{Transport: a.transport, Timeout: 30 * time.Second}
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr
	cfg.Scheme = "http"
	cfg.Token = a.Opts.Token
	cfg.Transport = a.transport
	if a.Opts.APITLS != nil {
		tlsConfig, err := api.SetupTLSConfig(a.Opts.APITLS)
		if err != nil {
			panic(fmt.Sprintf("api.SetupTLSConfig: %v", err)) // the test's own files
		}
		a.transport.TLSClientConfig = tlsConfig
		cfg.Address, cfg.Scheme, cfg.TLSConfig = a.HTTPSAddr, "https", *a.Opts.APITLS
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		panic(fmt.Sprintf("api.NewClient: %v", err)) // only fails on bad TLS settings
	}
	a.Client = c
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// bindIP is the address the agent listens on: Options.Bind, else 127.0.0.1.
func (a *Agent) bindIP() string {
	if a.Opts.Bind != "" {
		return a.Opts.Bind
	}
	return "127.0.0.1"
}

// addr is the agent's bind address with port.
func (a *Agent) addr(port int) string { return net.JoinHostPort(a.bindIP(), strconv.Itoa(port)) }

func (a *Agent) dataDir() string {
	if a.Opts.DataDir != "" {
		return a.Opts.DataDir
	}
	return filepath.Join(a.Dir, "data")
}

// Corefile renders the agent's Corefile from its options and ports.
func (a *Agent) Corefile() string {
	o, p := a.Opts, a.Ports
	if o.Corefile != "" {
		return strings.NewReplacer(
			"127.0.0.1:8600", a.addr(p.DNS), ":8600", ":"+strconv.Itoa(p.DNS),
			"127.0.0.1:8500", a.addr(p.HTTP), "127.0.0.1:8300", a.addr(p.RPC),
			"127.0.0.1:8301", a.addr(p.SerfLAN), "127.0.0.1:8302", a.addr(p.SerfWAN),
			"data/dev", a.dataDir(), "DNSPORT", strconv.Itoa(p.DNS), "HTTPPORT", strconv.Itoa(p.HTTP),
			"HTTPSPORT", strconv.Itoa(p.HTTPS), "RPCPORT", strconv.Itoa(p.RPC), "DATADIR", a.dataDir(),
		).Replace(o.Corefile)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "consul:%d %s:%d {\n", p.DNS, o.Datacenter, p.DNS)
	fmt.Fprintf(&b, "    bind %s\n", a.bindIP())
	b.WriteString("    discovery {\n")
	lines := []string{
		"datacenter " + o.Datacenter,
		"node " + o.Node,
		"data_dir " + a.dataDir(),
	}
	if !o.Client {
		lines = append(lines, "server", "bootstrap_expect "+strconv.Itoa(max(o.BootstrapExpect, 1)))
	}
	lines = append(lines,
		"bind "+a.bindIP(),
		"http "+a.addr(p.HTTP),
		"rpc "+a.addr(p.RPC),
		"serf_lan "+a.addr(p.SerfLAN),
		"serf_wan "+a.addr(p.SerfWAN),
	)
	for _, l := range lines {
		fmt.Fprintf(&b, "        %s\n", l)
	}
	if len(o.Join) > 0 {
		fmt.Fprintf(&b, "        join %s\n", strings.Join(o.Join, " "))
	}
	for _, l := range o.Discovery {
		fmt.Fprintf(&b, "        %s\n", l)
	}
	b.WriteString("    }\n")
	for _, l := range o.ServerBlock {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	b.WriteString("}\n")
	if !o.NoDefaultBlock {
		fmt.Fprintf(&b, ".:%d {\n    bind %s\n    whoami\n}\n", p.DNS, a.bindIP())
	}
	for _, blk := range o.Blocks {
		b.WriteString(strings.TrimRight(blk, "\n"))
		b.WriteString("\n")
	}
	return strings.NewReplacer(
		"DNSPORT", strconv.Itoa(p.DNS),
		"HTTPPORT", strconv.Itoa(p.HTTP),
		"HTTPSPORT", strconv.Itoa(p.HTTPS),
		"RPCPORT", strconv.Itoa(p.RPC),
		"DATADIR", a.dataDir(),
	).Replace(b.String())
}

func (a *Agent) writeCorefile(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(a.ConfPath, []byte(a.Corefile()), 0o644); err != nil {
		t.Fatalf("writing the Corefile: %v", err)
	}
}

// launch starts the process; its stdout and stderr are appended to LogPath.
func (a *Agent) launch() error {
	logf, err := os.OpenFile(a.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	args := []string{beaconBin, "agent", "-conf", a.ConfPath}
	if a.Opts.Netns != "" {
		args = append([]string{"ip", "netns", "exec", a.Opts.Netns}, args...)
	}
	fmt.Fprintf(logf, "=== e2e %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = a.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), a.Opts.Env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	a.mu.Lock()
	a.proc = p
	a.mu.Unlock()
	return nil
}

func (a *Agent) process() *process {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc
}

// waitReady polls until the agent is ready, the process exits, or timeout.
func (a *Agent) waitReady(timeout time.Duration) error {
	p := a.process()
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			return a.exitErr(p)
		}
		err := a.readyCheck()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		timer := time.NewTimer(100 * time.Millisecond)
		select {
		case <-p.done:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func (a *Agent) exitErr(p *process) error {
	log := a.Log()
	if strings.Contains(log, "address already in use") {
		return fmt.Errorf("%w: the process exited (%v)", errPortInUse, p.err)
	}
	return fmt.Errorf("the process exited during start-up: %v", p.err)
}

// readyCheck: a leader is known, our node is in the catalog, DNS answers.
func (a *Agent) readyCheck() error {
	leader, err := a.Client.Status().Leader()
	if err != nil {
		return fmt.Errorf("GET /v1/status/leader: %w", err)
	}
	if leader == "" {
		return errors.New("GET /v1/status/leader: no leader yet")
	}
	nodes, _, err := a.Client.Catalog().Nodes(nil)
	if err != nil {
		return fmt.Errorf("GET /v1/catalog/nodes: %w", err)
	}
	if !slices.ContainsFunc(nodes, func(n *api.Node) bool { return n.Node == a.Opts.Node }) {
		return fmt.Errorf("GET /v1/catalog/nodes: node %s not registered yet", a.Opts.Node)
	}
	r, err := a.Exchange(question("consul.", dns.TypeSOA), "udp")
	if err != nil {
		return fmt.Errorf("DNS SOA consul.: %w", err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("DNS SOA consul.: %s", dns.RcodeToString[r.Rcode])
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (a *Agent) Kill(t testing.TB) {
	t.Helper()
	p := a.process()
	if p == nil || p.exited() {
		t.Fatalf("Kill: agent %s is not running", a.Opts.Node)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	<-p.done
}

// Stop sends SIGTERM (SIGKILL after a grace period) and waits.
func (a *Agent) Stop(t testing.TB) {
	t.Helper()
	a.stopProcess()
}

func (a *Agent) stopProcess() {
	if p := a.process(); p != nil {
		p.stop(stopGrace)
	}
}

// Restart starts the agent again with the same Corefile, data_dir and
// ports, stopping it first if it still runs, and waits until it is ready.
func (a *Agent) Restart(t testing.TB) {
	t.Helper()
	a.restartNoWait(t)
	if err := a.waitReady(startTimeout); err != nil {
		t.Fatalf("agent %s did not become ready after restart: %v", a.Opts.Node, err)
	}
}

// restartNoWait starts the process again without waiting for it to be
// ready: servers restarted together become ready only together.
func (a *Agent) restartNoWait(t testing.TB) {
	t.Helper()
	a.stopProcess()
	a.transport.CloseIdleConnections()
	if err := a.launch(); err != nil {
		t.Fatalf("restarting: %v", err)
	}
}

// Reload lets change edit the options, rewrites the Corefile and sends
// SIGUSR1. It returns the log's length before the signal, for LogSince.
func (a *Agent) Reload(t testing.TB, change func(*Options)) int {
	t.Helper()
	if change != nil {
		change(&a.Opts)
	}
	a.writeCorefile(t)
	off := len(a.Log())
	p := a.process()
	if p == nil || p.exited() {
		t.Fatalf("Reload: agent %s is not running", a.Opts.Node)
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("Reload: SIGUSR1: %v", err)
	}
	return off
}

// Running reports whether the process is still alive.
func (a *Agent) Running() bool {
	p := a.process()
	return p != nil && !p.exited()
}

// Log is everything the agent's processes wrote to stdout and stderr.
func (a *Agent) Log() string {
	b, _ := os.ReadFile(a.LogPath)
	return string(b)
}

// LogSince is the output after offset off.
func (a *Agent) LogSince(off int) string {
	l := a.Log()
	if off > len(l) {
		return ""
	}
	return l[off:]
}

func (a *Agent) cleanup(t *testing.T) {
	a.stopProcess()
	if a.transport != nil {
		a.transport.CloseIdleConnections()
	}
	if t.Failed() {
		t.Logf("---- agent %s Corefile (%s) ----\n%s", a.Opts.Node, a.ConfPath, numbered(a.Corefile()))
		t.Logf("---- agent %s output (%s) ----\n%s---- end of agent %s output ----", a.Opts.Node, a.LogPath, tail(a.Log(), 64<<10), a.Opts.Node)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("[... %d bytes left out ...]\n%s", len(s)-n, s[len(s)-n:])
}

func numbered(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for i := 1; sc.Scan(); i++ {
		fmt.Fprintf(&b, "%3d  %s\n", i, sc.Text())
	}
	return b.String()
}

// ---- waiting ----

// eventually calls f until it returns nil, failing the test with f's last
// error once timeout has passed.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", timeout, err)
		}
		timer := time.NewTimer(interval)
		<-timer.C
		interval = min(interval*2, 250*time.Millisecond)
	}
}

// ---- DNS ----

// question builds a query for name and qtype with RD set, as stub
// resolvers send it, without EDNS0.
func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return m
}

// Exchange sends m to the agent's DNS port over network ("udp" or "tcp").
// Over UDP the whole datagram is read whatever its size, so a server that
// sends more than the client allowed is caught by the caller, not hidden.
func (a *Agent) Exchange(m *dns.Msg, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: dnsTimeout, UDPSize: dns.MaxMsgSize}
	r, _, err := c.Exchange(m, a.DNSAddr)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", network, dns.TypeToString[m.Question[0].Qtype], m.Question[0].Name, err)
	}
	return r, nil
}

// Query asks for name and qtype over UDP and fails the test on a transport
// error.
func (a *Agent) Query(t testing.TB, name string, qtype uint16) *dns.Msg {
	t.Helper()
	return a.QueryNet(t, name, qtype, "udp")
}

// QueryNet is Query over network.
func (a *Agent) QueryNet(t testing.TB, name string, qtype uint16, network string) *dns.Msg {
	t.Helper()
	r, err := a.Exchange(question(name, qtype), network)
	if err != nil {
		t.Fatalf("DNS: %v", err)
	}
	return r
}

// addrsOf returns the A and AAAA addresses in rrs, sorted.
func addrsOf(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

func soaOf(rrs []dns.RR) *dns.SOA {
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SOA); ok {
			return s
		}
	}
	return nil
}

func srvsOf(rrs []dns.RR) []*dns.SRV {
	var out []*dns.SRV
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, s)
		}
	}
	return out
}

func rcode(m *dns.Msg) string { return dns.RcodeToString[m.Rcode] }

// ---- HTTP ----

// httpResult is a plain HTTP response, read whole.
type httpResult struct {
	Status int
	Header http.Header
	Body   string
}

func (r httpResult) String() string {
	return fmt.Sprintf("%d %s: %q", r.Status, http.StatusText(r.Status), strings.TrimSpace(r.Body))
}

// Do sends a plain HTTP request to the agent's API. body may be nil. With
// chunked set the body is sent without a Content-Length.
func (a *Agent) Do(t testing.TB, method, path string, body []byte, chunked bool) httpResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length
		}
	}
	req, err := http.NewRequest(method, "http://"+a.HTTPAddr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return httpResult{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}
