package e2e

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/coordinate"
)

// coordinateDeadline bounds how long a coordinate takes to show: an
// agent's first send goes once the catalog has its node, and the leader
// commits what it received every 5 s.
const coordinateDeadline = 30 * time.Second

// coordinatesOf reads every LAN coordinate through a's API, by node, with
// the index they reflect.
func coordinatesOf(a *Agent) (map[string]*coordinate.Coordinate, uint64, error) {
	entries, meta, err := a.Client.Coordinate().Nodes(nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET /v1/coordinate/nodes on %s: %w", a.Opts.Node, err)
	}
	out := map[string]*coordinate.Coordinate{}
	for _, e := range entries {
		if e.Segment == "" {
			out[e.Node] = e.Coord
		}
	}
	return out, meta.LastIndex, nil
}

// byRTT is names ordered as ?near= orders them from the coordinate from:
// by estimated round trip, those without a coordinate last, ties (and those
// without) in the order given.
func byRTT(from *coordinate.Coordinate, coords map[string]*coordinate.Coordinate, names []string) []string {
	out := slices.Clone(names)
	rtt := func(n string) float64 {
		if c := coords[n]; c != nil {
			return from.DistanceTo(c).Seconds()
		}
		return 1e300
	}
	sort.SliceStable(out, func(i, j int) bool { return rtt(out[i]) < rtt(out[j]) })
	return out
}

// nearOrder reads a ?near=_agent result through read and checks its order
// against the coordinates the agent holds, read before and after it at the
// same index (so that the sort saw them too); it retries while coordinates
// change under it.
func nearOrder(t *testing.T, a *Agent, what string, read func() ([]string, error), want func(coords map[string]*coordinate.Coordinate) []string) {
	t.Helper()
	eventually(t, coordinateDeadline, func() error {
		before, idx1, err := coordinatesOf(a)
		if err != nil {
			return err
		}
		got, err := read()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		_, idx2, err := coordinatesOf(a)
		if err != nil {
			return err
		}
		if idx1 != idx2 {
			return fmt.Errorf("%s: coordinates changed during the read (index %d, then %d)", what, idx1, idx2)
		}
		if w := want(before); !slices.Equal(got, w) {
			return fmt.Errorf("%s = %v, want %v (by the coordinates at index %d)", what, got, w, idx1)
		}
		return nil
	})
}

func TestCoordinatesNearAndRTT(t *testing.T) {
	t.Parallel()
	servers := StartCluster(t, 3)
	client := StartClient(t, "c1", servers)
	agents := []string{"c1", "s1", "s2", "s3"}

	// Every agent's coordinate reaches the catalog, on every replica.
	started := time.Now()
	for _, a := range []*Agent{client, servers[0]} {
		eventually(t, coordinateDeadline, func() error {
			coords, _, err := coordinatesOf(a)
			if err != nil {
				return err
			}
			for _, n := range agents {
				c := coords[n]
				if c == nil {
					return fmt.Errorf("no coordinate of %s on %s yet (have %d)", n, a.Opts.Node, len(coords))
				}
				if !c.IsValid() || len(c.Vec) != 8 {
					return fmt.Errorf("coordinate of %s on %s: %+v", n, a.Opts.Node, c)
				}
			}
			return nil
		})
		t.Logf("the 4 agents' coordinates were on %s %v after the client agent was ready",
			a.Opts.Node, time.Since(started).Round(100*time.Millisecond))
	}
	if one, _, err := servers[1].Client.Coordinate().Node("c1", nil); err != nil || len(one) != 1 || one[0].Node != "c1" {
		t.Errorf("GET /v1/coordinate/node/c1 on s2 = %+v, %v", one, err)
	}
	// The datacenters' coordinates are the WAN pool's: each server's is
	// known once the WAN pool (probing every 5 s) has reached it.
	var dcs []*api.CoordinateDatacenterMap
	eventually(t, 30*time.Second, func() error {
		var err error
		dcs, err = client.Client.Coordinate().Datacenters()
		if err != nil || len(dcs) != 1 || dcs[0].Datacenter != "dc1" || len(dcs[0].Coordinates) != 3 {
			return fmt.Errorf("GET /v1/coordinate/datacenters = %+v, %v: want dc1 with its 3 servers", dcs, err)
		}
		return nil
	})
	slices.SortFunc(dcs[0].Coordinates, func(a, b api.CoordinateEntry) int { return strings.Compare(a.Node, b.Node) })
	for i, e := range dcs[0].Coordinates {
		if want := fmt.Sprintf("s%d.dc1", i+1); e.Node != want || e.Coord == nil {
			t.Errorf("datacenters' coordinate %d = %+v, want %s's", i, e, want)
		}
	}

	// Nodes far from the client agent's coordinate, made up through the
	// API, and one without a coordinate: they sort after the agents, in
	// that order, whatever the agents' coordinates do meanwhile.
	coords, _, err := coordinatesOf(client)
	if err != nil {
		t.Fatal(err)
	}
	at := func(ms float64) *coordinate.Coordinate {
		c := coords["c1"].Clone()
		c.Vec[0] += ms / 1000
		return c
	}
	for _, n := range []struct {
		name string
		ms   float64
	}{{"zz-near", 20}, {"aa-far", 200}, {"mm-none", -1}} {
		catalogWeb(t, client, n.name, "10.0.9.1", "web-"+n.name, "v1", api.HealthPassing)
		if n.ms >= 0 {
			if _, err := client.Client.Coordinate().Update(&api.CoordinateEntry{Node: n.name, Coord: at(n.ms)}, nil); err != nil {
				t.Fatalf("PUT /v1/coordinate/update %s: %v", n.name, err)
			}
		}
	}
	eventually(t, coordinateDeadline, func() error {
		coords, _, err := coordinatesOf(client)
		if err == nil && (coords["zz-near"] == nil || coords["aa-far"] == nil) {
			err = fmt.Errorf("the made-up nodes' coordinates are not there yet")
		}
		return err
	})

	near := &api.QueryOptions{Near: "_agent"}
	nearOrder(t, client, "catalog nodes ?near=_agent", func() ([]string, error) {
		nodes, _, err := client.Client.Catalog().Nodes(near)
		var names []string
		for _, n := range nodes {
			names = append(names, n.Node)
		}
		return names, err
	}, func(coords map[string]*coordinate.Coordinate) []string {
		// The agents are a LAN apart; the made-up nodes far beyond.
		return append(byRTT(coords["c1"], coords, agents), "zz-near", "aa-far", "mm-none")
	})
	nearOrder(t, client, "health service consul ?near=_agent", func() ([]string, error) {
		entries, _, err := client.Client.Health().Service("consul", "", false, near)
		var names []string
		for _, e := range entries {
			names = append(names, e.Node.Node)
		}
		return names, err
	}, func(coords map[string]*coordinate.Coordinate) []string {
		return byRTT(coords["c1"], coords, []string{"s1", "s2", "s3"})
	})
	// From a server, ?near=<node> sorts from that node's coordinate.
	nearOrder(t, servers[2], "health service consul ?near=s1 on s3", func() ([]string, error) {
		entries, _, err := servers[2].Client.Health().Service("consul", "", false, &api.QueryOptions{Near: "s1"})
		var names []string
		for _, e := range entries {
			names = append(names, e.Node.Node)
		}
		return names, err
	}, func(coords map[string]*coordinate.Coordinate) []string {
		return byRTT(coords["s1"], coords, []string{"s1", "s2", "s3"})
	})
	services, _, err := client.Client.Catalog().Service("web", "", near)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range services {
		names = append(names, s.Node)
	}
	if want := []string{"zz-near", "aa-far", "mm-none"}; !slices.Equal(names, want) {
		t.Errorf("catalog service web ?near=_agent = %v, want %v", names, want)
	}
	checks, _, err := client.Client.Health().Checks("web", near)
	if err != nil {
		t.Fatal(err)
	}
	names = names[:0]
	for _, c := range checks {
		names = append(names, c.Node)
	}
	if want := []string{"zz-near", "aa-far", "mm-none"}; !slices.Equal(names, want) {
		t.Errorf("health checks web ?near=_agent = %v, want %v", names, want)
	}

	// beacon rtt, as consul rtt.
	beacon := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, beaconBin, append([]string{"rtt", "-http-addr=" + client.HTTPAddr}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	line := regexp.MustCompile(`^Estimated (\S+) <-> (\S+) rtt: \d+\.\d{3} ms \(using LAN coordinates\)\n$`)
	for _, args := range [][]string{{"s1", "s2"}, {"s3"}, {"zz-near", "c1"}} {
		out, err := beacon(args...)
		m := line.FindStringSubmatch(out)
		want := append(slices.Clone(args), "c1")[:2] // the second defaults to the agent's node
		if err != nil || m == nil || m[1] != want[0] || m[2] != want[1] {
			t.Errorf("beacon rtt %s: %v, %q", strings.Join(args, " "), err, out)
		}
	}
	// zz-near was put 20 ms from c1, but c1's own coordinate keeps moving
	// with what its probes measure (by tens of milliseconds on a loaded
	// machine): the answer must be the distance between the two
	// coordinates the catalog holds, read just before and just after the
	// command; when they moved meanwhile, the check is made again.
	distance := func() float64 {
		coords, _, err := coordinatesOf(client)
		if err != nil || coords["zz-near"] == nil || coords["c1"] == nil {
			t.Fatalf("coordinates of zz-near and c1: %v, %v", coords, err)
		}
		return coords["zz-near"].DistanceTo(coords["c1"]).Seconds() * 1000
	}
	for attempt := 1; ; attempt++ {
		before := distance()
		out, err := beacon("zz-near", "c1")
		if after := distance(); after != before {
			if attempt == 5 {
				t.Fatalf("c1's coordinate moved during each of 5 rtt commands")
			}
			continue
		}
		var ms float64
		if _, scanErr := fmt.Sscanf(strings.TrimPrefix(out, "Estimated zz-near <-> c1 rtt: "), "%f ms", &ms); err != nil || scanErr != nil || math.Abs(ms-before) > 0.001 {
			t.Errorf("beacon rtt zz-near c1 = %q (%v), want the coordinates' distance, %.3f ms", out, err, before)
		}
		break
	}
	if out, err := beacon("s1", "mm-none"); err == nil || !strings.Contains(out, "Could not find coordinates for both nodes") {
		t.Errorf("beacon rtt to a node without a coordinate: %v, %q", err, out)
	}
	// The WAN pool's coordinates, between two servers; a client agent
	// cannot stand for one.
	if out, err := beacon("-wan", "s1.dc1", "s2.dc1"); err != nil || !strings.Contains(out, "Estimated s1.dc1 <-> s2.dc1 rtt:") {
		t.Errorf("beacon rtt -wan s1.dc1 s2.dc1: %v, %q", err, out)
	}
	if out, err := beacon("-wan", "s1.dc1"); err == nil || !strings.Contains(out, "Must specify two server node names for client agent") {
		t.Errorf("beacon rtt -wan from a client agent with one name: %v, %q", err, out)
	}
}
