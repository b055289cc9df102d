package gossip

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/serf/serf"
)

// User events are Consul's (`consul event`, /v1/event/fire): a name, an
// opaque payload and optional filters, fired into the LAN pool as a serf
// user event and delivered, best effort and in no particular order, to
// every agent of the datacenter. Each agent keeps the last
// userEventBufferSize events that passed its filters (the node filter
// against its own name, the service and tag filters against its local
// services), as Consul's agents do, for /v1/event/list and watches.

// UserEventVersion is the version of the event format this agent fires and
// understands (Consul's 1).
const UserEventVersion = 1

// MaxUserEventBytes is the most gossip carries of one user event: serf's
// UserEventSizeLimit at its default, for the event as serf encodes it,
// name, payload and filters together.
const MaxUserEventBytes = 512

const (
	// userEventPrefix marks the serf user events that are Consul user
	// events (serf's name space is shared with anything else that might
	// use serf events), as Consul marks them.
	userEventPrefix = "consul:event:"
	// userEventBufferSize is how many events an agent keeps (Consul's 256).
	userEventBufferSize = 256
	// serfEventOverhead bounds what serf adds around our name and payload
	// when it encodes a user event: a message type byte and the msgpack map
	// of its messageUserEvent {LTime, Name, Payload, CC}: 1 map header, the
	// four keys (6+5+8+3), a uint64 (at most 9), two string headers (at
	// most 3 each) and a bool (1). Checking against it keeps serf from
	// refusing an event after ours accepted it.
	serfEventOverhead = 1 + 1 + 6 + 9 + 5 + 3 + 8 + 3 + 3 + 1
)

// Errors of FireUserEvent for the caller's bad input: nothing was fired.
var (
	ErrInvalidUserEvent  = errors.New("invalid user event")
	ErrUserEventTooLarge = errors.New("user event too large")
)

// UserEvent is one user event, in Consul's shape.
type UserEvent struct {
	ID            string // a UUID, unique per event; it is what /v1/event/list's index is made of
	Name          string
	Payload       []byte
	NodeFilter    string // regexp: only agents whose node name matches keep the event
	ServiceFilter string // regexp: only agents with a service whose name or ID matches
	TagFilter     string // regexp: with ServiceFilter, that service must have a matching tag
	Version       int
	// LTime is serf's Lamport time of the event, set on delivery (0 in
	// what FireUserEvent returns, as in Consul).
	LTime uint64
}

// wireUserEvent is what a user event's serf payload carries: the name
// travels as the serf event's (after userEventPrefix) and the Lamport time
// is serf's, so neither is repeated; short keys leave room for the payload.
type wireUserEvent struct {
	ID            string `codec:"id"`
	Payload       []byte `codec:"p,omitempty"`
	NodeFilter    string `codec:"nf,omitempty"`
	ServiceFilter string `codec:"sf,omitempty"`
	TagFilter     string `codec:"tf,omitempty"`
	Version       int    `codec:"v"`
}

// LocalService is one of the agent's services as a user event's filters
// see it.
type LocalService struct {
	ID, Name string
	Tags     []string
}

// FireUserEvent checks ev, sets its Version, and fires it into the pool;
// this agent gets it too, through gossip's delivery, as every other does.
// The caller gives ev its ID (a UUID). A bad event (no name, a reserved
// name, a filter that is not a regexp, a tag filter without a service
// filter) is ErrInvalidUserEvent, one too large for gossip
// ErrUserEventTooLarge; nothing is fired then.
func (p *Pool) FireUserEvent(ev *UserEvent) error {
	if p.closed.Load() {
		return ErrShutdown
	}
	if err := validUUID(ev.ID); err != nil {
		return err
	}
	if _, err := compileFilters(ev); err != nil {
		return err
	}
	ev.Version = UserEventVersion
	ev.LTime = 0
	name, payload, err := encodeUserEvent(ev)
	if err != nil {
		return err
	}
	if size := gossipSize(name, payload); size > MaxUserEventBytes {
		return fmt.Errorf("%w: %d bytes with its name and filters as gossip sends it, and gossip carries at most %d",
			ErrUserEventTooLarge, size, MaxUserEventBytes)
	}
	if err := p.serf.UserEvent(name, payload, false); err != nil {
		return fmt.Errorf("gossip: firing user event %q: %w", ev.Name, err)
	}
	p.logger.Debug("fired user event", "name", ev.Name, "id", ev.ID)
	return nil
}

// UserEvents returns the events this agent kept, oldest first, and a
// channel closed when another is kept: a blocking reader takes both at
// once, so it cannot miss an event between them. The events' Payloads are
// shared: read them, do not change them.
func (p *Pool) UserEvents() ([]UserEvent, <-chan struct{}) { return p.userEvents.list() }

// receiveUserEvent keeps a user event serf delivered, if it is one of ours,
// well formed, and its filters select this agent.
func (p *Pool) receiveUserEvent(se serf.UserEvent) {
	name, ok := strings.CutPrefix(se.Name, userEventPrefix)
	if !ok {
		return // not a Consul user event
	}
	ev, err := decodeUserEvent(name, se.Payload)
	if err == nil {
		err = validUUID(ev.ID)
	}
	var f userEventFilters
	if err == nil {
		f, err = compileFilters(&ev)
	}
	if err != nil {
		p.logger.Warn("dropping a malformed user event", "name", name, "error", err)
		return
	}
	ev.LTime = uint64(se.LTime)
	if ev.Version > UserEventVersion {
		p.logger.Warn("user event of a newer version: it may use features this agent does not know",
			"name", ev.Name, "id", ev.ID, "version", ev.Version)
	}
	if !f.selects(p.cfg.NodeName, p.localServices) {
		p.logger.Debug("user event filtered out", "name", ev.Name, "id", ev.ID)
		return
	}
	p.logger.Debug("user event", "name", ev.Name, "id", ev.ID, "ltime", ev.LTime)
	p.userEvents.add(ev)
}

func (p *Pool) localServices() []LocalService {
	if p.cfg.LocalServices == nil {
		return nil
	}
	return p.cfg.LocalServices()
}

// userEventFilters are an event's filters, compiled; nil matches anything.
type userEventFilters struct {
	node, service, tag *regexp.Regexp
}

// compileFilters checks ev's name and filters and compiles the filters.
func compileFilters(ev *UserEvent) (userEventFilters, error) {
	var f userEventFilters
	switch {
	case ev.Name == "":
		return f, fmt.Errorf("%w: missing name", ErrInvalidUserEvent)
	case !utf8.ValidString(ev.Name):
		// JSON would answer another name than the one kept.
		return f, fmt.Errorf("%w: name %q is not UTF-8", ErrInvalidUserEvent, ev.Name)
	case strings.HasPrefix(ev.Name, "_"):
		// Consul's own events (remote exec) have these names.
		return f, fmt.Errorf("%w: event names starting with an underscore are reserved", ErrInvalidUserEvent)
	case ev.TagFilter != "" && ev.ServiceFilter == "":
		return f, fmt.Errorf("%w: a tag filter needs a service filter", ErrInvalidUserEvent)
	}
	for _, c := range []struct {
		what, expr string
		re         **regexp.Regexp
	}{{"node", ev.NodeFilter, &f.node}, {"service", ev.ServiceFilter, &f.service}, {"tag", ev.TagFilter, &f.tag}} {
		if c.expr == "" {
			continue
		}
		re, err := regexp.Compile(c.expr)
		if err != nil {
			return f, fmt.Errorf("%w: invalid %s filter: %v", ErrInvalidUserEvent, c.what, err)
		}
		*c.re = re
	}
	return f, nil
}

// selects reports whether an agent named node with services is one the
// event is for: its name matches the node filter, and one of its services
// matches the service filter by name or ID (Consul's documentation says
// name, its agents match the ID; both, as the two agree for the usual
// ID-is-name service) with, under a tag filter, a tag that matches it.
// The services are listed only for a service filter.
func (f userEventFilters) selects(node string, services func() []LocalService) bool {
	if f.node != nil && !f.node.MatchString(node) {
		return false
	}
	if f.service == nil {
		return true
	}
	for _, s := range services() {
		if !f.service.MatchString(s.Name) && !f.service.MatchString(s.ID) {
			continue
		}
		if f.tag == nil {
			return true
		}
		for _, t := range s.Tags {
			if f.tag.MatchString(t) {
				return true
			}
		}
	}
	return false
}

// validUUID checks that id has a UUID's form (8-4-4-4-12 hex digits):
// /v1/event/list makes its index of it.
func validUUID(id string) error {
	ok := len(id) == 36
	for i := 0; ok && i < len(id); i++ {
		switch c := id[i]; i {
		case 8, 13, 18, 23:
			ok = c == '-'
		default:
			ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
		}
	}
	if !ok {
		return fmt.Errorf("%w: ID %q is not a UUID", ErrInvalidUserEvent, id)
	}
	return nil
}

// gossipSize is at most what serf makes of a user event with name and
// payload.
func gossipSize(name string, payload []byte) int { return serfEventOverhead + len(name) + len(payload) }

var msgpackHandle = &codec.MsgpackHandle{}

// encodeUserEvent is ev as serf's event name and payload.
func encodeUserEvent(ev *UserEvent) (string, []byte, error) {
	var out []byte
	w := wireUserEvent{ID: ev.ID, Payload: ev.Payload, NodeFilter: ev.NodeFilter, ServiceFilter: ev.ServiceFilter,
		TagFilter: ev.TagFilter, Version: ev.Version}
	if err := codec.NewEncoderBytes(&out, msgpackHandle).Encode(&w); err != nil {
		return "", nil, fmt.Errorf("gossip: encoding user event %q: %w", ev.Name, err)
	}
	return userEventPrefix + ev.Name, out, nil
}

// decodeUserEvent is the event named name whose serf payload is payload.
func decodeUserEvent(name string, payload []byte) (UserEvent, error) {
	var w wireUserEvent
	if err := codec.NewDecoderBytes(payload, msgpackHandle).Decode(&w); err != nil {
		return UserEvent{}, fmt.Errorf("decoding user event %q: %w", name, err)
	}
	return UserEvent{ID: w.ID, Name: name, Payload: w.Payload, NodeFilter: w.NodeFilter,
		ServiceFilter: w.ServiceFilter, TagFilter: w.TagFilter, Version: w.Version}, nil
}

// userEventLog is the ring of the last userEventBufferSize events kept,
// with a channel closed (and replaced) whenever one is added.
type userEventLog struct {
	mu      sync.Mutex
	ring    [userEventBufferSize]UserEvent
	next    int // where the next event goes
	n       int // how many the ring holds
	changed chan struct{}
}

func newUserEventLog() *userEventLog { return &userEventLog{changed: make(chan struct{})} }

// add keeps ev, dropping the oldest when the ring is full.
func (l *userEventLog) add(ev UserEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = ev
	l.next = (l.next + 1) % len(l.ring)
	l.n = min(l.n+1, len(l.ring))
	close(l.changed)
	l.changed = make(chan struct{})
}

// list is the events kept, oldest first, and the channel the next add
// closes.
func (l *userEventLog) list() ([]UserEvent, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]UserEvent, 0, l.n)
	for i := l.next - l.n; i < l.next; i++ {
		out = append(out, l.ring[(i+len(l.ring))%len(l.ring)])
	}
	return out, l.changed
}
