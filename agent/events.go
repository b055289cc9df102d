package agent

import (
	"errors"
	"fmt"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/adminapi"
	"github.com/beacon-dns/beacon/gossip"
)

// The user event endpoints' backend (adminapi.Events): events travel by
// the LAN pool, which keeps those meant for this agent.
var _ adminapi.Events = (*Agent)(nil)

// FireEvent fires ev into the LAN pool with a new ID.
func (a *Agent) FireEvent(ev *adminapi.UserEvent) error {
	g := gossip.UserEvent{ID: acl.NewUUID(), Name: ev.Name, Payload: ev.Payload, NodeFilter: ev.NodeFilter,
		ServiceFilter: ev.ServiceFilter, TagFilter: ev.TagFilter}
	err := a.lan.FireUserEvent(&g)
	switch {
	case errors.Is(err, gossip.ErrInvalidUserEvent):
		return fmt.Errorf("%w: %v", adminapi.ErrInvalid, err)
	case errors.Is(err, gossip.ErrUserEventTooLarge):
		return fmt.Errorf("%w: %v", adminapi.ErrTooLarge, err)
	case err != nil:
		return err
	}
	*ev = apiUserEvent(g)
	return nil
}

// UserEvents are the events the LAN pool kept for this agent.
func (a *Agent) UserEvents() ([]adminapi.UserEvent, <-chan struct{}) {
	kept, changed := a.lan.UserEvents()
	out := make([]adminapi.UserEvent, len(kept))
	for i, e := range kept {
		out[i] = apiUserEvent(e)
	}
	return out, changed
}

func apiUserEvent(e gossip.UserEvent) adminapi.UserEvent {
	return adminapi.UserEvent{ID: e.ID, Name: e.Name, Payload: e.Payload, NodeFilter: e.NodeFilter,
		ServiceFilter: e.ServiceFilter, TagFilter: e.TagFilter, Version: e.Version, LTime: e.LTime}
}

// eventServices are the local services user event filters are matched
// against.
func (a *Agent) eventServices() []gossip.LocalService {
	svcs := a.local.Services()
	out := make([]gossip.LocalService, len(svcs))
	for i, s := range svcs {
		out[i] = gossip.LocalService{ID: s.ID, Name: s.Service, Tags: s.Tags}
	}
	return out
}
