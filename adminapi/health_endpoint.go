package adminapi

import (
	"net/http"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-memdb"
)

func (s *Server) healthService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	tags := q["tag"]
	_, passing := q["passing"]
	if v := q.Get("passing"); v == "false" || v == "0" {
		passing = false
	}
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
		out := []serviceEntry{}
		for _, sn := range instances {
			if passing && !state.Healthy(sn.Checks, true) {
				continue
			}
			out = append(out, serviceEntry{Node: sn.Node, Service: s.toAgentService(sn.Service),
				Checks: nonNil(sn.Checks)})
		}
		return idx, out, nil
	})
}

func (s *Server) healthNode(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	a := authz(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, checks, err := s.agent.Store().NodeChecks(ws, node)
		return idx, readableChecks(w, a, checks), err
	})
}

func (s *Server) healthChecks(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a, near := authz(r), s.nearNode(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, checks, err := s.agent.Store().ServiceChecks(ws, name)
		return idx, s.sortChecksNear(near, readableChecks(w, a, checks)), err
	})
}

func (s *Server) healthState(w http.ResponseWriter, r *http.Request) {
	status := r.PathValue("state")
	switch status {
	case state.HealthAny, state.HealthPassing, state.HealthWarning, state.HealthCritical:
	default:
		httpError(w, http.StatusBadRequest, "Bad state: must be any, passing, warning or critical")
		return
	}
	a, near := authz(r), s.nearNode(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, checks, err := s.agent.Store().ChecksInState(ws, status)
		return idx, s.sortChecksNear(near, readableChecks(w, a, checks)), err
	})
}

// checkReadable reports whether a may read c: its service's, or for a node
// check its node's, read permission.
func checkReadable(a *acl.Authorizer, c *state.HealthCheck) bool {
	if c.ServiceID != "" {
		return a.ServiceRead(c.ServiceName) && a.NodeRead(c.Node)
	}
	return a.NodeRead(c.Node)
}

// readableChecks is the checks a may read, never nil, with the answer
// saying whether any was left out.
func readableChecks(w http.ResponseWriter, a *acl.Authorizer, checks []*state.HealthCheck) []*state.HealthCheck {
	out, dropped := keep(checks, func(c *state.HealthCheck) bool { return checkReadable(a, c) })
	filtered(w, dropped)
	return nonNil(out)
}

// sortChecksNear orders checks by their nodes' distance from near
// (?near=), and returns them.
func (s *Server) sortChecksNear(near string, checks []*state.HealthCheck) []*state.HealthCheck {
	sortNear(s.agent.Store(), near, checks, func(c *state.HealthCheck) string { return c.Node })
	return checks
}
