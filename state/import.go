package state

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// Importing another system's state (a Consul snapshot, which package
// snapshot decodes): rows that already carry their Raft indexes, gathered
// in any order, then checked together against the rules the store's own
// writes keep, so that what a restore installs is a store those writes
// could have made.

// Builder gathers the rows of a store to import. Its Add methods keep the
// rows as given (indexes included); Build checks them and makes the store.
// A Builder is used once, by one goroutine.
type Builder struct {
	nodes    []*Node
	services []*Service
	checks   []*HealthCheck
	sessions []*Session
	kvs      []*DirEntry
	coords   []*Coordinate
	queries  []*PreparedQuery
	indexes  map[string]uint64
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{indexes: map[string]uint64{}} }

// AddNode adds a node.
func (b *Builder) AddNode(n *Node) { b.nodes = append(b.nodes, n) }

// AddService adds a service instance of the node svc.Node names.
func (b *Builder) AddService(svc *Service) { b.services = append(b.services, svc) }

// AddCheck adds a check of the node c.Node names (of one of its services
// when c.ServiceID is set).
func (b *Builder) AddCheck(c *HealthCheck) { b.checks = append(b.checks, c) }

// AddSession adds a session.
func (b *Builder) AddSession(s *Session) { b.sessions = append(b.sessions, s) }

// AddKV adds a KV entry; a held lock names its session in e.Session.
func (b *Builder) AddKV(e *DirEntry) { b.kvs = append(b.kvs, e) }

// AddCoordinate adds a node's network coordinate.
func (b *Builder) AddCoordinate(c *Coordinate) { b.coords = append(b.coords, c) }

// AddPreparedQuery adds a prepared query.
func (b *Builder) AddPreparedQuery(q *PreparedQuery) { b.queries = append(b.queries, q) }

// RaiseIndex raises the index of table (one of the names TableRows
// reports) to at least idx, for writes the rows no longer show (deleted
// rows). It reports whether the store has that table.
func (b *Builder) RaiseIndex(table string, idx uint64) bool {
	for _, t := range snapshotTables {
		if t == table && t != tableIndex {
			b.indexes[table] = max(b.indexes[table], idx)
			return true
		}
	}
	return false
}

// Build checks the rows and returns the store that holds them: every
// service and check on a node that exists, every check of a service on a
// service of its node, every session on an existing node and bound to
// existing checks that are not critical, every lock held by an existing
// session, coordinates of existing nodes; no two rows with the same key.
// Each table's index is the highest ModifyIndex of its rows, or what
// RaiseIndex set if higher. An error names the first row that breaks a
// rule; nothing is built.
func (b *Builder) Build() (*Store, error) {
	db, err := memdb.NewMemDB(stateSchema())
	if err != nil {
		return nil, fmt.Errorf("state schema: %w", err)
	}
	tx := db.Txn(true)
	defer tx.Abort()
	index := func(table string, idx uint64) { b.indexes[table] = max(b.indexes[table], idx) }
	insert := func(table string, row any) error {
		if err := tx.Insert(table, row); err != nil {
			return fmt.Errorf("inserting %s row: %w", table, err)
		}
		return nil
	}

	for _, n := range b.nodes {
		if strings.TrimSpace(n.Node) == "" {
			return nil, fmt.Errorf("a node has no name")
		}
		if nodeExists(tx, n.Node) {
			return nil, fmt.Errorf("node %q appears twice", n.Node)
		}
		if n.ID != "" {
			if other, err := tx.First(tableNodes, "uuid", n.ID); err != nil {
				return nil, fmt.Errorf("node ID lookup: %w", err)
			} else if other != nil {
				return nil, fmt.Errorf("nodes %q and %q have the same ID %q", other.(*Node).Node, n.Node, n.ID)
			}
		}
		if err := insert(tableNodes, n); err != nil {
			return nil, err
		}
		index(tableNodes, n.ModifyIndex)
	}

	services := newServiceRows()
	for _, svc := range b.services {
		switch {
		case strings.TrimSpace(svc.Service) == "" || svc.ID == "":
			return nil, fmt.Errorf("a service on node %q has no name or ID", svc.Node)
		case !nodeExists(tx, svc.Node):
			return nil, fmt.Errorf("service %q is on node %q, which does not exist", svc.ID, svc.Node)
		case svc.Port < 0 || svc.Port > 65535:
			return nil, fmt.Errorf("service %q on node %q has port %d, not 0 to 65535", svc.ID, svc.Node, svc.Port)
		}
		services.add(svc)
		index(tableServices, svc.ModifyIndex)
	}
	if err := services.insert(tx); err != nil {
		return nil, err
	}

	for _, c := range b.checks {
		switch {
		case c.CheckID == "":
			return nil, fmt.Errorf("a check on node %q has no ID", c.Node)
		case !nodeExists(tx, c.Node):
			return nil, fmt.Errorf("check %q is on node %q, which does not exist", c.CheckID, c.Node)
		case c.Status != HealthPassing && c.Status != HealthWarning && c.Status != HealthCritical:
			return nil, fmt.Errorf("check %q on node %q has status %q, not passing, warning or critical", c.CheckID, c.Node, c.Status)
		}
		if c.ServiceID != "" {
			svc, err := serviceOnNodeTxn(tx, c.Node, c.ServiceID)
			if err != nil {
				return nil, err
			}
			if svc == nil {
				return nil, fmt.Errorf("check %q on node %q is of service %q, which is not on that node", c.CheckID, c.Node, c.ServiceID)
			}
			// As the store's writes keep them: the service's name and tags.
			c.ServiceName, c.ServiceTags = svc.Service, svc.Tags
		}
		if raw, err := tx.First(tableChecks, "id", c.Node, c.CheckID); err != nil {
			return nil, fmt.Errorf("check lookup: %w", err)
		} else if raw != nil {
			return nil, fmt.Errorf("check %q on node %q appears twice", c.CheckID, c.Node)
		}
		if err := insert(tableChecks, c); err != nil {
			return nil, err
		}
		index(tableChecks, c.ModifyIndex)
	}

	for _, s := range b.sessions {
		if err := importSession(tx, s); err != nil {
			return nil, err
		}
		index(tableSessions, s.ModifyIndex)
	}

	for _, e := range b.kvs {
		switch {
		case e.Key == "":
			return nil, fmt.Errorf("a KV entry has an empty key")
		case len(e.Value) > MaxKVValueBytes:
			return nil, fmt.Errorf("KV entry %q is %d bytes, over the %d-byte limit of a value", e.Key, len(e.Value), MaxKVValueBytes)
		}
		if raw, err := tx.First(tableKVs, "id", e.Key); err != nil {
			return nil, fmt.Errorf("kv lookup: %w", err)
		} else if raw != nil {
			return nil, fmt.Errorf("KV entry %q appears twice", e.Key)
		}
		if e.Session != "" {
			if raw, err := tx.First(tableSessions, "id", e.Session); err != nil {
				return nil, fmt.Errorf("session lookup: %w", err)
			} else if raw == nil {
				return nil, fmt.Errorf("KV entry %q is locked by session %q, which does not exist", e.Key, e.Session)
			}
		}
		if err := insert(tableKVs, e); err != nil {
			return nil, err
		}
		index(tableKVs, e.ModifyIndex)
	}

	for _, c := range b.coords {
		if err := ValidateCoordinate(c); err != nil {
			return nil, err
		}
		raw, err := tx.First(tableNodes, "id", c.Node)
		if err != nil {
			return nil, fmt.Errorf("node lookup: %w", err)
		}
		if raw == nil {
			return nil, fmt.Errorf("a coordinate is of node %q, which does not exist", c.Node)
		}
		if other, err := tx.First(tableCoordinates, "id", c.Node, c.Segment); err != nil {
			return nil, fmt.Errorf("coordinate lookup: %w", err)
		} else if other != nil {
			return nil, fmt.Errorf("node %q has two coordinates in segment %q", c.Node, c.Segment)
		}
		row := *c
		row.Node = raw.(*Node).Node // the catalog's spelling, as the store's writes keep it
		if err := insert(tableCoordinates, &row); err != nil {
			return nil, err
		}
	}

	// Prepared queries after the sessions they may name, held to the rules
	// the FSM holds a new one to.
	for _, q := range b.queries {
		if q.ID == "" {
			return nil, fmt.Errorf("a prepared query has no ID")
		}
		if err := ValidatePreparedQuery(q); err != nil {
			return nil, fmt.Errorf("prepared query %q: %w", q.ID, err)
		}
		if other, err := tx.First(tablePreparedQueries, "id", q.ID); err != nil {
			return nil, fmt.Errorf("prepared query lookup: %w", err)
		} else if other != nil {
			return nil, fmt.Errorf("prepared query %q appears twice", q.ID)
		}
		if err := checkQueryNameTxn(tx, q); err != nil {
			return nil, fmt.Errorf("prepared query %q: %w", q.ID, err)
		}
		if q.Session != "" {
			if sess, err := tx.First(tableSessions, "id", q.Session); err != nil {
				return nil, fmt.Errorf("session lookup: %w", err)
			} else if sess == nil {
				return nil, fmt.Errorf("prepared query %q names session %q, which does not exist", q.ID, q.Session)
			}
		}
		if err := insert(tablePreparedQueries, q); err != nil {
			return nil, err
		}
		index(tablePreparedQueries, q.ModifyIndex)
	}

	for table, idx := range b.indexes {
		if idx > 0 {
			if err := setIndex(tx, idx, table); err != nil {
				return nil, err
			}
		}
	}
	tx.Commit()
	return newStore(db), nil
}

// importSession checks and inserts an imported session, by the rules of
// sessionCreateTxn but for its indexes, which it keeps.
func importSession(tx *memdb.Txn, in *Session) error {
	s := *in
	if s.ID == "" {
		return fmt.Errorf("a session on node %q has no ID", s.Node)
	}
	if raw, err := tx.First(tableSessions, "id", s.ID); err != nil {
		return fmt.Errorf("session lookup: %w", err)
	} else if raw != nil {
		return fmt.Errorf("session %q appears twice", s.ID)
	}
	if _, err := ParseSessionTTL(s.TTL); err != nil {
		return fmt.Errorf("session %q: %v", s.ID, err)
	}
	if s.LockDelay < 0 || s.LockDelay > MaxLockDelay {
		return fmt.Errorf("session %q has a lock delay of %v, not 0 to %v", s.ID, s.LockDelay, MaxLockDelay)
	}
	switch s.Behavior {
	case "":
		s.Behavior = SessionRelease
	case SessionRelease, SessionDelete:
	default:
		return fmt.Errorf("session %q has behavior %q, not release or delete", s.ID, s.Behavior)
	}
	if !nodeExists(tx, s.Node) {
		return fmt.Errorf("session %q is on node %q, which does not exist", s.ID, s.Node)
	}
	for _, id := range s.checkIDs() {
		raw, err := tx.First(tableChecks, "id", s.Node, id)
		if err != nil {
			return fmt.Errorf("check lookup: %w", err)
		}
		if raw == nil {
			return fmt.Errorf("session %q is bound to check %q, which is not on node %q", s.ID, id, s.Node)
		}
		if raw.(*HealthCheck).Status == HealthCritical {
			return fmt.Errorf("session %q is bound to check %q, which is critical", s.ID, id)
		}
	}
	if s.NodeChecks == nil {
		s.NodeChecks = []string{}
	}
	if err := tx.Insert(tableSessions, &s); err != nil {
		return fmt.Errorf("inserting session: %w", err)
	}
	return nil
}
