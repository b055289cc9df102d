package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// registerInstance registers service svc on node at addr through the
// catalog, with a service check of status.
func registerInstance(t *testing.T, a *Agent, node, addr, svc string, tags []string, status string) {
	t.Helper()
	_, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: node, Address: addr,
		Service: &api.AgentService{ID: svc + "-" + node, Service: svc, Port: 5432, Tags: tags},
		Check: &api.AgentCheck{CheckID: svc + "-alive", Name: svc + " alive", ServiceID: svc + "-" + node,
			Status: status}}, nil)
	if err != nil {
		t.Fatalf("registering %s on %s: %v", svc, node, err)
	}
}

func executedNodes(res *api.PreparedQueryExecuteResponse) []string {
	var out []string
	for _, e := range res.Nodes {
		out = append(out, e.Node.Node)
	}
	slices.Sort(out)
	return out
}

// A template answers every name its name prefixes, over HTTP and DNS, on
// a server and on a client agent (from its replica); a query that captured
// a token is executed by a server for the client agent, whose replica holds
// no secrets.
func TestPreparedQueryTemplate(t *testing.T) {
	t.Parallel()
	s1 := StartAgent(t, Options{Node: "s1"})
	c1 := StartClient(t, "c1", []*Agent{s1})
	registerInstance(t, s1, "db-1", "10.9.0.1", "db-customer", []string{"primary"}, api.HealthPassing)
	registerInstance(t, s1, "db-2", "10.9.0.2", "db-customer", []string{"replica"}, api.HealthPassing)

	pq := s1.Client.PreparedQuery()
	if _, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "geo-db-",
		Template: api.QueryTemplate{Type: "name_prefix_match", Regexp: `^geo-db-(.*?)-([^\-]+?)$`},
		Service:  api.ServiceQuery{Service: "db-${match(1)}", Tags: []string{"${match(2)}"}},
		DNS:      api.QueryDNSOptions{TTL: "7s"}}, nil); err != nil {
		t.Fatalf("creating the template: %v", err)
	}
	res, _, err := pq.Execute("geo-db-customer-replica", nil)
	if err != nil || res.Service != "db-customer" || !slices.Equal(executedNodes(res), []string{"db-2"}) || res.DNS.TTL != "7s" {
		t.Fatalf("executing the template over HTTP: %+v %v", res, err)
	}

	for _, a := range []*Agent{s1, c1} {
		r := waitForAddrs(t, a, "geo-db-customer-primary.query.consul.", dns.TypeA, "10.9.0.1")
		if ttl := r.Answer[0].Header().Ttl; ttl != 7 {
			t.Errorf("%s: TTL %d, want the query's 7", a.Opts.Node, ttl)
		}
		waitForAddrs(t, a, "geo-db-customer-replica.query.dc1.", dns.TypeA, "10.9.0.2")
		expectNegative(t, a.Query(t, "geo-db-customer-standby.query.consul.", dns.TypeA), dns.RcodeNameError)
		expectNegative(t, a.Query(t, "nosuch.query.consul.", dns.TypeA), dns.RcodeNameError)
	}
	if res, _, err := c1.Client.PreparedQuery().Execute("geo-db-customer-primary", nil); err != nil ||
		!slices.Equal(executedNodes(res), []string{"db-1"}) {
		t.Errorf("executing the template on the client agent: %+v %v", res, err)
	}

	// A captured token (ACLs are off, so it filters nothing): the client
	// agent's replica has the query without it, and shows it as the
	// server does (to a management token: everyone with ACLs off).
	id, _, err := pq.Create(&api.PreparedQueryDefinition{Name: "captured", Token: "a-secret",
		Service: api.ServiceQuery{Service: "db-customer", Tags: []string{"primary"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		got, _, err := c1.Client.PreparedQuery().Get(id, nil)
		if err != nil || len(got) != 1 || got[0].Token != "a-secret" {
			return fmt.Errorf("the query read through the client agent: %+v %v", got, err)
		}
		return nil
	})
	waitForAddrs(t, c1, "captured.query.consul.", dns.TypeA, "10.9.0.1")
	if res, _, err := c1.Client.PreparedQuery().Execute("captured", nil); err != nil || !slices.Equal(executedNodes(res), []string{"db-1"}) {
		t.Errorf("executing the query with a captured token on the client agent: %+v %v", res, err)
	}
}

// Failover: the query's service has no healthy instance in dc1, so an
// execution in dc1 (on a server or a client agent, over HTTP or DNS)
// answers with dc2's, saying so.
func TestPreparedQueryFailover(t *testing.T) {
	t.Parallel()
	s1 := StartAgent(t, Options{Node: "s1", Datacenter: "dc1"})
	s2 := StartAgent(t, Options{Node: "s2", Datacenter: "dc2",
		Discovery: []string{"join_wan " + addr(s1.Ports.SerfWAN)}})
	c1 := StartClient(t, "c1", []*Agent{s1})
	eventually(t, 20*time.Second, func() error {
		dcs, err := s1.Client.Catalog().Datacenters()
		if err != nil || !slices.Contains(dcs, "dc2") {
			return fmt.Errorf("datacenters on s1: %v, %v", dcs, err)
		}
		return nil
	})
	registerInstance(t, s1, "web-dc1", "10.1.0.1", "web", nil, api.HealthCritical)
	registerInstance(t, s2, "web-dc2", "10.2.0.1", "web", nil, api.HealthPassing)

	if _, _, err := s1.Client.PreparedQuery().Create(&api.PreparedQueryDefinition{Name: "web-anywhere",
		Service: api.ServiceQuery{Service: "web", Failover: api.QueryFailoverOptions{NearestN: 1}}}, nil); err != nil {
		t.Fatalf("creating the query: %v", err)
	}
	for _, a := range []*Agent{s1, c1} {
		eventually(t, 10*time.Second, func() error {
			res, _, err := a.Client.PreparedQuery().Execute("web-anywhere", nil)
			if err != nil {
				return err
			}
			if res.Datacenter != "dc2" || res.Failovers != 1 || !slices.Equal(executedNodes(res), []string{"web-dc2"}) {
				return fmt.Errorf("on %s: datacenter %q, %d failovers, nodes %v; want dc2, 1, [web-dc2]",
					a.Opts.Node, res.Datacenter, res.Failovers, executedNodes(res))
			}
			return nil
		})
		waitForAddrs(t, a, "web-anywhere.query.consul.", dns.TypeA, "10.2.0.1")
		r := a.Query(t, "web-anywhere.query.consul.", dns.TypeSRV)
		if srvs := srvsOf(r.Answer); len(srvs) != 1 || srvs[0].Target != "web-dc2.node.dc2.consul." || srvs[0].Port != 5432 {
			t.Errorf("SRV on %s: %v, want web-dc2.node.dc2.consul.:5432", a.Opts.Node, r.Answer)
		}
	}

	// <query>.query.<dc>: the query of another datacenter, executed there.
	if _, _, err := s2.Client.PreparedQuery().Create(&api.PreparedQueryDefinition{Name: "web-dc2-only",
		Service: api.ServiceQuery{Service: "web"}}, nil); err != nil {
		t.Fatal(err)
	}
	waitForAddrs(t, s1, "web-dc2-only.query.dc2.consul.", dns.TypeA, "10.2.0.1")
	expectNegative(t, s1.Query(t, "web-dc2-only.query.consul.", dns.TypeA), dns.RcodeNameError)
	if r := s1.Query(t, "web-anywhere.query.nowhere.consul.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("a query in an unknown datacenter: %s, want SERVFAIL", rcode(r))
	}

	// dc1's instance healthy again: the answer is local.
	registerInstance(t, s1, "web-dc1", "10.1.0.1", "web", nil, api.HealthPassing)
	eventually(t, 10*time.Second, func() error {
		res, _, err := s1.Client.PreparedQuery().Execute("web-anywhere", nil)
		if err != nil || res.Datacenter != "dc1" || res.Failovers != 0 || !slices.Equal(executedNodes(res), []string{"web-dc1"}) {
			return fmt.Errorf("after dc1 recovered: %+v %v", res, err)
		}
		return nil
	})
	waitForAddrs(t, s1, "web-anywhere.query.consul.", dns.TypeA, "10.1.0.1")
}
