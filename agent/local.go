package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/beacon-dns/beacon/raftstore"
)

// localState is what this agent registered for its own node: the truth that
// anti-entropy makes the catalog agree with. It is kept in data_dir so the
// registrations survive a restart.
type localState struct {
	path string

	mu       sync.Mutex
	services map[string]*raftstore.Service
	checks   map[string]*raftstore.HealthCheck
}

type localFile struct {
	Services []*raftstore.Service     `json:"Services"`
	Checks   []*raftstore.HealthCheck `json:"Checks"`
}

func loadLocalState(path string) (*localState, error) {
	l := &localState{path: path, services: map[string]*raftstore.Service{}, checks: map[string]*raftstore.HealthCheck{}}
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
	for _, c := range f.Checks {
		l.checks[c.CheckID] = c
	}
	return l, nil
}

// persistLocked writes the state out; the caller holds mu.
func (l *localState) persistLocked() error {
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
	return writeFileSync(l.path, b)
}

// addService adds or replaces a service and its checks, and persists.
func (l *localState) addService(svc *raftstore.Service, checks []*raftstore.HealthCheck) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	prevSvc := l.services[svc.ID]
	prevChecks := map[string]*raftstore.HealthCheck{}
	for _, c := range checks {
		prevChecks[c.CheckID] = l.checks[c.CheckID]
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
		return err
	}
	return nil
}

// removeService removes a service and its checks; false if it was not there.
func (l *localState) removeService(id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	svc, ok := l.services[id]
	if !ok {
		return false, nil
	}
	delete(l.services, id)
	removed := map[string]*raftstore.HealthCheck{}
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
		return false, err
	}
	return true, nil
}

// snapshot returns copies of the services and checks.
func (l *localState) snapshot() ([]*raftstore.Service, []*raftstore.HealthCheck) {
	l.mu.Lock()
	defer l.mu.Unlock()
	svcs := make([]*raftstore.Service, 0, len(l.services))
	for _, s := range l.services {
		c := *s
		svcs = append(svcs, &c)
	}
	checks := make([]*raftstore.HealthCheck, 0, len(l.checks))
	for _, c := range l.checks {
		cc := *c
		checks = append(checks, &cc)
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].ID < svcs[j].ID })
	sort.Slice(checks, func(i, j int) bool { return checks[i].CheckID < checks[j].CheckID })
	return svcs, checks
}

// writeFileSync replaces path atomically and durably: write a temporary file,
// fsync it, rename it over path, fsync the directory.
func writeFileSync(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
