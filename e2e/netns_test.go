package e2e

// A network of hosts for partition tests: each host is a Linux network
// namespace with one veth into a bridge in the root namespace. The bridge
// has an address too, so the test process (in the root namespace) reaches
// every agent's DNS and HTTP over it, whatever is cut between the hosts.
//
// A cut between hosts A and B is a blackhole route to B's address inside A
// and one to A's inside B; healing deletes them. There is no iptables or
// nft here, and a route needs nothing but `ip`. (A locally sent packet that
// meets a blackhole route fails with EINVAL at once: new connections and
// datagrams fail fast, established TCP connections stall, as they do on a
// real partition.) The bridge's own address is never cut.
//
// Namespaces, links and routes are global to the machine: every name
// carries the test process's pid (and a lab number), the subnet is picked
// among unused ones of 10.231.0.0/16, everything is deleted when the test
// ends, pass or fail, and leftovers of a test process that no longer runs
// are deleted before a lab is made. No traffic goes anywhere but the lab's
// addresses.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

const (
	// labPrefix starts the names of everything a lab makes: namespaces
	// are labPrefix-<pid hex>-<lab>-<host>, the bridge bpt<pid hex><lab>,
	// veths vpt<pid hex><lab><host> (link names have at most 15 bytes).
	labPrefix = "beacon-pt"
	// ipTimeout bounds one `ip` command.
	ipTimeout = 10 * time.Second
	// Fixed ports: every host has its own port space.
	nsDNSPort, nsHTTPPort, nsRPCPort, nsSerfLANPort, nsSerfWANPort = 8600, 8500, 8300, 8301, 8302
	// agentAPITimeout bounds every request of an agent's API client in a
	// lab: above the agent's apply timeout (10 s), so a write reports the
	// agent's own error, yet a cut link cannot hang the test.
	agentAPITimeout = 15 * time.Second
)

var labCount atomic.Int32

// netLab is one bridge and its hosts.
type netLab struct {
	t      *testing.T
	tag    string // <pid hex, 6 digits><lab number, 2 hex digits>
	bridge string
	prefix string // "10.231.N."
	gw     string // the bridge's address
	hosts  []*netHost

	mu   sync.Mutex
	cuts map[[2]*netHost]bool // blackhole routes in place: in [0], to [1]
}

// netHost is one namespace.
type netHost struct {
	Name string // the agent's node name
	NS   string
	IP   string
	veth string // the root namespace's end
}

// newNetLab makes a namespace per name on a new bridge, or skips the test,
// saying why, when namespaces cannot be made here (not root, no `ip`,
// `ip netns add` refused).
func newNetLab(t *testing.T, names ...string) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("partition tests need network namespaces, which need root; running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("partition tests need network namespaces, made with the `ip` binary (iproute2): %v", err)
	}
	cleanStaleLabs(t)
	n := labCount.Add(1)
	lab := &netLab{
		t:    t,
		tag:  fmt.Sprintf("%06x%02x", os.Getpid()&0xffffff, n&0xff),
		cuts: map[[2]*netHost]bool{},
	}
	lab.bridge = "bpt" + lab.tag
	t.Cleanup(lab.destroy)

	// The first namespace tells whether namespaces can be made at all.
	for i, name := range names {
		h := &netHost{
			Name: name,
			NS:   fmt.Sprintf("%s-%s-%s-%s", labPrefix, lab.tag[:6], lab.tag[6:], name),
			veth: fmt.Sprintf("vpt%s%x", lab.tag, i),
		}
		if err := ipCmd("netns", "add", h.NS); err != nil {
			if i == 0 {
				t.Skipf("partition tests need network namespaces, and `ip netns add` failed: %v", err)
			}
			t.Fatal(err)
		}
		lab.hosts = append(lab.hosts, h)
	}
	lab.pickSubnet()
	lab.gw = lab.prefix + "1"
	lab.must("link", "add", lab.bridge, "type", "bridge")
	lab.must("addr", "add", lab.gw+"/24", "dev", lab.bridge)
	lab.must("link", "set", lab.bridge, "up")
	for i, h := range lab.hosts {
		h.IP = lab.prefix + strconv.Itoa(11+i)
		peer := fmt.Sprintf("wpt%s%x", lab.tag, i)
		lab.must("link", "add", h.veth, "type", "veth", "peer", "name", peer)
		lab.must("link", "set", peer, "netns", h.NS)
		lab.must("-n", h.NS, "link", "set", peer, "name", "eth0")
		lab.must("-n", h.NS, "addr", "add", h.IP+"/24", "dev", "eth0")
		lab.must("-n", h.NS, "link", "set", "eth0", "up")
		lab.must("-n", h.NS, "link", "set", "lo", "up")
		lab.must("link", "set", h.veth, "master", lab.bridge)
		lab.must("link", "set", h.veth, "up")
	}
	// The bridge forwards as soon as its ports are up, but make sure each
	// host answers before anyone relies on it: a TCP connect to a closed
	// port is refused at once when the path works.
	for _, h := range lab.hosts {
		eventually(t, 10*time.Second, func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(h.IP, "9"), time.Second)
			if err == nil {
				c.Close()
				return nil
			}
			if isRefused(err) {
				return nil
			}
			return fmt.Errorf("reaching %s (%s) over the bridge: %w", h.Name, h.IP, err)
		})
	}
	t.Logf("network lab %s: bridge %s at %s; %s", lab.tag, lab.bridge, lab.gw, lab.describeHosts())
	return lab
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func (lab *netLab) describeHosts() string {
	var parts []string
	for _, h := range lab.hosts {
		parts = append(parts, fmt.Sprintf("%s=%s (netns %s)", h.Name, h.IP, h.NS))
	}
	return strings.Join(parts, ", ")
}

// pickSubnet takes a 10.231.N.0/24 that no interface of the root namespace
// has an address in (another lab, another test process, the machine).
func (lab *netLab) pickSubnet() {
	used := map[int]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		lab.t.Fatalf("listing the root namespace's addresses: %v", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip4 := ipn.IP.To4(); ip4 != nil && ip4[0] == 10 && ip4[1] == 231 {
				used[int(ip4[2])] = true
			}
		}
	}
	start := (os.Getpid()*7 + int(labCount.Load())) % 250
	for i := range 250 {
		n := (start+i)%250 + 1
		if !used[n] {
			lab.prefix = fmt.Sprintf("10.231.%d.", n)
			return
		}
	}
	lab.t.Fatal("no free /24 in 10.231.0.0/16")
}

func (lab *netLab) must(args ...string) {
	lab.t.Helper()
	if err := ipCmd(args...); err != nil {
		lab.t.Fatal(err)
	}
}

// ipCmd runs `ip args…`.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// destroy deletes the namespaces (their veths go with them) and the
// bridge. It runs after the agents' cleanups (registered later, so run
// earlier) stopped the processes.
func (lab *netLab) destroy() {
	for _, h := range lab.hosts {
		if err := ipCmd("netns", "delete", h.NS); err != nil {
			lab.t.Logf("cleanup: %v", err)
		}
		// A veth goes when its peer's namespace does, but not always at
		// once; delete it, not minding that it is gone.
		_ = ipCmd("link", "delete", h.veth)
	}
	if lab.prefix != "" {
		if err := ipCmd("link", "delete", lab.bridge); err != nil {
			lab.t.Logf("cleanup: %v", err)
		}
	}
}

var (
	staleNSRE   = regexp.MustCompile(`^` + labPrefix + `-([0-9a-f]{6})-[0-9a-f]{2}-`)
	staleLinkRE = regexp.MustCompile(`^[bvw]pt([0-9a-f]{6})[0-9a-f]{2}[0-9a-f]?$`)
	staleOnce   sync.Once
)

// cleanStaleLabs deletes namespaces and links that a lab of a test process
// that no longer runs left behind (it was killed before its cleanups).
func cleanStaleLabs(t *testing.T) {
	staleOnce.Do(func() {
		dead := func(pidHex string) bool {
			pid, err := strconv.ParseInt(pidHex, 16, 64)
			if err != nil || int(pid) == os.Getpid()&0xffffff {
				return false
			}
			// Signal 0: ESRCH when no such process. The pid is kept modulo
			// 2^24, wider than any pid_max Linux allows.
			return syscall.Kill(int(pid), 0) == syscall.ESRCH
		}
		if entries, err := os.ReadDir("/run/netns"); err == nil {
			for _, e := range entries {
				if m := staleNSRE.FindStringSubmatch(e.Name()); m != nil && dead(m[1]) {
					t.Logf("deleting namespace %s, left by process %s (hex), which is gone", e.Name(), m[1])
					_ = ipCmd("netns", "delete", e.Name())
				}
			}
		}
		ifaces, err := net.Interfaces()
		if err != nil {
			return
		}
		for _, ifc := range ifaces {
			if m := staleLinkRE.FindStringSubmatch(ifc.Name); m != nil && dead(m[1]) {
				t.Logf("deleting link %s, left by process %s (hex), which is gone", ifc.Name, m[1])
				_ = ipCmd("link", "delete", ifc.Name)
			}
		}
	})
}

// ---- cuts ----

// cut stops all traffic between a and b, both ways.
func (lab *netLab) cut(a, b *netHost) {
	lab.t.Helper()
	lab.mu.Lock()
	defer lab.mu.Unlock()
	for _, p := range [][2]*netHost{{a, b}, {b, a}} {
		if lab.cuts[p] {
			continue
		}
		lab.must("-n", p[0].NS, "route", "add", "blackhole", p[1].IP+"/32")
		lab.cuts[p] = true
	}
}

// heal lets traffic between a and b through again.
func (lab *netLab) heal(a, b *netHost) {
	lab.t.Helper()
	lab.mu.Lock()
	defer lab.mu.Unlock()
	for _, p := range [][2]*netHost{{a, b}, {b, a}} {
		if !lab.cuts[p] {
			continue
		}
		lab.must("-n", p[0].NS, "route", "del", "blackhole", p[1].IP+"/32")
		delete(lab.cuts, p)
	}
}

// isolate cuts h from every other host of the lab (not from the bridge's
// address: the test still reaches it).
func (lab *netLab) isolate(h *netHost) {
	lab.t.Helper()
	for _, o := range lab.hosts {
		if o != h {
			lab.cut(h, o)
		}
	}
}

// healAll deletes every cut.
func (lab *netLab) healAll() {
	lab.t.Helper()
	lab.mu.Lock()
	var pairs [][2]*netHost
	for p := range lab.cuts {
		pairs = append(pairs, p)
	}
	lab.mu.Unlock()
	for _, p := range pairs {
		lab.heal(p[0], p[1])
	}
}

func (lab *netLab) host(name string) *netHost {
	for _, h := range lab.hosts {
		if h.Name == name {
			return h
		}
	}
	lab.t.Fatalf("no host %s in the lab", name)
	return nil
}

// ---- agents in the lab ----

// nsAgent makes (but does not start) the agent of host h, on the fixed
// ports at h's address, whose API client gives up after agentAPITimeout.
func (lab *netLab) nsAgent(h *netHost, opts Options) *Agent {
	t := lab.t
	t.Helper()
	opts.Node, opts.Bind, opts.Netns = h.Name, h.IP, h.NS
	if opts.Datacenter == "" {
		opts.Datacenter = "dc1"
	}
	dir := t.TempDir()
	a := &Agent{Opts: opts, Dir: dir, ConfPath: filepath.Join(dir, "Corefile"), LogPath: filepath.Join(dir, "agent.log")}
	t.Cleanup(func() { a.cleanup(t) })
	a.setPorts(Ports{DNS: nsDNSPort, HTTP: nsHTTPPort, RPC: nsRPCPort, SerfLAN: nsSerfLANPort, SerfWAN: nsSerfWANPort})
	a.Client = apiClient(a, a.transport, agentAPITimeout)
	return a
}

// apiClient is an API client for a with its own timeout.
func apiClient(a *Agent, rt http.RoundTripper, timeout time.Duration) *api.Client {
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr
	cfg.Scheme = "http"
	cfg.Token = ""
	cfg.HttpClient = &http.Client{Transport: rt, Timeout: timeout}
	c, err := api.NewClient(cfg)
	if err != nil {
		panic(fmt.Sprintf("api.NewClient: %v", err)) // only fails on bad TLS settings, which we do not set
	}
	return c
}

// startLabCluster starts a server on each of servers (expecting them all)
// and a client agent on each of clients, every agent joining the servers'
// LAN gossip, and waits until each is ready. clientOpts are the clients'
// extra options.
func (lab *netLab) startLabCluster(servers, clients []*netHost, clientOpts Options) (srv, cli []*Agent) {
	t := lab.t
	t.Helper()
	var join []string
	for _, h := range servers {
		join = append(join, net.JoinHostPort(h.IP, strconv.Itoa(nsSerfLANPort)))
	}
	for _, h := range servers {
		var others []string
		for _, j := range join {
			if !strings.HasPrefix(j, h.IP+":") {
				others = append(others, j)
			}
		}
		srv = append(srv, lab.nsAgent(h, Options{BootstrapExpect: len(servers), Join: others}))
	}
	for _, h := range clients {
		o := clientOpts
		o.Client, o.Join = true, join
		o.Discovery = slices.Clone(clientOpts.Discovery)
		cli = append(cli, lab.nsAgent(h, o))
	}
	all := append(slices.Clone(srv), cli...)
	for _, a := range all {
		a.writeCorefile(t)
		if err := a.launch(); err != nil {
			t.Fatalf("starting %s in %s: %v", a.Opts.Node, a.Opts.Netns, err)
		}
		checkExecd(t, a)
	}
	for _, a := range all {
		if err := a.waitReady(startTimeout); err != nil {
			t.Fatalf("agent %s did not become ready: %v", a.Opts.Node, err)
		}
	}
	return srv, cli
}

// checkExecd makes sure the process the harness signals is beacon itself:
// `ip netns exec` execs the command rather than running it as a child.
func checkExecd(t *testing.T, a *Agent) {
	t.Helper()
	p := a.process()
	eventually(t, 5*time.Second, func() error {
		if p.exited() {
			return nil // waitReady reports it
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.cmd.Process.Pid))
		if err != nil {
			return err
		}
		if filepath.Base(exe) != filepath.Base(beaconBin) {
			return fmt.Errorf("process %d of %s runs %s, not %s (still `ip`?)", p.cmd.Process.Pid, a.Opts.Node, exe, beaconBin)
		}
		return nil
	})
}
