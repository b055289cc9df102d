package adminapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

// Checks is what the agent's check and maintenance endpoints need of the
// running agent.
type Checks interface {
	// AddCheck registers (or replaces) a check of this agent: a node check,
	// or one of a local service when ServiceID is set.
	AddCheck(c *state.HealthCheck) error
	// RemoveCheck removes a local check; false if there was none.
	RemoveCheck(id string) (bool, error)
	// UpdateTTL sets a TTL check's status and output. Errors wrap
	// ErrUnknownCheck or ErrNotTTL.
	UpdateTTL(id, status, output string) error
	// NodeMaintenance puts the node in maintenance (a critical check) or
	// takes it out.
	NodeMaintenance(enable bool, reason string) error
	// ServiceMaintenance does the same for one local service; false if
	// there is no such service.
	ServiceMaintenance(serviceID string, enable bool, reason string) (bool, error)
}

// Errors of the check operations, mapped to Consul's answers.
var (
	ErrUnknownCheck = errors.New("unknown check")
	ErrNotTTL       = errors.New("not a TTL check")
	// ErrUnknownService is returned for a check of a service this agent
	// does not have.
	ErrUnknownService = errors.New("unknown service")
)

// checkRegistration is /v1/agent/check/register's body (Consul's
// AgentCheckRegistration: an AgentServiceCheck with ID and ServiceID).
type checkRegistration struct {
	ID        string
	ServiceID string
	checkDefinition
}

func (s *Server) checkRoutes(mux *http.ServeMux, c Checks) {
	mux.HandleFunc("PUT /v1/agent/check/register", func(w http.ResponseWriter, r *http.Request) {
		s.checkRegister(w, r, c)
	})
	mux.HandleFunc("PUT /v1/agent/check/deregister/{id...}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !s.mayWriteLocalCheck(authz(r), id) {
			s.writeErr(w, errPermissionDenied)
			return
		}
		ok, err := c.RemoveCheck(id)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		if !ok {
			httpError(w, http.StatusNotFound, "Unknown check ID \""+id+"\". Ensure that the check ID is passed, not the check name.")
		}
	})
	for _, op := range []struct{ path, status string }{
		{"pass", state.HealthPassing}, {"warn", state.HealthWarning}, {"fail", state.HealthCritical},
	} {
		mux.HandleFunc("PUT /v1/agent/check/"+op.path+"/{id...}", func(w http.ResponseWriter, r *http.Request) {
			if !s.mayWriteLocalCheck(authz(r), r.PathValue("id")) {
				s.writeErr(w, errPermissionDenied)
				return
			}
			s.checkTTL(w, c, r.PathValue("id"), op.status, r.URL.Query().Get("note"))
		})
	}
	mux.HandleFunc("PUT /v1/agent/check/update/{id...}", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Status, Output string }
		if err := decodeBody(r, &body); err != nil {
			s.writeErr(w, err)
			return
		}
		switch body.Status {
		case state.HealthPassing, state.HealthWarning, state.HealthCritical:
		default:
			s.writeErr(w, badRequest("Invalid check status: '%s'", body.Status))
			return
		}
		if !s.mayWriteLocalCheck(authz(r), r.PathValue("id")) {
			s.writeErr(w, errPermissionDenied)
			return
		}
		s.checkTTL(w, c, r.PathValue("id"), body.Status, body.Output)
	})
	mux.HandleFunc("PUT /v1/agent/maintenance", func(w http.ResponseWriter, r *http.Request) {
		enable, reason, err := maintenanceParams(r)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		if !authz(r).NodeWrite(s.agent.NodeName()) {
			s.writeErr(w, errPermissionDenied)
			return
		}
		if err := c.NodeMaintenance(enable, reason); err != nil {
			s.writeErr(w, err)
		}
	})
	mux.HandleFunc("PUT /v1/agent/service/maintenance/{id...}", func(w http.ResponseWriter, r *http.Request) {
		enable, reason, err := maintenanceParams(r)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		id := r.PathValue("id")
		for _, svc := range s.agent.LocalServices() {
			if svc.ID == id && !authz(r).ServiceWrite(svc.Service) {
				s.writeErr(w, errPermissionDenied)
				return
			}
		}
		ok, err := c.ServiceMaintenance(id, enable, reason)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		if !ok {
			httpError(w, http.StatusNotFound, "Unknown service ID \""+id+"\". Ensure that the service ID is passed, not the service name.")
		}
	})
}

func (s *Server) checkRegister(w http.ResponseWriter, r *http.Request, c Checks) {
	var reg checkRegistration
	if err := decodeBody(r, &reg); err != nil {
		s.writeErr(w, err)
		return
	}
	if strings.TrimSpace(reg.Name) == "" {
		s.writeErr(w, badRequest("Missing check name"))
		return
	}
	id := reg.ID
	if id == "" {
		id = reg.CheckID
	}
	if id == "" {
		id = reg.Name
	}
	var svc *state.Service
	if reg.ServiceID != "" {
		for _, ls := range s.agent.LocalServices() {
			if ls.ID == reg.ServiceID {
				svc = ls
				break
			}
		}
		if svc == nil {
			s.writeErr(w, badRequest("ServiceID %q does not exist", reg.ServiceID))
			return
		}
	}
	check, err := reg.build(id, reg.Name, svc)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if a := authz(r); (svc != nil && !a.ServiceWrite(svc.Service)) || (svc == nil && !a.NodeWrite(s.agent.NodeName())) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	if err := c.AddCheck(check); err != nil {
		s.writeErr(w, err)
	}
}

// mayWriteLocalCheck reports whether a may change the agent's check id:
// write on its service, or on the node for a node check. An unknown check
// is let through, for the handler to answer 404.
func (s *Server) mayWriteLocalCheck(a *acl.Authorizer, id string) bool {
	for _, c := range s.agent.LocalChecks() {
		if c.CheckID != id {
			continue
		}
		if c.ServiceID != "" {
			return a.ServiceWrite(c.ServiceName)
		}
		return a.NodeWrite(s.agent.NodeName())
	}
	return true
}

// maxCheckOutput is Consul's default limit on a check's output.
const maxCheckOutput = 4096

func (s *Server) checkTTL(w http.ResponseWriter, c Checks, id, status, output string) {
	if len(output) > maxCheckOutput {
		output = output[:maxCheckOutput] + "\n... (captured " + strconv.Itoa(maxCheckOutput) + " of " +
			strconv.Itoa(len(output)) + " bytes)"
	}
	err := c.UpdateTTL(id, status, output)
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownCheck):
		httpError(w, http.StatusNotFound, "Unknown check ID \""+id+"\". Ensure that the check ID is passed, not the check name.")
	case errors.Is(err, ErrNotTTL):
		httpError(w, http.StatusInternalServerError, "CheckID \""+id+"\" does not have associated TTL")
	default:
		s.writeErr(w, err)
	}
}

// maintenanceParams reads ?enable= and ?reason=, as Consul requires them.
func maintenanceParams(r *http.Request) (bool, string, error) {
	q := r.URL.Query()
	v, ok := q["enable"]
	if !ok || len(v) == 0 || v[0] == "" {
		return false, "", badRequest("Missing value for enable")
	}
	enable, err := strconv.ParseBool(v[0])
	if err != nil {
		return false, "", badRequest("Invalid value for enable: %q", v[0])
	}
	return enable, q.Get("reason"), nil
}
