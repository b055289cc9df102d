package state

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// The catalog's service instances are not one go-memdb row each. A row
// costs a radix-tree entry per index, about 200 bytes with its key, and
// every agent holds the whole catalog: two indexes per instance were half
// of a replica's memory. Instead two tables hold groups of instances:
//
//   - tableNodeServices: the instances on one node (the lookups by node
//     and ID, and a node's listing);
//   - tableServiceNames: the instances of one service name, compared
//     without case as DNS does (DNS, health and catalog reads by name).
//
// Both are serviceGroups (servicegroup.go): sorted chunks of instances,
// keyed by the lowercased node or service name. A write replaces the two
// group rows it touches with copies (copy on write, as go-memdb's rows
// are), so a read transaction still sees its own snapshot and a blocking
// query on a service wakes when its group row changes. The copy is of one
// chunk of each group and the list of its chunks. Snapshots and imports build the groups in one pass
// (serviceRows).
//
// "services" (tableServices) remains the name of the instances' table
// where the outside sees tables: the index table, snapshot rows and their
// counts.
const (
	tableNodeServices = "node_services"
	tableServiceNames = "service_names"
)

func serviceTableSchemas() map[string]*memdb.TableSchema {
	schema := func(table string) *memdb.TableSchema {
		return &memdb.TableSchema{Name: table, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name", Lowercase: true}},
		}}
	}
	return map[string]*memdb.TableSchema{
		tableNodeServices: schema(tableNodeServices),
		tableServiceNames: schema(tableServiceNames),
	}
}

// emptyServiceMeta is the Meta of every instance registered without any:
// the API shows it as {} as Consul does, and one map shared by all costs
// nothing per instance. Stored rows are never written to.
var emptyServiceMeta = map[string]string{}

// groupTxn returns the group of table under key (a node's or a service's
// name), or nil, adding to ws the channel that fires when it changes.
func groupTxn(tx *memdb.Txn, ws memdb.WatchSet, table, key string) (*serviceGroup, error) {
	ch, raw, err := tx.FirstWatch(table, "id", key)
	if err != nil {
		return nil, fmt.Errorf("service lookup: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*serviceGroup), nil
}

// serviceOnNodeTxn returns the instance id on node, or nil.
func serviceOnNodeTxn(tx *memdb.Txn, node, id string) (*Service, error) {
	g, err := groupTxn(tx, nil, tableNodeServices, node)
	if err != nil || g == nil {
		return nil, err
	}
	if c, pos, found := g.find(&Service{Node: node, ID: id}); found {
		return g.chunks[c][pos], nil
	}
	return nil, nil
}

// putServiceTxn stores svc, which replaces old, the instance with its node
// and ID (nil when there is none). svc is the caller's to give: its Node
// and Service strings may be swapped for equal ones the groups already
// hold, so instances share them.
func putServiceTxn(tx *memdb.Txn, svc, old *Service) error {
	if len(svc.Meta) == 0 {
		svc.Meta = emptyServiceMeta
	}
	// The groups' keys are lowercased names: strings.EqualFold is not the
	// same test (it folds "ſ" to "s", which ToLower does not).
	//lint:ignore SA6005 the comparison must be the groups' own key, ToLower
	if old != nil && strings.ToLower(old.Service) != strings.ToLower(svc.Service) {
		if err := leaveGroupTxn(tx, tableServiceNames, old.Service, old); err != nil {
			return err
		}
	}
	if err := joinGroupTxn(tx, tableNodeServices, &svc.Node, svc); err != nil {
		return err
	}
	return joinGroupTxn(tx, tableServiceNames, &svc.Service, svc)
}

// joinGroupTxn puts svc in the group of table named *name (svc's node or
// service name), in place of the instance with its node and ID if there
// is one. When the group's key spells the name the same, *name becomes
// the key: one string for all.
func joinGroupTxn(tx *memdb.Txn, table string, name *string, svc *Service) error {
	g, err := groupTxn(tx, nil, table, *name)
	if err != nil {
		return err
	}
	if g != nil && *name == g.Name {
		*name = g.Name
	}
	if err := tx.Insert(table, g.with(strings.ToLower(*name), svc)); err != nil {
		return fmt.Errorf("inserting service: %w", err)
	}
	return nil
}

// leaveGroupTxn removes the instance old from the group of table named
// name.
func leaveGroupTxn(tx *memdb.Txn, table, name string, old *Service) error {
	g, err := groupTxn(tx, nil, table, name)
	if err != nil || g == nil {
		return err
	}
	switch rest := g.without(old); {
	case rest == g:
		return nil
	case rest == nil:
		if err := tx.Delete(table, g); err != nil {
			return fmt.Errorf("deleting service: %w", err)
		}
	default:
		if err := tx.Insert(table, rest); err != nil {
			return fmt.Errorf("deleting service: %w", err)
		}
	}
	return nil
}

// deleteServiceRowTxn removes the instance old from both its groups.
func deleteServiceRowTxn(tx *memdb.Txn, old *Service) error {
	if err := leaveGroupTxn(tx, tableNodeServices, old.Node, old); err != nil {
		return err
	}
	return leaveGroupTxn(tx, tableServiceNames, old.Service, old)
}

// deleteNodeServicesTxn removes every instance on node.
func deleteNodeServicesTxn(tx *memdb.Txn, node string) error {
	g, err := groupTxn(tx, nil, tableNodeServices, node)
	if err != nil || g == nil {
		return err
	}
	for svc := range g.all() {
		if err := leaveGroupTxn(tx, tableServiceNames, svc.Service, svc); err != nil {
			return err
		}
	}
	if err := tx.Delete(tableNodeServices, g); err != nil {
		return fmt.Errorf("deleting services of node: %w", err)
	}
	return nil
}

// eachService calls fn with every instance, by node then ID, until fn
// returns false.
func eachService(tx *memdb.Txn, fn func(*Service) bool) error {
	it, err := tx.Get(tableNodeServices, "id")
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		for svc := range raw.(*serviceGroup).all() {
			if !fn(svc) {
				return nil
			}
		}
	}
	return nil
}

// serviceRows gathers the instances of a new database (a snapshot being
// read, an import) and builds their groups in one pass.
type serviceRows struct {
	byNode map[string][]*Service
	byName map[string][]*Service
	// strings holds one copy of each node and service name, which the
	// instances then share.
	strings map[string]string
}

func newServiceRows() *serviceRows {
	return &serviceRows{byNode: map[string][]*Service{}, byName: map[string][]*Service{}, strings: map[string]string{}}
}

// add gathers svc, which is the caller's to give (its strings may be
// swapped for equal ones other instances hold).
func (r *serviceRows) add(svc *Service) {
	if len(svc.Meta) == 0 {
		svc.Meta = emptyServiceMeta
	}
	svc.Node, svc.Service = r.intern(svc.Node), r.intern(svc.Service)
	node, name := r.intern(strings.ToLower(svc.Node)), r.intern(strings.ToLower(svc.Service))
	r.byNode[node] = append(r.byNode[node], svc)
	r.byName[name] = append(r.byName[name], svc)
}

func (r *serviceRows) intern(s string) string {
	if held, ok := r.strings[s]; ok {
		return held
	}
	r.strings[s] = s
	return s
}

// insert writes the groups; two instances with the same node and ID are an
// error.
func (r *serviceRows) insert(tx *memdb.Txn) error {
	for node, list := range r.byNode {
		slices.SortFunc(list, compareInstances)
		for i := 1; i < len(list); i++ {
			if list[i].ID == list[i-1].ID {
				return fmt.Errorf("service %q on node %q appears twice", list[i].ID, list[i].Node)
			}
		}
		if err := tx.Insert(tableNodeServices, newServiceGroup(node, list)); err != nil {
			return fmt.Errorf("inserting services of node %q: %w", node, err)
		}
	}
	for name, list := range r.byName {
		slices.SortFunc(list, compareInstances)
		if err := tx.Insert(tableServiceNames, newServiceGroup(name, list)); err != nil {
			return fmt.Errorf("inserting instances of service %q: %w", name, err)
		}
	}
	return nil
}
