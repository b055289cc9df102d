package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// leaderOf returns the server of agents that leads, per /v1/status/leader.
func leaderOf(t *testing.T, agents []*Agent) *Agent {
	t.Helper()
	var leader *Agent
	eventually(t, 15*time.Second, func() error {
		for _, a := range agents {
			if !a.Running() {
				continue
			}
			addr, err := a.Client.Status().Leader()
			if err != nil || addr == "" {
				continue
			}
			for _, b := range agents {
				if b.RPCAddr == addr && b.Running() {
					leader = b
					return nil
				}
			}
		}
		return fmt.Errorf("no running server is the leader")
	})
	return leader
}

func TestClusterServiceAnsweredByEveryServer(t *testing.T) {
	t.Parallel()
	agents := StartCluster(t, 3)

	peers, err := agents[0].Client.Status().Peers()
	if err != nil || len(peers) != 3 {
		t.Fatalf("peers = %v, %v; want the 3 servers", peers, err)
	}
	// Register through a follower: the write is forwarded to the leader.
	leader := leaderOf(t, agents)
	var follower *Agent
	for _, a := range agents {
		if a != leader {
			follower = a
			break
		}
	}
	if err := follower.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379}); err != nil {
		t.Fatalf("register on follower %s: %v", follower.Opts.Node, err)
	}
	// A linearizable read on any server sees it at once.
	for _, a := range agents {
		svcs, _, err := a.Client.Catalog().Service("redis", "", &api.QueryOptions{RequireConsistent: true})
		if err != nil || len(svcs) != 1 {
			t.Errorf("consistent read on %s = %v, %v; want the instance", a.Opts.Node, svcs, err)
		}
	}
	// Every server's DNS answers it from its own replica.
	for _, a := range agents {
		eventually(t, 5*time.Second, func() error {
			r := a.Query(t, "redis.service.consul.", dns.TypeA)
			if got := addrsOf(r.Answer); !slices.Equal(got, []string{"10.0.0.5"}) {
				return fmt.Errorf("%s answers %s %v", a.Opts.Node, rcode(r), got)
			}
			return nil
		})
	}
}

func TestClusterLeaderKilledNothingAcknowledgedLost(t *testing.T) {
	t.Parallel()
	agents := StartCluster(t, 3)
	client := StartClient(t, "c1", agents)
	leader := leaderOf(t, agents)

	// One writer per agent (the three servers and the client agent) keeps
	// registering unique services and writing unique KV keys, in turn,
	// while the leader is killed. A write counts as acknowledged only on a
	// 200; failed writes may or may not have committed and are not checked.
	var (
		mu        sync.Mutex
		acked     []string
		failures  int
		killedAt  time.Time
		firstPost time.Duration // first write sent after the kill and acknowledged
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, a := range append([]*Agent{client}, agents...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				mu.Lock()
				sentAfterKill := !killedAt.IsZero()
				mu.Unlock()
				var err error
				if i%2 == 0 {
					_, err = a.Client.Catalog().Register(&api.CatalogRegistration{
						Node: "ext-" + name, Address: "10.1.0.1",
						Service: &api.AgentService{ID: name, Service: name, Port: 80}}, nil)
				} else {
					name = "kv/" + name
					_, err = a.Client.KV().Put(&api.KVPair{Key: name, Value: []byte(name)}, nil)
				}
				mu.Lock()
				if err == nil {
					acked = append(acked, name)
					if sentAfterKill && firstPost == 0 {
						firstPost = time.Since(killedAt)
					}
				} else {
					failures++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // the killed server refuses at once: do not spin
				}
			}
		}()
	}
	countAcked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	eventually(t, 10*time.Second, func() error {
		if n := countAcked(); n < 40 {
			return fmt.Errorf("%d writes acknowledged so far", n)
		}
		return nil
	})
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	leader.Kill(t)
	before := countAcked()
	// Writes carry on through the survivors once a new leader is there.
	eventually(t, 20*time.Second, func() error {
		if n := countAcked(); n < before+40 {
			return fmt.Errorf("%d writes acknowledged since the kill", n-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("leader %s killed under load: first write sent after the kill acknowledged %v later; %d writes acknowledged, %d failed",
		leader.Opts.Node, firstPost.Round(time.Millisecond), len(acked), failures)

	checkAll := func(a *Agent, opts *api.QueryOptions) error {
		services, _, err := a.Client.Catalog().Services(opts)
		if err != nil {
			return err
		}
		keys, _, err := a.Client.KV().Keys("kv/", "", opts)
		if err != nil {
			return err
		}
		var missing []string
		for _, name := range acked {
			if strings.HasPrefix(name, "kv/") {
				if !slices.Contains(keys, name) {
					missing = append(missing, name)
				}
			} else if _, ok := services[name]; !ok {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s misses %d acknowledged writes: %v", a.Opts.Node, len(missing), missing)
		}
		return nil
	}
	for _, a := range append([]*Agent{client}, agents...) {
		if a == leader {
			continue
		}
		if err := checkAll(a, &api.QueryOptions{RequireConsistent: true}); err != nil {
			t.Errorf("after failover: %v", err)
		}
	}

	// The killed server restarts and catches up on its own replica.
	leader.Restart(t)
	eventually(t, 15*time.Second, func() error { return checkAll(leader, &api.QueryOptions{AllowStale: true}) })
}

func TestClusterFiveServersQuorumLoss(t *testing.T) {
	t.Parallel()
	agents := StartCluster(t, 5)
	register := func(a *Agent, name string) error {
		_, err := a.Client.Catalog().Register(&api.CatalogRegistration{
			Node: "ext-" + name, Address: "10.3.0.1",
			Service: &api.AgentService{ID: name, Service: name, Port: 80}}, nil)
		return err
	}
	if err := register(agents[0], "web"); err != nil {
		t.Fatal(err)
	}
	// Two of five down, the leader among them: the rest elect a leader and
	// take writes.
	leader := leaderOf(t, agents)
	down := []*Agent{leader}
	for _, a := range agents {
		if a != leader && len(down) < 2 {
			down = append(down, a)
		}
	}
	for _, a := range down {
		a.Kill(t)
	}
	var up []*Agent
	for _, a := range agents {
		if a.Running() {
			up = append(up, a)
		}
	}
	eventually(t, 20*time.Second, func() error { return register(up[0], "after-two-down") })
	// Followers apply an entry once they learn it is committed: wait until
	// every survivor answers it before taking the quorum away.
	for _, a := range up {
		eventually(t, 5*time.Second, func() error {
			r := a.Query(t, "after-two-down.service.consul.", dns.TypeA)
			if len(r.Answer) == 0 {
				return fmt.Errorf("%s does not answer after-two-down yet: %s", a.Opts.Node, rcode(r))
			}
			return nil
		})
	}

	// Three of five down: no quorum. A write fails with a clear error
	// within the request timeout rather than hanging; DNS keeps answering
	// from the survivors' replicas.
	up[0].Kill(t)
	survivors := up[1:]
	start := time.Now()
	err := register(survivors[0], "no-quorum")
	took := time.Since(start)
	if err == nil {
		t.Fatal("a write without a quorum succeeded")
	}
	if took > 15*time.Second {
		t.Errorf("the write without a quorum took %v to fail", took)
	}
	// Consul's two answers: "No cluster leader" once the leader has
	// stepped down; "leadership lost while committing log" for a write the
	// leader took just before it found its quorum gone — a write whose
	// outcome is unknown (a later leader may still commit it), which is
	// why it is not retried.
	if msg := err.Error(); !strings.Contains(msg, "No cluster leader") && !strings.Contains(msg, "leadership lost while committing log") {
		t.Errorf("the write without a quorum failed with %q, want Consul's \"No cluster leader\" or \"leadership lost while committing log\"", err)
	}
	t.Logf("write without quorum failed after %v: %v", took.Round(time.Millisecond), err)
	for _, a := range survivors {
		r := a.Query(t, "after-two-down.service.consul.", dns.TypeA)
		if got := addrsOf(r.Answer); !slices.Equal(got, []string{"10.3.0.1"}) {
			t.Errorf("without quorum %s's DNS answers %s %v, want the replica's 10.3.0.1", a.Opts.Node, rcode(r), got)
		}
	}
}

func TestClusterAllServersKilledAndRestarted(t *testing.T) {
	t.Parallel()
	agents := StartCluster(t, 3)
	var acked []string
	for i := 0; i < 15; i++ {
		name := fmt.Sprintf("svc-%d", i)
		if _, err := agents[i%3].Client.Catalog().Register(&api.CatalogRegistration{
			Node: "ext-" + name, Address: "10.4.0.1",
			Service: &api.AgentService{ID: name, Service: name, Port: 80}}, nil); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		acked = append(acked, name)
	}
	for _, a := range agents {
		a.Kill(t)
	}
	for _, a := range agents {
		a.restartNoWait(t)
	}
	for _, a := range agents {
		if err := a.waitReady(startTimeout); err != nil {
			t.Fatalf("%s after restart: %v", a.Opts.Node, err)
		}
	}
	services, _, err := agents[1].Client.Catalog().Services(&api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range acked {
		if _, ok := services[name]; !ok {
			t.Errorf("acknowledged write %s lost after all servers were killed", name)
		}
	}
	for _, a := range agents {
		eventually(t, 5*time.Second, func() error {
			r := a.Query(t, "svc-14.service.consul.", dns.TypeA)
			if len(r.Answer) != 1 {
				return fmt.Errorf("%s answers %s %v", a.Opts.Node, rcode(r), addrsOf(r.Answer))
			}
			return nil
		})
	}
}
