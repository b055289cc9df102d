package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/beacon-dns/beacon/internal/atomicfile"
	"github.com/beacon-dns/beacon/state"
)

// ErrUnknownService is returned for a check of a service the agent does not
// have.
var ErrUnknownService = errors.New("unknown service")

// Local is what this agent registered for its own node, its services and
// checks with their latest results: the truth that anti-entropy (Syncer)
// makes the catalog agree with. It is kept in data_dir so the registrations
// survive a restart.
type Local struct {
	path string

	mu       sync.Mutex
	services map[string]*state.Service
	checks   map[string]*state.HealthCheck
	// criticalSince is when each critical check turned critical (in this
	// run), for deregister_critical_service_after.
	criticalSince map[string]time.Time
}

type localFile struct {
	Services []*state.Service     `json:"Services"`
	Checks   []*state.HealthCheck `json:"Checks"`
}

// LoadLocal reads the local state kept at path (none yet is an empty state).
func LoadLocal(path string) (*Local, error) {
	l := &Local{path: path, services: map[string]*state.Service{}, checks: map[string]*state.HealthCheck{},
		criticalSince: map[string]time.Time{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading local services: %w", err)
	}
	var f localFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading local services from %s: %w", path, err)
	}
	for _, s := range f.Services {
		l.services[s.ID] = s
	}
	now := time.Now()
	for _, c := range f.Checks {
		l.checks[c.CheckID] = c
		if c.Status == state.HealthCritical {
			l.criticalSince[c.CheckID] = now
		}
	}
	return l, nil
}

// persistLocked writes the state out; the caller holds mu.
func (l *Local) persistLocked() error {
	var f localFile
	for _, s := range l.services {
		f.Services = append(f.Services, s)
	}
	for _, c := range l.checks {
		f.Checks = append(f.Checks, c)
	}
	sort.Slice(f.Services, func(i, j int) bool { return f.Services[i].ID < f.Services[j].ID })
	sort.Slice(f.Checks, func(i, j int) bool { return f.Checks[i].CheckID < f.Checks[j].CheckID })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding local services: %w", err)
	}
	return atomicfile.WriteFile(l.path, b, 0o600)
}

// AddService adds or replaces a service and its checks, and persists. The
// service's earlier checks that checks does not name are dropped (but for a
// maintenance check, which outlives re-registration); their IDs are
// returned so their runners can stop.
func (l *Local) AddService(svc *state.Service, checks []*state.HealthCheck) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prevSvc := l.services[svc.ID]
	prevChecks := map[string]*state.HealthCheck{}
	keep := map[string]bool{ServiceMaintenanceID(svc.ID): true}
	for _, c := range checks {
		prevChecks[c.CheckID] = l.checks[c.CheckID]
		keep[c.CheckID] = true
	}
	var dropped []string
	for id, c := range l.checks {
		if c.ServiceID == svc.ID && !keep[id] {
			prevChecks[id] = c
			dropped = append(dropped, id)
			delete(l.checks, id)
		}
	}
	l.services[svc.ID] = svc
	for _, c := range checks {
		l.checks[c.CheckID] = c
	}
	if err := l.persistLocked(); err != nil {
		// Not on disk, so not registered: put things back as they were.
		if prevSvc == nil {
			delete(l.services, svc.ID)
		} else {
			l.services[svc.ID] = prevSvc
		}
		for id, c := range prevChecks {
			if c == nil {
				delete(l.checks, id)
			} else {
				l.checks[id] = c
			}
		}
		return nil, err
	}
	for _, c := range checks {
		l.noteStatusLocked(c.CheckID, c.Status)
	}
	return dropped, nil
}

// noteStatusLocked keeps criticalSince for check id now at status.
func (l *Local) noteStatusLocked(id, status string) {
	if status != state.HealthCritical {
		delete(l.criticalSince, id)
	} else if _, ok := l.criticalSince[id]; !ok {
		l.criticalSince[id] = time.Now()
	}
}

// AddCheck adds or replaces a check, and persists.
func (l *Local) AddCheck(c *state.HealthCheck) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.ServiceID != "" {
		if _, ok := l.services[c.ServiceID]; !ok {
			return fmt.Errorf("check %q: %w %q", c.CheckID, ErrUnknownService, c.ServiceID)
		}
	}
	prev := l.checks[c.CheckID]
	l.checks[c.CheckID] = c
	if err := l.persistLocked(); err != nil {
		if prev == nil {
			delete(l.checks, c.CheckID)
		} else {
			l.checks[c.CheckID] = prev
		}
		return err
	}
	l.noteStatusLocked(c.CheckID, c.Status)
	return nil
}

// RemoveCheck removes a check; false if it was not there.
func (l *Local) RemoveCheck(id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.checks[id]
	if !ok {
		return false, nil
	}
	delete(l.checks, id)
	if err := l.persistLocked(); err != nil {
		l.checks[id] = c
		return false, err
	}
	delete(l.criticalSince, id)
	return true, nil
}

// Check returns a copy of check id.
func (l *Local) Check(id string) (state.HealthCheck, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.checks[id]
	if !ok {
		return state.HealthCheck{}, false
	}
	return *c, true
}

// HasService reports whether service id is registered locally.
func (l *Local) HasService(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.services[id]
	return ok
}

// SetResult records a check's new status and output. A status change is
// persisted (so a restart resumes from it rather than from critical);
// output alone is not, being cheap to recompute and frequent. changed
// reports a status change; found is false for an unknown check.
func (l *Local) SetResult(id, status, output string) (found, changed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.checks[id]
	if !ok {
		return false, false, nil
	}
	if c.Status == status && c.Output == output {
		return true, false, nil
	}
	nc := *c
	nc.Status, nc.Output = status, output
	l.checks[id] = &nc
	l.noteStatusLocked(id, status)
	if c.Status == status {
		return true, false, nil
	}
	if err := l.persistLocked(); err != nil {
		return true, true, err // kept in memory: the check did change
	}
	return true, true, nil
}

// ExpiredCritical returns the services that have a check critical for
// longer than its DeregisterCriticalServiceAfter.
func (l *Local) ExpiredCritical(now time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for id, since := range l.criticalSince {
		c := l.checks[id]
		if c == nil || c.ServiceID == "" || seen[c.ServiceID] || c.Definition.DeregisterCriticalServiceAfter == "" {
			continue
		}
		after, err := time.ParseDuration(c.Definition.DeregisterCriticalServiceAfter)
		if err != nil || after <= 0 {
			continue
		}
		if now.Sub(since) >= after {
			seen[c.ServiceID] = true
			out = append(out, c.ServiceID)
		}
	}
	sort.Strings(out)
	return out
}

// RemoveService removes a service and its checks, whose IDs it returns;
// false if it was not there.
func (l *Local) RemoveService(id string) (bool, []string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	svc, ok := l.services[id]
	if !ok {
		return false, nil, nil
	}
	delete(l.services, id)
	removed := map[string]*state.HealthCheck{}
	for cid, c := range l.checks {
		if c.ServiceID == id {
			removed[cid] = c
			delete(l.checks, cid)
		}
	}
	if err := l.persistLocked(); err != nil {
		l.services[id] = svc
		for cid, c := range removed {
			l.checks[cid] = c
		}
		return false, nil, err
	}
	ids := make([]string, 0, len(removed))
	for cid := range removed {
		ids = append(ids, cid)
		delete(l.criticalSince, cid)
	}
	sort.Strings(ids)
	return true, ids, nil
}

// Services returns copies of the services.
func (l *Local) Services() []*state.Service {
	svcs, _ := l.Snapshot()
	return svcs
}

// Snapshot returns copies of the services and checks.
func (l *Local) Snapshot() ([]*state.Service, []*state.HealthCheck) {
	l.mu.Lock()
	defer l.mu.Unlock()
	svcs := make([]*state.Service, 0, len(l.services))
	for _, s := range l.services {
		c := *s
		svcs = append(svcs, &c)
	}
	checks := make([]*state.HealthCheck, 0, len(l.checks))
	for _, c := range l.checks {
		cc := *c
		checks = append(checks, &cc)
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].ID < svcs[j].ID })
	sort.Slice(checks, func(i, j int) bool { return checks[i].CheckID < checks[j].CheckID })
	return svcs, checks
}

// ServiceMaintenanceID is the ID of a service's maintenance check, as
// Consul names it.
func ServiceMaintenanceID(serviceID string) string { return "_service_maintenance:" + serviceID }
