package adminapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

// Autopilot (/v1/operator/autopilot/...) and leadership transfer
// (/v1/operator/raft/transfer-leader), as Consul's. A server answers them;
// a client agent passes them on to one.

// Autopilot is what those endpoints need of a server agent.
type Autopilot interface {
	AutopilotConfig() (uint64, state.AutopilotConfig, error)
	AutopilotHealth() (AutopilotHealth, error)
	// TransferLeadership has the leader hand leadership over, to the
	// server with that ID when not "".
	TransferLeadership(id string) error
}

// AutopilotHealth is /v1/operator/autopilot/health (api.OperatorHealthReply).
type AutopilotHealth struct {
	Healthy          bool
	FailureTolerance int
	Servers          []ServerHealth
}

// ServerHealth is one server's health (api.ServerHealth).
type ServerHealth struct {
	ID          string
	Name        string
	Address     string
	SerfStatus  string
	Version     string
	Leader      bool
	LastContact state.Duration
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	Voter       bool
	StableSince time.Time
}

// autopilotConfigJSON is the configuration in Consul's shape, with the
// Enterprise fields it always carries.
type autopilotConfigJSON struct {
	state.AutopilotConfig
	RedundancyZoneTag       string
	DisableUpgradeMigration bool
	UpgradeVersionTag       string
}

// autopilotServer is one server of /v1/operator/autopilot/state.
type autopilotServer struct {
	ID          string
	Name        string
	Address     string
	NodeStatus  string
	Version     string
	LastContact state.Duration
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	StableSince time.Time
	ReadReplica bool
	Status      string
	Meta        map[string]string
	NodeType    string
}

// autopilotState is /v1/operator/autopilot/state.
type autopilotState struct {
	Healthy                    bool
	FailureTolerance           int
	OptimisticFailureTolerance int
	Servers                    map[string]autopilotServer
	Leader                     string
	Voters                     []string
}

func (s *Server) autopilotRoutes(mux *http.ServeMux) {
	read, write := (*acl.Authorizer).OperatorRead, (*acl.Authorizer).OperatorWrite
	mux.HandleFunc("GET /v1/operator/autopilot/configuration", s.guarded(read, s.onServer(s.autopilotConfigGet)))
	mux.HandleFunc("PUT /v1/operator/autopilot/configuration", s.guarded(write, s.onServer(s.autopilotConfigSet)))
	mux.HandleFunc("GET /v1/operator/autopilot/health", s.guarded(read, s.onServer(s.autopilotHealth)))
	mux.HandleFunc("GET /v1/operator/autopilot/state", s.guarded(read, s.onServer(s.autopilotState)))
	mux.HandleFunc("POST /v1/operator/raft/transfer-leader", s.guarded(write, s.onServer(s.raftTransferLeader)))
}

// onServer runs h on a server agent; a client agent passes the request on
// to a server.
func (s *Server) onServer(h func(http.ResponseWriter, *http.Request, Autopilot)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkDC(r); err != nil {
			s.writeErr(w, err)
			return
		}
		if f, ok := s.agent.(ServerForwarder); ok {
			if server := f.ServerAPI(); server != nil {
				s.passOn(w, r, server)
				return
			}
		}
		ap, ok := s.agent.(Autopilot)
		if !ok {
			s.writeErr(w, state.ErrNoServers)
			return
		}
		h(w, r, ap)
	}
}

func (s *Server) autopilotConfigGet(w http.ResponseWriter, r *http.Request, ap Autopilot) {
	opts, err := parseQueryOptions(r)
	if err == nil {
		err = s.consistency(opts) // the default mode reads what was written
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	_, cfg, err := ap.AutopilotConfig()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, autopilotConfigJSON{AutopilotConfig: cfg})
}

// autopilotConfigSet stores a configuration; with ?cas=<index> only if the
// stored one is at that index, answering true or false.
func (s *Server) autopilotConfigSet(w http.ResponseWriter, r *http.Request, ap Autopilot) {
	var body autopilotConfigJSON
	body.AutopilotConfig = state.DefaultAutopilotConfig()
	if err := decodeBody(r, &body); err != nil {
		s.writeErr(w, err)
		return
	}
	req := &state.AutopilotRequest{Datacenter: s.agent.Datacenter(), Config: body.AutopilotConfig}
	if v := r.URL.Query().Get("cas"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.writeErr(w, badRequest("Error parsing cas value: %v", err))
			return
		}
		req.CAS, req.Config.ModifyIndex = true, idx
	}
	if err := req.Config.Validate(); err != nil {
		s.writeErr(w, badRequest("%s", wrappedMessage(err, state.ErrInvalidRegistration)))
		return
	}
	_, res, err := s.agent.ApplyWithResult(state.AutopilotRequestType, req)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, res != nil && res.OK)
}

// autopilotHealth answers 200 when every server is healthy, 429 otherwise,
// as Consul does, with the servers' health either way.
func (s *Server) autopilotHealth(w http.ResponseWriter, r *http.Request, ap Autopilot) {
	h, err := ap.AutopilotHealth()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if !h.Healthy {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
	}
	writeJSON(w, h)
}

func (s *Server) autopilotState(w http.ResponseWriter, r *http.Request, ap Autopilot) {
	h, err := ap.AutopilotHealth()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	out := autopilotState{Healthy: h.Healthy, FailureTolerance: h.FailureTolerance,
		OptimisticFailureTolerance: h.FailureTolerance, Servers: map[string]autopilotServer{}, Voters: []string{}}
	for _, srv := range h.Servers {
		status := "non-voter"
		switch {
		case srv.Leader:
			status, out.Leader = "leader", srv.ID
		case srv.Voter:
			status = "voter"
		}
		if srv.Voter {
			out.Voters = append(out.Voters, srv.ID)
		}
		out.Servers[srv.ID] = autopilotServer{ID: srv.ID, Name: srv.Name, Address: srv.Address, NodeStatus: srv.SerfStatus,
			Version: srv.Version, LastContact: srv.LastContact, LastTerm: srv.LastTerm, LastIndex: srv.LastIndex,
			Healthy: srv.Healthy, StableSince: srv.StableSince, Status: status, Meta: map[string]string{}, NodeType: "voter"}
	}
	writeJSON(w, out)
}

func (s *Server) raftTransferLeader(w http.ResponseWriter, r *http.Request, ap Autopilot) {
	if err := ap.TransferLeadership(r.URL.Query().Get("id")); err != nil {
		s.writeErr(w, fmt.Errorf("transferring leadership: %w", err))
		return
	}
	writeJSON(w, struct{ Success bool }{true})
}
