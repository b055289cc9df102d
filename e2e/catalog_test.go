package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// catalogWeb registers service web on node with one service check.
func catalogWeb(t testing.TB, a *Agent, node, nodeAddr, id, tag, status string) {
	t.Helper()
	_, err := a.Client.Catalog().Register(&api.CatalogRegistration{
		Node: node, Address: nodeAddr,
		Service: &api.AgentService{ID: id, Service: "web", Port: 80, Tags: []string{tag}},
		Checks: api.HealthChecks{{
			Node: node, CheckID: id + "-alive", Name: id + " alive", Status: status, ServiceID: id,
		}},
	}, nil)
	if err != nil {
		t.Fatalf("PUT /v1/catalog/register %s (check %s): %v", id, status, err)
	}
}

// healthyAddrs are the addresses /v1/health/service/:name?passing gives.
func healthyAddrs(t testing.TB, a *Agent, name string) []string {
	t.Helper()
	entries, _, err := a.Client.Health().Service(name, "", true, nil)
	if err != nil {
		t.Fatalf("GET /v1/health/service/%s?passing: %v", name, err)
	}
	var out []string
	for _, e := range entries {
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address
		}
		out = append(out, addr)
	}
	slices.Sort(out)
	return out
}

func TestCatalogRegisterHealthAndDNS(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	catalogWeb(t, a, "node-a", "10.0.1.1", "web-a", "primary", api.HealthPassing)
	catalogWeb(t, a, "node-b", "10.0.1.2", "web-b", "canary", api.HealthCritical)

	t.Run("critical instance is not in DNS", func(t *testing.T) {
		waitForAddrs(t, a, "web.service.consul.", dns.TypeA, "10.0.1.1")
		expectSRV(t, a.Query(t, "web.service.consul.", dns.TypeSRV), 80, "node-a.node.dc1.consul.", "10.0.1.1")
		expectNegative(t, a.Query(t, "canary.web.service.consul.", dns.TypeA), dns.RcodeNameError)
		if got := healthyAddrs(t, a, "web"); !slices.Equal(got, []string{"10.0.1.1"}) {
			t.Errorf("health/service/web?passing: %v, want [10.0.1.1] as DNS answers", got)
		}
		all, _, err := a.Client.Health().Service("web", "", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 {
			t.Errorf("health/service/web: %d entries, want both instances", len(all))
		}
		for _, e := range all {
			if e.Service.ID == "web-b" && e.Checks.AggregatedStatus() != api.HealthCritical {
				t.Errorf("health/service/web: web-b aggregated status %q, want critical; checks %+v", e.Checks.AggregatedStatus(), e.Checks)
			}
		}
	})

	t.Run("passing instance is in DNS", func(t *testing.T) {
		catalogWeb(t, a, "node-b", "10.0.1.2", "web-b", "canary", api.HealthPassing)
		waitForAddrs(t, a, "web.service.consul.", dns.TypeA, "10.0.1.1", "10.0.1.2")
		waitForAddrs(t, a, "canary.web.service.consul.", dns.TypeA, "10.0.1.2")
		waitForAddrs(t, a, "node-b.node.consul.", dns.TypeA, "10.0.1.2")
		if got := healthyAddrs(t, a, "web"); !slices.Equal(got, []string{"10.0.1.1", "10.0.1.2"}) {
			t.Errorf("health/service/web?passing: %v, want [10.0.1.1 10.0.1.2] as DNS answers", got)
		}
	})

	t.Run("read shapes", func(t *testing.T) {
		dcs, err := a.Client.Catalog().Datacenters()
		if err != nil || !slices.Equal(dcs, []string{"dc1"}) {
			t.Errorf("GET /v1/catalog/datacenters: %v, %v; want [dc1]", dcs, err)
		}

		svcs, meta, err := a.Client.Catalog().Services(nil)
		if err != nil {
			t.Fatalf("GET /v1/catalog/services: %v", err)
		}
		tags := slices.Clone(svcs["web"])
		slices.Sort(tags)
		if !slices.Equal(tags, []string{"canary", "primary"}) {
			t.Errorf("GET /v1/catalog/services: web has tags %v, want [canary primary]; all: %v", svcs["web"], svcs)
		}
		if meta.LastIndex == 0 {
			t.Error("GET /v1/catalog/services: X-Consul-Index 0")
		}

		nodes, _, err := a.Client.Catalog().Nodes(nil)
		if err != nil {
			t.Fatalf("GET /v1/catalog/nodes: %v", err)
		}
		byName := map[string]*api.Node{}
		for _, n := range nodes {
			byName[n.Node] = n
		}
		for name, addr := range map[string]string{"n1": "127.0.0.1", "node-a": "10.0.1.1", "node-b": "10.0.1.2"} {
			n := byName[name]
			if n == nil {
				t.Errorf("GET /v1/catalog/nodes: no node %s in %d nodes", name, len(nodes))
				continue
			}
			if n.Address != addr || n.Datacenter != "dc1" || n.CreateIndex == 0 || n.ModifyIndex < n.CreateIndex {
				t.Errorf("GET /v1/catalog/nodes: %s is %+v, want Address %s, Datacenter dc1, indexes set", name, *n, addr)
			}
		}

		primary, _, err := a.Client.Catalog().Service("web", "primary", nil)
		if err != nil {
			t.Fatalf("GET /v1/catalog/service/web?tag=primary: %v", err)
		}
		if len(primary) != 1 {
			t.Fatalf("GET /v1/catalog/service/web?tag=primary: %d instances, want 1", len(primary))
		}
		p := primary[0]
		if p.ServiceID != "web-a" || p.ServiceName != "web" || p.Node != "node-a" || p.Address != "10.0.1.1" ||
			p.ServicePort != 80 || !slices.Equal(p.ServiceTags, []string{"primary"}) || p.Datacenter != "dc1" ||
			p.ServiceWeights.Passing != 1 || p.ServiceWeights.Warning != 1 || p.CreateIndex == 0 {
			t.Errorf("GET /v1/catalog/service/web?tag=primary: %+v", *p)
		}
		all, _, err := a.Client.Catalog().Service("web", "", nil)
		if err != nil || len(all) != 2 {
			t.Errorf("GET /v1/catalog/service/web: %d instances, %v; want 2", len(all), err)
		}
		none, _, err := a.Client.Catalog().Service("nosuch", "", nil)
		if err != nil || len(none) != 0 {
			t.Errorf("GET /v1/catalog/service/nosuch: %v, %v; want an empty list", none, err)
		}

		node, _, err := a.Client.Catalog().Node("node-a", nil)
		if err != nil {
			t.Fatalf("GET /v1/catalog/node/node-a: %v", err)
		}
		if node == nil || node.Node == nil || node.Node.Address != "10.0.1.1" {
			t.Fatalf("GET /v1/catalog/node/node-a: %+v", node)
		}
		s := node.Services["web-a"]
		if len(node.Services) != 1 || s == nil || s.Service != "web" || s.Port != 80 || s.ID != "web-a" {
			t.Errorf("GET /v1/catalog/node/node-a: services %+v, want only web-a (web, port 80)", node.Services)
		}
		missing, _, err := a.Client.Catalog().Node("nosuch", nil)
		if err != nil || missing != nil {
			t.Errorf("GET /v1/catalog/node/nosuch: %+v, %v; want null as Consul answers", missing, err)
		}
	})

	t.Run("deregister removes from DNS", func(t *testing.T) {
		if _, err := a.Client.Catalog().Deregister(&api.CatalogDeregistration{Node: "node-b", ServiceID: "web-b"}, nil); err != nil {
			t.Fatalf("PUT /v1/catalog/deregister node-b/web-b: %v", err)
		}
		waitForAddrs(t, a, "web.service.consul.", dns.TypeA, "10.0.1.1")
		// The node stays: only its service went.
		waitForAddrs(t, a, "node-b.node.consul.", dns.TypeA, "10.0.1.2")

		if _, err := a.Client.Catalog().Deregister(&api.CatalogDeregistration{Node: "node-a"}, nil); err != nil {
			t.Fatalf("PUT /v1/catalog/deregister node-a: %v", err)
		}
		eventually(t, 10*time.Second, func() error {
			r, err := a.Exchange(question("web.service.consul.", dns.TypeA), "udp")
			if err != nil {
				return err
			}
			if len(r.Answer) != 0 {
				return fmt.Errorf("A web.service.consul. still answers %v after node-a was deregistered", addrsOf(r.Answer))
			}
			return nil
		})
		expectNegative(t, a.Query(t, "node-a.node.consul.", dns.TypeA), dns.RcodeNameError)
		if got := healthyAddrs(t, a, "web"); len(got) != 0 {
			t.Errorf("health/service/web?passing after deregistration: %v, want none", got)
		}
	})
}

func TestBlockingQuery(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	_, meta, err := a.Client.Catalog().Service("x", "", nil)
	if err != nil {
		t.Fatalf("GET /v1/catalog/service/x: %v", err)
	}
	idx := meta.LastIndex
	if idx == 0 {
		t.Fatal("GET /v1/catalog/service/x: X-Consul-Index 0")
	}

	t.Run("wakes on change", func(t *testing.T) {
		type result struct {
			svcs []*api.CatalogService
			meta *api.QueryMeta
			err  error
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			s, m, err := a.Client.Catalog().Service("x", "", &api.QueryOptions{WaitIndex: idx, WaitTime: 5 * time.Second})
			done <- result{s, m, err, time.Now()}
		}()
		// Give the query time to reach the server and block: this is the
		// scenario under test, not synchronisation.
		select {
		case r := <-done:
			t.Fatalf("blocking query on index %d returned before anything changed: %d instances, index %v, %v", idx, len(r.svcs), r.meta, r.err)
		case <-time.After(300 * time.Millisecond):
		}
		if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{
			Node: "x-node", Address: "10.0.3.1", Service: &api.AgentService{ID: "x-1", Service: "x", Port: 1},
		}, nil); err != nil {
			t.Fatalf("PUT /v1/catalog/register x-1: %v", err)
		}
		registered := time.Now()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("blocking query did not return 10s after the registration (its wait was 5s)")
		}
		if r.err != nil {
			t.Fatalf("blocking GET /v1/catalog/service/x: %v", r.err)
		}
		if lag := r.at.Sub(registered); lag > time.Second {
			t.Errorf("blocking query returned %v after the registration, want < 1s", lag)
		}
		if len(r.svcs) != 1 || r.svcs[0].ServiceID != "x-1" {
			t.Errorf("blocking query returned %d instances, want x-1", len(r.svcs))
		}
		if r.meta.LastIndex <= idx {
			t.Errorf("blocking query returned index %d, want > %d", r.meta.LastIndex, idx)
		}
		idx = r.meta.LastIndex
	})

	t.Run("times out with the same index", func(t *testing.T) {
		const wait = time.Second
		start := time.Now()
		svcs, m, err := a.Client.Catalog().Service("x", "", &api.QueryOptions{WaitIndex: idx, WaitTime: wait})
		took := time.Since(start)
		if err != nil {
			t.Fatalf("blocking GET /v1/catalog/service/x: %v", err)
		}
		if took < wait || took >= wait+2*time.Second {
			t.Errorf("blocking query with wait=%v and nothing changing took %v, want [%v, %v)", wait, took, wait, wait+2*time.Second)
		}
		if m.LastIndex != idx {
			t.Errorf("blocking query timed out with index %d, want the unchanged %d", m.LastIndex, idx)
		}
		if len(svcs) != 1 {
			t.Errorf("blocking query timed out with %d instances, want 1", len(svcs))
		}
	})
}

// TestConsulIndexMonotonic: X-Consul-Index is set and never goes back.
func TestConsulIndexMonotonic(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	last := map[string]uint64{}
	first := map[string]uint64{}
	check := func(step string) {
		t.Helper()
		reads := map[string]func() (*api.QueryMeta, error){
			"catalog/services": func() (*api.QueryMeta, error) { _, m, err := a.Client.Catalog().Services(nil); return m, err },
			"catalog/nodes":    func() (*api.QueryMeta, error) { _, m, err := a.Client.Catalog().Nodes(nil); return m, err },
			"catalog/service/s": func() (*api.QueryMeta, error) {
				_, m, err := a.Client.Catalog().Service("s", "", nil)
				return m, err
			},
			"health/service/s": func() (*api.QueryMeta, error) {
				_, m, err := a.Client.Health().Service("s", "", false, nil)
				return m, err
			},
			"catalog/node/n1": func() (*api.QueryMeta, error) { _, m, err := a.Client.Catalog().Node("n1", nil); return m, err },
		}
		for name, read := range reads {
			m, err := read()
			if err != nil {
				t.Fatalf("after %s: GET /v1/%s: %v", step, name, err)
			}
			if m.LastIndex == 0 {
				t.Errorf("after %s: GET /v1/%s: X-Consul-Index is 0 or missing", step, name)
			}
			if m.LastIndex < last[name] {
				t.Errorf("after %s: GET /v1/%s: X-Consul-Index went back from %d to %d", step, name, last[name], m.LastIndex)
			}
			if _, ok := first[name]; !ok {
				first[name] = m.LastIndex
			}
			last[name] = m.LastIndex
		}
	}
	check("start")
	steps := []struct {
		name string
		do   func() error
	}{
		{"agent register s-1", func() error {
			return a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "s-1", Name: "s", Port: 1})
		}},
		{"catalog register s-2", func() error {
			_, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "other", Address: "10.0.4.1",
				Service: &api.AgentService{ID: "s-2", Service: "s", Port: 2}}, nil)
			return err
		}},
		{"catalog register a check", func() error {
			_, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "other", Address: "10.0.4.1",
				Check: &api.AgentCheck{CheckID: "s-2-alive", Name: "alive", Status: api.HealthWarning, ServiceID: "s-2"}}, nil)
			return err
		}},
		{"agent deregister s-1", func() error { return a.Client.Agent().ServiceDeregister("s-1") }},
		{"catalog deregister s-2", func() error {
			_, err := a.Client.Catalog().Deregister(&api.CatalogDeregistration{Node: "other", ServiceID: "s-2"}, nil)
			return err
		}},
		{"catalog register s-3", func() error {
			_, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "other", Address: "10.0.4.1",
				Service: &api.AgentService{ID: "s-3", Service: "s", Port: 3}}, nil)
			return err
		}},
		{"catalog deregister node other", func() error {
			_, err := a.Client.Catalog().Deregister(&api.CatalogDeregistration{Node: "other"}, nil)
			return err
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		check(s.name)
	}
	for _, name := range []string{"catalog/services", "catalog/nodes", "catalog/service/s", "health/service/s"} {
		if last[name] <= first[name] {
			t.Errorf("GET /v1/%s: X-Consul-Index %d after %d writes that changed it, no greater than the %d before", name, last[name], len(steps), first[name])
		}
	}
	// The raw header, as other clients read it.
	r := a.Do(t, "GET", "/v1/catalog/services", nil, false)
	if h := r.Header.Get("X-Consul-Index"); h == "" || h == "0" {
		t.Errorf("GET /v1/catalog/services: X-Consul-Index header %q", h)
	}
	if h := r.Header.Get("X-Consul-KnownLeader"); h != "true" {
		t.Errorf("GET /v1/catalog/services: X-Consul-KnownLeader %q, want true", h)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /v1/catalog/services: Content-Type %q", r.Header.Get("Content-Type"))
	}
}

func TestStatusLeaderAndPeers(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	leader, err := a.Client.Status().Leader()
	if err != nil {
		t.Fatalf("GET /v1/status/leader: %v", err)
	}
	if leader != a.RPCAddr {
		t.Errorf("GET /v1/status/leader: %q, want the rpc address %q", leader, a.RPCAddr)
	}
	peers, err := a.Client.Status().Peers()
	if err != nil {
		t.Fatalf("GET /v1/status/peers: %v", err)
	}
	if !slices.Equal(peers, []string{a.RPCAddr}) {
		t.Errorf("GET /v1/status/peers: %q, want [%q]", peers, a.RPCAddr)
	}
}
