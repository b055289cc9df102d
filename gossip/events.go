package gossip

import (
	"strconv"
	"sync"
)

// EventType is what happened to a member.
type EventType int

// Event types. The zero value is not an event.
const (
	MemberJoin   EventType = iota + 1 // joined, or came back after failing or leaving
	MemberLeave                       // left gracefully (Status left)
	MemberFailed                      // declared dead by failure detection (Status failed)
	MemberUpdate                      // changed its metadata or address
	MemberReap                        // forgotten: failed for longer than reconnect_timeout, or left long ago
)

func (t EventType) String() string {
	switch t {
	case MemberJoin:
		return "member-join"
	case MemberLeave:
		return "member-leave"
	case MemberFailed:
		return "member-failed"
	case MemberUpdate:
		return "member-update"
	case MemberReap:
		return "member-reap"
	}
	return "event(" + strconv.Itoa(int(t)) + ")"
}

// Event is a change of one member; Member is its state after the change.
type Event struct {
	Type   EventType
	Member Member
}

// eventQueue carries events from serf's event channel to the Events channel
// without ever blocking serf, whose member events are sent with its member
// lock held (a blocked send would stop gossip and joins alike).
//
// It is an unbounded FIFO that coalesces per member: while an event for a
// member is still waiting, a newer one for the same member replaces it in
// place (a MemberUpdate after a pending MemberJoin stays a join). So:
//   - push is O(1) under a short mutex, whatever the consumer does;
//   - memory is bounded by the number of distinct members with a pending
//     event, plus the channel's buffer and the one event in flight — not by
//     how long the consumer stalls;
//   - nothing is silently lost: the consumer always gets each member's
//     latest state; only intermediate transitions of a member it has not
//     read yet are collapsed (join+failed reads as failed), which is what a
//     reconciler of the catalog needs.
//
// Dropping on a full channel would bound memory too, but would lose a
// member's failure for good until some periodic full reconcile.
type eventQueue struct {
	mu      sync.Mutex
	order   []string         // member names, oldest first
	pending map[string]Event // name → latest event not yet handed over

	wake chan struct{} // capacity 1: something was pushed
	out  chan Event
}

func newEventQueue(buffer int) *eventQueue {
	return &eventQueue{
		pending: make(map[string]Event),
		wake:    make(chan struct{}, 1),
		out:     make(chan Event, buffer),
	}
}

// push queues e. It never blocks. It reports whether e replaced a pending
// event of the same member.
func (q *eventQueue) push(e Event) (coalesced bool) {
	q.mu.Lock()
	name := e.Member.Name
	if prev, ok := q.pending[name]; ok {
		if e.Type == MemberUpdate && prev.Type == MemberJoin {
			e.Type = MemberJoin
		}
		q.pending[name] = e
		coalesced = true
	} else {
		q.order = append(q.order, name)
		q.pending[name] = e
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return coalesced
}

// pop takes the oldest pending event.
func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return Event{}, false
	}
	name := q.order[0]
	q.order[0] = ""
	q.order = q.order[1:]
	if len(q.order) == 0 {
		q.order = nil // let the backing array go
	}
	e := q.pending[name]
	delete(q.pending, name)
	return e, true
}

// len is the number of pending events (not counting the channel's buffer).
func (q *eventQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// run hands pending events to out until stop is closed, then closes out.
// An event taken from the queue is owned by run until delivered, so newer
// events of the same member queue behind it rather than merging into it.
func (q *eventQueue) run(stop <-chan struct{}) {
	defer close(q.out)
	for {
		e, ok := q.pop()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-stop:
				return
			}
		}
		select {
		case q.out <- e:
		case <-stop:
			return
		}
	}
}
