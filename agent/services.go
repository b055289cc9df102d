package agent

import "github.com/beacon-dns/beacon/state"

// The agent endpoints' service operations: the local state first (the
// truth), the check runners, then the catalog. A failed push is left to
// anti-entropy, as in Consul.

// nodeRegistration is this agent's node as it registers it; its serfHealth
// is the leader's, from gossip (members.go).
func (a *Agent) nodeRegistration() *state.RegisterRequest {
	return &state.RegisterRequest{
		Datacenter: a.cfg.Datacenter, ID: a.nodeID, Node: a.cfg.Node, Address: a.cfg.Bind,
		TaggedAddresses: map[string]string{"lan": a.cfg.Bind, "lan_ipv4": a.cfg.Bind, "wan": a.cfg.Bind, "wan_ipv4": a.cfg.Bind},
		NodeMeta:        map[string]string{},
	}
}

// triggerSync asks anti-entropy for a full sync soon.
func (a *Agent) triggerSync() { a.sync.Trigger() }

// AddService registers a service (and its checks) on this agent's node.
func (a *Agent) AddService(svc *state.Service, checks []*state.HealthCheck) error {
	if err := a.startRunners(checks); err != nil {
		return err
	}
	dropped, err := a.local.AddService(svc, checks)
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
	if err := a.sync.PushService(svc, checks); err != nil {
		a.logger.Warn("service registered locally; catalog sync will retry", "service", svc.ID, "error", err)
		a.triggerSync()
	}
	return nil
}

// RemoveService deregisters a local service; false if there was none.
func (a *Agent) RemoveService(id string) (bool, error) {
	ok, checkIDs, err := a.local.RemoveService(id)
	if err != nil || !ok {
		return ok, err
	}
	for _, cid := range checkIDs {
		a.checks.Remove(cid)
	}
	if err := a.sync.DeregisterService(id); err != nil {
		a.logger.Warn("service removed locally; catalog sync will retry", "service", id, "error", err)
		a.triggerSync()
	}
	return true, nil
}

// LocalServices are the services registered with this agent.
func (a *Agent) LocalServices() []*state.Service { return a.local.Services() }

// LocalChecks are the checks registered with this agent.
func (a *Agent) LocalChecks() []*state.HealthCheck {
	_, checks := a.local.Snapshot()
	return checks
}
