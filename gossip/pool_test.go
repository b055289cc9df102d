package gossip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ---- helpers ----

// testConfig is a pool on a free port of 127.0.0.1 with timings short
// enough for tests (a dead member is declared failed within about a second)
// yet loose enough not to suspect live members of a CPU-starved -race run.
func testConfig(name string, role Role) Config {
	cfg := Config{
		NodeName:   name,
		NodeID:     fmt.Sprintf("00000000-0000-4000-8000-%012x", hash(name)),
		Datacenter: "dc1",
		Role:       role,
		BindAddr:   "127.0.0.1:0",

		ProbeInterval:       200 * time.Millisecond,
		ProbeTimeout:        100 * time.Millisecond,
		GossipInterval:      20 * time.Millisecond,
		PushPullInterval:    2 * time.Second,
		TCPTimeout:          2 * time.Second,
		LeavePropagateDelay: 100 * time.Millisecond,
	}
	if role == RoleServer {
		cfg.RPCAddr = fmt.Sprintf("127.0.0.1:%d", 20000+hash(name)%10000)
		cfg.BootstrapExpect = 2
	}
	return cfg
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func hash(s string) int {
	h := 0
	for _, c := range s {
		h = h*31 + int(c)
	}
	if h < 0 {
		h = -h
	}
	return h % 1000000
}

// logSink sends a test's logs to t.Log (shown on failure or with -v) and
// keeps them for tests that wait on a log line. It stops writing when the
// test ends: memberlist's goroutines may still log after Shutdown returns.
type logSink struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
	done  bool
}

func newLogSink(t *testing.T) *logSink {
	s := &logSink{t: t}
	t.Cleanup(func() { // registered first, so it runs after every Shutdown
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	})
	return s
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		line := strings.TrimRight(string(b), "\n")
		s.lines = append(s.lines, line)
		s.t.Log(line)
	}
	return len(b), nil
}

func (s *logSink) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (s *logSink) logger(name string) hclog.Logger {
	level := hclog.Info
	if l := os.Getenv("GOSSIP_TEST_LOG"); l != "" {
		level = hclog.LevelFromString(l)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: s})
}

// startPool starts a pool and shuts it down when the test ends.
func startPool(t *testing.T, sink *logSink, cfg Config) *Pool {
	t.Helper()
	cfg.Logger = sink.logger(cfg.NodeName)
	p, err := NewLAN(cfg)
	if err != nil {
		t.Fatalf("NewLAN(%s): %v", cfg.NodeName, err)
	}
	t.Cleanup(func() {
		if err := p.Shutdown(); err != nil {
			t.Errorf("shutdown %s: %v", cfg.NodeName, err)
		}
	})
	return p
}

func addrOf(p *Pool) string {
	m := p.LocalMember()
	return net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle polls check until it finds no problem. Gossip is eventually
// consistent, and on a starved machine a live member may be suspected and
// refute it, so the state a test expects is waited for, not sampled.
func settle(t *testing.T, timeout time.Duration, what string, check func() []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problems := check()
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s:\n\t%s", timeout, what, strings.Join(problems, "\n\t"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder drains a pool's events, stamping each with when it arrived.
type recorder struct {
	mu     sync.Mutex
	events []stamped
}

type stamped struct {
	Event
	at time.Time
}

func record(p *Pool) *recorder {
	r := &recorder{}
	go func() { // ends when Shutdown closes the channel
		for e := range p.Events() {
			r.mu.Lock()
			r.events = append(r.events, stamped{e, time.Now()})
			r.mu.Unlock()
		}
	}()
	return r
}

// find returns the first recorded event of type typ for member name.
func (r *recorder) find(typ EventType, name string) (stamped, bool) {
	return r.findSince(time.Time{}, typ, name)
}

// findSince is find among the events that arrived at or after since.
func (r *recorder) findSince(since time.Time, typ EventType, name string) (stamped, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Type == typ && e.Member.Name == name && !e.at.Before(since) {
			return e, true
		}
	}
	return stamped{}, false
}

func member(p *Pool, name string) (Member, bool) {
	for _, m := range p.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

func names(ms []Member) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return strings.Join(s, " ")
}

func aliveCount(p *Pool) int {
	n := 0
	for _, m := range p.Members() {
		if m.Status == StatusAlive {
			n++
		}
	}
	return n
}

// cluster starts pools from cfgs, joins every one to the first, and waits
// until all see all alive. Each pool's events are recorded.
func cluster(t *testing.T, sink *logSink, cfgs ...Config) ([]*Pool, []*recorder) {
	t.Helper()
	var pools []*Pool
	var recs []*recorder
	for i, cfg := range cfgs {
		p := startPool(t, sink, cfg)
		pools = append(pools, p)
		recs = append(recs, record(p))
		if i > 0 {
			n, err := p.Join([]string{addrOf(pools[0])})
			if err != nil || n != 1 {
				t.Fatalf("%s joining %s: %d, %v", cfg.NodeName, cfgs[0].NodeName, n, err)
			}
		}
	}
	waitFor(t, 10*time.Second, "every pool to see every member alive", func() bool {
		for _, p := range pools {
			if aliveCount(p) != len(pools) {
				return false
			}
		}
		return true
	})
	return pools, recs
}

// ---- tests ----

func TestThreePoolsConverge(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	cfgs := []Config{testConfig("s1", RoleServer), testConfig("s2", RoleServer), testConfig("c1", RoleClient)}
	cfgs[1].BootstrapExpect = 0 // a server without bootstrap_expect advertises none
	pools, recs := cluster(t, sink, cfgs...)

	byName := map[string]Config{}
	ports := map[string]uint16{}
	for i, c := range cfgs {
		byName[c.NodeName] = c
		ports[c.NodeName] = pools[i].LocalMember().Port
	}
	settle(t, 10*time.Second, "every pool to see every member as configured", func() []string {
		var problems []string
		bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
		for i, p := range pools {
			ms := p.Members()
			if got := names(ms); got != "c1 s1 s2" {
				bad("%s: members %q", cfgs[i].NodeName, got)
			}
			for _, m := range ms {
				c := byName[m.Name]
				if m.Status != StatusAlive || m.Addr != "127.0.0.1" || m.Port != ports[m.Name] || m.Port == 0 ||
					m.Role != c.Role || m.Datacenter != "dc1" || m.ID != c.NodeID ||
					m.RPCAddr != c.RPCAddr || m.BootstrapExpect != c.BootstrapExpect {
					bad("%s sees %+v; config %+v", cfgs[i].NodeName, m, c)
				}
				wantRole := map[Role]string{RoleServer: "consul", RoleClient: "node"}[c.Role]
				if m.Tags[TagRole] != wantRole || m.Tags[TagDC] != "dc1" || m.Tags[TagVsn] != "2" || m.Tags[TagID] != c.NodeID {
					bad("%s sees tags %v of %s", cfgs[i].NodeName, m.Tags, m.Name)
				}
				_, hasRPC := m.Tags[TagRPCAddr]
				_, hasExpect := m.Tags[TagExpect]
				if hasRPC != (c.Role == RoleServer) || hasExpect != (c.BootstrapExpect > 0) || len(m.Tags) != 4+btoi(hasRPC)+btoi(hasExpect) {
					bad("%s sees tags %v of %s", cfgs[i].NodeName, m.Tags, m.Name)
				}
			}
			if got := names(p.Servers()); got != "s1 s2" {
				bad("%s: servers %q", cfgs[i].NodeName, got)
			}
			if lm := p.LocalMember(); lm.Name != cfgs[i].NodeName || lm.Status != StatusAlive || lm.Port != ports[lm.Name] {
				bad("local member %+v", lm)
			}
		}
		return problems
	})
	// Returned members are copies.
	pools[0].Members()[0].Tags[TagDC] = "changed"
	if m, _ := member(pools[0], "c1"); m.Datacenter != "dc1" || m.Tags[TagDC] != "dc1" {
		t.Error("a caller changed the member table through Members()")
	}
	// Every pool reports a join for every member, itself included.
	for i, r := range recs {
		waitFor(t, 5*time.Second, cfgs[i].NodeName+"'s join events", func() bool {
			for _, c := range cfgs {
				if e, ok := r.find(MemberJoin, c.NodeName); !ok || e.Member.Status != StatusAlive {
					return false
				}
			}
			return true
		})
	}
}

func TestRetryJoinTargetStartsLater(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	port := freePort(t)
	target := "127.0.0.1:" + strconv.Itoa(port)
	joiner := startPool(t, sink, testConfig("joiner", RoleClient))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	result := make(chan error, 1)
	go func() {
		// Our own address is skipped, not counted as a join.
		result <- joiner.RetryJoin(ctx, []string{addrOf(joiner), target}, 50*time.Millisecond)
	}()
	waitFor(t, 10*time.Second, "two failed join attempts", func() bool {
		return sink.count("join attempt failed") >= 2
	})
	select {
	case err := <-result:
		t.Fatalf("RetryJoin returned %v before the target started", err)
	default:
	}

	cfg := testConfig("target", RoleServer)
	cfg.BindAddr = target
	tp := startPool(t, sink, cfg)
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("RetryJoin: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("RetryJoin did not return after the target started")
	}
	waitFor(t, 10*time.Second, "both pools to see each other", func() bool {
		return aliveCount(joiner) == 2 && aliveCount(tp) == 2
	})
	if got := names(joiner.Servers()); got != "target" {
		t.Errorf("servers %q", got)
	}
}

// Every server may be given the same list of host names (a StatefulSet's
// pods): a name of our own is joined like any other, and answers, but
// reaching only ourselves is not a join; RetryJoin goes on until another
// member answers.
func TestRetryJoinOwnHostName(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	port := freePort(t)
	joiner := startPool(t, sink, testConfig("joiner", RoleServer))
	self := "localhost:" + strconv.Itoa(int(joiner.localPort))
	if joiner.isSelf(self) {
		t.Fatal("isSelf resolved a name; this test needs one it does not recognise")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	result := make(chan error, 1)
	go func() {
		result <- joiner.RetryJoin(ctx, []string{self, "localhost:" + strconv.Itoa(port)}, 50*time.Millisecond)
	}()
	waitFor(t, 10*time.Second, "two attempts that reached only ourselves", func() bool {
		return sink.count("only this agent itself answered") >= 2
	})
	select {
	case err := <-result:
		t.Fatalf("RetryJoin returned %v having reached only itself", err)
	default:
	}

	cfg := testConfig("target", RoleServer)
	cfg.BindAddr = "127.0.0.1:" + strconv.Itoa(port)
	tp := startPool(t, sink, cfg)
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("RetryJoin: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("RetryJoin did not return after the target started")
	}
	waitFor(t, 10*time.Second, "both pools to see each other", func() bool {
		return aliveCount(joiner) == 2 && aliveCount(tp) == 2
	})
}

func TestRetryJoinStops(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	p := startPool(t, sink, testConfig("lonely", RoleClient))
	nowhere := "127.0.0.1:" + strconv.Itoa(freePort(t))

	// Only our own address: nobody to join, nothing to wait for.
	if err := p.RetryJoin(context.Background(), []string{addrOf(p)}, time.Millisecond); err != nil {
		t.Errorf("RetryJoin of ourselves: %v", err)
	}
	if err := p.RetryJoin(context.Background(), nil, time.Millisecond); err == nil {
		t.Error("RetryJoin of no addresses succeeded")
	}

	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- p.RetryJoin(ctx, []string{nowhere}, 20*time.Millisecond) }()
	waitFor(t, 10*time.Second, "a failed attempt", func() bool { return sink.count("join attempt failed") >= 1 })
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RetryJoin after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RetryJoin ignored its context")
	}

	go func() { result <- p.RetryJoin(context.Background(), []string{nowhere}, time.Hour) }()
	waitFor(t, 10*time.Second, "a second failed attempt", func() bool { return sink.count("join attempt failed") >= 2 })
	p.Shutdown()
	select {
	case err := <-result:
		if !errors.Is(err, ErrShutdown) {
			t.Errorf("RetryJoin after Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RetryJoin outlived Shutdown")
	}
}

func TestFailureDetected(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	cfgs := []Config{testConfig("s1", RoleServer), testConfig("s2", RoleServer), testConfig("c1", RoleClient)}
	for i := range cfgs {
		// Long enough to see the failure listed, short enough to see it reaped.
		cfgs[i].ReconnectTimeout, cfgs[i].ReapInterval = 4*time.Second, 200*time.Millisecond
	}
	pools, recs := cluster(t, sink, cfgs...)
	s1, s2, c1 := pools[0], pools[1], pools[2]

	killed := time.Now()
	if err := s2.Shutdown(); err != nil { // no Leave: a crash, as far as the others know
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		p, r, name := pools[i], recs[i], cfgs[i].NodeName
		waitFor(t, 10*time.Second, name+" to report s2 failed", func() bool {
			_, ok := r.find(MemberFailed, "s2")
			return ok
		})
		e, _ := r.find(MemberFailed, "s2")
		t.Logf("%s reported s2 failed %v after it was shut down", name, e.at.Sub(killed).Round(time.Millisecond))
		if e.Member.Status != StatusFailed || e.Member.Role != RoleServer || e.Member.RPCAddr != cfgs[1].RPCAddr {
			t.Errorf("%s: failed event %+v", name, e.Member)
		}
		settle(t, 10*time.Second, name+"'s table to show s2 failed", func() []string {
			var problems []string
			if m, _ := member(p, "s2"); m.Status != StatusFailed {
				problems = append(problems, "s2 is "+m.Status.String())
			}
			if got := names(p.Servers()); got != "s1" {
				problems = append(problems, fmt.Sprintf("servers %q", got))
			}
			if got := names(p.Members()); got != "c1 s1 s2" {
				problems = append(problems, fmt.Sprintf("members %q: the failed one must stay listed", got))
			}
			return problems
		})
		// A crash is never reported as a graceful leave: s2 announced none.
		if _, ok := r.find(MemberLeave, "s2"); ok {
			t.Errorf("%s reported a crash as a graceful leave", name)
		}
	}

	// Failed for longer than reconnect_timeout: reaped, reported, and no
	// longer listed.
	for i, p := range []*Pool{s1, c1} {
		r := recs[[]int{0, 2}[i]]
		waitFor(t, 15*time.Second, "s2 to be reaped", func() bool {
			_, reaped := r.find(MemberReap, "s2")
			_, listed := member(p, "s2")
			return reaped && !listed
		})
	}
}

// A member that failed and comes back at the same address is tried again
// and rejoined without anyone joining it: what heals a partition.
func TestReconnectRejoinsAFailedMember(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	cfgs := []Config{testConfig("s1", RoleServer), testConfig("c1", RoleClient)}
	for i := range cfgs {
		cfgs[i].ReconnectInterval = 200 * time.Millisecond
	}
	pools, recs := cluster(t, sink, cfgs...)
	s1, c1 := pools[0], pools[1]
	c1Addr := addrOf(c1)
	if err := c1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "s1 to see c1 failed", func() bool {
		m, _ := member(s1, "c1")
		return m.Status == StatusFailed
	})
	back := time.Now()
	cfg := cfgs[1]
	cfg.BindAddr = c1Addr
	again := startPool(t, sink, cfg) // joins nobody
	waitFor(t, 10*time.Second, "s1 to reconnect to c1", func() bool {
		m, _ := member(s1, "c1")
		_, joined := recs[0].findSince(back, MemberJoin, "c1")
		return m.Status == StatusAlive && joined && aliveCount(again) == 2
	})
	t.Logf("c1 alive again on s1 %v after it came back", time.Since(back).Round(time.Millisecond))
}

// A restarted agent rejoins the members its snapshot names, with no join.
func TestSnapshotRejoins(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	dir := t.TempDir()
	cfgs := []Config{testConfig("s1", RoleServer), testConfig("c1", RoleClient)}
	cfgs[1].SnapshotFile = dir + "/serf/local.snapshot"
	pools, _ := cluster(t, sink, cfgs...)
	s1, c1 := pools[0], pools[1]
	c1Addr := addrOf(c1)
	if err := c1.Shutdown(); err != nil { // not a leave: a leave would not rejoin
		t.Fatal(err)
	}
	cfg := cfgs[1]
	cfg.BindAddr = c1Addr
	again := startPool(t, sink, cfg)
	waitFor(t, 15*time.Second, "c1 to rejoin s1 from its snapshot", func() bool {
		m, _ := member(s1, "c1")
		return aliveCount(again) == 2 && m.Status == StatusAlive
	})
}

func TestGracefulLeave(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	cfgs := []Config{testConfig("s1", RoleServer), testConfig("s2", RoleServer), testConfig("c1", RoleClient)}
	pools, recs := cluster(t, sink, cfgs...)
	s1, c1 := pools[0], pools[2]

	// What happened before (a live member falsely suspected on a starved
	// machine, refuted) is not this test's business.
	leaving := time.Now()
	if err := c1.Leave(); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if st := c1.LocalMember().Status; st != StatusLeft {
		t.Errorf("local status after Leave: %v", st)
	}
	if err := c1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Leave(); !errors.Is(err, ErrShutdown) {
		t.Errorf("Leave after Shutdown: %v", err)
	}
	if _, err := c1.Join([]string{addrOf(s1)}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Join after Shutdown: %v", err)
	}
	check := func() {
		t.Helper()
		for _, i := range []int{0, 1} {
			p, r, name := pools[i], recs[i], cfgs[i].NodeName
			waitFor(t, 10*time.Second, name+" to report c1 left", func() bool {
				_, ok := r.findSince(leaving, MemberLeave, "c1")
				m, _ := member(p, "c1")
				return ok && m.Status == StatusLeft
			})
			if _, ok := r.findSince(leaving, MemberFailed, "c1"); ok {
				t.Errorf("%s reported a graceful leave as a failure", name)
			}
		}
	}
	check()
	// A newcomer converging takes several probe and gossip rounds; by then a
	// left member wrongly probed would have been declared failed.
	c2 := startPool(t, sink, testConfig("c2", RoleClient))
	if _, err := c2.Join([]string{addrOf(s1)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "c2 to converge", func() bool {
		m1, _ := member(s1, "c2")
		m2, _ := member(pools[1], "c2")
		return aliveCount(c2) == 3 && m1.Status == StatusAlive && m2.Status == StatusAlive
	})
	check()
	// The newcomer learns that c1 left, or nothing of it, but never "failed".
	if m, ok := member(c2, "c1"); ok && m.Status != StatusLeft {
		t.Errorf("c2 sees c1 as %v", m.Status)
	}
}

func TestSlowConsumerDoesNotStallGossip(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	slowCfg := testConfig("a", RoleServer)
	slowCfg.EventBuffer = 1
	slow := startPool(t, sink, slowCfg) // its events are never read until the end
	pools := []*Pool{slow}
	for _, name := range []string{"b", "c", "d", "e", "f"} {
		p := startPool(t, sink, testConfig(name, RoleClient))
		record(p)
		if _, err := p.Join([]string{addrOf(slow)}); err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	waitFor(t, 15*time.Second, "six pools to converge", func() bool {
		for _, p := range pools {
			if aliveCount(p) != 6 {
				return false
			}
		}
		return true
	})
	e, f := pools[4], pools[5]
	if err := e.Leave(); err != nil {
		t.Fatal(err)
	}
	e.Shutdown()
	f.Shutdown()
	waitFor(t, 10*time.Second, "the unread pool to see e left and f failed", func() bool {
		me, _ := member(slow, "e")
		mf, _ := member(slow, "f")
		return me.Status == StatusLeft && mf.Status == StatusFailed
	})
	// The backlog is bounded by the number of members, however many events.
	if n := slow.events.len(); n > 6 {
		t.Errorf("%d events pending for 6 members", n)
	}
	// Draining now yields every member's latest state, and not much else:
	// one in the channel, one held by the pump, one per member pending.
	latest := map[string]Event{}
	total := 0
	want := map[string]EventType{"a": MemberJoin, "b": MemberJoin, "c": MemberJoin, "d": MemberJoin, "e": MemberLeave, "f": MemberFailed}
	waitFor(t, 5*time.Second, "the latest state of every member", func() bool {
		for {
			select {
			case ev := <-slow.Events():
				latest[ev.Member.Name] = ev
				total++
				continue
			default:
			}
			break
		}
		for name, typ := range want {
			if latest[name].Type != typ {
				return false
			}
		}
		return true
	})
	// Typically 1+1+6 at most (more only if members flapped meanwhile).
	t.Logf("drained %d events", total)
}

func TestOtherDatacenterRefused(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	p1 := startPool(t, sink, testConfig("dc1-node", RoleServer))
	cfg := testConfig("dc2-node", RoleServer)
	cfg.Datacenter = "dc2"
	p2 := startPool(t, sink, cfg)
	if n, err := p2.Join([]string{addrOf(p1)}); err == nil || n != 0 {
		t.Errorf("dc2 joined dc1's LAN pool: %d, %v", n, err)
	}
	if n, err := p1.Join([]string{addrOf(p2)}); err == nil || n != 0 {
		t.Errorf("dc1 joined dc2's LAN pool: %d, %v", n, err)
	}
	if got := names(p1.Members()); got != "dc1-node" {
		t.Errorf("dc1 pool: %q", got)
	}
	if got := names(p2.Members()); got != "dc2-node" {
		t.Errorf("dc2 pool: %q", got)
	}
}

func TestNewLANRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*Config){
		"no name":         func(c *Config) { c.NodeName = "" },
		"no datacenter":   func(c *Config) { c.Datacenter = "" },
		"no role":         func(c *Config) { c.Role = "" },
		"bad role":        func(c *Config) { c.Role = "voter" },
		"server, no rpc":  func(c *Config) { c.RPCAddr = "" },
		"bad rpc":         func(c *Config) { c.RPCAddr = "10.0.0.1" },
		"no bind":         func(c *Config) { c.BindAddr = "" },
		"bind without ip": func(c *Config) { c.BindAddr = ":8301" },
		"bind hostname":   func(c *Config) { c.BindAddr = "localhost:8301" },
		"bind 0.0.0.0":    func(c *Config) { c.BindAddr = "0.0.0.0:8301" },
		"bind ::":         func(c *Config) { c.BindAddr = "[::]:8301" },
		"negative expect": func(c *Config) { c.BootstrapExpect = -1 },
		"negative probe":  func(c *Config) { c.ProbeInterval = -time.Second },
	} {
		cfg := testConfig("n", RoleServer)
		change(&cfg)
		if p, err := NewLAN(cfg); err == nil {
			p.Shutdown()
			t.Errorf("%s: accepted", name)
		}
	}
}

// Not parallel: it counts the process's goroutines.
func TestShutdownStopsEverything(t *testing.T) {
	sink := newLogSink(t)
	before := runtime.NumGoroutine()

	a := startPool(t, sink, testConfig("a", RoleServer))
	b := startPool(t, sink, testConfig("b", RoleClient))
	if _, err := b.Join([]string{addrOf(a)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "two members", func() bool { return aliveCount(a) == 2 && aliveCount(b) == 2 })

	// The address is taken: NewLAN fails and leaves nothing running.
	cfg := testConfig("c", RoleClient)
	cfg.BindAddr = addrOf(a)
	cfg.Logger = sink.logger("c")
	if p, err := NewLAN(cfg); err == nil {
		p.Shutdown()
		t.Fatal("NewLAN bound a taken address")
	}

	for _, p := range []*Pool{a, b} {
		if err := p.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := p.Shutdown(); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
		drained := make(chan struct{})
		go func() {
			for range p.Events() {
			}
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(5 * time.Second):
			t.Fatal("Events channel not closed by Shutdown")
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left running after Shutdown:\n%s",
				runtime.NumGoroutine()-before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePort finds a port free on 127.0.0.1 for both TCP and UDP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}
