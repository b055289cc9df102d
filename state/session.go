package state

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Sessions, Consul's: bound to a node and to health checks, invalidated
// (with their locks released, or their keys deleted) when destroyed, when
// their TTL lapses (the leader's timers, sessiontimers.go in the agent),
// when their node is deregistered or one of their checks turns critical or
// goes away.

const tableSessions = "sessions"

// Session behaviours.
const (
	SessionRelease = "release"
	SessionDelete  = "delete"
)

// Session limits, as Consul's.
const (
	SessionTTLMin       = 10 * time.Second
	SessionTTLMax       = 24 * time.Hour
	DefaultLockDelay    = 15 * time.Second
	MaxLockDelay        = 60 * time.Second
	sessionMaxNameBytes = 1024
)

// ServiceCheck names a service check a session is bound to.
type ServiceCheck struct {
	ID        string `json:"ID"`
	Namespace string `json:"Namespace,omitempty"`
}

// Session is Consul's session.
type Session struct {
	ID            string         `json:"ID"`
	Name          string         `json:"Name"`
	Node          string         `json:"Node"`
	LockDelay     time.Duration  `json:"LockDelay"`
	Behavior      string         `json:"Behavior"`
	TTL           string         `json:"TTL"`
	NodeChecks    []string       `json:"NodeChecks"`
	ServiceChecks []ServiceCheck `json:"ServiceChecks"`
	CreateIndex   uint64         `json:"CreateIndex"`
	ModifyIndex   uint64         `json:"ModifyIndex"`
}

// checkIDs are every check the session depends on.
func (s *Session) checkIDs() []string {
	ids := append([]string(nil), s.NodeChecks...)
	for _, c := range s.ServiceChecks {
		ids = append(ids, c.ID)
	}
	return ids
}

// Session operations.
const (
	SessionCreate  = "create"
	SessionDestroy = "destroy"
	// SessionRenew changes nothing in the state: it is committed so that
	// the leader, wherever the renewal came in, restarts the TTL timer.
	SessionRenew = "renew"
)

// SessionRequest creates, destroys or renews a session.
type SessionRequest struct {
	Datacenter string  `json:"Datacenter"`
	Op         string  `json:"Op"`
	Session    Session `json:"Session"`
}

// ErrSessionNotFound is returned for an operation on a session that does
// not exist.
var ErrSessionNotFound = errors.New("session not found")

// ParseSessionTTL checks a session TTL ("" or "0s" for none).
func ParseSessionTTL(ttl string) (time.Duration, error) {
	if ttl == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(ttl)
	if err != nil {
		return 0, fmt.Errorf("invalid Session TTL %q: %v", ttl, err)
	}
	if d != 0 && (d < SessionTTLMin || d > SessionTTLMax) {
		return 0, fmt.Errorf("invalid Session TTL '%s', must be between [%v=%v]", ttl, SessionTTLMin, SessionTTLMax)
	}
	return d, nil
}

func sessionApplyTxn(tx *memdb.Txn, idx uint64, req *SessionRequest, delays *lockDelays) error {
	switch req.Op {
	case SessionCreate:
		return sessionCreateTxn(tx, idx, &req.Session)
	case SessionDestroy:
		return sessionDestroyTxn(tx, idx, req.Session.ID, delays)
	case SessionRenew:
		raw, err := tx.First(tableSessions, "id", req.Session.ID)
		if err != nil {
			return fmt.Errorf("session lookup: %w", err)
		}
		if raw == nil {
			return fmt.Errorf("%w: %q", ErrSessionNotFound, req.Session.ID)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown session operation %q", ErrInvalidRegistration, req.Op)
}

func sessionCreateTxn(tx *memdb.Txn, idx uint64, in *Session) error {
	s := *in
	if s.ID == "" {
		return fmt.Errorf("%w: session without an ID", ErrInvalidRegistration)
	}
	if existing, err := tx.First(tableSessions, "id", s.ID); err != nil {
		return fmt.Errorf("session lookup: %w", err)
	} else if existing != nil {
		return fmt.Errorf("%w: session %q already exists", ErrInvalidRegistration, s.ID)
	}
	if _, err := ParseSessionTTL(s.TTL); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRegistration, err)
	}
	switch s.Behavior {
	case "":
		s.Behavior = SessionRelease
	case SessionRelease, SessionDelete:
	default:
		return fmt.Errorf("%w: invalid Behavior setting '%s'", ErrInvalidRegistration, s.Behavior)
	}
	if !nodeExists(tx, s.Node) {
		return fmt.Errorf("%w: failed to find node '%s'", ErrMissingNode, s.Node)
	}
	for _, id := range s.checkIDs() {
		raw, err := tx.First(tableChecks, "id", s.Node, id)
		if err != nil {
			return fmt.Errorf("check lookup: %w", err)
		}
		if raw == nil {
			return fmt.Errorf("%w: missing check '%s' registration", ErrInvalidRegistration, id)
		}
		if raw.(*HealthCheck).Status == HealthCritical {
			return fmt.Errorf("%w: check '%s' is in critical state", ErrInvalidRegistration, id)
		}
	}
	if s.NodeChecks == nil {
		s.NodeChecks = []string{}
	}
	s.CreateIndex, s.ModifyIndex = idx, idx
	if err := tx.Insert(tableSessions, &s); err != nil {
		return fmt.Errorf("inserting session: %w", err)
	}
	return setIndex(tx, idx, tableSessions)
}

// sessionDestroyTxn invalidates session id: its locks are released (with
// the lock delay) or its keys deleted, per its behaviour, and the prepared
// queries bound to it are deleted. A session that is not there is nothing
// to do.
func sessionDestroyTxn(tx *memdb.Txn, idx uint64, id string, delays *lockDelays) error {
	raw, err := tx.First(tableSessions, "id", id)
	if err != nil {
		return fmt.Errorf("session lookup: %w", err)
	}
	if raw == nil {
		return nil
	}
	s := raw.(*Session)
	it, err := tx.Get(tableKVs, "session", id)
	if err != nil {
		return fmt.Errorf("kv lookup by session: %w", err)
	}
	var held []*DirEntry
	for r := it.Next(); r != nil; r = it.Next() {
		held = append(held, r.(*DirEntry))
	}
	until := time.Now().Add(s.LockDelay)
	for _, e := range held {
		if s.Behavior == SessionDelete {
			if err := tx.Delete(tableKVs, e); err != nil {
				return fmt.Errorf("deleting kv of session: %w", err)
			}
		} else {
			n := *e
			n.Session, n.ModifyIndex = "", idx
			if err := tx.Insert(tableKVs, &n); err != nil {
				return fmt.Errorf("releasing kv of session: %w", err)
			}
		}
		if s.LockDelay > 0 && delays != nil {
			delays.set(e.Key, until)
		}
	}
	if len(held) > 0 {
		if err := setIndex(tx, idx, tableKVs); err != nil {
			return err
		}
	}
	if err := deleteSessionQueriesTxn(tx, idx, id); err != nil {
		return err
	}
	if err := tx.Delete(tableSessions, s); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return setIndex(tx, idx, tableSessions)
}

// invalidateNodeSessionsTxn destroys the sessions of node that depend on
// check (every one of them when check is "").
func invalidateNodeSessionsTxn(tx *memdb.Txn, idx uint64, node, check string, delays *lockDelays) error {
	it, err := tx.Get(tableSessions, "node", node)
	if err != nil {
		return fmt.Errorf("session lookup by node: %w", err)
	}
	var ids []string
	for raw := it.Next(); raw != nil; raw = it.Next() {
		s := raw.(*Session)
		if check == "" || slices.Contains(s.checkIDs(), check) {
			ids = append(ids, s.ID)
		}
	}
	for _, id := range ids {
		if err := sessionDestroyTxn(tx, idx, id, delays); err != nil {
			return err
		}
	}
	return nil
}

// ---- reads ----

// GetSession returns session id, or nil.
func (s *Store) GetSession(ws memdb.WatchSet, id string) (uint64, *Session, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableSessions)
	ch, raw, err := tx.FirstWatch(tableSessions, "id", id)
	if err != nil {
		return 0, nil, fmt.Errorf("session lookup: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*Session), nil
}

// Sessions returns every session, or those of node when node is not "",
// sorted by ID.
func (s *Store) Sessions(ws memdb.WatchSet, node string) (uint64, []*Session, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableSessions)
	var it memdb.ResultIterator
	var err error
	if node == "" {
		it, err = tx.Get(tableSessions, "id")
	} else {
		it, err = tx.Get(tableSessions, "node", node)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("listing sessions: %w", err)
	}
	watch(ws, it.WatchCh())
	var out []*Session
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Session))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return idx, out, nil
}
