package agent

import (
	"net"
	"strconv"
	"time"

	"github.com/beacon-dns/beacon/gossip"
	"github.com/beacon-dns/beacon/state"
)

// Membership in the catalog, as Consul's leader keeps it (serfHealth): the
// leader makes every LAN member's node and its serfHealth check follow
// gossip. An alive member's node is registered with serfHealth passing; a
// failed one's check turns critical, which takes every service of the node
// out of DNS; a member that left is deregistered with its services; and a
// node with a serfHealth check that gossip no longer knows (reaped, or
// forgotten) is deregistered too. Each member event is handled as it comes;
// the whole membership is reconciled on every leadership change and every
// reconcileInterval, so nothing missed (an event during an election) stays
// missed.

const (
	reconcileInterval = 60 * time.Second
	// Consul's serfHealth outputs.
	serfAliveOutput  = "Agent alive and reachable"
	serfFailedOutput = "Agent not live or unreachable"
	// consulService is the service every server node carries, as in
	// Consul: consul.service.consul answers the servers.
	consulService = "consul"
)

// reconcileMember makes the catalog agree with what gossip says of m. It
// runs on the leader only.
func (a *Agent) reconcileMember(m gossip.Member) {
	if m.Datacenter != "" && m.Datacenter != a.cfg.Datacenter {
		return
	}
	var err error
	switch m.Status {
	case gossip.StatusAlive, gossip.StatusLeaving:
		err = a.memberAlive(m)
	case gossip.StatusFailed:
		err = a.memberFailed(m)
	case gossip.StatusLeft:
		err = a.memberLeft(m.Name)
	}
	if err != nil {
		a.logger.Warn("reconciling member into the catalog", "member", m.Name, "status", m.Status, "error", err)
	}
}

// reconcileAllMembers reconciles every member, then reaps catalog nodes
// that gossip does not know. A leader that just gained leadership may have
// a stale view of who failed (it may be the one that was cut off): it
// first tries to reach every member it holds failed, and leaves those it
// reaches as the catalog has them; gossip reports them alive soon after.
func (a *Agent) reconcileAllMembers(justElected bool) {
	members := a.lan.Members()
	var reached map[string]bool
	if justElected {
		reached = a.reachFailed(members)
	}
	known := map[string]bool{}
	for _, m := range members {
		known[m.Name] = true
		if reached[m.Name] {
			a.logger.Info("member failed in this server's view answers: not marking it critical", "member", m.Name)
			continue
		}
		a.reconcileMember(m)
	}
	_, checks, err := a.store.ChecksInState(nil, state.HealthAny)
	if err != nil {
		return
	}
	for _, c := range checks {
		if c.CheckID != state.SerfCheckID || known[c.Node] || c.Node == a.cfg.Node {
			continue
		}
		a.logger.Info("reaping a node gossip no longer knows", "node", c.Node)
		if err := a.memberLeft(c.Node); err != nil {
			a.logger.Warn("reaping node", "node", c.Node, "error", err)
		}
	}
}

func serfCheck(status, output string) *state.HealthCheck {
	return &state.HealthCheck{CheckID: state.SerfCheckID, Name: state.SerfCheckName,
		Status: status, Output: output, Type: ""}
}

// memberAlive registers the member's node with serfHealth passing, unless
// the catalog already says so. The node's metadata and tagged addresses,
// which its own agent keeps, are preserved.
func (a *Agent) memberAlive(m gossip.Member) error {
	_, node, services, err := a.store.NodeServices(nil, m.Name)
	if err != nil {
		return err
	}
	svc := consulServiceOf(m)
	if node != nil && node.Address == m.Addr && (m.ID == "" || node.ID == m.ID) &&
		a.serfStatus(m.Name) == state.HealthPassing && hasConsulService(services, svc) {
		return nil
	}
	req := &state.RegisterRequest{Datacenter: a.cfg.Datacenter, ID: m.ID, Node: m.Name, Address: m.Addr,
		Service: svc, Check: serfCheck(state.HealthPassing, serfAliveOutput)}
	if node != nil {
		req.TaggedAddresses, req.NodeMeta = node.TaggedAddresses, node.Meta
		if req.ID == "" {
			req.ID = node.ID
		}
	}
	_, err = a.Apply(state.RegisterRequestType, req)
	return err
}

// memberFailed turns the node's serfHealth critical. A node the catalog does
// not have is left alone: there is nothing of it to take out of DNS.
func (a *Agent) memberFailed(m gossip.Member) error {
	_, node, err := a.store.GetNode(nil, m.Name)
	if err != nil || node == nil {
		return err
	}
	if a.serfStatus(m.Name) == state.HealthCritical {
		return nil
	}
	_, err = a.Apply(state.RegisterRequestType, &state.RegisterRequest{
		Datacenter: a.cfg.Datacenter, Node: m.Name, SkipNodeUpdate: true,
		Check: serfCheck(state.HealthCritical, serfFailedOutput)})
	return err
}

// memberLeft deregisters the node and everything on it. The leader never
// deregisters itself: it is leaving, and the next leader will.
func (a *Agent) memberLeft(name string) error {
	if name == a.cfg.Node {
		return nil
	}
	_, node, err := a.store.GetNode(nil, name)
	if err != nil || node == nil {
		return err
	}
	_, err = a.Apply(state.DeregisterRequestType, &state.DeregisterRequest{Datacenter: a.cfg.Datacenter, Node: name})
	return err
}

// serfStatus is the status of the node's serfHealth check, "" without one.
func (a *Agent) serfStatus(node string) string {
	_, checks, err := a.store.NodeChecks(nil, node)
	if err != nil {
		return ""
	}
	for _, c := range checks {
		if c.CheckID == state.SerfCheckID && c.ServiceID == "" {
			return c.Status
		}
	}
	return ""
}

// consulServiceOf is the consul service of a server member, nil for a
// client.
func consulServiceOf(m gossip.Member) *state.Service {
	if !m.IsServer() {
		return nil
	}
	port := 0
	if _, p, err := net.SplitHostPort(m.RPCAddr); err == nil {
		port, _ = strconv.Atoi(p)
	}
	return &state.Service{ID: consulService, Service: consulService, Port: port,
		Tags: []string{}, Meta: map[string]string{}, Weights: state.Weights{Passing: 1, Warning: 1}}
}

func hasConsulService(services []*state.Service, want *state.Service) bool {
	if want == nil {
		return true
	}
	for _, s := range services {
		if s.ID == want.ID {
			w := *want
			w.Node = s.Node
			return state.ServiceEqual(s, &w)
		}
	}
	return false
}

// reachFailedTimeout bounds how long a new leader waits to hear from the
// members it holds failed before it believes its view.
const reachFailedTimeout = 2 * time.Second

// reachFailed tries to join every failed member at once and returns those
// reached within reachFailedTimeout. A join that outlasts the wait goes on
// in the background (bounded by gossip's TCP timeout) and still heals the
// view when it succeeds.
func (a *Agent) reachFailed(members []gossip.Member) map[string]bool {
	type result struct {
		name string
		ok   bool
	}
	var failed []gossip.Member
	for _, m := range members {
		if m.Status == gossip.StatusFailed {
			failed = append(failed, m)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	results := make(chan result, len(failed))
	for _, m := range failed {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			n, _ := a.lan.Join([]string{net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))})
			results <- result{m.Name, n > 0}
		}()
	}
	reached := map[string]bool{}
	timeout := time.NewTimer(reachFailedTimeout)
	defer timeout.Stop()
	for range failed {
		select {
		case r := <-results:
			if r.ok {
				reached[r.name] = true
			}
		case <-timeout.C:
			return reached
		case <-a.stop:
			return reached
		}
	}
	return reached
}
