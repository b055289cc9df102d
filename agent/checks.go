package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/beacon-dns/beacon/adminapi"
	"github.com/beacon-dns/beacon/healthcheck"
	"github.com/beacon-dns/beacon/state"
)

// The agent's checks: each local check with a definition runs in the
// healthcheck monitor; its results land in the local state, and a status
// change is pushed to the catalog at once (output-only changes wait for
// the next full sync, as Consul defers them). Maintenance mode is a
// critical check of its own, as in Consul.

// checkRunner runs the agent's checks (*healthcheck.Monitor).
type checkRunner interface {
	Add(checkID, typ string, def state.CheckDefinition, initial string) error
	Remove(checkID string)
	UpdateTTL(checkID, status, output string) error
	Stop()
}

// The adminapi check endpoints' backend.
var _ adminapi.Checks = (*Agent)(nil)

const (
	nodeMaintenanceID = "_node_maintenance"
	// Consul's reason when none is given.
	defaultNodeMaintenanceReason    = "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
	defaultServiceMaintenanceReason = "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
	// reapInterval is how often services critical for longer than their
	// DeregisterCriticalServiceAfter are looked for.
	reapInterval = 10 * time.Second
)

// runs reports whether a check has something to run (maintenance checks and
// checks registered with a status only do not).
func runs(c *state.HealthCheck) bool {
	switch c.Type {
	case "http", "tcp", "ttl", "grpc", "script":
		return true
	}
	return false
}

func newCheckRunner(a *Agent) checkRunner {
	return healthcheck.New(healthcheck.Config{
		Logger:             a.logger.Named("checks"),
		Notify:             a.onCheckResult,
		EnableScriptChecks: a.cfg.EnableScriptChecks,
	})
}

// startChecks starts the runners of the checks restored from data_dir.
func (a *Agent) startChecks() {
	_, checks := a.local.Snapshot()
	for _, c := range checks {
		if !runs(c) {
			continue
		}
		if err := a.checks.Add(c.CheckID, c.Type, c.Definition, c.Status); err != nil {
			a.logger.Error("cannot run a restored check", "check", c.CheckID, "error", err)
		}
	}
}

// startRunners starts checks' runners, or none when one cannot run (a bad
// definition, a script check without enable_script_checks): that is the
// caller's bad input.
func (a *Agent) startRunners(checks []*state.HealthCheck) error {
	var started []string
	for _, c := range checks {
		if !runs(c) {
			continue
		}
		if err := a.checks.Add(c.CheckID, c.Type, c.Definition, c.Status); err != nil {
			for _, id := range started {
				a.checks.Remove(id)
			}
			return badCheck(c.CheckID, err)
		}
		started = append(started, c.CheckID)
	}
	return nil
}

// errBadCheck is an error in a check definition the runner refused.
type errBadCheck struct{ err error }

func (e errBadCheck) Error() string { return e.err.Error() }
func (e errBadCheck) Unwrap() error { return e.err }

func badCheck(id string, err error) error {
	return errBadCheck{fmt.Errorf("%w: check %q: %v", state.ErrInvalidRegistration, id, err)}
}

// onCheckResult is the monitor's report of a check's new status or output.
func (a *Agent) onCheckResult(id, status, output string) {
	found, changed, err := a.local.SetResult(id, status, output)
	if err != nil {
		a.logger.Warn("persisting a check's status", "check", id, "error", err)
	}
	if found && changed {
		a.logger.Debug("check status changed", "check", id, "status", status)
		a.triggerSync()
	}
}

// AddCheck registers a check of this agent and pushes it to the catalog.
func (a *Agent) AddCheck(c *state.HealthCheck) error {
	if c.ServiceID != "" && !a.local.HasService(c.ServiceID) {
		return fmt.Errorf("check %q: %w %q", c.CheckID, adminapi.ErrUnknownService, c.ServiceID)
	}
	if err := a.startRunners([]*state.HealthCheck{c}); err != nil {
		return err
	}
	if err := a.local.AddCheck(c); err != nil {
		if errors.Is(err, healthcheck.ErrUnknownService) {
			err = fmt.Errorf("%w: %w", adminapi.ErrUnknownService, err)
		}
		if runs(c) {
			a.checks.Remove(c.CheckID)
		}
		return err
	}
	a.triggerSync()
	return nil
}

// RemoveCheck removes a local check and its catalog entry.
func (a *Agent) RemoveCheck(id string) (bool, error) {
	ok, err := a.local.RemoveCheck(id)
	if err != nil || !ok {
		return ok, err
	}
	a.checks.Remove(id)
	if err := a.sync.DeregisterCheck(id); err != nil {
		a.logger.Warn("check removed locally; catalog sync will retry", "check", id, "error", err)
		a.triggerSync()
	}
	return true, nil
}

// UpdateTTL sets a TTL check's status and output.
func (a *Agent) UpdateTTL(id, status, output string) error {
	c, ok := a.local.Check(id)
	if !ok {
		return fmt.Errorf("check %q: %w", id, adminapi.ErrUnknownCheck)
	}
	if c.Type != "ttl" {
		return fmt.Errorf("check %q: %w", id, adminapi.ErrNotTTL)
	}
	if err := a.checks.UpdateTTL(id, status, output); err != nil {
		if errors.Is(err, healthcheck.ErrUnknownCheck) {
			return fmt.Errorf("check %q: %w", id, adminapi.ErrUnknownCheck)
		}
		return err
	}
	return nil
}

// NodeMaintenance puts the node in maintenance mode or takes it out.
func (a *Agent) NodeMaintenance(enable bool, reason string) error {
	if !enable {
		_, err := a.RemoveCheck(nodeMaintenanceID)
		return err
	}
	if reason == "" {
		reason = defaultNodeMaintenanceReason
	}
	return a.AddCheck(&state.HealthCheck{CheckID: nodeMaintenanceID, Name: "Node Maintenance Mode",
		Notes: reason, Status: state.HealthCritical, Type: "maintenance"})
}

// ServiceMaintenance does the same for one local service.
func (a *Agent) ServiceMaintenance(serviceID string, enable bool, reason string) (bool, error) {
	if !a.local.HasService(serviceID) {
		return false, nil
	}
	if !enable {
		_, err := a.RemoveCheck(healthcheck.ServiceMaintenanceID(serviceID))
		return true, err
	}
	if reason == "" {
		reason = defaultServiceMaintenanceReason
	}
	var svc *state.Service
	for _, s := range a.local.Services() {
		if s.ID == serviceID {
			svc = s
		}
	}
	c := &state.HealthCheck{CheckID: healthcheck.ServiceMaintenanceID(serviceID), Name: "Service Maintenance Mode",
		Notes: reason, Status: state.HealthCritical, Type: "maintenance", ServiceID: serviceID}
	if svc != nil {
		c.ServiceName, c.ServiceTags = svc.Service, svc.Tags
	}
	return true, a.AddCheck(c)
}

// reapLoop deregisters services whose check has been critical for longer
// than its DeregisterCriticalServiceAfter.
func (a *Agent) reapLoop() {
	defer a.wg.Done()
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			for _, id := range a.local.ExpiredCritical(now) {
				a.logger.Info("deregistering a service critical for longer than its DeregisterCriticalServiceAfter", "service", id)
				if _, err := a.RemoveService(id); err != nil {
					a.logger.Warn("deregistering critical service", "service", id, "error", err)
				}
			}
		}
	}
}
