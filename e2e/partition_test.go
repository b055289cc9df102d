package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// TestPartitionsHeal puts three servers and a client agent each in its own
// network namespace (netns_test.go), runs the KV workload of
// TestLinearizableKVUnderLeaderKills against all four, cuts links, heals
// them, and checks what DESIGN.md promises:
//
//   - the history stays linearizable (porcupine, the same model): no write
//     is acknowledged by a node cut off from the quorum, no consistent
//     read is stale, no acknowledged write is lost (also counted directly,
//     and with a ledger of write-once keys);
//   - DNS keeps answering on every agent, the minority included, through
//     the cut and the election (a client with max_stale answers from its
//     replica until max_stale, then SERVFAILs);
//   - no request through a follower waits longer than the request bound
//     plus one election after its leader is cut off;
//   - partitions heal by themselves: within healBound of the network
//     healing, /v1/agent/members on every agent shows every member alive,
//     and every agent's DNS answers every healthy instance again.
//
// Scenarios, each on a fresh lab and cluster: the leader isolated; a bridge
// (the leader and one follower cannot see each other, the third server
// sees both); flapping cuts; the client agent cut from all servers. Each
// prints its figures.
//
// It needs root and the `ip` binary (CI has both): without them it skips,
// saying why.
func TestPartitionsHeal(t *testing.T) {
	t.Parallel()
	requireNetns(t)
	t.Run("leader_isolated", testLeaderIsolated)
	t.Run("bridge", testBridge)
	t.Run("flapping", testFlapping)
	t.Run("client_cut", testClientCut)
}

const (
	// partitionHold is how long a partition is held: longer than gossip's
	// failure detection (about 3 s: probe, indirect probes, suspicion), so
	// each side declares the other failed and healing has work to do.
	partitionHold = 8 * time.Second
	// healBound is how soon after the network heals every member must be
	// alive again on every agent and every healthy instance back in DNS
	// everywhere (the issue "Partitions heal"); healAim is the goal.
	healBound = 10 * time.Second
	healAim   = 5 * time.Second
	// agentApplyTimeout is the agent's bound on a write (applyTimeout in
	// agent/agent.go): the longest a request may wait for its commit.
	agentApplyTimeout = 10 * time.Second
	// oneElection is a generous election: raft's heartbeat timeout (1 s)
	// to twice that before a follower calls it, as long again when a
	// pre-vote is turned down, and the vote itself.
	oneElection = 5 * time.Second
	// followerWaitBound: no request through a follower may wait longer
	// than the request bound plus one election after its leader is cut
	// off.
	followerWaitBound = agentApplyTimeout + oneElection
	// workReqTimeout is the KV workload's request timeout: short, so a
	// worker whose request hangs on a cut-off leader gives up (the write's
	// outcome is then unknown) and goes on, and what the majority does
	// during the partition is in the history.
	workReqTimeout = 5 * time.Second
	// ledgerReqTimeout is the ledger's request timeout: above
	// followerWaitBound, so a request that waits too long is measured,
	// not cut short. The ledger's requests are the ones that measure the
	// worst wait.
	ledgerReqTimeout = followerWaitBound + 5*time.Second
	// partPace is the pause between a worker's operations (it bounds the
	// history porcupine checks; not synchronisation); partErrBackoff the
	// pause after a request that got no definite answer, so a cut-off
	// node does not fill the history with writes of unknown outcome.
	partPace       = 20 * time.Millisecond
	partErrBackoff = 500 * time.Millisecond
	// ledgerPace is the pause between two ledger requests of one writer;
	// ledgerWritersPerAgent write through each agent.
	ledgerPace            = 50 * time.Millisecond
	ledgerWritersPerAgent = 2
	// partWorkersPerAgent workers each send all their operations to one
	// agent, so a worker stuck on a cut-off node does not starve the rest.
	partWorkersPerAgent = 2
	partKeys            = 4
	// partCheckTimeout bounds porcupine's check of one scenario.
	partCheckTimeout = 60 * time.Second
	// dnsProbeInterval and leaderPollInterval are how often every agent's
	// DNS, and every server's idea of the leader, are sampled.
	dnsProbeInterval   = 100 * time.Millisecond
	leaderPollInterval = 100 * time.Millisecond
	// probeTimeout bounds each probe (members, leader) of the test.
	probeTimeout = 2 * time.Second
	// clientMaxStale is the client agent's max_stale in the client-cut
	// scenario. Its replica was up to a stream heartbeat (500 ms) plus its
	// server's own lag old when the link went: it may SERVFAIL from
	// clientMaxStale-staleEarlySlack after the cut, and must from
	// clientMaxStale+staleLateSlack (the probe's interval and a loaded
	// machine's scheduling).
	clientMaxStale  = 3 * time.Second
	staleEarlySlack = time.Second
	staleLateSlack  = 500 * time.Millisecond
	// webName is the service every agent registers one instance of.
	webName = "web.service.consul."
)

// flapCycles are the flapping scenario's cuts: how long each holds and how
// long the network then stays whole; the odd ones are bridges between the
// leader and a follower, the others isolate the leader. All but one are
// shorter than an election (about 2.5 to 3 s here) and than failure
// detection (about 3 s), so the same leader comes back; the long one is
// longer than both, so leadership moves and the flapping goes on around
// the new leader.
var flapCycles = []struct {
	on, off time.Duration
	bridge  bool
}{
	{1500 * time.Millisecond, time.Second, false},
	{700 * time.Millisecond, 500 * time.Millisecond, true},
	{4 * time.Second, 1500 * time.Millisecond, false},
	{time.Second, 700 * time.Millisecond, true},
	{2 * time.Second, time.Second, false},
	{500 * time.Millisecond, 0, true},
}

// requireNetns skips the test, saying why, where network namespaces
// cannot be made.
func requireNetns(t *testing.T) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("partition tests put agents in network namespaces, which needs root; running as uid %d", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("partition tests make network namespaces with `ip` (iproute2), which is not here: %v", err)
	}
	probe := fmt.Sprintf("%s-%06x-probe", labPrefix, os.Getpid()&0xffffff)
	if err := ipCmd("netns", "add", probe); err != nil {
		t.Skipf("partition tests need network namespaces, and `ip netns add` failed: %v", err)
	}
	if err := ipCmd("netns", "delete", probe); err != nil {
		t.Fatalf("deleting the probe namespace: %v", err)
	}
}

// ---- a scenario's cluster and workload ----

type partRun struct {
	t       *testing.T
	lab     *netLab
	servers []*Agent
	client  *Agent
	all     []*Agent
	svc     map[string]string // node → the address of its web instance
	probes  map[*Agent]*api.Client
	h       *linHistory
	keys    []string
	reqs    *reqLog
	led     ledger
	dns     dnsProbe
	leaders leaderWatch

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// newPartRun makes a lab of s1, s2, s3 and c1, starts the agents, gives
// each a web instance, waits until the cluster is whole, and starts the
// workload and the probes.
func newPartRun(t *testing.T, clientOpts Options) *partRun {
	t.Helper()
	lab := newNetLab(t, "s1", "s2", "s3", "c1")
	servers, clients := lab.startLabCluster(lab.hosts[:3], lab.hosts[3:], clientOpts)
	r := &partRun{
		t: t, lab: lab, servers: servers, client: clients[0],
		all:    append(slices.Clone(servers), clients...),
		svc:    map[string]string{},
		probes: map[*Agent]*api.Client{},
		reqs:   newReqLog(),
		stop:   make(chan struct{}),
	}
	for i, a := range r.all {
		r.probes[a] = apiClient(a, a.transport, probeTimeout)
		r.reqs.name(a)
		r.svc[a.Opts.Node] = fmt.Sprintf("198.51.100.%d", 11+i) // TEST-NET-2: only ever an answer, never a destination
		if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: "web-" + a.Opts.Node, Name: "web", Address: r.svc[a.Opts.Node], Port: 80}); err != nil {
			t.Fatalf("registering web on %s: %v", a.Opts.Node, err)
		}
	}
	eventually(t, 30*time.Second, r.whole)

	for i := range partKeys {
		r.keys = append(r.keys, fmt.Sprintf("part/k%d", i))
	}
	r.h = &linHistory{start: time.Now()}
	t.Cleanup(r.stopWork) // also when the test fails early: before the agents stop
	w := 0
	for _, a := range r.all {
		for range partWorkersPerAgent {
			c := newLinClientVia(t, r.h, w, []*Agent{a}, r.keys, workReqTimeout, r.reqs.wrap)
			w++
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer c.close()
				partLoop(c, r.stop)
			}()
		}
		for i := range ledgerWritersPerAgent {
			tr := newTransport()
			lc := apiClient(a, r.reqs.wrap(tr), ledgerReqTimeout)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer tr.CloseIdleConnections()
				r.led.loop(a, fmt.Sprintf("%s-%d", a.Opts.Node, i), lc, r.stop)
			}()
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.dns.loop(a, r.stop)
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.leaders.loop(r, r.stop)
	}()
	r.waitWrites(20, "before the partition")
	return r
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
}

// partLoop is linClient.loop with a pause after a request that got no
// definite answer.
func partLoop(c *linClient, stop <-chan struct{}) {
	timer := time.NewTimer(partPace)
	defer timer.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		wait := partPace
		if c.step(n) != nil {
			wait = partErrBackoff
		}
		timer.Reset(wait)
		select {
		case <-stop:
			return
		case <-timer.C:
		}
	}
}

// stopWork stops the workers and the probes and waits for them (a request
// in flight ends within ledgerReqTimeout).
func (r *partRun) stopWork() {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.wg.Wait()
	})
}

// waitWrites waits until n more writes of the workload are acknowledged.
func (r *partRun) waitWrites(n int64, what string) time.Duration {
	r.t.Helper()
	start := time.Now()
	base := r.h.writesOK.Load()
	eventually(r.t, 30*time.Second, func() error {
		if got := r.h.writesOK.Load() - base; got < n {
			return fmt.Errorf("%d of %d writes acknowledged %s", got, n, what)
		}
		return nil
	})
	return time.Since(start)
}

// hold lets the partition stand until until: holding it for a while IS the
// scenario.
func hold(until time.Time) { time.Sleep(time.Until(until)) }

func (r *partRun) agent(node string) *Agent {
	for _, a := range r.all {
		if a.Opts.Node == node {
			return a
		}
	}
	r.t.Fatalf("no agent %s", node)
	return nil
}

func (r *partRun) others(skip ...*Agent) []*Agent {
	var out []*Agent
	for _, a := range r.servers {
		if !slices.Contains(skip, a) {
			out = append(out, a)
		}
	}
	return out
}

func (r *partRun) wantAddrs() []string {
	var want []string
	for _, v := range r.svc {
		want = append(want, v)
	}
	slices.Sort(want)
	return want
}

var memberStatusNames = map[int]string{0: "absent", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}

// whole is nil when /v1/agent/members on every agent shows every member
// alive (Status 1) and every agent's DNS answers every web instance; else
// it says what is missing where.
func (r *partRun) whole() error {
	want := r.wantAddrs()
	var problems []string
	for _, a := range r.all {
		members, err := r.probes[a].Agent().Members(false)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: members: %v", a.Opts.Node, err))
		} else {
			status := map[string]int{}
			for _, m := range members {
				status[m.Name] = m.Status
			}
			var bad []string
			for _, b := range r.all {
				if st := status[b.Opts.Node]; st != 1 {
					bad = append(bad, fmt.Sprintf("%s %s", b.Opts.Node, memberStatusNames[st]))
				}
			}
			if len(bad) > 0 {
				problems = append(problems, fmt.Sprintf("%s's members show %s", a.Opts.Node, strings.Join(bad, ", ")))
			}
		}
		m, err := a.Exchange(question(webName, dns.TypeA), "udp")
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s's DNS: %v", a.Opts.Node, err))
		case m.Rcode != dns.RcodeSuccess || !slices.Equal(addrsOf(m.Answer), want):
			var missing []string
			for node, ad := range r.svc {
				if !slices.Contains(addrsOf(m.Answer), ad) {
					missing = append(missing, node)
				}
			}
			slices.Sort(missing)
			problems = append(problems, fmt.Sprintf("%s's DNS answers %s %v, without the instances of %v", a.Opts.Node, rcode(m), addrsOf(m.Answer), missing))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// healCheck waits, from the moment the network healed, until the cluster
// is whole again; it fails the test when that takes longer than
// healBound, saying what is still missing. It returns how long it took
// (healBound when it did not happen).
func (r *partRun) healCheck(healedAt time.Time) (took time.Duration, ok bool) {
	r.t.Helper()
	deadline := healedAt.Add(healBound)
	var err error
	for {
		if err = r.whole(); err == nil && time.Since(healedAt) <= healBound {
			took = time.Since(healedAt)
			if took > healAim {
				r.t.Logf("the cluster was whole again %v after the network healed: within the %v bound, above the %v aim", took.Round(time.Millisecond), healBound, healAim)
			}
			return took, true
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling, with a deadline
	}
	r.t.Errorf("partitions heal (DESIGN.md): %v after the network healed, the cluster is not whole again: %v", healBound, err)
	return healBound, false
}

// ---- the end of a scenario ----

// partWindow is a time some nodes were cut off.
type partWindow struct {
	// from: every link of the cut was down; to: the healing began, every
	// link still down; healed: every link was back. The links come back
	// one by one (some ip commands apart), so a request a cut-off node
	// answers after to may be one the healing let through: what was
	// answered "while cut off" ends at to, what must hold during the cut
	// (DNS answered, bounded waits) is checked up to healed.
	from, to, healed time.Time
	cutOff           []string // nodes cut from the quorum (isolated), if any
	leader           string   // the leader when the cut began
}

// partFigures are the figures every scenario has.
type partFigures struct {
	ops                    []porcupine.Operation
	acked, unverified      int
	stale                  int
	lostRegister           int
	ledgerAcked, lostLedg  int
	ledgerReads, staleLedg int
	staleExamples          []string
}

// finish stops the workload, reads every key once more through the
// servers, and checks and returns the figures common to every scenario.
func (r *partRun) finish() partFigures {
	t := r.t
	t.Helper()
	r.stopWork()
	final := newLinClientVia(t, r.h, 1<<20, r.servers, r.keys, workReqTimeout, nil)
	finalIdx := map[string]uint64{}
	for i, key := range r.keys {
		eventually(t, 30*time.Second, func() error {
			return final.get(i%len(r.servers), key, i%2 == 0)
		})
		finalIdx[key] = final.lastRead[key].index
	}
	final.close()
	var ledgerKeys []string
	eventually(t, 30*time.Second, func() error {
		var err error
		ledgerKeys, _, err = r.servers[0].Client.KV().Keys("ledger/", "", &api.QueryOptions{RequireConsistent: true})
		return err
	})

	var f partFigures
	f.ops = r.h.operations()
	f.stale, f.staleExamples = staleReads(f.ops)
	f.acked, f.lostRegister, f.unverified = lostWrites(f.ops, finalIdx)
	have := map[string]bool{}
	for _, k := range ledgerKeys {
		have[k] = true
	}
	for _, e := range r.led.entries() {
		switch {
		case e.read && e.answered:
			f.ledgerReads++
			if !e.found {
				f.staleLedg++
				if len(f.staleExamples) < 5 {
					f.staleExamples = append(f.staleExamples, fmt.Sprintf("    %s on %s at %s did not find the ledger key its writer had had acknowledged",
						e.key, e.node, e.call.Format("15:04:05.000")))
				}
			}
		case !e.read && e.answered:
			f.ledgerAcked++
			if !have[e.key] {
				f.lostLedg++
			}
		}
	}

	st := r.h.stats()
	t.Logf("workload: %d operations on %d keys through %d agents: %d writes acknowledged (%d puts, %d CAS swapped), %d CAS refused, %d reads; "+
		"%d writes with an unknown outcome, %d refused at connect, %d failed reads; ledger: %d writes acknowledged, %d consistent reads answered",
		len(f.ops), len(r.keys), len(r.all), r.h.writesOK.Load(), st.puts, st.casOK, st.casFail, st.reads,
		st.unknown, st.refused, st.readErrs, f.ledgerAcked, f.ledgerReads)
	t.Logf("writes with an unknown outcome, why:%s\nreads that failed, why:%s", countsString(st.unknownWhy), countsString(st.readErrWhy))

	if len(r.h.unexpected) > 0 {
		t.Errorf("unexpected answers:\n%s", strings.Join(r.h.unexpected, "\n"))
	}
	if err := checkIndexesNameValues(f.ops); err != nil {
		t.Errorf("the servers disagree with themselves: %v", err)
	}
	if f.stale+f.staleLedg > 0 {
		t.Errorf("%d stale consistent reads (%d of the workload's, %d of the ledger's), e.g.:\n%s",
			f.stale+f.staleLedg, f.stale, f.staleLedg, strings.Join(f.staleExamples, "\n"))
	}
	if f.lostRegister+f.lostLedg > 0 {
		t.Errorf("%d acknowledged writes lost (%d of the workload's, %d of the ledger's)", f.lostRegister+f.lostLedg, f.lostRegister, f.lostLedg)
	}
	model := linModel()
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, f.ops, partCheckTimeout)
	t.Logf("porcupine: %s in %v", res, time.Since(checkStart).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := writeVisualization(t, model, info)
		if res == porcupine.Illegal {
			t.Errorf("the KV history is NOT linearizable; the visualization is %s\n%s", path, explainIllegal(model, f.ops, info))
		} else {
			t.Errorf("porcupine could not decide within %v whether the history of %d operations is linearizable; the partial visualization is %s",
				partCheckTimeout, len(f.ops), path)
		}
	}
	if n := r.h.writesOK.Load(); n < 50 {
		t.Errorf("%d writes acknowledged, want at least 50: the workload did not run", n)
	}
	return f
}

// writesDuring describes the writes (of the workload and the ledger)
// sent during w and acknowledged before it ended: how many, through which
// agents, and when the first was.
func (r *partRun) writesDuring(w partWindow) string {
	from, to := int64(w.from.Sub(r.h.start)), int64(w.to.Sub(r.h.start))
	first := time.Duration(-1)
	byNode := map[string]int{}
	see := func(node string, ret time.Duration) {
		byNode[node]++
		if first < 0 || ret < first {
			first = ret
		}
	}
	for _, op := range r.h.operations() {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		if in.kind == linGet || out.unknown || (in.kind == linCAS && !out.ok) || op.Call < from || op.Return >= to {
			continue
		}
		see(op.Metadata.(linMeta).server, time.Duration(op.Return-from))
	}
	for _, e := range r.led.entries() {
		if !e.read && e.answered && !e.call.Before(w.from) && e.ret.Before(w.to) {
			see(e.node, e.ret.Sub(w.from))
		}
	}
	var parts []string
	for _, a := range r.all {
		parts = append(parts, fmt.Sprintf("%s %d", a.Opts.Node, byNode[a.Opts.Node]))
	}
	return fmt.Sprintf("writes sent during the partition and acknowledged before it healed: %s; the first acknowledged %s after the cut",
		strings.Join(parts, ", "), durOrNever(first))
}

// answeredBy counts the writes (puts and CAS, swapped or refused, and
// ledger writes) and the consistent reads that node answered, of those
// sent while it was cut off and answered before the cut healed, and tells
// them (each with its call and return times after the cut).
func (r *partRun) answeredBy(node string, wins []partWindow) (writes, reads int, which []string) {
	tell := func(w partWindow, what string, call, ret time.Time) {
		which = append(which, fmt.Sprintf("%s %s: sent %v after the cut, answered %v after it (the cut lasted %v)",
			node, what, call.Sub(w.from).Round(time.Microsecond), ret.Sub(w.from).Round(time.Microsecond), w.to.Sub(w.from).Round(time.Millisecond)))
	}
	for _, w := range wins {
		if !slices.Contains(w.cutOff, node) {
			continue
		}
		from, to := int64(w.from.Sub(r.h.start)), int64(w.to.Sub(r.h.start))
		for _, op := range r.h.operations() {
			m, _ := op.Metadata.(linMeta)
			in, out := op.Input.(linInput), op.Output.(linOutput)
			if m.server != node || out.unknown || op.Call < from || op.Return >= to {
				continue
			}
			if in.kind == linGet {
				reads++
			} else {
				writes++
			}
			tell(w, fmt.Sprintf("%s %s %+v", m.via, in.key, out), r.h.start.Add(time.Duration(op.Call)), r.h.start.Add(time.Duration(op.Return)))
		}
		for _, e := range r.led.entries() {
			if e.node != node || !e.answered || e.call.Before(w.from) || !e.ret.Before(w.to) {
				continue
			}
			if e.read {
				reads++
				tell(w, "ledger consistent read of "+e.key, e.call, e.ret)
			} else {
				writes++
				tell(w, "ledger write of "+e.key, e.call, e.ret)
			}
		}
	}
	return writes, reads, which
}

// staleReads counts the reads that returned a value older than one a write
// acknowledged, or a read answered, before the read was sent. A value's
// ModifyIndex is known from the write that made it or any read of it.
func staleReads(ops []porcupine.Operation) (int, []string) {
	idx := valueIndexes(ops)
	type seen struct {
		ret   int64
		index uint64
	}
	byKey := map[string][]seen{}
	for _, op := range ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		if out.unknown || (in.kind == linCAS && !out.ok) {
			continue
		}
		i := opIndex(in, out, idx)
		if i != 0 {
			byKey[in.key] = append(byKey[in.key], seen{op.Return, i})
		}
	}
	n := 0
	var examples []string
	for _, op := range ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		if in.kind != linGet {
			continue
		}
		got := opIndex(in, out, idx)
		for _, s := range byKey[in.key] {
			if s.ret < op.Call && s.index > got {
				n++
				if len(examples) < 5 {
					m, _ := op.Metadata.(linMeta)
					examples = append(examples, fmt.Sprintf("    %s on %s at %v read index %d, but index %d was known at %v",
						in.key, m.server, time.Duration(op.Call).Round(time.Millisecond), got, s.index, time.Duration(s.ret).Round(time.Millisecond)))
				}
				break
			}
		}
	}
	return n, examples
}

// valueIndexes maps each key=value seen to its ModifyIndex.
func valueIndexes(ops []porcupine.Operation) map[[2]string]uint64 {
	idx := map[[2]string]uint64{}
	for _, op := range ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		switch {
		case in.kind == linGet && out.found && out.index != 0:
			idx[[2]string{in.key, out.value}] = out.index
		case in.kind != linGet && !out.unknown && out.index != 0 && (in.kind == linPut || out.ok):
			idx[[2]string{in.key, in.value}] = out.index
		}
	}
	return idx
}

// opIndex is the ModifyIndex an operation read or wrote, 0 when unknown
// (or, for a read, when the key was absent).
func opIndex(in linInput, out linOutput, idx map[[2]string]uint64) uint64 {
	if in.kind == linGet {
		if !out.found {
			return 0
		}
		return out.index
	}
	if out.index != 0 {
		return out.index
	}
	return idx[[2]string{in.key, in.value}]
}

// lostWrites counts the acknowledged writes, those whose ModifyIndex is
// above the key's final one (lost: the key's history went back), and those
// whose index no answer told (porcupine still checks them).
func lostWrites(ops []porcupine.Operation, final map[string]uint64) (acked, lost, unverified int) {
	idx := valueIndexes(ops)
	for _, op := range ops {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		if in.kind == linGet || out.unknown || (in.kind == linCAS && !out.ok) {
			continue
		}
		acked++
		switch i := opIndex(in, out, idx); {
		case i == 0:
			unverified++
		case i > final[in.key]:
			lost++
		}
	}
	return acked, lost, unverified
}

// worstWait is the longest request through one of nodes that was in
// flight during a window, with the request.
func (r *partRun) worstWait(nodes func(partWindow) []string, wins []partWindow) (time.Duration, string) {
	var worst time.Duration
	var what string
	for _, w := range wins {
		ns := nodes(w)
		for _, e := range r.reqs.all() {
			if !slices.Contains(ns, e.node) || e.end.Before(w.from) || !e.start.Before(w.healed) {
				continue
			}
			if d := e.end.Sub(e.start); d > worst {
				worst, what = d, fmt.Sprintf("%s; sent %v after the cut", e, e.start.Sub(w.from).Round(time.Millisecond))
			}
		}
	}
	return worst, what
}

// followersOf: the servers other than the leader when the cut began and
// than the nodes cut off.
func (r *partRun) followersOf(w partWindow) []string {
	var out []string
	for _, s := range r.servers {
		if n := s.Opts.Node; n != w.leader && !slices.Contains(w.cutOff, n) {
			out = append(out, n)
		}
	}
	return out
}

// checkFollowerWait prints the worst waits and fails the test when one
// through a follower is above followerWaitBound.
func (r *partRun) checkFollowerWait(wins []partWindow) {
	r.t.Helper()
	worst, what := r.worstWait(r.followersOf, wins)
	r.t.Logf("  worst wait of a request through a follower after its leader was cut off: %v (bound %v = apply timeout %v + one election %v; "+
		"the ledger's requests wait up to %v, the KV workload's give up after %v)%s",
		worst.Round(time.Millisecond), followerWaitBound, agentApplyTimeout, oneElection, ledgerReqTimeout, workReqTimeout, orNone(what))
	if worst > followerWaitBound {
		timedOut := ""
		if worst >= ledgerReqTimeout {
			timedOut = fmt.Sprintf(" (the client gave up at %v: the request never ended by itself)", ledgerReqTimeout)
		}
		r.t.Errorf("a request through a follower waited %v after its leader was cut off, above the bound of %v%s: %s",
			worst.Round(time.Millisecond), followerWaitBound, timedOut, what)
	}
	cutOff, whatCut := r.worstWait(func(w partWindow) []string { return w.cutOff }, wins)
	leader, whatLeader := r.worstWait(func(w partWindow) []string {
		if slices.Contains(w.cutOff, w.leader) {
			return nil
		}
		return []string{w.leader}
	}, wins)
	cli, whatCli := r.worstWait(func(partWindow) []string { return []string{r.client.Opts.Node} }, wins)
	r.t.Logf("  worst waits meanwhile: through a cut-off node %v%s; through the leader (when not cut off) %v%s; through the client agent %v%s",
		cutOff.Round(time.Millisecond), orNone(whatCut), leader.Round(time.Millisecond), orNone(whatLeader), cli.Round(time.Millisecond), orNone(whatCli))
}

func orNone(what string) string {
	if what == "" {
		return ""
	}
	return " [" + what + "]"
}

// checkDNSAnswered fails the test when a DNS query to one of agents during
// a window got no NOERROR answer with at least one instance, and returns
// how many were answered of how many.
func (r *partRun) checkDNSAnswered(agents []*Agent, wins []partWindow, what string) (answered, total int) {
	r.t.Helper()
	var bad []string
	for _, a := range agents {
		for _, w := range wins {
			for _, s := range r.dns.between(a.Opts.Node, w.from, w.healed) {
				total++
				if s.ok() {
					answered++
				} else if len(bad) < 5 {
					bad = append(bad, fmt.Sprintf("%s at +%v: %s", a.Opts.Node, s.at.Sub(w.from).Round(time.Millisecond), s))
				}
			}
		}
	}
	if answered < total {
		r.t.Errorf("DNS keeps answering (DESIGN.md): on %s, %d of %d queries got no answer during the partition, e.g. %s",
			what, total-answered, total, strings.Join(bad, "; "))
	}
	return answered, total
}

// leftDNS is how long after from every one of agents stopped answering
// node's web instance (-1 when one never did before to).
func (r *partRun) leftDNS(agents []*Agent, node string, from, to time.Time) time.Duration {
	var worst time.Duration
	for _, a := range agents {
		gone := time.Duration(-1)
		for _, s := range r.dns.between(a.Opts.Node, from, to) {
			if s.err == nil && s.rcode == dns.RcodeSuccess && !slices.Contains(s.addrs, r.svc[node]) {
				gone = s.at.Sub(from)
				break
			}
		}
		if gone < 0 {
			return -1
		}
		worst = max(worst, gone)
	}
	return worst
}

// ---- the scenarios ----

func testLeaderIsolated(t *testing.T) {
	r := newPartRun(t, Options{})
	old := selfLeader(t, r.servers)
	r.lab.isolate(r.lab.host(old.Opts.Node))
	cutAt := time.Now()
	next := leaderOtherThan(t, r.servers, old)
	newLeader := time.Since(cutAt)
	hold(cutAt.Add(partitionHold))
	healing := time.Now()
	r.lab.healAll()
	healedAt := time.Now()
	win := []partWindow{{from: cutAt, to: healing, healed: healedAt, cutOff: []string{old.Opts.Node}, leader: old.Opts.Node}}
	healTook, healed := r.healCheck(healedAt)
	r.waitWrites(10, "after the heal")
	f := r.finish()

	w, reads, which := r.answeredBy(old.Opts.Node, win)
	minAns, minTotal := r.checkDNSAnswered([]*Agent{old}, win, "the minority "+old.Opts.Node)
	r.checkDNSAnswered(r.others(old), win, "the majority")
	left := r.leftDNS(r.others(old), old.Opts.Node, cutAt, healedAt)
	t.Logf("FIGURES leader isolated: %s (the leader) cut off from every other host for %v", old.Opts.Node, healedAt.Sub(cutAt).Round(time.Millisecond))
	t.Logf("  time to a new leader (%s): %v; leaders agreed on by a majority of servers: %s",
		next.Opts.Node, newLeader.Round(time.Millisecond), r.leaders.changes(cutAt, healedAt))
	t.Logf("  %s", r.writesDuring(win[0]))
	r.commonFigures(f, win, w, reads, fmt.Sprintf("%d of %d queries answered on %s", minAns, minTotal, old.Opts.Node), healTook, healed)
	t.Logf("  the isolated node's instance left the majority's DNS %s after the cut", durOrNever(left))
	r.checkFollowerWait(win)
	r.checkCutOff(old.Opts.Node, w, reads, which)
}

func testBridge(t *testing.T) {
	r := newPartRun(t, Options{})
	leader := selfLeader(t, r.servers)
	follower := r.others(leader)[0]
	third := r.others(leader, follower)[0]
	r.lab.cut(r.lab.host(leader.Opts.Node), r.lab.host(follower.Opts.Node))
	cutAt := time.Now()
	hold(cutAt.Add(partitionHold))
	healing := time.Now()
	r.lab.healAll()
	healedAt := time.Now()
	win := []partWindow{{from: cutAt, to: healing, healed: healedAt, leader: leader.Opts.Node}}
	healTook, healed := r.healCheck(healedAt)
	r.waitWrites(10, "after the heal")
	f := r.finish()

	ans, total := r.checkDNSAnswered(r.all, win, "every agent")
	changes := r.leaders.changes(cutAt, healedAt)
	t.Logf("FIGURES bridge: %s (the leader) and %s cannot see each other for %v; %s sees both", leader.Opts.Node, follower.Opts.Node,
		healedAt.Sub(cutAt).Round(time.Millisecond), third.Opts.Node)
	t.Logf("  leaders agreed on by a majority of servers during the cut: %s; time to a new leader: %s",
		changes, durOrNever(r.leaders.firstOther(leader.Opts.Node, cutAt, healedAt)))
	t.Logf("  %s", r.writesDuring(win[0]))
	r.commonFigures(f, win, 0, 0, fmt.Sprintf("no minority; %d of %d queries answered on all agents", ans, total), healTook, healed)
	r.checkFollowerWait(win)
}

func testFlapping(t *testing.T) {
	r := newPartRun(t, Options{})
	var wins []partWindow
	var log []string
	var healedAt time.Time
	for i, c := range flapCycles {
		leader := selfLeader(t, r.servers)
		w := partWindow{leader: leader.Opts.Node}
		if c.bridge {
			f := r.others(leader)[(i/2)%2]
			r.lab.cut(r.lab.host(leader.Opts.Node), r.lab.host(f.Opts.Node))
			log = append(log, fmt.Sprintf("%s|%s %v", leader.Opts.Node, f.Opts.Node, c.on))
		} else {
			r.lab.isolate(r.lab.host(leader.Opts.Node))
			w.cutOff = []string{leader.Opts.Node}
			log = append(log, fmt.Sprintf("%s alone %v", leader.Opts.Node, c.on))
		}
		w.from = time.Now()
		hold(w.from.Add(c.on))
		w.to = time.Now()
		r.lab.healAll()
		healedAt = time.Now()
		w.healed = healedAt
		wins = append(wins, w)
		hold(healedAt.Add(c.off))
	}
	lastHeal := healedAt
	healTook, healed := r.healCheck(lastHeal)
	r.waitWrites(10, "after the last heal")
	f := r.finish()

	var w, reads int
	var which []string
	var minority []*Agent
	for _, win := range wins {
		for _, n := range win.cutOff {
			if a := r.agent(n); !slices.Contains(minority, a) {
				minority = append(minority, a)
			}
		}
	}
	for _, a := range minority {
		ww, rr, wh := r.answeredBy(a.Opts.Node, wins)
		w, reads, which = w+ww, rr+reads, append(which, wh...)
	}
	ans, total := r.checkDNSAnswered(r.all, wins, "every agent")
	t.Logf("FIGURES flapping: %d cuts over %v: %s", len(wins), lastHeal.Sub(wins[0].from).Round(time.Millisecond), strings.Join(log, ", "))
	var perCut []string
	for i, w := range wins {
		until := lastHeal.Add(healBound)
		if i+1 < len(wins) {
			until = wins[i+1].from
		}
		perCut = append(perCut, fmt.Sprintf("%d: %s", i+1, durOrNever(r.leaders.firstOther(w.leader, w.from, until))))
	}
	t.Logf("  time to a new leader, per cut (before the next one): %s; leaders agreed on by a majority of servers: %s",
		strings.Join(perCut, ", "), r.leaders.changes(wins[0].from, lastHeal))
	r.commonFigures(f, wins, w, reads, fmt.Sprintf("%d of %d queries answered on all agents, minorities included", ans, total), healTook, healed)
	r.checkFollowerWait(wins)
	r.checkCutOff("the isolated leaders", w, reads, which)
}

func testClientCut(t *testing.T) {
	r := newPartRun(t, Options{Discovery: []string{fmt.Sprintf("max_stale %v", clientMaxStale)}})
	c := r.client
	before := addrsOf(c.Query(t, webName, dns.TypeA).Answer)
	leader := selfLeader(t, r.servers)
	for _, s := range r.servers {
		r.lab.cut(r.lab.host(c.Opts.Node), r.lab.host(s.Opts.Node))
	}
	cutAt := time.Now()
	hold(cutAt.Add(partitionHold))
	// The links come back one by one while healAll runs: the client's DNS
	// is judged on what it answered before the first did.
	healStart := time.Now()
	r.lab.healAll()
	healedAt := time.Now()
	win := []partWindow{{from: cutAt, to: healStart, healed: healedAt, cutOff: []string{c.Opts.Node}, leader: leader.Opts.Node}}
	healTook, healed := r.healCheck(healedAt)
	r.waitWrites(10, "after the heal")
	f := r.finish()

	// The client's DNS: its replica's answer until max_stale, then SERVFAIL.
	answerUntil := cutAt.Add(clientMaxStale - staleEarlySlack)
	failFrom := cutAt.Add(clientMaxStale + staleLateSlack)
	answered, early, failed, late := 0, 0, 0, 0
	firstFail := time.Duration(-1)
	var bad []string
	for _, s := range r.dns.between(c.Opts.Node, cutAt, healStart) {
		if s.err == nil && s.rcode == dns.RcodeServerFailure && firstFail < 0 {
			firstFail = s.at.Sub(cutAt)
		}
		if s.ok() {
			answered++
		}
		switch {
		case s.at.Before(answerUntil):
			early++
			if !s.ok() || !slices.Equal(s.addrs, before) {
				bad = append(bad, fmt.Sprintf("at +%v (before max_stale): %s, want NOERROR %v", s.at.Sub(cutAt).Round(time.Millisecond), s, before))
			}
		case !s.at.Before(failFrom):
			late++
			if s.err != nil || s.rcode != dns.RcodeServerFailure {
				bad = append(bad, fmt.Sprintf("at +%v (after max_stale): %s, want SERVFAIL", s.at.Sub(cutAt).Round(time.Millisecond), s))
			} else {
				failed++
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("the cut-off client's DNS must answer from its replica within max_stale (%v), then SERVFAIL; %d queries did not:\n    %s",
			clientMaxStale, len(bad), strings.Join(bad[:min(len(bad), 8)], "\n    "))
	}
	if early == 0 || late == 0 {
		t.Errorf("the DNS probe of the client ran %d times before max_stale and %d after: too few to tell", early, late)
	}
	r.checkDNSAnswered(r.servers, win, "the servers")
	w, reads, which := r.answeredBy(c.Opts.Node, win)
	t.Logf("FIGURES client cut: %s cut from every server for %v (max_stale %v)", c.Opts.Node, healedAt.Sub(cutAt).Round(time.Millisecond), clientMaxStale)
	t.Logf("  time to a new leader: none needed (leaders agreed on: %s)", r.leaders.changes(cutAt, healedAt))
	t.Logf("  %s", r.writesDuring(win[0]))
	r.commonFigures(f, win, w, reads, fmt.Sprintf("%s answered %d queries from its replica, the first SERVFAIL %s after the cut; %d of %d queries after max_stale+%v were SERVFAIL",
		c.Opts.Node, answered, durOrNever(firstFail), failed, late, staleLateSlack), healTook, healed)
	t.Logf("  the client's instance left the servers' DNS %s after the cut", durOrNever(r.leftDNS(r.servers, c.Opts.Node, cutAt, healedAt)))
	r.checkFollowerWait(win)
	r.checkCutOff(c.Opts.Node, w, reads, which)
}

// commonFigures prints the figures every scenario has.
func (r *partRun) commonFigures(f partFigures, wins []partWindow, cutWrites, cutReads int, dnsMinority string, healTook time.Duration, healed bool) {
	r.t.Helper()
	isolated := "n/a (nobody is cut from the quorum)"
	for _, w := range wins {
		if len(w.cutOff) > 0 {
			isolated = fmt.Sprintf("%d (consistent reads they answered: %d)", cutWrites, cutReads)
			break
		}
	}
	r.t.Logf("  writes acknowledged by the isolated node: %s", isolated)
	r.t.Logf("  stale consistent reads: %d (of the workload's reads %d, of the ledger's %d of %d)", f.stale+f.staleLedg, f.stale, f.staleLedg, f.ledgerReads)
	r.t.Logf("  lost acknowledged writes: %d (of %d acknowledged writes of the workload, %d of them with an index no answer told; and of %d acknowledged ledger writes, %d lost)",
		f.lostRegister+f.lostLedg, f.acked, f.unverified, f.ledgerAcked, f.lostLedg)
	r.t.Logf("  DNS answers on the minority: %s", dnsMinority)
	if healed {
		r.t.Logf("  heal: every member alive and every healthy instance back in DNS on every agent %v after the network healed (bound %v, aim %v)",
			healTook.Round(time.Millisecond), healBound, healAim)
	} else {
		r.t.Logf("  heal: NOT whole %v after the network healed (bound %v, aim %v)", healBound, healBound, healAim)
	}
}

// checkCutOff fails the test when a node cut from the quorum acknowledged a
// write or answered a consistent read while cut off.
func (r *partRun) checkCutOff(who string, writes, reads int, which []string) {
	r.t.Helper()
	if writes+reads > 0 {
		r.t.Logf("answered while cut off:\n    %s", strings.Join(which, "\n    "))
	}
	if writes > 0 {
		r.t.Errorf("%s acknowledged %d writes while cut off from the quorum", who, writes)
	}
	if reads > 0 {
		r.t.Errorf("%s answered %d consistent reads while cut off from the quorum", who, reads)
	}
}

func durOrNever(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

// ---- recorders ----

// reqLog times every HTTP request of the workload.
type reqLog struct {
	mu      sync.Mutex
	byHost  map[string]string // host:port → node
	entries []reqEntry
}

type reqEntry struct {
	node, what string
	start, end time.Time
	outcome    string
}

func (e reqEntry) String() string {
	return fmt.Sprintf("%s %s at %s: %v, %s", e.node, e.what, e.start.Format("15:04:05.000"), e.end.Sub(e.start).Round(time.Millisecond), e.outcome)
}

func newReqLog() *reqLog { return &reqLog{byHost: map[string]string{}} }

func (l *reqLog) name(a *Agent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byHost[a.HTTPAddr] = a.Opts.Node
}

func (l *reqLog) wrap(rt http.RoundTripper) http.RoundTripper { return timedRT{rt, l} }

func (l *reqLog) all() []reqEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

type timedRT struct {
	rt  http.RoundTripper
	log *reqLog
}

func (x timedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := x.rt.RoundTrip(req)
	e := reqEntry{what: req.Method + " " + req.URL.Path, start: start, end: time.Now()}
	if q := req.URL.RawQuery; q != "" {
		e.what += "?" + q
	}
	if err != nil {
		e.outcome = errKind(err)
	} else {
		e.outcome = resp.Status
	}
	x.log.mu.Lock()
	e.node = x.log.byHost[req.URL.Host]
	x.log.entries = append(x.log.entries, e)
	x.log.mu.Unlock()
	return resp, err
}

// ledger writes keys once each, through every agent, and reads each one
// back with a consistent read (through the same agent) once its write is
// acknowledged: the read must find it, and after the heal every key whose
// write was acknowledged must be there. Its requests wait up to
// ledgerReqTimeout: they measure how long a request may hang.
type ledger struct {
	mu  sync.Mutex
	all []ledgerEntry
}

type ledgerEntry struct {
	node, key string
	read      bool // a consistent read of key, else its write
	call, ret time.Time
	answered  bool // the write acknowledged; the read answered
	found     bool // the read found the key
}

func (l *ledger) loop(a *Agent, writer string, c *api.Client, stop <-chan struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	add := func(e ledgerEntry) {
		l.mu.Lock()
		l.all = append(l.all, e)
		l.mu.Unlock()
	}
	for seq := 1; ; seq++ {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		e := ledgerEntry{node: a.Opts.Node, key: fmt.Sprintf("ledger/%s-%d", writer, seq), call: time.Now()}
		_, err := c.KV().Put(&api.KVPair{Key: e.key, Value: []byte(writer)}, nil)
		e.ret, e.answered = time.Now(), err == nil
		add(e)
		if err == nil {
			r := ledgerEntry{node: a.Opts.Node, key: e.key, read: true, call: time.Now()}
			var p *api.KVPair
			p, _, err = c.KV().Get(e.key, &api.QueryOptions{RequireConsistent: true})
			r.ret, r.answered, r.found = time.Now(), err == nil, p != nil
			add(r)
		}
		wait := ledgerPace
		if err != nil {
			wait = partErrBackoff
		}
		timer.Reset(wait)
	}
}

func (l *ledger) entries() []ledgerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// dnsProbe asks every agent for the web instances, over and over.
type dnsProbe struct {
	mu      sync.Mutex
	samples map[string][]dnsSample
}

type dnsSample struct {
	at    time.Time
	rcode int
	addrs []string
	err   error
}

// ok: NOERROR with at least one instance.
func (s dnsSample) ok() bool { return s.err == nil && s.rcode == dns.RcodeSuccess && len(s.addrs) > 0 }

func (s dnsSample) String() string {
	if s.err != nil {
		return s.err.Error()
	}
	return fmt.Sprintf("%s %v", dns.RcodeToString[s.rcode], s.addrs)
}

func (p *dnsProbe) loop(a *Agent, stop <-chan struct{}) {
	tick := time.NewTicker(dnsProbeInterval)
	defer tick.Stop()
	for {
		s := dnsSample{at: time.Now()}
		m, err := a.Exchange(question(webName, dns.TypeA), "udp")
		if err != nil {
			s.err = err
		} else {
			s.rcode, s.addrs = m.Rcode, addrsOf(m.Answer)
		}
		p.mu.Lock()
		if p.samples == nil {
			p.samples = map[string][]dnsSample{}
		}
		p.samples[a.Opts.Node] = append(p.samples[a.Opts.Node], s)
		p.mu.Unlock()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

func (p *dnsProbe) between(node string, from, to time.Time) []dnsSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []dnsSample
	for _, s := range p.samples[node] {
		if !s.at.Before(from) && s.at.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// leaderWatch asks every server, over and over, whom it takes for the
// leader.
type leaderWatch struct {
	mu     sync.Mutex
	rounds []leaderRound
}

type leaderRound struct {
	at     time.Time
	agreed string // the leader a majority of servers name, "" when none
}

func (lw *leaderWatch) loop(r *partRun, stop <-chan struct{}) {
	byAddr := map[string]string{}
	for _, s := range r.servers {
		byAddr[s.RPCAddr] = s.Opts.Node
	}
	tick := time.NewTicker(leaderPollInterval)
	defer tick.Stop()
	for {
		round := leaderRound{at: time.Now()}
		votes := map[string]int{}
		for _, s := range r.servers {
			if addr, err := r.probes[s].Status().Leader(); err == nil && addr != "" {
				votes[byAddr[addr]]++
			}
		}
		for n, v := range votes {
			if v > len(r.servers)/2 {
				round.agreed = n
			}
		}
		lw.mu.Lock()
		lw.rounds = append(lw.rounds, round)
		lw.mu.Unlock()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// changes describes the agreed leaders between from and to: each with the
// time it was first seen, from the last one before from.
func (lw *leaderWatch) changes(from, to time.Time) string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	var parts []string
	prev := "?"
	for _, rd := range lw.rounds {
		if rd.at.After(to) {
			break
		}
		if rd.agreed == prev {
			continue
		}
		prev = rd.agreed
		if rd.at.Before(from) {
			parts = []string{prev + " (before the cut)"}
			continue
		}
		name := prev
		if name == "" {
			name = "none"
		}
		parts = append(parts, fmt.Sprintf("%s at +%v", name, rd.at.Sub(from).Round(time.Millisecond)))
	}
	return strings.Join(parts, " → ")
}

// firstOther is how long after from a majority first agreed on a leader
// other than old, -1 when it did not before to.
func (lw *leaderWatch) firstOther(old string, from, to time.Time) time.Duration {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, rd := range lw.rounds {
		if !rd.at.Before(from) && rd.at.Before(to) && rd.agreed != "" && rd.agreed != old {
			return rd.at.Sub(from)
		}
	}
	return -1
}
