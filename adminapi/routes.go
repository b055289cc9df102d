package adminapi

import "net/http"

func (s *Server) routes(mux *http.ServeMux) {
	// agent
	mux.HandleFunc("PUT /v1/agent/service/register", s.agentServiceRegister)
	mux.HandleFunc("PUT /v1/agent/service/deregister/{id...}", s.agentServiceDeregister)
	mux.HandleFunc("GET /v1/agent/services", s.agentServices)
	mux.HandleFunc("GET /v1/agent/service/{id...}", s.agentService)
	mux.HandleFunc("GET /v1/agent/checks", s.agentChecks)
	mux.HandleFunc("GET /v1/agent/self", s.agentSelf)
	mux.HandleFunc("GET /v1/agent/metrics", s.guarded(s.agentReadable, s.agentMetrics))
	s.agentInfoRoutes(mux) // version, host, reload, monitor

	// catalog
	mux.HandleFunc("PUT /v1/catalog/register", s.catalogRegister)
	mux.HandleFunc("PUT /v1/catalog/deregister", s.catalogDeregister)
	mux.HandleFunc("GET /v1/catalog/datacenters", s.catalogDatacenters)
	mux.HandleFunc("GET /v1/catalog/nodes", s.catalogNodes)
	mux.HandleFunc("GET /v1/catalog/services", s.catalogServices)
	mux.HandleFunc("GET /v1/catalog/service/{name}", s.catalogService)
	mux.HandleFunc("GET /v1/catalog/node/{node}", s.catalogNode)

	// health
	mux.HandleFunc("GET /v1/health/service/{name}", s.healthService)
	mux.HandleFunc("GET /v1/health/node/{node}", s.healthNode)
	mux.HandleFunc("GET /v1/health/checks/{name}", s.healthChecks)
	mux.HandleFunc("GET /v1/health/state/{state}", s.healthState)

	// network coordinates
	mux.HandleFunc("GET /v1/coordinate/datacenters", s.coordinateDatacenters)
	mux.HandleFunc("GET /v1/coordinate/nodes", s.coordinateNodes)
	mux.HandleFunc("GET /v1/coordinate/node/{node}", s.coordinateNode)
	mux.HandleFunc("PUT /v1/coordinate/update", s.coordinateUpdate)

	// kv, sessions, transactions
	s.kvRoutes(mux)
	s.sessionRoutes(mux)
	s.txnRoutes(mux)

	s.aclRoutes(mux)
	s.autopilotRoutes(mux)

	// prepared queries
	s.queryRoutes(mux)

	// status
	mux.HandleFunc("GET /v1/status/leader", s.statusLeader)
	mux.HandleFunc("GET /v1/status/peers", s.statusPeers)

	// operator
	if op, ok := s.agent.(Operator); ok {
		s.operatorRoutes(mux, op)
	}
	if g, ok := s.agent.(Gossip); ok {
		s.gossipRoutes(mux, g)
	}
	if k, ok := s.agent.(Keyring); ok {
		s.keyringRoutes(mux, k)
	}
	if c, ok := s.agent.(Checks); ok {
		s.checkRoutes(mux, c)
	}
	if e, ok := s.agent.(Events); ok {
		s.eventRoutes(mux, e)
	}

	s.uiRoutes(mux)
}
