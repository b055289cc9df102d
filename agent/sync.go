package agent

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/beacon-dns/beacon/raftstore"
)

// Anti-entropy: the agent's local services are the truth for its node. They
// are pushed to the catalog on every change, and a full comparison runs at
// start-up, whenever a sync failed, and every fullSyncInterval, so a catalog
// that drifted (a lost write, a restore) is repaired.
const (
	fullSyncInterval = time.Minute
	retryInterval    = time.Second
)

func (a *Agent) syncLoop() {
	defer a.wg.Done()
	wait := time.Duration(0)
	for {
		select {
		case <-a.stop:
			return
		case <-a.syncNow:
		case <-time.After(wait):
		}
		if err := a.fullSync(); err != nil {
			a.logger.Debug("anti-entropy sync failed; will retry", "error", err)
			wait = retryInterval
			continue
		}
		// Spread the periodic syncs of many agents over time.
		wait = fullSyncInterval + rand.N(fullSyncInterval/4)
	}
}

// triggerSync asks the sync loop for a full sync soon.
func (a *Agent) triggerSync() {
	select {
	case a.syncNow <- struct{}{}:
	default:
	}
}

func (a *Agent) nodeRegistration() *raftstore.RegisterRequest {
	return &raftstore.RegisterRequest{
		Datacenter: a.cfg.Datacenter, ID: a.nodeID, Node: a.cfg.Node, Address: a.cfg.Bind,
		TaggedAddresses: map[string]string{"lan": a.cfg.Bind, "lan_ipv4": a.cfg.Bind, "wan": a.cfg.Bind, "wan_ipv4": a.cfg.Bind},
		NodeMeta:        map[string]string{},
		// No serfHealth: the leader keeps it, from gossip (members.go).
	}
}

// fullSync makes the catalog's view of this node equal to the local state,
// writing only what differs.
func (a *Agent) fullSync() error {
	if a.backend.Leader() == "" {
		return raftstore.ErrNoLeader
	}
	_, node, catalogSvcs, err := a.store.NodeServices(nil, a.cfg.Node)
	if err != nil {
		return err
	}
	_, catalogChecks, err := a.store.NodeChecks(nil, a.cfg.Node)
	if err != nil {
		return err
	}
	reg := a.nodeRegistration()
	if node == nil || node.ID != reg.ID || node.Address != reg.Address {
		if _, err := a.Apply(raftstore.RegisterRequestType, reg); err != nil {
			return fmt.Errorf("registering node: %w", err)
		}
	}
	svcs, checks := a.local.snapshot()
	want := map[string]bool{}
	wantCheck := map[string]bool{raftstore.SerfCheckID: true} // serfHealth is the leader's
	var nodeChecks []*raftstore.HealthCheck
	for _, c := range checks {
		wantCheck[c.CheckID] = true
		if c.ServiceID == "" {
			nodeChecks = append(nodeChecks, c)
		}
	}
	if !checksInSync(catalogChecks, nodeChecks) {
		req := a.nodeRegistration()
		req.SkipNodeUpdate, req.Checks = true, nodeChecks
		if _, err := a.Apply(raftstore.RegisterRequestType, req); err != nil {
			return fmt.Errorf("registering node checks: %w", err)
		}
	}
	for _, svc := range svcs {
		want[svc.ID] = true
		var own []*raftstore.HealthCheck
		for _, c := range checks {
			if c.ServiceID == svc.ID {
				own = append(own, c)
			}
		}
		if serviceInSync(catalogSvcs, svc) && checksInSync(catalogChecks, own) {
			continue
		}
		if err := a.pushService(svc, own); err != nil {
			return err
		}
	}
	for _, s := range catalogSvcs {
		if s.ID == consulService && a.cfg.Server {
			continue // the leader's, from gossip
		}
		if !want[s.ID] {
			if _, err := a.Apply(raftstore.DeregisterRequestType,
				&raftstore.DeregisterRequest{Node: a.cfg.Node, ServiceID: s.ID}); err != nil {
				return fmt.Errorf("deregistering service %q: %w", s.ID, err)
			}
		}
	}
	for _, c := range catalogChecks {
		if !wantCheck[c.CheckID] && (c.ServiceID == "" || want[c.ServiceID]) {
			if _, err := a.Apply(raftstore.DeregisterRequestType,
				&raftstore.DeregisterRequest{Node: a.cfg.Node, CheckID: c.CheckID}); err != nil {
				return fmt.Errorf("deregistering check %q: %w", c.CheckID, err)
			}
		}
	}
	return nil
}

func (a *Agent) pushService(svc *raftstore.Service, checks []*raftstore.HealthCheck) error {
	req := a.nodeRegistration()
	req.SkipNodeUpdate = true
	req.Check = nil
	req.Service = svc
	req.Checks = checks
	if _, err := a.Apply(raftstore.RegisterRequestType, req); err != nil {
		return fmt.Errorf("registering service %q: %w", svc.ID, err)
	}
	return nil
}

func serviceInSync(catalog []*raftstore.Service, want *raftstore.Service) bool {
	for _, s := range catalog {
		if s.ID == want.ID {
			w := *want
			w.Node = s.Node
			return raftstore.ServiceEqual(s, &w)
		}
	}
	return false
}

func hasCheck(catalog []*raftstore.HealthCheck, want *raftstore.HealthCheck) bool {
	for _, c := range catalog {
		if c.CheckID == want.CheckID {
			return c.Status == want.Status && c.Name == want.Name && c.ServiceID == want.ServiceID &&
				c.Output == want.Output && c.Notes == want.Notes && c.Type == want.Type &&
				reflect.DeepEqual(c.Definition, want.Definition)
		}
	}
	return false
}

func checksInSync(catalog, want []*raftstore.HealthCheck) bool {
	for _, w := range want {
		if !hasCheck(catalog, w) {
			return false
		}
	}
	return true
}

// ---- the agent endpoints' operations ----

// AddService registers a service (and its checks) on this agent's node: it is
// persisted locally first, then pushed to the catalog. A failed push is left
// to anti-entropy, as in Consul: the local state is the truth.
func (a *Agent) AddService(svc *raftstore.Service, checks []*raftstore.HealthCheck) error {
	if err := a.startRunners(checks); err != nil {
		return err
	}
	dropped, err := a.local.addService(svc, checks)
	if err != nil {
		for _, c := range checks {
			if runs(c) {
				a.checks.Remove(c.CheckID)
			}
		}
		return err
	}
	for _, id := range dropped {
		a.checks.Remove(id)
	}
	if len(dropped) > 0 {
		defer a.triggerSync() // their catalog entries go with the next sync
	}
	if err := a.pushService(svc, checks); err != nil {
		a.logger.Warn("service registered locally; catalog sync will retry", "service", svc.ID, "error", err)
		a.triggerSync()
	}
	return nil
}

// RemoveService deregisters a local service; false if there was none.
func (a *Agent) RemoveService(id string) (bool, error) {
	ok, checkIDs, err := a.local.removeService(id)
	if err != nil || !ok {
		return ok, err
	}
	for _, cid := range checkIDs {
		a.checks.Remove(cid)
	}
	if _, err := a.Apply(raftstore.DeregisterRequestType,
		&raftstore.DeregisterRequest{Node: a.cfg.Node, ServiceID: id}); err != nil {
		a.logger.Warn("service removed locally; catalog sync will retry", "service", id, "error", err)
		a.triggerSync()
	}
	return true, nil
}

// LocalServices are the services registered with this agent.
func (a *Agent) LocalServices() []*raftstore.Service {
	svcs, _ := a.local.snapshot()
	return svcs
}

// LocalChecks are the checks registered with this agent.
func (a *Agent) LocalChecks() []*raftstore.HealthCheck {
	_, checks := a.local.snapshot()
	return checks
}
