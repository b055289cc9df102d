// Command healthbench measures how fast beacon takes failed endpoints out of
// DNS, and that it takes out none that did not fail, on 127.0.0.1 with
// real agent processes: one server and two client agents.
//
//	healthbench -beacon PATH -dir DIR [-rounds 5] [-stress 30s] [-port-base 28800]
//
// It measures, and prints as key=value lines for bench/health.sh:
//   - kill: SIGKILL of a client agent → its service no longer answered by
//     the server's DNS (polled every 5 ms), and → "failed" in
//     /v1/agent/members; the client is restarted between rounds;
//   - leave: PUT /v1/agent/leave on a client → its service gone from DNS;
//   - tcp / http: a TCP check (interval 1s) whose port closes, an HTTP check
//     (interval 1s) that starts answering 500 → the service gone from DNS;
//   - stress: busy loops on every core for -stress while the three agents
//     gossip; every 100 ms the server's members, critical checks and DNS
//     answers are sampled, and every sample showing a healthy agent failed
//     or its service missing counts as a false removal.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

var (
	beaconBin = flag.String("beacon", "", "beacon binary")
	workDir   = flag.String("dir", "", "work directory (data dirs, Corefiles, logs)")
	rounds    = flag.Int("rounds", 5, "rounds of each measurement")
	stressFor = flag.Duration("stress", 30*time.Second, "CPU stress duration")
	portBase  = flag.Int("port-base", 28800, "first of 15 consecutive free ports")
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "healthbench: "+format+"\n", args...)
	os.Exit(1)
}

type agent struct {
	name                     string
	server                   bool
	dns, http, rpc, lan, wan int
	join                     []string
	cmd                      *exec.Cmd
	done                     chan struct{}
}

func (a *agent) dir() string { return filepath.Join(*workDir, a.name) }

func (a *agent) corefile() string {
	role := ""
	if a.server {
		role = "        server\n        bootstrap_expect 1\n"
	}
	join := ""
	if len(a.join) > 0 {
		join = "        join " + strings.Join(a.join, " ") + "\n"
	}
	return fmt.Sprintf(`consul:%d {
    bind 127.0.0.1
    discovery {
        node %s
        data_dir %s
%s        bind 127.0.0.1
        http 127.0.0.1:%d
        rpc 127.0.0.1:%d
        serf_lan 127.0.0.1:%d
        serf_wan 127.0.0.1:%d
%s    }
}
`, a.dns, a.name, filepath.Join(a.dir(), "data"), role, a.http, a.rpc, a.lan, a.wan, join)
}

func (a *agent) start() {
	if err := os.MkdirAll(a.dir(), 0o755); err != nil {
		fatalf("%v", err)
	}
	conf := filepath.Join(a.dir(), "Corefile")
	if err := os.WriteFile(conf, []byte(a.corefile()), 0o644); err != nil {
		fatalf("%v", err)
	}
	logf, err := os.OpenFile(filepath.Join(a.dir(), "beacon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fatalf("%v", err)
	}
	a.cmd = exec.Command(*beaconBin, "agent", "-conf", conf)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		fatalf("starting %s: %v", a.name, err)
	}
	logf.Close()
	a.done = make(chan struct{})
	go func() { a.cmd.Wait(); close(a.done) }()
}

func (a *agent) kill() {
	_ = a.cmd.Process.Kill()
	<-a.done
}

func (a *agent) stop() {
	if a.cmd == nil {
		return
	}
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.kill()
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func (a *agent) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", a.http, path) }

func (a *agent) getJSON(path string, out any) error {
	resp, err := client.Get(a.url(path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (a *agent) put(path string, body any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(http.MethodPut, a.url(path), r)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("PUT %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	return nil
}

// answers is how many A records the agent's DNS gives for name.
func (a *agent) answers(name string) int {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, fmt.Sprintf("127.0.0.1:%d", a.dns))
	if err != nil {
		return -1
	}
	return len(r.Answer)
}

// until polls cond every 5 ms for up to max and returns how long it took.
func until(max time.Duration, what string, cond func() bool) time.Duration {
	start := time.Now()
	for !cond() {
		if time.Since(start) > max {
			fatalf("timed out after %v waiting for %s", max, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

type member struct {
	Name   string
	Status int
}

func (a *agent) memberStatus(name string) int {
	var ms []member
	if err := a.getJSON("/v1/agent/members", &ms); err != nil {
		return -1
	}
	for _, m := range ms {
		if m.Name == name {
			return m.Status
		}
	}
	return 0
}

func (a *agent) ready() bool {
	var leader string
	return a.getJSON("/v1/status/leader", &leader) == nil && leader != ""
}

func register(a *agent, id, addr string, check map[string]any) {
	body := map[string]any{"ID": id, "Name": id, "Address": addr, "Port": 80}
	if check != nil {
		body["Check"] = check
	}
	if err := a.put("/v1/agent/service/register", body); err != nil {
		fatalf("register %s on %s: %v", id, a.name, err)
	}
}

func stats(name string, ds []time.Duration) {
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var sum time.Duration
	parts := make([]string, len(ds))
	for i, d := range ds {
		sum += d
		parts[i] = fmt.Sprint(d.Milliseconds())
	}
	fmt.Printf("%s n=%d min_ms=%d median_ms=%d max_ms=%d mean_ms=%d all_ms=%s\n", name, len(ds),
		sorted[0].Milliseconds(), sorted[len(sorted)/2].Milliseconds(), sorted[len(sorted)-1].Milliseconds(),
		(sum / time.Duration(len(ds))).Milliseconds(), strings.Join(parts, ","))
}

func main() {
	flag.Parse()
	if *beaconBin == "" || *workDir == "" {
		fatalf("-beacon and -dir are required")
	}
	p := *portBase
	next := func() int { p++; return p - 1 }
	mk := func(name string, server bool) *agent {
		return &agent{name: name, server: server, dns: next(), http: next(), rpc: next(), lan: next(), wan: next()}
	}
	s1, c1, c2 := mk("s1", true), mk("c1", false), mk("c2", false)
	join := []string{fmt.Sprintf("127.0.0.1:%d", s1.lan)}
	c1.join, c2.join = join, join
	all := []*agent{s1, c1, c2}
	defer func() {
		for _, a := range all {
			a.stop()
		}
	}()
	for _, a := range all {
		a.start()
	}
	for _, a := range all {
		until(60*time.Second, a.name+" ready", a.ready)
	}

	// --- kill → removal, and → failed in members ---
	var killDNS, killMembers []time.Duration
	for r := 0; r < *rounds; r++ {
		register(c1, "victim", "10.0.5.1", nil)
		until(20*time.Second, "victim in DNS", func() bool { return s1.answers("victim.service.consul.") == 1 })
		until(20*time.Second, "c1 alive", func() bool { return s1.memberStatus("c1") == 1 })
		c1.kill()
		gotDNS := make(chan time.Duration, 1)
		go func() {
			gotDNS <- until(60*time.Second, "victim out of DNS", func() bool { return s1.answers("victim.service.consul.") == 0 })
		}()
		dm := until(60*time.Second, "c1 failed in members", func() bool { return s1.memberStatus("c1") == 4 })
		killDNS = append(killDNS, <-gotDNS)
		killMembers = append(killMembers, dm)
		c1.start()
		until(60*time.Second, "c1 back", func() bool { return c1.ready() && s1.answers("victim.service.consul.") == 1 })
	}
	stats("kill_dns", killDNS)
	stats("kill_members_failed", killMembers)

	// --- TCP and HTTP checks ---
	var tcpTimes, httpTimes []time.Duration
	var code atomic.Int32
	code.Store(200)
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	go http.Serve(hl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(code.Load())) }))
	register(c2, "web", "10.0.6.1", map[string]any{"HTTP": "http://" + hl.Addr().String(), "Interval": "1s", "Timeout": "1s"})
	for r := 0; r < *rounds; r++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fatalf("%v", err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		register(c2, "db", "10.0.7.1", map[string]any{"TCP": ln.Addr().String(), "Interval": "1s", "Timeout": "1s"})
		until(30*time.Second, "db in DNS", func() bool { return s1.answers("db.service.consul.") == 1 })
		ln.Close()
		tcpTimes = append(tcpTimes, until(30*time.Second, "db out of DNS", func() bool { return s1.answers("db.service.consul.") == 0 }))

		until(30*time.Second, "web in DNS", func() bool { return s1.answers("web.service.consul.") == 1 })
		code.Store(500)
		httpTimes = append(httpTimes, until(30*time.Second, "web out of DNS", func() bool { return s1.answers("web.service.consul.") == 0 }))
		code.Store(200)
	}
	stats("tcp_check_dns", tcpTimes)
	stats("http_check_dns", httpTimes)

	// --- CPU stress: false removals ---
	// Only healthy things from here on: the checks left failing above go.
	for _, dereg := range []struct {
		a  *agent
		id string
	}{{c1, "victim"}, {c2, "db"}, {c2, "web"}} {
		if err := dereg.a.put("/v1/agent/service/deregister/"+dereg.id, nil); err != nil {
			fatalf("deregister %s: %v", dereg.id, err)
		}
	}
	until(20*time.Second, "no critical check", func() bool {
		var crit []map[string]any
		return s1.getJSON("/v1/health/state/critical", &crit) == nil && len(crit) == 0
	})
	register(c1, "app-c1", "10.0.8.1", nil)
	register(c2, "app-c2", "10.0.8.2", nil)
	until(20*time.Second, "apps in DNS", func() bool {
		return s1.answers("app-c1.service.consul.") == 1 && s1.answers("app-c2.service.consul.") == 1
	})
	var loops []*exec.Cmd
	for range runtime.NumCPU() {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			fatalf("busy loop: %v", err)
		}
		loops = append(loops, c)
	}
	falseFailed, falseCritical, dnsMisses, samples := 0, 0, 0, 0
	deadline := time.Now().Add(*stressFor)
	tick := time.NewTicker(100 * time.Millisecond)
	for ; time.Now().Before(deadline); <-tick.C {
		samples++
		var ms []member
		if err := s1.getJSON("/v1/agent/members", &ms); err == nil {
			for _, m := range ms {
				if m.Status != 1 {
					falseFailed++
				}
			}
		}
		var crit []map[string]any
		if err := s1.getJSON("/v1/health/state/critical?stale", &crit); err == nil {
			falseCritical += len(crit)
		}
		for _, n := range []string{"app-c1", "app-c2"} {
			if s1.answers(n+".service.consul.") != 1 {
				dnsMisses++
			}
		}
	}
	tick.Stop()
	for _, c := range loops {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	fmt.Printf("stress seconds=%.0f cores=%d samples=%d members_not_alive=%d critical_checks=%d dns_misses=%d\n",
		stressFor.Seconds(), len(loops), samples, falseFailed, falseCritical, dnsMisses)

	// --- graceful leave ---
	var leaveTimes []time.Duration
	// The request returns once the agent has left and waited for its
	// leave to spread; the DNS is watched meanwhile.
	leaveErr := make(chan error, 1)
	go func() { leaveErr <- c2.put("/v1/agent/leave", nil) }()
	leaveTimes = append(leaveTimes, until(30*time.Second, "app-c2 out of DNS", func() bool { return s1.answers("app-c2.service.consul.") == 0 }))
	if err := <-leaveErr; err != nil {
		fatalf("leave: %v", err)
	}
	stats("leave_dns", leaveTimes)
}
