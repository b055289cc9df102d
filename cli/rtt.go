package cli

import (
	"flag"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/coordinate"
)

// rtt estimates the round trip time between two nodes from their network
// coordinates, as `consul rtt` does; the second node defaults to the
// agent's own. With -wan the nodes are servers named <node>.<dc> in the
// WAN pool (a bare datacenter name stands for its first server).
var rttCommand = &command{name: "rtt", synopsis: "Estimates network round trip time between nodes",
	help: "beacon rtt [options] NODE1 [NODE2]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.Bool("wan", false, "Use WAN coordinates: servers named <node>.<datacenter>, or a datacenter's name.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if len(args) < 1 || len(args) > 2 {
			return usageErr(e, "One or two node names must be specified")
		}
		if flagOf[bool](fs, "wan") {
			return rttWAN(e, args)
		}
		nodes := args
		if len(nodes) == 1 {
			self, err := e.client.Agent().NodeName()
			if err != nil {
				return e.fail("Unable to look up agent info: %v", decoded("/v1/agent/self", err))
			}
			nodes = append(nodes, self)
		}
		entries, _, err := e.client.Coordinate().Nodes(nil)
		if err != nil {
			return e.fail("Error getting coordinates: %v", decoded("/v1/coordinate/nodes", err))
		}
		c1, c2 := intersect(coordinatesOf(entries, nodes[0]), coordinatesOf(entries, nodes[1]))
		if c1 == nil || c2 == nil || !c1.IsCompatibleWith(c2) {
			return e.fail("Could not find coordinates for both nodes")
		}
		e.info("Estimated %s <-> %s rtt: %.3f ms (using LAN coordinates)", nodes[0], nodes[1],
			c1.DistanceTo(c2).Seconds()*1000)
		return exitOK
	},
}

// coordinatesOf are node's coordinates by segment.
func coordinatesOf(entries []*api.CoordinateEntry, node string) map[string]*coordinate.Coordinate {
	out := map[string]*coordinate.Coordinate{}
	for _, e := range entries {
		if e != nil && e.Node == node && e.Coord != nil {
			out[e.Segment] = e.Coord
		}
	}
	return out
}

// intersect picks the segment two nodes' coordinates are compared in, as
// Consul does: the default one, unless either node is in one segment only
// (a client agent), which is then the one.
func intersect(a, b map[string]*coordinate.Coordinate) (*coordinate.Coordinate, *coordinate.Coordinate) {
	segment := ""
	for _, set := range []map[string]*coordinate.Coordinate{a, b} {
		if len(set) == 1 {
			for s := range set {
				segment = s
			}
		}
	}
	return a[segment], b[segment]
}

// rttWAN is rtt -wan: between two servers of the WAN pool, the second the
// agent itself (which must then be a server) when not given.
func rttWAN(e *env, args []string) int {
	dcs, err := e.client.Coordinate().Datacenters()
	if err != nil {
		return e.fail("Error getting coordinates: %v", decoded("/v1/coordinate/datacenters", err))
	}
	nodes := args
	if len(nodes) == 1 {
		self, err := e.client.Agent().Self()
		if err != nil {
			return e.fail("Unable to look up agent info: %v", decoded("/v1/agent/self", err))
		}
		cfg, _ := self["Config"]
		name, _ := cfg["NodeName"].(string)
		dc, _ := cfg["Datacenter"].(string)
		if server, _ := cfg["Server"].(bool); !server {
			return e.fail("Must specify two server node names for client agent")
		}
		nodes = append(nodes, name+"."+dc)
	}
	find := func(name string) *coordinate.Coordinate {
		for _, dc := range dcs {
			for _, c := range dc.Coordinates {
				if c.Node == name || (dc.Datacenter == name && c == dc.Coordinates[0]) {
					return c.Coord
				}
			}
		}
		return nil
	}
	c1, c2 := find(nodes[0]), find(nodes[1])
	if c1 == nil || c2 == nil || !c1.IsCompatibleWith(c2) {
		return e.fail("Could not find coordinates for both nodes")
	}
	e.info("Estimated %s <-> %s rtt: %.3f ms (using WAN coordinates)", nodes[0], nodes[1], c1.DistanceTo(c2).Seconds()*1000)
	return exitOK
}
