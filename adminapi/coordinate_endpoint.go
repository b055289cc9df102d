package adminapi

import (
	"net/http"
	"sort"
	"strings"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-memdb"
)

// Network coordinates (Consul's /v1/coordinate) and the sorting of reads by
// the round trip times they estimate (?near=).

// coordinateDatacenter is an entry of /v1/coordinate/datacenters.
type coordinateDatacenter struct {
	Datacenter  string
	AreaID      string
	Coordinates state.Coordinates
}

// serversService is the service every server's node carries.
const serversService = "consul"

// coordinateDatacenters answers with the servers' coordinates of each
// datacenter, as Consul does from its WAN pool: a server's own view,
// nearest datacenter first (a client agent asks a server). Without a WAN
// pool the one datacenter is the agent's, with its servers' LAN
// coordinates, under the names WAN members have (node.datacenter). Consul
// asks no ACL permission for it.
func (s *Server) coordinateDatacenters(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.agent.(ServerForwarder); ok {
		if server := f.ServerAPI(); server != nil {
			s.passOn(w, r, server)
			return
		}
	}
	if f, ok := s.agent.(Federation); ok {
		byDC := f.WANCoordinates()
		out := []coordinateDatacenter{}
		for _, dc := range f.Datacenters() {
			coords := byDC[dc]
			if coords == nil {
				coords = state.Coordinates{}
			}
			out = append(out, coordinateDatacenter{Datacenter: dc, AreaID: "WAN", Coordinates: coords})
		}
		writeJSON(w, out)
		return
	}
	dc := s.agent.Datacenter()
	store := s.agent.Store()
	_, servers, err := store.ServiceNodes(nil, serversService, "")
	if err != nil {
		s.writeErr(w, err)
		return
	}
	coords := store.LANCoordinates()
	out := coordinateDatacenter{Datacenter: dc, AreaID: "WAN", Coordinates: state.Coordinates{}}
	for _, sn := range servers {
		if c := coords.Of(sn.Node.Node); c != nil {
			out.Coordinates = append(out.Coordinates, &state.Coordinate{Node: sn.Node.Node + "." + dc, Coord: c})
		}
	}
	writeJSON(w, []coordinateDatacenter{out})
}

// coordinateNodes lists the coordinates of the nodes the token may read,
// of one segment with ?segment=.
func (s *Server) coordinateNodes(w http.ResponseWriter, r *http.Request) {
	segment, bySegment := segmentFilter(r)
	a := authz(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, coords, err := s.agent.Store().Coordinates(ws)
		if err != nil {
			return 0, nil, err
		}
		coords, dropped := keep(coords, func(c *state.Coordinate) bool { return a.NodeRead(c.Node) })
		filtered(w, dropped)
		out := state.Coordinates{}
		for _, c := range coords {
			if !bySegment || c.Segment == segment {
				out = append(out, c)
			}
		}
		return idx, out, nil
	})
}

// coordinateNode answers a node's coordinates, one per segment: 404 when
// it has none, 403 without node:read on it.
func (s *Server) coordinateNode(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	segment, bySegment := segmentFilter(r)
	if !authz(r).NodeRead(node) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, coords, err := s.agent.Store().NodeCoordinates(ws, node)
		if err != nil {
			return 0, nil, err
		}
		out := state.Coordinates{}
		for _, c := range coords {
			if !bySegment || c.Segment == segment {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return idx, notFound{}, nil
		}
		return idx, out, nil
	})
}

// segmentFilter is ?segment=, when given.
func segmentFilter(r *http.Request) (string, bool) {
	q := r.URL.Query()
	_, ok := q["segment"]
	return q.Get("segment"), ok
}

// coordinateUpdate takes a node's coordinate ({Node, Segment, Coord}), with
// node:write on it. As in Consul it is queued by the leader and committed
// with the next batch (within seconds), and an update for a node the
// catalog does not have is accepted and dropped; an invalid one (no Coord,
// NaN or infinite numbers, another dimensionality than the cluster's) is a
// 400.
func (s *Server) coordinateUpdate(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	var update state.Coordinate
	if err := decodeBody(r, &update); err != nil {
		s.writeErr(w, err)
		return
	}
	if err := state.ValidateCoordinate(&update); err != nil {
		s.writeErr(w, badRequest("%v", err))
		return
	}
	if !authz(r).NodeWrite(update.Node) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	if _, err := s.agent.Apply(state.CoordinateBatchUpdateType, state.Coordinates{&update}); err != nil {
		s.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// nearNode is the node a read sorts its results from (?near=; "_agent" is
// this agent's node), "" when it does not sort.
func (s *Server) nearNode(r *http.Request) string {
	near := strings.TrimSpace(r.URL.Query().Get("near"))
	if near == "_agent" {
		return s.agent.NodeName()
	}
	return near
}

// sortNear orders items by the round trip time their nodes' coordinates
// estimate from the coordinate of node near, nearest first, as Consul
// sorts ?near= reads: nodes without a coordinate come last, and the sort
// is stable, so they and the equally distant keep their order. Without
// near, or when near has no coordinate, the order stays as it is.
func sortNear[T any](store *state.Store, near string, items []T, nodeOf func(T) string) {
	if near == "" || len(items) < 2 {
		return
	}
	coords := store.LANCoordinates()
	from := coords.Of(near)
	if from == nil {
		return
	}
	type ranked struct {
		item T
		rtt  float64
	}
	sorted := make([]ranked, len(items))
	for i, item := range items {
		sorted[i] = ranked{item, state.RTT(from, coords.Of(nodeOf(item)))}
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].rtt < sorted[j].rtt })
	for i := range sorted {
		items[i] = sorted[i].item
	}
}
