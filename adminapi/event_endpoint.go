package adminapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/beacon-dns/beacon/acl"
)

// /v1/event: Consul's user events. They travel by gossip, not Raft: fire
// hands the event to this agent's gossip pool, which delivers it to every
// agent of the datacenter; list reads what this agent kept of them (each
// agent its own view, with no order between agents and no promise of
// delivery, as in Consul).

// Events is what the user event endpoints need of the running agent.
type Events interface {
	// FireEvent fires ev to the datacenter's agents, filling in its ID
	// and Version. A bad event (a reserved name, a filter that is not a
	// regexp, a tag filter without a service filter) is ErrInvalid, one
	// too large for gossip ErrTooLarge; nothing is fired then.
	FireEvent(ev *UserEvent) error
	// UserEvents are the events this agent kept (its last 256, oldest
	// first), and a channel closed when it keeps another.
	UserEvents() ([]UserEvent, <-chan struct{})
}

// UserEvent is a user event in Consul's shape (its Payload is base64 in
// JSON, as Consul's []byte).
type UserEvent struct {
	ID            string
	Name          string
	Payload       []byte
	NodeFilter    string
	ServiceFilter string
	TagFilter     string
	Version       int
	LTime         uint64
}

// maxEventPayload bounds what fire reads of a payload: gossip carries at
// most 512 bytes of an event, name and filters included, so no larger
// payload can fit. Whether one that passes fits with its name and filters
// is the gossip pool's to say (ErrTooLarge).
const maxEventPayload = 512

func (s *Server) eventRoutes(mux *http.ServeMux, ev Events) {
	// The name is the rest of the path, slashes and all, as Consul takes it.
	mux.HandleFunc("PUT /v1/event/fire/{name...}", func(w http.ResponseWriter, r *http.Request) {
		s.eventFire(w, r, ev)
	})
	mux.HandleFunc("GET /v1/event/list", func(w http.ResponseWriter, r *http.Request) {
		s.eventList(w, r, ev)
	})
}

func (s *Server) eventFire(w http.ResponseWriter, r *http.Request, events Events) {
	name := r.PathValue("name")
	if name == "" {
		s.writeErr(w, badRequest("Missing name"))
		return
	}
	// Events of another datacenter go through its servers, which the
	// general forwarding between datacenters will do; not yet.
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	if !authz(r).EventWrite(name) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	payload, err := readBodyUpTo(r, maxEventPayload)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	q := r.URL.Query()
	ev := &UserEvent{Name: name, NodeFilter: q.Get("node"), ServiceFilter: q.Get("service"), TagFilter: q.Get("tag")}
	if len(payload) > 0 {
		ev.Payload = payload // none is null, as Consul answers it
	}
	if err := events.FireEvent(ev); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, ev)
}

// eventList answers /v1/event/list: this agent's events, by ?name= when
// given, less those the token may not read. A blocking list (?index=)
// waits while the index is the one given, not for a greater one: the index
// is a hash of the last event's ID (eventIndex), without order. Like
// Consul's, it ignores ?dc= and the consistency modes (the events are this
// agent's own), and ?node=, ?service= and ?tag=, which Consul's
// documentation lists and its agents do not read.
func (s *Server) eventList(w http.ResponseWriter, r *http.Request, events Events) {
	opts, err := parseQueryOptions(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	name := r.URL.Query().Get("name")
	a := authz(r)
	ctx, cancel := blockingContext(r.Context(), opts)
	defer cancel()
	for {
		all, changed := events.UserEvents()
		list, dropped := visibleEvents(all, name, a)
		idx := eventIndex(list)
		if idx != opts.minIndex {
			filtered(w, dropped)
			s.writeResult(w, idx, list)
			return
		}
		if s.waiting != nil {
			s.waiting()
		}
		select {
		case <-changed:
		case <-ctx.Done(): // the wait is over (or the client went away)
			filtered(w, dropped)
			s.writeResult(w, idx, list)
			return
		}
	}
}

// visibleEvents are the events named name (any without a name) that a may
// read, and whether it may not read some of them. The name filter comes
// first, so that the answer says it dropped something only when the token
// hid an event the caller asked for, as Consul does.
func visibleEvents(all []UserEvent, name string, a *acl.Authorizer) ([]UserEvent, bool) {
	named := all
	if name != "" {
		named, _ = keep(all, func(e UserEvent) bool { return e.Name == name })
	}
	list, dropped := keep(named, func(e UserEvent) bool { return a.EventRead(e.Name) })
	if list == nil {
		list = []UserEvent{}
	}
	return list, dropped
}

// eventIndex is a list's X-Consul-Index, as Consul makes it: gossip gives
// events no order to number them by, so it is the last event's ID, a
// UUID, folded to 64 bits (its two halves xored), which the official
// client's Event().IDToIndex computes as well; 1 when there is no event,
// so that a watch blocks rather than spins.
func eventIndex(events []UserEvent) uint64 {
	if len(events) == 0 {
		return 1
	}
	digits := strings.ReplaceAll(events[len(events)-1].ID, "-", "")
	if len(digits) != 32 {
		return 1 // not a UUID: the gossip pool keeps none such
	}
	hi, err1 := strconv.ParseUint(digits[:16], 16, 64)
	lo, err2 := strconv.ParseUint(digits[16:], 16, 64)
	if err1 != nil || err2 != nil {
		return 1
	}
	return max(hi^lo, 1) // 0 would read as "do not block"
}
