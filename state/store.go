package state

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"
)

// Table names.
const (
	tableNodes    = "nodes"
	tableServices = "services" // the instances, held in groups (services.go)
	tableChecks   = "checks"
	tableIndex    = "index"
)

// indexEntry records the Raft index of the last write to a table, so a read
// can report the highest index of the tables it looked at.
type indexEntry struct {
	Key   string
	Value uint64
}

func stateSchema() *memdb.DBSchema {
	str := func(field string) memdb.Indexer {
		return &memdb.StringFieldIndex{Field: field, Lowercase: true}
	}
	schema := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableNodes: {Name: tableNodes, Indexes: map[string]*memdb.IndexSchema{
			"id":   {Name: "id", Unique: true, Indexer: str("Node")},
			"uuid": {Name: "uuid", AllowMissing: true, Unique: true, Indexer: str("ID")},
		}},
		tableChecks: {Name: tableChecks, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				str("Node"), &memdb.StringFieldIndex{Field: "CheckID"}}}},
			"node_service": {Name: "node_service", Indexer: nodeServiceIndex{}},
			"status":       {Name: "status", Indexer: str("Status")},
			"service":      {Name: "service", AllowMissing: true, Indexer: str("ServiceName")},
		}},
		tableKVs: {Name: tableKVs, Indexes: map[string]*memdb.IndexSchema{
			"id":      {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
			"session": {Name: "session", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Session"}},
		}},
		tableSessions: {Name: tableSessions, Indexes: map[string]*memdb.IndexSchema{
			"id":   {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"node": {Name: "node", Indexer: str("Node")},
		}},
		tableIndex: {Name: tableIndex, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
		}},
	}}
	for name, table := range aclTableSchemas() {
		schema.Tables[name] = table
	}
	for name, table := range serviceTableSchemas() {
		schema.Tables[name] = table
	}
	schema.Tables[tableCoordinates] = coordinatesTableSchema()
	schema.Tables[tableAutopilot] = autopilotTableSchema()
	schema.Tables[tablePreparedQueries] = preparedQueriesTableSchema()
	return schema
}

// nodeServiceIndex indexes checks by (node, service ID), where an empty
// service ID selects the node's own checks: the two lookups that decide an
// instance's health, without scanning every check of a busy node.
type nodeServiceIndex struct{}

func (nodeServiceIndex) FromObject(obj any) (bool, []byte, error) {
	c, ok := obj.(*HealthCheck)
	if !ok {
		return false, nil, fmt.Errorf("node_service index: unexpected %T", obj)
	}
	return true, nodeServiceKey(c.Node, c.ServiceID), nil
}

func (nodeServiceIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("node_service index: want node and service ID, got %d arguments", len(args))
	}
	node, ok1 := args[0].(string)
	svc, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, errors.New("node_service index: arguments must be strings")
	}
	return nodeServiceKey(node, svc), nil
}

func nodeServiceKey(node, serviceID string) []byte {
	key := make([]byte, 0, len(node)+len(serviceID)+2)
	for i := 0; i < len(node); i++ {
		c := node[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		key = append(key, c)
	}
	key = append(key, 0)
	key = append(key, serviceID...)
	return append(key, 0)
}

// Store is the state store: an in-memory, indexed, MVCC database that the FSM
// writes and everyone else reads. Reads never block writes or each other.
type Store struct {
	db atomic.Pointer[memdb.MemDB]
	// delays are the KV lock delays, in memory only (kv.go).
	delays lockDelays

	// abandonCh is closed when a restore replaces the database, so blocking
	// queries watching the old one wake up and read again.
	abandonMu sync.Mutex
	abandonCh chan struct{}

	// catalogGen moves after every write to the catalog's tables (nodes,
	// services, checks) and every restore, before the write returns.
	catalogGen atomic.Uint64
}

// NewStore returns an empty state store.
func NewStore() *Store {
	db, err := memdb.NewMemDB(stateSchema())
	if err != nil {
		panic(fmt.Sprintf("state schema: %v", err)) // a programming error, caught by any test
	}
	return newStore(db)
}

func newStore(db *memdb.MemDB) *Store {
	s := &Store{abandonCh: make(chan struct{})}
	s.db.Store(db)
	return s
}

// ReadTxn starts a read-only transaction on the current database. It takes no
// lock: the caller sees a consistent snapshot for as long as it holds it.
func (s *Store) ReadTxn() *memdb.Txn { return s.db.Load().Txn(false) }

// AbandonCh is closed when the store's contents are replaced wholesale.
func (s *Store) AbandonCh() <-chan struct{} {
	s.abandonMu.Lock()
	defer s.abandonMu.Unlock()
	return s.abandonCh
}

// replace swaps in a restored database and wakes every watcher of the old one.
func (s *Store) replace(db *memdb.MemDB) {
	s.db.Store(db)
	s.abandonMu.Lock()
	close(s.abandonCh)
	s.abandonCh = make(chan struct{})
	s.abandonMu.Unlock()
	s.catalogGen.Add(1)
}

// CatalogGeneration tells whether the catalog may have changed: it moves
// after every write to nodes, services or checks and every restore, once
// the write's watch channels are closed and before the write returns. A
// reader that loads it, then finds its watch channels open, may trust what
// it read for as long as the generation stays the same: one atomic load
// instead of a channel per row (the DNS answer cache's fast path).
func (s *Store) CatalogGeneration() uint64 { return s.catalogGen.Load() }

// commitCatalog commits a write to the catalog's tables.
func (s *Store) commitCatalog(tx *memdb.Txn) {
	tx.Commit()
	s.catalogGen.Add(1)
}

// maxIndex returns the highest Raft index written to any of tables. It adds
// nothing to a watch set: a blocking query watches the rows and index ranges
// it read, so writes to unrelated rows of the same table do not wake it
// (writes that add or remove entries next to those it read may: go-memdb
// watches the nearest radix node).
func maxIndex(tx *memdb.Txn, tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		raw, err := tx.First(tableIndex, "id", t)
		if err == nil && raw != nil && raw.(*indexEntry).Value > max {
			max = raw.(*indexEntry).Value
		}
	}
	return max
}

// LastIndex is the highest Raft index written to any table.
func (s *Store) LastIndex() uint64 {
	tx := s.ReadTxn()
	it, err := tx.Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	var last uint64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		last = max(last, raw.(*indexEntry).Value)
	}
	return last
}

func setIndex(tx *memdb.Txn, idx uint64, tables ...string) error {
	for _, t := range tables {
		if err := tx.Insert(tableIndex, &indexEntry{Key: t, Value: idx}); err != nil {
			return fmt.Errorf("updating index of %s: %w", t, err)
		}
	}
	return nil
}

// ErrMissingNode is returned when a write refers to a node that does not exist.
var ErrMissingNode = errors.New("node not found")

// ErrInvalidRegistration is wrapped by the errors of a registration that is
// inconsistent with the catalog; nothing of it was written.
var ErrInvalidRegistration = errors.New("invalid registration")

// ---- writes (called by the FSM only) ----

// EnsureRegistration applies a RegisterRequest at Raft index idx.
func (s *Store) EnsureRegistration(idx uint64, req *RegisterRequest) error {
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	if err := ensureRegistrationTxn(tx, idx, req, &s.delays); err != nil {
		return err
	}
	s.commitCatalog(tx)
	return nil
}

func ensureRegistrationTxn(tx *memdb.Txn, idx uint64, req *RegisterRequest, delays *lockDelays) error {
	if !req.SkipNodeUpdate || !nodeExists(tx, req.Node) {
		n := &Node{ID: req.ID, Node: req.Node, Address: req.Address, Datacenter: req.Datacenter,
			TaggedAddresses: req.TaggedAddresses, Meta: req.NodeMeta}
		if err := ensureNodeTxn(tx, idx, n); err != nil {
			return err
		}
	}
	if req.Service != nil {
		svc := *req.Service
		svc.Node = req.Node
		if err := ensureServiceTxn(tx, idx, &svc); err != nil {
			return err
		}
	}
	checks := req.Checks
	if req.Check != nil {
		checks = append([]*HealthCheck{req.Check}, checks...)
	}
	for _, c := range checks {
		if c == nil { // JSON's null: the API refuses it, a log entry may still hold it
			return fmt.Errorf("%w: a check is null", ErrInvalidRegistration)
		}
		hc := *c
		hc.Node = req.Node
		if err := ensureCheckTxn(tx, idx, &hc, delays); err != nil {
			return err
		}
	}
	return nil
}

func nodeExists(tx *memdb.Txn, name string) bool {
	raw, _ := tx.First(tableNodes, "id", name)
	return raw != nil
}

func ensureNodeTxn(tx *memdb.Txn, idx uint64, n *Node) error {
	raw, err := tx.First(tableNodes, "id", n.Node)
	if err != nil {
		return fmt.Errorf("node lookup: %w", err)
	}
	if n.ID != "" {
		// A node ID belongs to one node name; a new name for the same ID is a
		// rename, which Consul allows only once the old name is gone.
		other, err := tx.First(tableNodes, "uuid", n.ID)
		if err != nil {
			return fmt.Errorf("node ID lookup: %w", err)
		}
		if other != nil && !strings.EqualFold(other.(*Node).Node, n.Node) {
			return fmt.Errorf("%w: node ID %q is already registered to node %q", ErrInvalidRegistration, n.ID, other.(*Node).Node)
		}
	}
	n.CreateIndex, n.ModifyIndex = idx, idx
	if raw != nil {
		old := raw.(*Node)
		n.CreateIndex = old.CreateIndex
		if nodeEqual(old, n) {
			return nil // no change: keep ModifyIndex so blocking queries do not wake
		}
	}
	if err := tx.Insert(tableNodes, n); err != nil {
		return fmt.Errorf("inserting node: %w", err)
	}
	return setIndex(tx, idx, tableNodes)
}

func nodeEqual(a, b *Node) bool {
	return a.ID == b.ID && a.Node == b.Node && a.Address == b.Address && a.Datacenter == b.Datacenter &&
		mapsEqual(a.TaggedAddresses, b.TaggedAddresses) && mapsEqual(a.Meta, b.Meta)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func ensureServiceTxn(tx *memdb.Txn, idx uint64, svc *Service) error {
	if !nodeExists(tx, svc.Node) {
		return fmt.Errorf("registering service %q: %w: %q", svc.ID, ErrMissingNode, svc.Node)
	}
	old, err := serviceOnNodeTxn(tx, svc.Node, svc.ID)
	if err != nil {
		return err
	}
	svc.CreateIndex, svc.ModifyIndex = idx, idx
	if old != nil {
		svc.CreateIndex = old.CreateIndex
		if ServiceEqual(old, svc) {
			return nil // no change: blocking queries on the service stay asleep
		}
	}
	if err := putServiceTxn(tx, svc, old); err != nil {
		return err
	}
	// Checks of the service carry its name and tags: keep them in step.
	it, err := nodeRows(tx, tableChecks, svc.Node)
	if err != nil {
		return fmt.Errorf("check lookup: %w", err)
	}
	var stale []*HealthCheck
	for raw := it.Next(); raw != nil; raw = it.Next() {
		c := raw.(*HealthCheck)
		if c.ServiceID == svc.ID && (c.ServiceName != svc.Service || !stringsEqual(c.ServiceTags, svc.Tags)) {
			stale = append(stale, c)
		}
	}
	for _, c := range stale {
		nc := *c
		nc.ServiceName, nc.ServiceTags, nc.ModifyIndex = svc.Service, svc.Tags, idx
		if err := tx.Insert(tableChecks, &nc); err != nil {
			return fmt.Errorf("updating check: %w", err)
		}
	}
	if len(stale) > 0 {
		if err := setIndex(tx, idx, tableChecks); err != nil {
			return err
		}
	}
	return setIndex(tx, idx, tableServices)
}

// ServiceEqual reports whether two instances are the same registration,
// whatever their indexes.
func ServiceEqual(a, b *Service) bool {
	x, y := *a, *b
	x.CreateIndex, x.ModifyIndex, y.CreateIndex, y.ModifyIndex = 0, 0, 0, 0
	return reflect.DeepEqual(normalizeEmpty(x), normalizeEmpty(y))
}

// normalizeEmpty makes nil and empty collections compare equal: JSON
// round trips turn one into the other.
func normalizeEmpty(s Service) Service {
	if len(s.Tags) == 0 {
		s.Tags = nil
	}
	if len(s.Meta) == 0 {
		s.Meta = nil
	}
	if len(s.TaggedAddresses) == 0 {
		s.TaggedAddresses = nil
	}
	return s
}

func stringsEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func ensureCheckTxn(tx *memdb.Txn, idx uint64, c *HealthCheck, delays *lockDelays) error {
	if !nodeExists(tx, c.Node) {
		return fmt.Errorf("registering check %q: %w: %q", c.CheckID, ErrMissingNode, c.Node)
	}
	if c.Status == "" {
		c.Status = HealthCritical
	}
	if c.ServiceID != "" {
		svc, err := serviceOnNodeTxn(tx, c.Node, c.ServiceID)
		if err != nil {
			return err
		}
		if svc == nil {
			return fmt.Errorf("%w: check %q refers to service %q, which is not registered on node %q", ErrInvalidRegistration, c.CheckID, c.ServiceID, c.Node)
		}
		c.ServiceName, c.ServiceTags = svc.Service, svc.Tags
	}
	raw, err := tx.First(tableChecks, "id", c.Node, c.CheckID)
	if err != nil {
		return fmt.Errorf("check lookup: %w", err)
	}
	c.CreateIndex, c.ModifyIndex = idx, idx
	if raw != nil {
		old := raw.(*HealthCheck)
		c.CreateIndex = old.CreateIndex
		if checkEqual(old, c) {
			return nil
		}
	}
	if err := tx.Insert(tableChecks, c); err != nil {
		return fmt.Errorf("inserting check: %w", err)
	}
	if err := setIndex(tx, idx, tableChecks); err != nil {
		return err
	}
	if c.Status == HealthCritical {
		// The sessions bound to a failing check are invalidated.
		return invalidateNodeSessionsTxn(tx, idx, c.Node, c.CheckID, delays)
	}
	return nil
}

func checkEqual(a, b *HealthCheck) bool {
	x, y := *a, *b
	x.CreateIndex, x.ModifyIndex, y.CreateIndex, y.ModifyIndex = 0, 0, 0, 0
	return reflect.DeepEqual(x, y)
}

// Deregister applies a DeregisterRequest at Raft index idx.
func (s *Store) Deregister(idx uint64, req *DeregisterRequest) error {
	tx := s.db.Load().Txn(true)
	defer tx.Abort()
	if err := deregisterTxn(tx, idx, req, &s.delays); err != nil {
		return err
	}
	s.commitCatalog(tx)
	return nil
}

func deregisterTxn(tx *memdb.Txn, idx uint64, req *DeregisterRequest, delays *lockDelays) error {
	switch {
	case req.ServiceID != "":
		return deleteServiceTxn(tx, idx, req.Node, req.ServiceID, delays)
	case req.CheckID != "":
		return deleteCheckTxn(tx, idx, req.Node, req.CheckID, delays)
	default:
		return deleteNodeTxn(tx, idx, req.Node, delays)
	}
}

func deleteServiceTxn(tx *memdb.Txn, idx uint64, node, id string, delays *lockDelays) error {
	old, err := serviceOnNodeTxn(tx, node, id)
	if err != nil {
		return err
	}
	if old == nil {
		return nil // deregistering what is not there is not an error, as in Consul
	}
	if err := deleteServiceRowTxn(tx, old); err != nil {
		return err
	}
	checks, err := nodeRows(tx, tableChecks, node)
	if err != nil {
		return fmt.Errorf("check lookup: %w", err)
	}
	var owned []any
	for c := checks.Next(); c != nil; c = checks.Next() {
		if c.(*HealthCheck).ServiceID == id {
			owned = append(owned, c)
		}
	}
	for _, c := range owned {
		if err := tx.Delete(tableChecks, c); err != nil {
			return fmt.Errorf("deleting check: %w", err)
		}
		if err := invalidateNodeSessionsTxn(tx, idx, node, c.(*HealthCheck).CheckID, delays); err != nil {
			return err
		}
	}
	return setIndex(tx, idx, tableServices, tableChecks)
}

func deleteCheckTxn(tx *memdb.Txn, idx uint64, node, id string, delays *lockDelays) error {
	raw, err := tx.First(tableChecks, "id", node, id)
	if err != nil {
		return fmt.Errorf("check lookup: %w", err)
	}
	if raw == nil {
		return nil
	}
	if err := tx.Delete(tableChecks, raw); err != nil {
		return fmt.Errorf("deleting check: %w", err)
	}
	if err := invalidateNodeSessionsTxn(tx, idx, node, id, delays); err != nil {
		return err
	}
	return setIndex(tx, idx, tableChecks)
}

func deleteNodeTxn(tx *memdb.Txn, idx uint64, node string, delays *lockDelays) error {
	raw, err := tx.First(tableNodes, "id", node)
	if err != nil {
		return fmt.Errorf("node lookup: %w", err)
	}
	if raw == nil {
		return nil
	}
	if err := invalidateNodeSessionsTxn(tx, idx, node, "", delays); err != nil {
		return err
	}
	if err := deleteNodeServicesTxn(tx, node); err != nil {
		return err
	}
	if _, err := tx.DeleteAll(tableChecks, "id_prefix", node, ""); err != nil {
		return fmt.Errorf("deleting checks of node: %w", err)
	}
	if err := deleteNodeCoordinatesTxn(tx, idx, node); err != nil {
		return err
	}
	if err := tx.Delete(tableNodes, raw); err != nil {
		return fmt.Errorf("deleting node: %w", err)
	}
	return setIndex(tx, idx, tableNodes, tableServices, tableChecks)
}

// ---- reads ----
//
// Each read takes a WatchSet (nil is allowed) to which it adds the channels
// that fire when its result may have changed, and returns the Raft index the
// result reflects, for X-Consul-Index and blocking queries.

func watch(ws memdb.WatchSet, ch <-chan struct{}) {
	if ws != nil {
		ws.Add(ch)
	}
}

// Nodes returns all nodes sorted by name.
func (s *Store) Nodes(ws memdb.WatchSet) (uint64, []*Node, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableNodes)
	it, err := tx.Get(tableNodes, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("listing nodes: %w", err)
	}
	watch(ws, it.WatchCh())
	var out []*Node
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Node))
	}
	return idx, out, nil
}

// GetNode returns the node named name, or nil.
func (s *Store) GetNode(ws memdb.WatchSet, name string) (uint64, *Node, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableNodes)
	ch, raw, err := tx.FirstWatch(tableNodes, "id", name)
	if err != nil {
		return 0, nil, fmt.Errorf("node lookup: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*Node), nil
}

// Services returns every service name with the union of its instances' tags.
func (s *Store) Services(ws memdb.WatchSet) (uint64, map[string][]string, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableServices)
	it, err := tx.Get(tableServiceNames, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("listing services: %w", err)
	}
	watch(ws, it.WatchCh())
	tags := map[string]map[string]struct{}{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		for svc := range raw.(*serviceGroup).all() {
			set := tags[svc.Service]
			if set == nil {
				set = map[string]struct{}{}
				tags[svc.Service] = set
			}
			for _, t := range svc.Tags {
				set[t] = struct{}{}
			}
		}
	}
	out := make(map[string][]string, len(tags))
	for name, set := range tags {
		list := make([]string, 0, len(set))
		for t := range set {
			list = append(list, t)
		}
		sort.Strings(list)
		out[name] = list
	}
	return idx, out, nil
}

// ServiceNodes returns the instances of service name (with tag, when tag is
// not empty) joined with their nodes and checks, sorted by node then ID.
func (s *Store) ServiceNodes(ws memdb.WatchSet, name, tag string) (uint64, []ServiceNode, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableNodes, tableServices, tableChecks)
	g, err := groupTxn(tx, ws, tableServiceNames, name)
	if err != nil || g == nil {
		return idx, nil, err
	}
	var out []ServiceNode
	for svc := range g.all() {
		if tag != "" && !svc.HasTag(tag) {
			continue
		}
		nch, nraw, err := tx.FirstWatch(tableNodes, "id", svc.Node)
		if err != nil || nraw == nil {
			continue // cannot happen: a service's node exists in the same snapshot
		}
		watch(ws, nch)
		checks, err := instanceChecks(tx, ws, svc.Node, svc.ID)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, ServiceNode{Node: nraw.(*Node), Service: svc, Checks: checks})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node.Node != out[j].Node.Node {
			return out[i].Node.Node < out[j].Node.Node
		}
		return out[i].Service.ID < out[j].Service.ID
	})
	return idx, out, nil
}

// instanceChecks returns the checks that decide an instance's health: its
// node's checks and its own.
func instanceChecks(tx *memdb.Txn, ws memdb.WatchSet, node, serviceID string) ([]*HealthCheck, error) {
	var out []*HealthCheck
	for _, id := range [2]string{"", serviceID} {
		it, err := tx.Get(tableChecks, "node_service", node, id)
		if err != nil {
			return nil, fmt.Errorf("check lookup: %w", err)
		}
		watch(ws, it.WatchCh())
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, raw.(*HealthCheck))
		}
	}
	return out, nil
}

// healthyTxn reports whether no check of the node or of the instance rules it
// out. It allocates nothing beyond the iterators: it is on the DNS hot path.
func healthyTxn(tx *memdb.Txn, node, serviceID string, onlyPassing bool) bool {
	for _, id := range [2]string{"", serviceID} {
		it, err := tx.Get(tableChecks, "node_service", node, id)
		if err != nil {
			return false
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			st := raw.(*HealthCheck).Status
			if st == HealthCritical || (onlyPassing && st != HealthPassing) {
				return false
			}
		}
	}
	return true
}

// HealthyInstances appends to dst the instances of service name (with tag,
// when not empty) that have no critical check, and with onlyPassing no
// warning either. Checks are not filled in. It is the DNS read: one
// lock-free snapshot, no sorting, no watches.
func (s *Store) HealthyInstances(dst []ServiceNode, name, tag string, onlyPassing bool) []ServiceNode {
	tx := s.ReadTxn()
	raw, err := tx.First(tableServiceNames, "id", name)
	if err != nil || raw == nil {
		return dst
	}
	for svc := range raw.(*serviceGroup).all() {
		if tag != "" && !svc.HasTag(tag) {
			continue
		}
		nraw, err := tx.First(tableNodes, "id", svc.Node)
		if err != nil || nraw == nil {
			continue
		}
		if !healthyTxn(tx, svc.Node, svc.ID, onlyPassing) {
			continue
		}
		dst = append(dst, ServiceNode{Node: nraw.(*Node), Service: svc})
	}
	return dst
}

// NodesByAddress returns the nodes whose address is addr, for PTR answers.
// Addresses compare as IPs, so any spelling of an IPv6 address matches. It
// scans the node table: reverse lookups are rare.
func (s *Store) NodesByAddress(addr string) []*Node {
	want, err := netip.ParseAddr(addr)
	if err != nil {
		return nil
	}
	tx := s.ReadTxn()
	it, err := tx.Get(tableNodes, "id")
	if err != nil {
		return nil
	}
	var out []*Node
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if n := raw.(*Node); sameIP(n.Address, want) {
			out = append(out, n)
		}
	}
	return out
}

func sameIP(addr string, want netip.Addr) bool {
	ip, err := netip.ParseAddr(addr)
	return err == nil && ip.Unmap() == want.Unmap()
}

// ServicesByAddress returns the instances whose own address is addr, for
// PTR answers.
func (s *Store) ServicesByAddress(addr string) []*Service {
	want, err := netip.ParseAddr(addr)
	if err != nil {
		return nil
	}
	var out []*Service
	_ = eachService(s.ReadTxn(), func(svc *Service) bool {
		if sameIP(svc.Address, want) {
			out = append(out, svc)
		}
		return true
	})
	return out
}

// NodeServices returns a node and its services, or a nil node.
func (s *Store) NodeServices(ws memdb.WatchSet, name string) (uint64, *Node, []*Service, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableNodes, tableServices)
	ch, raw, err := tx.FirstWatch(tableNodes, "id", name)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("node lookup: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return idx, nil, nil, nil
	}
	g, err := groupTxn(tx, ws, tableNodeServices, name)
	if err != nil {
		return 0, nil, nil, err
	}
	var svcs []*Service
	if g != nil {
		svcs = slices.Collect(g.all())
	}
	return idx, raw.(*Node), svcs, nil
}

// NodeChecks returns the checks of a node, its services' included.
func (s *Store) NodeChecks(ws memdb.WatchSet, node string) (uint64, []*HealthCheck, error) {
	return s.checksBy(ws, "id_prefix", node, "")
}

// nodeRows iterates the rows of table (checks) on node: those
// whose (node, ID) key starts with the node's full name (the empty second
// part makes the node's own part exact, so "n1" does not take "n10").
func nodeRows(tx *memdb.Txn, table, node string) (memdb.ResultIterator, error) {
	return tx.Get(table, "id_prefix", node, "")
}

// ServiceChecks returns the checks of every instance of service name.
func (s *Store) ServiceChecks(ws memdb.WatchSet, name string) (uint64, []*HealthCheck, error) {
	return s.checksBy(ws, "service", name)
}

// ChecksInState returns the checks with the given status, or all of them for
// HealthAny.
func (s *Store) ChecksInState(ws memdb.WatchSet, state string) (uint64, []*HealthCheck, error) {
	if state == HealthAny {
		return s.checksBy(ws, "id")
	}
	return s.checksBy(ws, "status", state)
}

func (s *Store) checksBy(ws memdb.WatchSet, index string, args ...any) (uint64, []*HealthCheck, error) {
	tx := s.ReadTxn()
	idx := maxIndex(tx, tableChecks)
	it, err := tx.Get(tableChecks, index, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("check lookup: %w", err)
	}
	watch(ws, it.WatchCh())
	var out []*HealthCheck
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*HealthCheck))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].CheckID < out[j].CheckID
	})
	return idx, out, nil
}

// Healthy reports whether checks leave an instance answerable: no critical
// check, and with onlyPassing no warning either.
func Healthy(checks []*HealthCheck, onlyPassing bool) bool {
	for _, c := range checks {
		if c.Status == HealthCritical || (onlyPassing && c.Status != HealthPassing) {
			return false
		}
	}
	return true
}
