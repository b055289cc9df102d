package adminapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-memdb"
)

func (s *Server) agentServiceRegister(w http.ResponseWriter, r *http.Request) {
	var def serviceDefinition
	if err := decodeBody(r, &def); err != nil {
		s.writeErr(w, err)
		return
	}
	svc, checks, err := def.validate()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if !authz(r).ServiceWrite(svc.Service) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	if err := s.agent.AddService(svc, checks); err != nil {
		s.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// validate turns a service definition into the service and checks to
// register, or says what is wrong with it.
func (d *serviceDefinition) validate() (*state.Service, []*state.HealthCheck, error) {
	if strings.TrimSpace(d.Name) == "" {
		return nil, nil, badRequest("Invalid Service Meta: missing service name")
	}
	if d.Port < 0 || d.Port > 65535 {
		return nil, nil, badRequest("Invalid service port %d: must be from 0 to 65535", d.Port)
	}
	for k := range d.Meta {
		if k == "" || len(k) > 128 {
			return nil, nil, badRequest("Invalid Service Meta: key %q must be 1 to 128 characters", k)
		}
	}
	svc := &state.Service{
		Kind: d.Kind, ID: d.ID, Service: d.Name, Tags: d.Tags, Address: d.Address,
		TaggedAddresses: d.TaggedAddresses, Meta: d.Meta, Port: d.Port,
		Weights: state.Weights{Passing: 1, Warning: 1}, EnableTagOverride: d.EnableTagOverride,
	}
	if svc.ID == "" {
		svc.ID = svc.Service
	}
	if svc.Meta == nil {
		svc.Meta = map[string]string{}
	}
	if svc.Tags == nil {
		svc.Tags = []string{}
	}
	if d.Weights != nil {
		if d.Weights.Passing < 1 || d.Weights.Warning < 0 {
			return nil, nil, badRequest("Invalid Weights: Passing must be at least 1 and Warning at least 0")
		}
		svc.Weights = *d.Weights
	}
	defs := d.Checks
	if d.Check != nil {
		defs = append([]*checkDefinition{d.Check}, defs...)
	}
	var checks []*state.HealthCheck
	for i, cd := range defs {
		if cd == nil {
			continue
		}
		c, err := cd.toCheck(svc, i, len(defs))
		if err != nil {
			return nil, nil, err
		}
		checks = append(checks, c)
	}
	return svc, checks, nil
}

// toCheck builds a service's check, named as Consul names them.
func (cd *checkDefinition) toCheck(svc *state.Service, i, n int) (*state.HealthCheck, error) {
	id := cd.CheckID
	if id == "" {
		id = "service:" + svc.ID
		if n > 1 {
			id += ":" + strconv.Itoa(i+1)
		}
	}
	name := cd.Name
	if name == "" {
		name = "Service '" + svc.Service + "' check"
	}
	return cd.build(id, name, svc)
}

// build validates the definition and builds the check id, named name, of
// svc (nil for a node check).
func (cd *checkDefinition) build(id, name string, svc *state.Service) (*state.HealthCheck, error) {
	kinds := 0
	typ := ""
	for _, k := range []struct {
		set  bool
		name string
	}{
		{cd.HTTP != "", "http"}, {cd.TCP != "", "tcp"}, {cd.TTL != "", "ttl"},
		{cd.GRPC != "", "grpc"}, {len(cd.ScriptArgs) > 0, "script"},
	} {
		if k.set {
			kinds++
			typ = k.name
		}
	}
	if kinds == 0 {
		return nil, badRequest("Check is not valid: one of HTTP, TCP, TTL, GRPC or ScriptArgs must be set")
	}
	if kinds > 1 {
		return nil, badRequest("Check is not valid: only one of HTTP, TCP, TTL, GRPC or ScriptArgs may be set")
	}
	for _, d := range []struct{ name, v string }{{"Interval", cd.Interval}, {"Timeout", cd.Timeout}, {"TTL", cd.TTL},
		{"DeregisterCriticalServiceAfter", cd.DeregisterCriticalServiceAfter}} {
		if d.v == "" {
			continue
		}
		if v, err := time.ParseDuration(d.v); err != nil || v < 0 {
			return nil, badRequest("Check is not valid: %s %q is not a duration", d.name, d.v)
		}
	}
	if typ != "ttl" && cd.Interval == "" {
		return nil, badRequest("Check is not valid: %s checks need an Interval", typ)
	}
	if cd.SuccessBeforePassing < 0 || cd.FailuresBeforeCritical < 0 {
		return nil, badRequest("Check is not valid: SuccessBeforePassing and FailuresBeforeCritical must not be negative")
	}
	status := cd.Status
	switch status {
	case "":
		status = state.HealthCritical
	case state.HealthPassing, state.HealthWarning, state.HealthCritical:
	default:
		return nil, badRequest("Check is not valid: Status %q is not passing, warning or critical", status)
	}
	c := &state.HealthCheck{
		CheckID: id, Name: name, Status: status, Notes: cd.Notes, Type: typ,
		Definition: state.CheckDefinition{
			HTTP: cd.HTTP, Method: cd.Method, Header: cd.Header, Body: cd.Body, TLSSkipVerify: cd.TLSSkipVerify,
			TCP: cd.TCP, GRPC: cd.GRPC, GRPCUseTLS: cd.GRPCUseTLS, TTL: cd.TTL, ScriptArgs: cd.ScriptArgs,
			Interval: cd.Interval, Timeout: cd.Timeout, DeregisterCriticalServiceAfter: cd.DeregisterCriticalServiceAfter,
			SuccessBeforePassing: cd.SuccessBeforePassing, FailuresBeforeCritical: cd.FailuresBeforeCritical,
		},
	}
	if svc != nil {
		c.ServiceID, c.ServiceName, c.ServiceTags = svc.ID, svc.Service, svc.Tags
	}
	return c, nil
}

func (s *Server) agentServiceDeregister(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, svc := range s.agent.LocalServices() {
		if svc.ID == id && !authz(r).ServiceWrite(svc.Service) {
			s.writeErr(w, errPermissionDenied)
			return
		}
	}
	ok, err := s.agent.RemoveService(id)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if !ok {
		httpError(w, http.StatusNotFound, "Unknown service ID \""+id+"\". Ensure that the service ID is passed, not the service name.")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) toAgentService(svc *state.Service) *agentService {
	return newAgentService(svc, s.agent.Datacenter())
}

// newAgentService is svc in the API's shape, in datacenter dc.
func newAgentService(svc *state.Service, dc string) *agentService {
	return &agentService{Kind: svc.Kind, ID: svc.ID, Service: svc.Service, Tags: svc.Tags, Address: svc.Address,
		TaggedAddresses: svc.TaggedAddresses, Meta: svc.Meta, Port: svc.Port, Weights: svc.Weights,
		EnableTagOverride: svc.EnableTagOverride, CreateIndex: svc.CreateIndex, ModifyIndex: svc.ModifyIndex,
		Datacenter: dc}
}

// stateService is the state's service that a is, on node.
func (a *agentService) stateService(node string) *state.Service {
	return &state.Service{Node: node, Kind: a.Kind, ID: a.ID, Service: a.Service, Tags: a.Tags, Address: a.Address,
		TaggedAddresses: a.TaggedAddresses, Meta: a.Meta, Port: a.Port, Weights: a.Weights,
		EnableTagOverride: a.EnableTagOverride, CreateIndex: a.CreateIndex, ModifyIndex: a.ModifyIndex}
}

// agentServices lists the agent's own services. It blocks on the catalog:
// a local change is always pushed through it.
func (s *Server) agentServices(w http.ResponseWriter, r *http.Request) {
	a := authz(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, _, _, err := s.agent.Store().NodeServices(ws, s.agent.NodeName())
		if err != nil {
			return 0, nil, err
		}
		svcs, dropped := keep(s.agent.LocalServices(), func(svc *state.Service) bool { return a.ServiceRead(svc.Service) })
		filtered(w, dropped)
		out := map[string]*agentService{}
		for _, svc := range svcs {
			out[svc.ID] = s.toAgentService(svc)
		}
		return idx, out, nil
	})
}

func (s *Server) agentService(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "register" || strings.HasPrefix(id, "deregister/") {
		// The PUT-only paths under /v1/agent/service/, read with GET: Consul
		// matches them before the service ID and answers 405.
		w.Header().Set("Allow", http.MethodPut)
		httpError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
		return
	}
	for _, svc := range s.agent.LocalServices() {
		if svc.ID == id {
			if !authz(r).ServiceRead(svc.Service) {
				s.writeErr(w, errPermissionDenied)
				return
			}
			as := s.toAgentService(svc)
			b, _ := json.Marshal(as)
			sum := sha256.Sum256(b)
			as.ContentHash = hex.EncodeToString(sum[:8])
			w.Header().Set("X-Consul-ContentHash", as.ContentHash)
			writeJSON(w, as)
			return
		}
	}
	httpError(w, http.StatusNotFound, "unknown service ID: "+id)
}

func (s *Server) agentChecks(w http.ResponseWriter, r *http.Request) {
	out := map[string]*state.HealthCheck{}
	a := authz(r)
	dropped := false
	for _, c := range s.agent.LocalChecks() {
		c.Node = s.agent.NodeName()
		if !checkReadable(a, c) {
			dropped = true
			continue
		}
		out[c.CheckID] = c
	}
	filtered(w, dropped)
	f, err := requestFilter(r)
	var result any = out
	if err == nil {
		result, err = applyFilter(f, out)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, result)
}

func (s *Server) agentSelf(w http.ResponseWriter, r *http.Request) {
	if !authz(r).AgentRead(s.agent.NodeName()) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	self := s.agent.Self()
	writeJSON(w, map[string]any{
		"Config": map[string]any{
			"Datacenter": self.Datacenter, "PrimaryDatacenter": self.Datacenter, "NodeName": self.NodeName,
			"NodeID": self.NodeID, "Server": self.Server, "Domain": self.Domain, "Version": self.Version,
			"Revision": self.Revision, "BuildDate": self.BuildDate, "DataDir": self.DataDir,
		},
		"DebugConfig": self.DebugConfig,
		"Coord":       self.Coord,
		"Member":      self.Member,
		"Stats":       self.Stats,
		"Meta":        map[string]string{},
		// beacon has no service mesh: no xDS server, as a Consul agent
		// without one reports it.
		"xDS": nil,
	})
}
