package adminapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-memdb"
)

func (s *Server) catalogRegister(w http.ResponseWriter, r *http.Request) {
	var req state.RegisterRequest
	if err := decodeBody(r, &req); err != nil {
		s.writeErr(w, err)
		return
	}
	if err := s.validateRegister(&req); err != nil {
		s.writeErr(w, err)
		return
	}
	if !mayRegister(authz(r), &req) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	if _, err := s.agent.Apply(state.RegisterRequestType, &req); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, true)
}

// validateRegister checks a catalog registration and fills Consul's defaults.
func (s *Server) validateRegister(req *state.RegisterRequest) error {
	if req.Datacenter == "" {
		req.Datacenter = s.agent.Datacenter()
	} else if req.Datacenter != s.agent.Datacenter() {
		return state.ErrNoPathToDC
	}
	if strings.TrimSpace(req.Node) == "" {
		return badRequest("Must supply node")
	}
	if req.Address == "" && !req.SkipNodeUpdate {
		return badRequest("Must supply address")
	}
	if svc := req.Service; svc != nil {
		if strings.TrimSpace(svc.Service) == "" {
			return badRequest("Must provide service name")
		}
		if svc.ID == "" {
			svc.ID = svc.Service
		}
		if svc.Port < 0 || svc.Port > 65535 {
			return badRequest("Invalid service port %d: must be from 0 to 65535", svc.Port)
		}
		if svc.Weights.Passing == 0 && svc.Weights.Warning == 0 {
			svc.Weights = state.Weights{Passing: 1, Warning: 1}
		}
		if svc.Tags == nil {
			svc.Tags = []string{}
		}
		if svc.Meta == nil {
			svc.Meta = map[string]string{}
		}
	}
	checks := req.Checks
	if req.Check != nil {
		checks = append([]*state.HealthCheck{req.Check}, checks...)
	}
	for _, c := range checks {
		if c == nil {
			return badRequest("Check is not valid: null")
		}
		if c.CheckID == "" {
			c.CheckID = c.Name
		}
		if c.CheckID == "" {
			return badRequest("Check is not valid: missing CheckID and Name")
		}
		if c.Name == "" {
			c.Name = c.CheckID
		}
		switch c.Status {
		case "":
			c.Status = state.HealthCritical
		case state.HealthPassing, state.HealthWarning, state.HealthCritical:
		default:
			return badRequest("Check is not valid: Status %q is not passing, warning or critical", c.Status)
		}
		if c.ServiceID == "" && req.Service != nil && c.Node == "" {
			// A check sent along with a service belongs to it unless it
			// says otherwise, as in Consul.
			c.ServiceID = req.Service.ID
		}
	}
	return nil
}

func (s *Server) catalogDeregister(w http.ResponseWriter, r *http.Request) {
	var req state.DeregisterRequest
	if err := decodeBody(r, &req); err != nil {
		s.writeErr(w, err)
		return
	}
	if req.Datacenter != "" && req.Datacenter != s.agent.Datacenter() {
		s.writeErr(w, state.ErrNoPathToDC)
		return
	}
	if strings.TrimSpace(req.Node) == "" {
		s.writeErr(w, badRequest("Must supply node"))
		return
	}
	if req.ServiceID != "" && req.CheckID != "" {
		s.writeErr(w, badRequest("Must supply either ServiceID or CheckID, not both"))
		return
	}
	if !s.mayDeregister(authz(r), &req) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	if _, err := s.agent.Apply(state.DeregisterRequestType, &req); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, true)
}

// mayRegister reports whether a may make a registration, as Consul decides
// it: node:write for the node (unless the registration leaves the node and
// its own checks alone), service:write for the service and for each
// service check's service.
func mayRegister(a *acl.Authorizer, req *state.RegisterRequest) bool {
	checks := req.Checks
	if req.Check != nil {
		checks = append([]*state.HealthCheck{req.Check}, checks...)
	}
	nodeChecks := false
	for _, c := range checks {
		if c.ServiceID == "" {
			nodeChecks = true
		} else if (req.Service == nil || c.ServiceID != req.Service.ID) && !a.ServiceWrite(c.ServiceName) {
			return false
		}
	}
	if (!req.SkipNodeUpdate || nodeChecks) && !a.NodeWrite(req.Node) {
		return false
	}
	return req.Service == nil || a.ServiceWrite(req.Service.Service)
}

// mayDeregister reports whether a may make a deregistration: node:write
// for a node or a node check, service:write for a service or its check.
func (s *Server) mayDeregister(a *acl.Authorizer, req *state.DeregisterRequest) bool {
	if req.ServiceID == "" && req.CheckID == "" {
		return a.NodeWrite(req.Node)
	}
	store := s.agent.Store()
	_, _, svcs, err := store.NodeServices(nil, req.Node)
	if err != nil {
		return false
	}
	serviceName := func(id string) string {
		for _, svc := range svcs {
			if svc.ID == id {
				return svc.Service
			}
		}
		return ""
	}
	if req.ServiceID != "" {
		return a.ServiceWrite(serviceName(req.ServiceID)) || a.NodeWrite(req.Node)
	}
	_, checks, err := store.NodeChecks(nil, req.Node)
	if err != nil {
		return false
	}
	for _, c := range checks {
		if c.CheckID == req.CheckID && c.ServiceID != "" {
			return a.ServiceWrite(serviceName(c.ServiceID)) || a.NodeWrite(req.Node)
		}
	}
	return a.NodeWrite(req.Node)
}

// Federation is what a server knows of the other datacenters.
type Federation interface {
	// Datacenters are the datacenters known, nearest first.
	Datacenters() []string
	// WANCoordinates are the WAN network coordinates of each
	// datacenter's servers, by datacenter, named <node>.<dc>.
	WANCoordinates() map[string]state.Coordinates
}

// catalogDatacenters lists the datacenters, nearest first: a server's own
// view (a client agent asks a server, as Consul's does).
func (s *Server) catalogDatacenters(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.agent.(ServerForwarder); ok {
		if server := f.ServerAPI(); server != nil {
			s.passOn(w, r, server)
			return
		}
	}
	if f, ok := s.agent.(Federation); ok {
		writeJSON(w, f.Datacenters())
		return
	}
	writeJSON(w, []string{s.agent.Datacenter()})
}

func (s *Server) catalogNodes(w http.ResponseWriter, r *http.Request) {
	meta, err := parseNodeMeta(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	a, near := authz(r), s.nearNode(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, nodes, err := s.agent.Store().Nodes(ws)
		if err != nil {
			return 0, nil, err
		}
		nodes, dropped := keep(nodes, func(n *state.Node) bool { return a.NodeRead(n.Node) })
		filtered(w, dropped)
		out := []*state.Node{}
		for _, n := range nodes {
			if meta.match(n) {
				out = append(out, n)
			}
		}
		sortNear(s.agent.Store(), near, out, func(n *state.Node) string { return n.Node })
		return idx, out, nil
	})
}

// catalogServices lists the services with the tags of their instances.
// With ?node-meta= or ?filter= (on Consul's ServiceNode selectors:
// ServiceName, ServiceTags, NodeMeta...), only the instances that match
// count.
func (s *Server) catalogServices(w http.ResponseWriter, r *http.Request) {
	meta, err := parseNodeMeta(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	f, err := requestFilter(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	a := authz(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, services, err := s.agent.Store().Services(ws)
		if err != nil {
			return 0, nil, err
		}
		dropped := false
		for name := range services {
			if !a.ServiceRead(name) {
				delete(services, name)
				dropped = true
			}
		}
		if len(meta) == 0 && f == nil {
			filtered(w, dropped)
			return idx, selfFiltered{services}, nil
		}
		out := map[string][]string{}
		for name := range services {
			_, instances, err := s.serviceInstances(ws, a, nil, name, nil, meta)
			if err != nil {
				return 0, nil, err
			}
			var nodes []catalogService
			for _, sn := range instances {
				nodes = append(nodes, toCatalogService(sn))
			}
			kept, err := applyFilter(f, nodes)
			if err != nil {
				return 0, nil, err
			}
			for _, cs := range kept.([]catalogService) {
				tags := out[name]
				if tags == nil {
					tags = []string{}
				}
				for _, t := range cs.ServiceTags {
					if !slices.Contains(tags, t) {
						tags = append(tags, t)
					}
				}
				out[name] = tags
			}
		}
		for _, tags := range out {
			slices.Sort(tags) // as the unfiltered list has them
		}
		filtered(w, dropped)
		return idx, selfFiltered{out}, nil
	})
}

func (s *Server) catalogService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	tags := r.URL.Query()["tag"]
	meta, err := parseNodeMeta(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	a, near := authz(r), s.nearNode(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, instances, err := s.serviceInstances(ws, a, w, name, tags, meta)
		if err != nil {
			return 0, nil, err
		}
		sortNear(s.agent.Store(), near, instances, instanceNode)
		out := []catalogService{}
		for _, sn := range instances {
			out = append(out, toCatalogService(sn))
		}
		return idx, out, nil
	})
}

// toCatalogService is an instance in Consul's ServiceNode shape.
func toCatalogService(sn state.ServiceNode) catalogService {
	n, svc := sn.Node, sn.Service
	return catalogService{
		ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: n.Datacenter,
		TaggedAddresses: n.TaggedAddresses, NodeMeta: n.Meta,
		ServiceKind: svc.Kind, ServiceID: svc.ID, ServiceName: svc.Service, ServiceAddress: svc.Address,
		ServiceTaggedAddresses: svc.TaggedAddresses, ServiceTags: svc.Tags, ServiceMeta: svc.Meta,
		ServicePort: svc.Port, ServiceWeights: svc.Weights, ServiceEnableTagOverride: svc.EnableTagOverride,
		CreateIndex: svc.CreateIndex, ModifyIndex: svc.ModifyIndex,
	}
}

// serviceInstances reads the instances of service name that carry every
// one of tags and whose node matches meta: the selection the catalog and
// health service endpoints share. What a may not read (the service, or an
// instance's node) is left out, and the answer says so.
func (s *Server) serviceInstances(ws memdb.WatchSet, a *acl.Authorizer, w http.ResponseWriter, name string,
	tags []string, meta nodeMetaFilter) (uint64, []state.ServiceNode, error) {
	idx, instances, err := s.agent.Store().ServiceNodes(ws, name, "")
	if err != nil {
		return 0, nil, err
	}
	if !a.ServiceRead(name) {
		filtered(w, len(instances) > 0)
		return idx, nil, nil
	}
	instances, dropped := keep(instances, func(sn state.ServiceNode) bool { return a.NodeRead(sn.Node.Node) })
	filtered(w, dropped)
	out := instances[:0]
	for _, sn := range instances {
		if hasTags(sn.Service, tags) && meta.match(sn.Node) {
			out = append(out, sn)
		}
	}
	return idx, out, nil
}

// instanceNode is the node of an instance, which ?near= sorts by.
func instanceNode(sn state.ServiceNode) string { return sn.Node.Node }

// hasTags reports whether svc carries every one of tags (Consul ANDs
// repeated ?tag= parameters).
func hasTags(svc *state.Service, tags []string) bool {
	for _, t := range tags {
		if !svc.HasTag(t) {
			return false
		}
	}
	return true
}

func (s *Server) catalogNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("node")
	a := authz(r)
	f, err := requestFilter(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, node, svcs, err := s.agent.Store().NodeServices(ws, name)
		if err != nil || node == nil {
			return idx, nil, err
		}
		if !a.NodeRead(node.Node) {
			filtered(w, true)
			return idx, nil, nil
		}
		svcs, dropped := keep(svcs, func(svc *state.Service) bool { return a.ServiceRead(svc.Service) })
		filtered(w, dropped)
		out := &catalogNode{Node: node, Services: map[string]*agentService{}}
		for _, svc := range svcs {
			out.Services[svc.ID] = s.toAgentService(svc)
		}
		// ?filter= applies to the node's services, as Consul's does.
		kept, err := applyFilter(f, out.Services)
		if err != nil {
			return 0, nil, err
		}
		out.Services = kept.(map[string]*agentService)
		return idx, out, nil
	})
}

// nodeMetaFilter is ?node-meta=key:value, repeatable; all must match.
type nodeMetaFilter map[string]string

func parseNodeMeta(r *http.Request) (nodeMetaFilter, error) {
	f := nodeMetaFilter{}
	for _, kv := range r.URL.Query()["node-meta"] {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return nil, badRequest("Invalid node-meta filter %q: want key:value", kv)
		}
		f[k] = v
	}
	return f, nil
}

func (f nodeMetaFilter) match(n *state.Node) bool {
	for k, v := range f {
		if n.Meta[k] != v {
			return false
		}
	}
	return true
}
