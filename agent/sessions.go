package agent

import (
	"sync"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// Session TTL timers live on the leader, as in Consul: every session with a
// TTL has a timer that a renewal restarts; when it fires, the leader
// destroys the session through Raft, which releases its locks or deletes
// its keys. A new leader starts a full timer for every session, so a
// failover only ever extends a session's life. As Consul, the timer runs
// for twice the TTL: the TTL is the promised lower bound, the slack covers
// a renewal that is late.

const sessionTTLMultiplier = 2

// sessionTimers are the leader's TTL timers.
type sessionTimers struct {
	mu      sync.Mutex
	leading bool
	timers  map[string]*time.Timer
	expire  func(id string)
}

func newSessionTimers(expire func(id string)) *sessionTimers {
	return &sessionTimers{timers: map[string]*time.Timer{}, expire: expire}
}

// touch (re)starts the timer of a session created or renewed, on the
// leader. It is called from the FSM: it must not block.
func (t *sessionTimers) touch(id, ttl string) {
	d, err := state.ParseSessionTTL(ttl)
	if err != nil || d == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.leading {
		return
	}
	t.startLocked(id, d)
}

func (t *sessionTimers) startLocked(id string, ttl time.Duration) {
	if old := t.timers[id]; old != nil {
		old.Stop()
	}
	t.timers[id] = time.AfterFunc(ttl*sessionTTLMultiplier, func() {
		t.mu.Lock()
		delete(t.timers, id)
		leading := t.leading
		t.mu.Unlock()
		if leading {
			t.expire(id)
		}
	})
}

// lead starts a timer for each of sessions (leadership gained) or, with
// nil, stops them all (lost).
func (t *sessionTimers) lead(sessions []*state.Session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, timer := range t.timers {
		timer.Stop()
		delete(t.timers, id)
	}
	t.leading = sessions != nil
	for _, s := range sessions {
		if d, err := state.ParseSessionTTL(s.TTL); err == nil && d > 0 {
			t.startLocked(s.ID, d)
		}
	}
}

// ensure starts a timer for each session of sessions that has none (after
// a snapshot restore, which brings sessions no renewal touched).
func (t *sessionTimers) ensure(sessions []*state.Session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.leading {
		return
	}
	for _, s := range sessions {
		if _, ok := t.timers[s.ID]; ok {
			continue
		}
		if d, err := state.ParseSessionTTL(s.TTL); err == nil && d > 0 {
			t.startLocked(s.ID, d)
		}
	}
}

// expireSession destroys a session whose TTL lapsed.
func (a *Agent) expireSession(id string) {
	_, s, err := a.store.GetSession(nil, id)
	if err != nil || s == nil {
		return // destroyed meanwhile
	}
	a.logger.Info("session TTL expired; invalidating it", "session", id, "ttl", s.TTL)
	// On the timer's own goroutine: a shutdown meanwhile fails the write.
	if _, err := a.Apply(state.SessionRequestType, &state.SessionRequest{
		Datacenter: a.cfg.Datacenter, Op: state.SessionDestroy, Session: state.Session{ID: id}}); err != nil {
		a.logger.Warn("invalidating an expired session", "session", id, "error", err)
	}
}

// sessionsLeadership follows this server's leadership into the timers.
func (a *Agent) sessionsLeadership(leader bool) {
	if !leader {
		a.sessions.lead(nil)
		return
	}
	_, all, err := a.store.Sessions(nil, "")
	if err != nil {
		a.logger.Error("reading sessions for their TTL timers", "error", err)
		all = nil
	}
	if all == nil {
		all = []*state.Session{}
	}
	a.sessions.lead(all)
}
