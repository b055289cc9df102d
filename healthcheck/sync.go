package healthcheck

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
)

// Anti-entropy: the agent's local services and checks are the truth for its
// node. They are pushed to the catalog on every change, and a full
// comparison runs at start-up, whenever a sync failed, and every
// FullSyncInterval, so a catalog that drifted (a lost write, a restore) is
// repaired.
const (
	FullSyncInterval = time.Minute
	retryInterval    = time.Second
)

// Catalog is where the Syncer writes: Raft, through the agent.
type Catalog interface {
	Apply(t state.MessageType, msg any) (uint64, error)
	// Leader is "" while no leader is known: no sync is tried then.
	Leader() string
}

// Syncer keeps the catalog's view of one node equal to a Local.
type Syncer struct {
	local   *Local
	store   *state.Store
	catalog Catalog
	// node is the node's own registration, without checks: its
	// serfHealth is the leader's, from gossip.
	node   func() *state.RegisterRequest
	keep   func(serviceID string) bool
	logger hclog.Logger
	now    chan struct{}
}

// SyncConfig is what NewSyncer needs.
type SyncConfig struct {
	Local   *Local
	Store   *state.Store // the local replica, read to compare
	Catalog Catalog
	Node    func() *state.RegisterRequest
	// Keep names the catalog services of this node that are not the
	// agent's own but someone else's to keep (the consul service the
	// leader puts on servers); nil keeps none.
	Keep   func(serviceID string) bool
	Logger hclog.Logger
}

// NewSyncer returns a Syncer; Run drives it.
func NewSyncer(cfg SyncConfig) *Syncer {
	keep := cfg.Keep
	if keep == nil {
		keep = func(string) bool { return false }
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Syncer{local: cfg.Local, store: cfg.Store, catalog: cfg.Catalog, node: cfg.Node, keep: keep,
		logger: logger, now: make(chan struct{}, 1)}
}

// Run syncs at once, then on every Trigger and every FullSyncInterval (with
// jitter), retrying failed syncs, until stop closes.
func (s *Syncer) Run(stop <-chan struct{}) {
	wait := time.Duration(0)
	for {
		select {
		case <-stop:
			return
		case <-s.now:
		case <-time.After(wait):
		}
		if err := s.FullSync(); err != nil {
			s.logger.Debug("anti-entropy sync failed; will retry", "error", err)
			wait = retryInterval
			continue
		}
		// Spread the periodic syncs of many agents over time.
		wait = FullSyncInterval + rand.N(FullSyncInterval/4)
	}
}

// Trigger asks for a full sync soon.
func (s *Syncer) Trigger() {
	select {
	case s.now <- struct{}{}:
	default:
	}
}

// FullSync makes the catalog's view of the node equal to the local state,
// writing only what differs.
func (s *Syncer) FullSync() error {
	if s.catalog.Leader() == "" {
		return state.ErrNoLeader
	}
	reg := s.node()
	_, node, catalogSvcs, err := s.store.NodeServices(nil, reg.Node)
	if err != nil {
		return err
	}
	_, catalogChecks, err := s.store.NodeChecks(nil, reg.Node)
	if err != nil {
		return err
	}
	if node == nil || node.ID != reg.ID || node.Address != reg.Address {
		if _, err := s.catalog.Apply(state.RegisterRequestType, reg); err != nil {
			return fmt.Errorf("registering node: %w", err)
		}
	}
	svcs, checks := s.local.Snapshot()
	want := map[string]bool{}
	wantCheck := map[string]bool{state.SerfCheckID: true} // serfHealth is the leader's
	var nodeChecks []*state.HealthCheck
	for _, c := range checks {
		wantCheck[c.CheckID] = true
		if c.ServiceID == "" {
			nodeChecks = append(nodeChecks, c)
		}
	}
	if !checksInSync(catalogChecks, nodeChecks) {
		req := s.node()
		req.SkipNodeUpdate, req.Checks = true, nodeChecks
		if _, err := s.catalog.Apply(state.RegisterRequestType, req); err != nil {
			return fmt.Errorf("registering node checks: %w", err)
		}
	}
	for _, svc := range svcs {
		want[svc.ID] = true
		var own []*state.HealthCheck
		for _, c := range checks {
			if c.ServiceID == svc.ID {
				own = append(own, c)
			}
		}
		if serviceInSync(catalogSvcs, svc) && checksInSync(catalogChecks, own) {
			continue
		}
		if err := s.PushService(svc, own); err != nil {
			return err
		}
	}
	for _, svc := range catalogSvcs {
		if !want[svc.ID] && !s.keep(svc.ID) {
			if err := s.DeregisterService(svc.ID); err != nil {
				return err
			}
		}
	}
	for _, c := range catalogChecks {
		if !wantCheck[c.CheckID] && (c.ServiceID == "" || want[c.ServiceID]) {
			if err := s.DeregisterCheck(c.CheckID); err != nil {
				return err
			}
		}
	}
	return nil
}

// PushService registers a service and its checks in the catalog.
func (s *Syncer) PushService(svc *state.Service, checks []*state.HealthCheck) error {
	req := s.node()
	req.SkipNodeUpdate = true
	req.Check = nil
	req.Service = svc
	req.Checks = checks
	if _, err := s.catalog.Apply(state.RegisterRequestType, req); err != nil {
		return fmt.Errorf("registering service %q: %w", svc.ID, err)
	}
	return nil
}

// DeregisterService removes a service of the node from the catalog.
func (s *Syncer) DeregisterService(id string) error {
	if _, err := s.catalog.Apply(state.DeregisterRequestType,
		&state.DeregisterRequest{Node: s.node().Node, ServiceID: id}); err != nil {
		return fmt.Errorf("deregistering service %q: %w", id, err)
	}
	return nil
}

// DeregisterCheck removes a check of the node from the catalog.
func (s *Syncer) DeregisterCheck(id string) error {
	if _, err := s.catalog.Apply(state.DeregisterRequestType,
		&state.DeregisterRequest{Node: s.node().Node, CheckID: id}); err != nil {
		return fmt.Errorf("deregistering check %q: %w", id, err)
	}
	return nil
}

func serviceInSync(catalog []*state.Service, want *state.Service) bool {
	for _, s := range catalog {
		if s.ID == want.ID {
			w := *want
			w.Node = s.Node
			return state.ServiceEqual(s, &w)
		}
	}
	return false
}

func hasCheck(catalog []*state.HealthCheck, want *state.HealthCheck) bool {
	for _, c := range catalog {
		if c.CheckID == want.CheckID {
			return c.Status == want.Status && c.Name == want.Name && c.ServiceID == want.ServiceID &&
				c.Output == want.Output && c.Notes == want.Notes && c.Type == want.Type &&
				reflect.DeepEqual(c.Definition, want.Definition)
		}
	}
	return false
}

func checksInSync(catalog, want []*state.HealthCheck) bool {
	for _, w := range want {
		if !hasCheck(catalog, w) {
			return false
		}
	}
	return true
}
