package cli

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/consul/api"
)

// `catalog` is Consul's: the datacenters, nodes and services the catalog
// holds, as Consul's commands print them.

var catalogCommand = &command{name: "catalog", synopsis: "Interact with the catalog",
	subs: []*command{catalogDatacentersCommand, catalogNodesCommand, catalogServicesCommand}}

// metaFlag is Consul's repeatable key=value flag (-node-meta, -meta).
type metaFlag map[string]string

func (m *metaFlag) String() string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(*m)) {
		kv = append(kv, k+"="+(*m)[k])
	}
	return strings.Join(kv, ",")
}

func (m *metaFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return consulErrorf("Missing \"=\" value in argument: %s", v)
	}
	if *m == nil {
		*m = metaFlag{}
	}
	(*m)[k] = val
	return nil
}

func (m *metaFlag) Get() any { return map[string]string(*m) }

// tooManyArgs is Consul's refusal of arguments by a command that takes
// none.
func tooManyArgs(e *env, args []string) int {
	return e.fail("Too many arguments (expected 0, got %d)", len(args))
}

// readOptions are a read's options from -stale and, when the command has
// it, -node-meta (newClient takes -datacenter).
func readOptions(fs *flag.FlagSet) *api.QueryOptions {
	q := &api.QueryOptions{AllowStale: flagOf[bool](fs, "stale")}
	if f := fs.Lookup("node-meta"); f != nil {
		q.NodeMeta = flagOf[map[string]string](fs, "node-meta")
	}
	return q
}

var catalogDatacentersCommand = &command{name: "datacenters", synopsis: "Lists all known datacenters",
	help: "beacon catalog datacenters [options]", http: true,
	flags: func(fs *flag.FlagSet) { serverFlags(fs, true) },
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 0 {
			return tooManyArgs(e, args)
		}
		dcs, err := e.client.Catalog().Datacenters()
		if err != nil {
			// Consul's command says so and still exits 0; a failure is 1 here.
			return e.fail("Error listing datacenters: %v", decoded("/v1/catalog/datacenters", err))
		}
		var b strings.Builder
		for _, dc := range dcs {
			fmt.Fprintln(&b, dc)
		}
		return writeOutput(e, b.String())
	},
}

var catalogNodesCommand = &command{name: "nodes", synopsis: "Lists all nodes in the given datacenter",
	help: "beacon catalog nodes [options]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("detailed", false, "Output detailed information about the nodes including their addresses and metadata.")
		fs.String("near", "", "Node name to sort the node list in ascending order based on estimated round-trip time "+
			"from that node. Passing \"_agent\" will use this agent's node for sorting.")
		fs.Var(new(metaFlag), "node-meta", "Metadata to filter nodes with the given `key=value` pairs. "+
			"This flag may be specified multiple times to filter on multiple sources of metadata.")
		fs.String("service", "", "Service `id or name` to filter nodes. Only nodes which are providing the given "+
			"service will be returned.")
		fs.String("filter", "", "Filter to use with the request")
		serverFlags(fs, true)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 0 {
			return tooManyArgs(e, args)
		}
		q := readOptions(fs)
		q.Near, q.Filter = flagString(fs, "near"), flagString(fs, "filter")
		var nodes []*api.Node
		if service := flagString(fs, "service"); service != "" {
			instances, _, err := e.client.Catalog().Service(service, "", q)
			if err != nil {
				return e.fail("Error listing nodes for service: %v", decoded("/v1/catalog/service", err))
			}
			for _, s := range instances {
				if s != nil {
					nodes = append(nodes, &api.Node{ID: s.ID, Node: s.Node, Address: s.Address, Datacenter: s.Datacenter,
						TaggedAddresses: s.TaggedAddresses, Meta: s.NodeMeta})
				}
			}
		} else {
			var err error
			if nodes, _, err = e.client.Catalog().Nodes(q); err != nil {
				return e.fail("Error listing nodes: %v", decoded("/v1/catalog/nodes", err))
			}
		}
		nodes = slices.DeleteFunc(nodes, func(n *api.Node) bool { return n == nil })
		if len(nodes) == 0 {
			fmt.Fprintln(e.stderr, "No nodes match the given query - try expanding your search.")
			return exitOK
		}
		detailed := flagOf[bool](fs, "detailed")
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		if detailed {
			row(tw, "Node", "ID", "Address", "DC", "TaggedAddresses", "Meta")
		} else {
			row(tw, "Node", "ID", "Address", "DC")
		}
		for _, n := range nodes {
			if detailed {
				row(tw, n.Node, n.ID, n.Address, n.Datacenter, keyValues(n.TaggedAddresses), keyValues(n.Meta))
				continue
			}
			id, _, _ := strings.Cut(n.ID, "-") // Consul shortens the ID to its first group
			row(tw, n.Node, id, n.Address, n.Datacenter)
		}
		tw.Flush()
		return writeOutput(e, b.String())
	},
}

// keyValues is m as "k=v, k=v", by key, as Consul's catalog prints maps.
func keyValues(m map[string]string) string {
	kv := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kv = append(kv, k+"="+m[k])
	}
	return strings.Join(kv, ", ")
}

var catalogServicesCommand = &command{name: "services", synopsis: "Lists all registered services in a datacenter",
	help: "beacon catalog services [options]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("node", "", "Node `id or name` for which to list services.")
		fs.Var(new(metaFlag), "node-meta", "Metadata to filter nodes with the given `key=value` pairs. If specified, "+
			"only services running on nodes matching the given metadata will be returned. This flag may be "+
			"specified multiple times to filter on multiple sources of metadata.")
		fs.Bool("tags", false, "Display each service's tags as a comma-separated list beside each service entry.")
		serverFlags(fs, true)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) > 0 {
			return tooManyArgs(e, args)
		}
		q := readOptions(fs)
		services := map[string][]string{}
		if node := flagString(fs, "node"); node != "" {
			n, _, err := e.client.Catalog().Node(node, q)
			if err != nil {
				return e.fail("Error listing services for node: %v", decoded("/v1/catalog/node", err))
			}
			if n != nil {
				for _, s := range n.Services {
					if s != nil {
						services[s.Service] = append(services[s.Service], s.Tags...)
					}
				}
			}
		} else {
			var err error
			if services, _, err = e.client.Catalog().Services(q); err != nil {
				return e.fail("Error listing services: %v", decoded("/v1/catalog/services", err))
			}
		}
		if len(services) == 0 {
			fmt.Fprintln(e.stderr, "No services match the given query - try expanding your search.")
			return exitOK
		}
		names := slices.Sorted(maps.Keys(services))
		if !flagOf[bool](fs, "tags") {
			return writeOutput(e, strings.Join(names, "\n")+"\n")
		}
		// Consul's layout: a tab stop of 2 and 6 spaces of padding, the
		// whole trimmed.
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 2, 6, ' ', 0)
		for _, name := range names {
			tags := slices.Clone(services[name])
			slices.Sort(tags)
			row(tw, name, strings.Join(tags, ","))
		}
		tw.Flush()
		return writeOutput(e, strings.TrimSpace(b.String())+"\n")
	},
}
