package e2e

// The deploy/ room run for real, without a container runtime: the layout of
// deploy/docker-compose.yml (three servers, two client agents) as processes,
// each in its own network namespace with the fixed ports a container has
// (53, 8300, 8301, 8302, 8500), each from the Corefile deploy/docker-entrypoint.sh
// renders from that agent's variables in the compose file; the host
// resolver's loop guard; the systemd unit through systemd-analyze. The
// deploy package's own tests check the files (the Kubernetes manifests,
// the compose file against the Compose Specification, that the host
// Corefiles are what the entrypoint renders).

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
	"sigs.k8s.io/yaml"
)

func deployDir(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy")
}

func readDeployFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// renderCorefile runs docker-entrypoint.sh render with env (and PATH)
// only, as the image runs it.
func renderCorefile(t *testing.T, env map[string]string) string {
	t.Helper()
	cmd := exec.Command("sh", filepath.Join(deployDir(t), "docker-entrypoint.sh"), "render")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-entrypoint.sh render: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// composeAgents returns the environment of each beacon agent of
// docker-compose.yml (the services with BEACON_MODE), by service name.
func composeAgents(t *testing.T) map[string]map[string]string {
	t.Helper()
	var f struct {
		Services map[string]struct {
			Environment map[string]string `json:"environment"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal([]byte(readDeployFile(t, "docker-compose.yml")), &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	out := map[string]map[string]string{}
	for name, s := range f.Services {
		if s.Environment["BEACON_MODE"] != "" {
			out[name] = s.Environment
		}
	}
	return out
}

// dockerHealthcheck is the image's HEALTHCHECK command and the ENV it runs
// with (the Dockerfile's ENV lines).
func dockerHealthcheck(t *testing.T) (argv, env []string) {
	t.Helper()
	df := strings.ReplaceAll(readDeployFile(t, "Dockerfile"), "\\\n", " ")
	m := regexp.MustCompile(`(?m)^HEALTHCHECK .*?CMD (\[.*\])\s*$`).FindStringSubmatch(df)
	if m == nil || json.Unmarshal([]byte(m[1]), &argv) != nil || len(argv) == 0 || argv[0] != "beacon" {
		t.Fatalf("the Dockerfile has no HEALTHCHECK CMD [\"beacon\", ...]")
	}
	for _, e := range regexp.MustCompile(`(?m)^ENV (\S+=\S+)\s*$`).FindAllStringSubmatch(df, -1) {
		env = append(env, e[1])
	}
	return argv, env
}

// etcFiles gives every host of the lab an /etc/hosts with the names of
// all (how containers find each other by name on a compose network) and an
// /etc/resolv.conf naming only the host itself: `ip netns exec` mounts
// /etc/netns/<namespace>/* over /etc for what it runs, so nothing asks the
// machine's resolver.
func (lab *netLab) etcFiles(t *testing.T, extra map[string]string) {
	t.Helper()
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1 localhost\n")
	for _, h := range lab.hosts {
		fmt.Fprintf(&hosts, "%s %s\n", h.IP, h.Name)
	}
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&hosts, "%s %s\n", extra[name], name)
	}
	// Those of labs whose namespace is gone (a test process killed before
	// its cleanups) go first.
	if entries, err := os.ReadDir("/etc/netns"); err == nil {
		for _, e := range entries {
			if staleNSRE.MatchString(e.Name()) {
				if _, err := os.Stat(filepath.Join("/run/netns", e.Name())); os.IsNotExist(err) {
					_ = os.RemoveAll(filepath.Join("/etc/netns", e.Name()))
				}
			}
		}
	}
	for _, h := range lab.hosts {
		dir := filepath.Join("/etc/netns", h.NS)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		for file, text := range map[string]string{"hosts": hosts.String(), "resolv.conf": "nameserver 127.0.0.1\n"} {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fakeUpstream answers A queries for names from the test process, on the
// lab's bridge address: the network's resolver, as far as the agents know.
// Everything else is NXDOMAIN. It returns its address.
func fakeUpstream(t *testing.T, ip string, names map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if addr, ok := names[strings.ToLower(q.Name)]; ok && q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.ParseIP(addr)})
		} else if !ok {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// startLabAgent starts the agent of host h from corefile on DNS port
// dnsPort, without waiting for it to be ready.
func (lab *netLab) startLabAgent(h *netHost, opts Options, corefile string, dnsPort int) *Agent {
	t := lab.t
	t.Helper()
	a := lab.nsAgent(h, opts)
	a.setPorts(Ports{DNS: dnsPort, HTTP: nsHTTPPort, RPC: nsRPCPort, SerfLAN: nsSerfLANPort, SerfWAN: nsSerfWANPort})
	a.Client = apiClient(a, a.transport, agentAPITimeout)
	a.Opts.Corefile = strings.ReplaceAll(corefile, "/var/lib/beacon", a.dataDir())
	a.writeCorefile(t)
	if err := a.launch(); err != nil {
		t.Fatalf("starting %s: %v", h.Name, err)
	}
	checkExecd(t, a)
	return a
}

// runIn runs argv in h's namespace (argv[0] "beacon" is the binary under
// test) with env added, and returns its exit code and output.
func runIn(t *testing.T, h *netHost, argv, env []string) (int, string) {
	t.Helper()
	args := append([]string{"netns", "exec", h.NS, beaconBin}, argv[1:]...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("ip %s: %v", strings.Join(args, " "), err)
	}
	return 0, string(out)
}

// TestDeployComposeLayout runs docker-compose.yml's agents from the
// Corefiles the image would render for them (the only changes: each
// agent's address is its namespace's, as `hostname -i` gives it in a
// container; its data_dir a temporary directory; the upstream a fake one,
// where a container would have Docker's resolver): the servers find each
// other by name and elect a leader, every agent sees the five, the image's
// health check passes, a service registered with a health check through
// client-1 answers on client-2's port 53, leaves DNS when its check fails,
// a deregistered instance leaves DNS at once, and other names go upstream.
// A sixth host runs deploy/Corefile.resolved (the systemd-resolved setup)
// as a client agent of the same cluster.
func TestDeployComposeLayout(t *testing.T) {
	t.Parallel()
	agents := composeAgents(t)
	var names []string
	for name := range agents {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) != 5 {
		t.Fatalf("docker-compose.yml has %d agents (%v), want 5", len(names), names)
	}
	const resolvedHost = "web-8" // the node name deploy/Corefile.resolved gives
	lab := newNetLab(t, append(slices.Clone(names), resolvedHost)...)
	lab.etcFiles(t, nil)
	upstream := fakeUpstream(t, lab.gw, map[string]string{"outside.example.": "192.0.2.7"})

	byName := map[string]*Agent{}
	var servers, clients []*Agent
	for _, name := range names {
		h := lab.host(name)
		env := map[string]string{}
		for k, v := range agents[name] {
			env[k] = v
		}
		env["BEACON_BIND"] = h.IP                  // `hostname -i` in the container
		env["BEACON_DATA_DIR"] = "/var/lib/beacon" // the volume; startLabAgent makes it a temporary directory
		env["BEACON_UPSTREAM"] = upstream          // Docker's resolver, in a container
		client := env["BEACON_MODE"] == "client"
		a := lab.startLabAgent(h, Options{Client: client}, renderCorefile(t, env), 53)
		byName[name] = a
		if client {
			clients = append(clients, a)
		} else {
			servers = append(servers, a)
		}
	}
	start := time.Now()
	for _, name := range names {
		if err := byName[name].waitReady(startTimeout); err != nil {
			t.Fatalf("agent %s did not become ready: %v", name, err)
		}
	}
	t.Logf("the five agents were ready %v after the last started", time.Since(start).Round(time.Millisecond))
	if len(servers) != 3 || len(clients) != 2 {
		t.Fatalf("%d servers and %d clients, want 3 and 2", len(servers), len(clients))
	}
	c1, c2 := byName["client-1"], byName["client-2"]
	if c1 == nil || c2 == nil {
		t.Fatalf("no client-1 and client-2 among %v", names)
	}

	// Everyone sees everyone; the servers are the Raft peers.
	for _, a := range byName {
		eventually(t, 20*time.Second, func() error {
			ms, err := a.Client.Agent().Members(false)
			if err != nil {
				return err
			}
			var alive []string
			for _, m := range ms {
				if m.Status == 1 {
					alive = append(alive, m.Name)
				}
			}
			sort.Strings(alive)
			if !slices.Equal(alive, names) {
				return fmt.Errorf("%s sees %v alive, want %v", a.Opts.Node, alive, names)
			}
			return nil
		})
	}
	peers, err := c2.Client.Status().Peers()
	if err != nil || len(peers) != 3 {
		t.Errorf("raft peers seen from client-2: %v, %v; want the 3 servers", peers, err)
	}

	// The image's HEALTHCHECK, run where the container would run it.
	argv, hcEnv := dockerHealthcheck(t)
	for _, name := range names {
		if code, out := runIn(t, lab.host(name), argv, hcEnv); code != 0 {
			t.Errorf("the health check %v (env %v) on %s: exit %d: %s", argv, hcEnv, name, code, out)
		}
	}

	// The demo: a service that registers itself through client-1 with a
	// TCP check (client-1 runs it), here a listener of the test's.
	svc, err := net.Listen("tcp", net.JoinHostPort(lab.gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer svc.Close()
	svcPort := svc.Addr().(*net.TCPAddr).Port
	if err := c1.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "redis-1", Name: "redis", Tags: []string{"primary"}, Address: lab.gw, Port: svcPort,
		Check: &api.AgentServiceCheck{Name: "redis port", TCP: svc.Addr().String(), Interval: "1s"},
	}); err != nil {
		t.Fatalf("registering redis-1 through client-1: %v", err)
	}
	other := lab.prefix + "200" // no host has it; nothing is sent there
	if err := c1.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "redis-2", Name: "redis", Address: other, Port: 6379}); err != nil {
		t.Fatalf("registering redis-2 through client-1: %v", err)
	}
	waitForAddrs(t, c2, "redis.service.consul.", dns.TypeA, lab.gw, other)
	r := c2.Query(t, "_redis._primary.service.consul.", dns.TypeSRV)
	if srvs := srvsOf(r.Answer); len(srvs) != 1 || int(srvs[0].Port) != svcPort {
		t.Errorf("SRV _redis._primary.service.consul on client-2: %v", r.Answer)
	}
	for _, rr := range c2.Query(t, "redis.service.consul.", dns.TypeA).Answer {
		if rr.Header().Ttl != 0 {
			t.Errorf("TTL %d on client-2, want the plugin's 0: something caches in front of discovery", rr.Header().Ttl)
		}
	}

	// deploy/Corefile.resolved, its example addresses made the lab's: a
	// client agent of the same cluster, DNS on <its address>:8600.
	rh := lab.host(resolvedHost)
	var join []string
	for _, s := range servers {
		join = append(join, net.JoinHostPort(s.bindIP(), "8301"))
	}
	resolved := strings.NewReplacer(
		"bind 127.0.0.1", "bind "+rh.IP,
		"10.0.1.8", rh.IP,
		"join 10.0.0.1:8301 10.0.0.2:8301 10.0.0.3:8301", "join "+strings.Join(join, " "),
	).Replace(readDeployFile(t, "Corefile.resolved"))
	ra := lab.startLabAgent(rh, Options{Client: true}, resolved, 8600)
	if err := ra.waitReady(startTimeout); err != nil {
		t.Fatalf("the agent of Corefile.resolved did not become ready: %v", err)
	}
	waitForAddrs(t, ra, "redis.service.consul.", dns.TypeA, lab.gw, other)

	// A deregistered instance leaves client-1's DNS at once (the write
	// returns once client-1's replica has it, and nothing caches in front
	// of discovery), and the other agents' within moments.
	if err := c1.Client.Agent().ServiceDeregister("redis-2"); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(c1.Query(t, "redis.service.consul.", dns.TypeA).Answer); !slices.Equal(got, []string{lab.gw}) {
		t.Errorf("client-1's DNS right after redis-2's deregistration: %v, want only [%s]", got, lab.gw)
	}
	waitForAddrs(t, c2, "redis.service.consul.", dns.TypeA, lab.gw)

	// The check fails: redis-1 leaves DNS.
	svc.Close()
	eventually(t, 20*time.Second, func() error {
		if r := c2.Query(t, "redis.service.consul.", dns.TypeA); r.Rcode != dns.RcodeNameError {
			return fmt.Errorf("redis on client-2 after its check failed: %s %v, want NXDOMAIN", rcode(r), r.Answer)
		}
		return nil
	})

	// Names outside beacon's zones go to the upstream (forward, loop,
	// cache in the .:53 block).
	if got := addrsOf(c2.Query(t, "outside.example.", dns.TypeA).Answer); !slices.Equal(got, []string{"192.0.2.7"}) {
		t.Errorf("outside.example through client-2: %v, want the upstream's 192.0.2.7", got)
	}

	// The health check fails when the agent is gone.
	c2.Stop(t)
	if code, out := runIn(t, lab.host("client-2"), argv, hcEnv); code == 0 {
		t.Errorf("the health check passed with client-2's agent stopped: %s", out)
	}
}

// A host resolver whose upstream leads back to itself (the Corefiles'
// forward pointed at beacon, as /etc/resolv.conf would once beacon is the
// host's resolver): the loop plugin sees its probe come back, and the
// agent stops, saying so, rather than letting queries circle.
func TestDeployLoopStopsAResolverThatForwardsToItself(t *testing.T) {
	t.Parallel()
	lab := newNetLab(t, "looped")
	lab.etcFiles(t, nil)
	h := lab.host("looped")
	corefile := renderCorefile(t, map[string]string{"BEACON_MODE": "server", "BEACON_NODE": h.Name, "BEACON_BIND": h.IP,
		"BEACON_DATA_DIR": "/var/lib/beacon", "BEACON_UPSTREAM": "127.0.0.1:53"})
	a := lab.startLabAgent(h, Options{}, corefile, 53)
	p := a.process()
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		t.Fatal("the agent forwarding to itself still runs after 45 s: loop did not stop it")
	}
	if log := a.Log(); !regexp.MustCompile(`Loop \(.*\) detected for zone "\."`).MatchString(log) {
		t.Errorf("the agent stopped (%v) without saying it found a loop:\n%s", p.err, tail(log, 4<<10))
	}
	if p.err == nil {
		t.Error("the agent exited 0 after finding a loop; systemd's Restart=on-failure would not see a failure")
	}
}

// The systemd unit passes systemd-analyze verify (with ExecStart pointed at
// the binary under test: verify needs the command to exist) without a
// single warning, and systemd-analyze security rates its exposure at 2.0
// or less ("OK").
func TestDeploySystemdUnit(t *testing.T) {
	t.Parallel()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skipf("no systemd-analyze (the systemd package; .ci/run installs it): %v", err)
	}
	unit := readDeployFile(t, "systemd/beacon.service")
	const bin = "/usr/local/bin/beacon"
	if !strings.Contains(unit, "ExecStart="+bin+" agent -conf /etc/beacon/Corefile") {
		t.Fatalf("the unit does not run %s agent -conf /etc/beacon/Corefile", bin)
	}
	for _, want := range []string{"User=beacon", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"ProtectSystem=strict", "ReadWritePaths=/var/lib/beacon", "StateDirectory=beacon", "NoNewPrivileges=yes", "ProtectHome=yes",
		"PrivateTmp=yes", "Restart=on-failure", "LimitNOFILE=", "ExecReload=/bin/kill -USR1 $MAINPID"} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("the unit has no %s", want)
		}
	}
	for _, cf := range []string{"Corefile.server", "Corefile.client", "Corefile.resolved"} {
		if !strings.Contains(readDeployFile(t, cf), "data_dir /var/lib/beacon") {
			t.Errorf("%s's data_dir is not the unit's StateDirectory /var/lib/beacon", cf)
		}
	}
	path := filepath.Join(t.TempDir(), "beacon.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, bin, beaconBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", "--threshold=20", "--no-pager", path).CombinedOutput()
	level := regexp.MustCompile(`Overall exposure level for \S+: (\S+)`).FindStringSubmatch(string(out))
	if err != nil || level == nil {
		t.Fatalf("systemd-analyze security: %v (an exposure above 2.0 fails --threshold=20)\n%s", err, out)
	}
	if v, err := strconv.ParseFloat(level[1], 64); err != nil || v > 2.0 {
		t.Errorf("exposure %s: want 2.0 or less", level[1])
	}
	t.Logf("systemd-analyze security: exposure %s", level[1])
}

// TestDeployKubernetesCorefiles runs the Corefiles of the Kubernetes
// ConfigMap as the pods would: three servers and a client agent, each with
// POD_NAME, POD_IP and BEACON_ENCRYPT in its environment (CoreDNS
// substitutes them), the servers' names under the headless Service in
// /etc/hosts (the cluster DNS's job there), DNS on 8600. The servers join
// each other by those names and elect a leader; the kubelet's probes (GET
// /ready on 8181, /health on 8080) pass; the client answers DNS.
func TestDeployKubernetesCorefiles(t *testing.T) {
	t.Parallel()
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(readDeployFile(t, "kubernetes/configmap.yaml")), &cm); err != nil {
		t.Fatal(err)
	}
	serverCF, clientCF := cm.Data["Corefile.server"], cm.Data["Corefile.client"]
	if serverCF == "" || clientCF == "" {
		t.Fatalf("the ConfigMap has no Corefile.server and Corefile.client: %v", cm.Data)
	}
	pods := []string{"beacon-server-0", "beacon-server-1", "beacon-server-2", "beacon-client-x7k2p"}
	lab := newNetLab(t, pods...)
	names := map[string]string{}
	for _, p := range pods[:3] {
		names[p+".beacon-server"] = lab.host(p).IP
	}
	lab.etcFiles(t, names)
	var agents []*Agent
	for _, p := range pods {
		h := lab.host(p)
		cf, client := serverCF, strings.HasPrefix(p, "beacon-client")
		if client {
			cf = clientCF
		}
		env := []string{"POD_NAME=" + p, "POD_IP=" + h.IP, "BEACON_ENCRYPT=pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}
		agents = append(agents, lab.startLabAgent(h, Options{Client: client, Env: env}, cf, 8600))
	}
	for _, a := range agents {
		if err := a.waitReady(startTimeout); err != nil {
			t.Fatalf("pod %s did not become ready: %v", a.Opts.Node, err)
		}
	}
	probe := &http.Client{Timeout: 2 * time.Second}
	for _, a := range agents {
		for _, u := range []string{"http://" + net.JoinHostPort(a.bindIP(), "8181") + "/ready",
			"http://" + net.JoinHostPort(a.bindIP(), "8080") + "/health"} {
			eventually(t, 10*time.Second, func() error {
				resp, err := probe.Get(u)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("GET %s: %s", u, resp.Status)
				}
				return nil
			})
		}
	}
	client := agents[3]
	if err := client.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "web-1", Name: "web", Address: lab.prefix + "201", Port: 80}); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(client.Query(t, "web.service.consul.", dns.TypeA).Answer); !slices.Equal(got, []string{lab.prefix + "201"}) {
		t.Errorf("web on the client pod right after its registration: %v", got)
	}
	waitForAddrs(t, agents[0], "web.service.consul.", dns.TypeA, lab.prefix+"201")
	peers, err := client.Client.Status().Peers()
	if err != nil || len(peers) != 3 {
		t.Errorf("raft peers: %v, %v; want the 3 server pods", peers, err)
	}
}
