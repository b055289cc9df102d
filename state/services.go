package state

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// The catalog's service instances are not one go-memdb row each. A row
// costs a radix-tree entry per index, about 200 bytes with its key, and
// every agent holds the whole catalog: two indexes per instance were half
// of a replica's memory. Instead two tables hold groups of instances:
//
//   - tableNodeServices: the instances on one node, sorted by ID (the
//     lookups by node and ID, and a node's listing);
//   - tableServiceNames: the instances of one service name, compared
//     without case as DNS does (DNS, health and catalog reads by name), in
//     chunks (servicegroup.go).
//
// A write replaces the two group rows it touches with copies (copy on
// write, as go-memdb's rows are), so a read transaction still sees its own
// snapshot and a blocking query on a service wakes when its group row
// changes. The copy is of a node's services and of one chunk of a
// service's instances. Snapshots and imports build the groups in one pass
// (serviceRows).
//
// "services" (tableServices) remains the name of the instances' table
// where the outside sees tables: the index table, snapshot rows and their
// counts.
const (
	tableNodeServices = "node_services"
	tableServiceNames = "service_names"
)

// nodeServices is every service instance registered on one node.
type nodeServices struct {
	Node     string     // lowercased: the key
	Services []*Service // sorted by ID
}

func serviceTableSchemas() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableNodeServices: {Name: tableNodeServices, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Node", Lowercase: true}},
		}},
		tableServiceNames: {Name: tableServiceNames, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name", Lowercase: true}},
		}},
	}
}

// emptyServiceMeta is the Meta of every instance registered without any:
// the API shows it as {} as Consul does, and one map shared by all costs
// nothing per instance. Stored rows are never written to.
var emptyServiceMeta = map[string]string{}

// nodeServicesTxn returns the services of node (nil when it has none),
// adding to ws the channel that fires when they change.
func nodeServicesTxn(tx *memdb.Txn, ws memdb.WatchSet, node string) (*nodeServices, error) {
	return groupTxn[nodeServices](tx, ws, tableNodeServices, node)
}

// serviceGroupTxn returns the instances of service name (nil when it has
// none), adding to ws the channel that fires when they change.
func serviceGroupTxn(tx *memdb.Txn, ws memdb.WatchSet, name string) (*serviceGroup, error) {
	return groupTxn[serviceGroup](tx, ws, tableServiceNames, name)
}

// groupTxn returns the group of table under key, or nil, adding to ws the
// channel that fires when it changes.
func groupTxn[G any](tx *memdb.Txn, ws memdb.WatchSet, table, key string) (*G, error) {
	ch, raw, err := tx.FirstWatch(table, "id", key)
	if err != nil {
		return nil, fmt.Errorf("service lookup: %w", err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*G), nil
}

// serviceOnNodeTxn returns the instance id on node, or nil.
func serviceOnNodeTxn(tx *memdb.Txn, node, id string) (*Service, error) {
	ns, err := nodeServicesTxn(tx, nil, node)
	if err != nil || ns == nil {
		return nil, err
	}
	if i, ok := searchServiceID(ns.Services, id); ok {
		return ns.Services[i], nil
	}
	return nil, nil
}

// searchServiceID finds id in services sorted by ID: its index, or where
// it would go.
func searchServiceID(services []*Service, id string) (int, bool) {
	i := sort.Search(len(services), func(i int) bool { return services[i].ID >= id })
	return i, i < len(services) && services[i].ID == id
}

// putServiceTxn stores svc, which replaces old, the instance with its node
// and ID (nil when there is none). svc is the caller's to give: its Node
// and Service strings may be swapped for equal ones the groups already
// hold, so instances share them.
func putServiceTxn(tx *memdb.Txn, svc, old *Service) error {
	if len(svc.Meta) == 0 {
		svc.Meta = emptyServiceMeta
	}
	ns, err := nodeServicesTxn(tx, nil, svc.Node)
	if err != nil {
		return err
	}
	var onNode []*Service
	key := strings.ToLower(svc.Node)
	if ns != nil {
		onNode, key = ns.Services, ns.Node
		if svc.Node == key {
			svc.Node = key
		}
	}
	i, found := searchServiceID(onNode, svc.ID)
	if found {
		onNode = slices.Clone(onNode)
		onNode[i] = svc
	} else {
		onNode = slices.Insert(slices.Clip(onNode), i, svc)
	}
	if err := tx.Insert(tableNodeServices, &nodeServices{Node: key, Services: onNode}); err != nil {
		return fmt.Errorf("inserting service: %w", err)
	}

	if old != nil && !strings.EqualFold(old.Service, svc.Service) {
		if err := leaveServiceGroupTxn(tx, old); err != nil {
			return err
		}
	}
	g, err := serviceGroupTxn(tx, nil, svc.Service)
	if err != nil {
		return err
	}
	if g != nil && svc.Service == g.Name {
		svc.Service = g.Name
	}
	if err := tx.Insert(tableServiceNames, g.with(strings.ToLower(svc.Service), svc)); err != nil {
		return fmt.Errorf("inserting service: %w", err)
	}
	return nil
}

// deleteServiceRowTxn removes the instance old from both groups.
func deleteServiceRowTxn(tx *memdb.Txn, old *Service) error {
	ns, err := nodeServicesTxn(tx, nil, old.Node)
	if err != nil {
		return err
	}
	if ns != nil {
		if i, ok := searchServiceID(ns.Services, old.ID); ok {
			if len(ns.Services) == 1 {
				if err := tx.Delete(tableNodeServices, ns); err != nil {
					return fmt.Errorf("deleting service: %w", err)
				}
			} else if err := tx.Insert(tableNodeServices, &nodeServices{Node: ns.Node,
				Services: slices.Delete(slices.Clone(ns.Services), i, i+1)}); err != nil {
				return fmt.Errorf("deleting service: %w", err)
			}
		}
	}
	return leaveServiceGroupTxn(tx, old)
}

// leaveServiceGroupTxn removes the instance old from its service's group.
func leaveServiceGroupTxn(tx *memdb.Txn, old *Service) error {
	g, err := serviceGroupTxn(tx, nil, old.Service)
	if err != nil || g == nil {
		return err
	}
	switch rest := g.without(old); {
	case rest == g:
		return nil
	case rest == nil:
		if err := tx.Delete(tableServiceNames, g); err != nil {
			return fmt.Errorf("deleting service: %w", err)
		}
	default:
		if err := tx.Insert(tableServiceNames, rest); err != nil {
			return fmt.Errorf("deleting service: %w", err)
		}
	}
	return nil
}

// deleteNodeServicesTxn removes every instance on node.
func deleteNodeServicesTxn(tx *memdb.Txn, node string) error {
	ns, err := nodeServicesTxn(tx, nil, node)
	if err != nil || ns == nil {
		return err
	}
	for _, svc := range ns.Services {
		if err := leaveServiceGroupTxn(tx, svc); err != nil {
			return err
		}
	}
	if err := tx.Delete(tableNodeServices, ns); err != nil {
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
		for _, svc := range raw.(*nodeServices).Services {
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

// insert writes the groups, each in a slice of its own size; two
// instances with the same node and ID are an error.
func (r *serviceRows) insert(tx *memdb.Txn) error {
	for node, list := range r.byNode {
		list = slices.Clone(list)
		slices.SortFunc(list, func(a, b *Service) int { return strings.Compare(a.ID, b.ID) })
		for i := 1; i < len(list); i++ {
			if list[i].ID == list[i-1].ID {
				return fmt.Errorf("service %q on node %q appears twice", list[i].ID, list[i].Node)
			}
		}
		if err := tx.Insert(tableNodeServices, &nodeServices{Node: node, Services: list}); err != nil {
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
