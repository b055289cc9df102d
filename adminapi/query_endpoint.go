package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-memdb"
)

// /v1/query: Consul's prepared queries. Definitions are written through
// Raft and read from the state store; an execution reads this agent's
// replica (the query's instances, filtered by the ACLs of the token the
// query captured, else the caller's), sorts them by nearness or shuffles
// them, and when none is left tries other datacenters as the query's
// Failover says: the definition (templates rendered) is sent to a server
// of each in turn, which executes it there without failing over further
// (queryExecuteHerePath, Consul's ExecuteRemote), until one has instances.
//
// Client agents' replicas hold queries without the tokens they captured:
// a client agent passes the reads that show definitions on to a server
// (forwardToServer), and has a server execute a query that captured a
// token.

// queryExecuteHerePath executes a definition sent by another datacenter's
// agent, in this datacenter only. It is internal (Consul does this over
// its RPC port): it can do nothing a health read with the same token
// cannot.
const queryExecuteHerePath = "/v1/internal/query/execute"

func (s *Server) queryRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/query", s.queryCreate)
	mux.HandleFunc("GET /v1/query", s.queryList)
	mux.HandleFunc("GET /v1/query/{id}", s.queryGet)
	mux.HandleFunc("PUT /v1/query/{id}", s.queryUpdate)
	mux.HandleFunc("DELETE /v1/query/{id}", s.queryDelete)
	mux.HandleFunc("GET /v1/query/{id}/execute", s.queryExecute)
	mux.HandleFunc("GET /v1/query/{id}/explain", s.queryExplain)
	mux.HandleFunc("POST "+queryExecuteHerePath, s.queryExecuteHere)
}

// mayWriteQuery reports whether a may create, change or delete q: query
// write permission on its name, unless it is a static query without one,
// which anyone knowing its ID may manage (Consul's rules).
func mayWriteQuery(a *acl.Authorizer, q *state.PreparedQuery) bool {
	prefix, ok := q.ACLPrefix()
	return !ok || a.QueryWrite(prefix)
}

// mayReadQuery reports whether a may see q in a list or explanation: query
// read permission on its name; a static query without one only with a
// management token.
func mayReadQuery(a *acl.Authorizer, q *state.PreparedQuery) bool {
	if a.ACLWrite() {
		return true
	}
	prefix, ok := q.ACLPrefix()
	return ok && a.QueryRead(prefix)
}

// redactedFor is q as a may see it: the token it captured only for a
// management token.
func redactedFor(a *acl.Authorizer, q *state.PreparedQuery) *state.PreparedQuery {
	if q.Token == "" || a.ACLWrite() {
		return q
	}
	c := *q
	c.Token = state.RedactedToken
	return &c
}

func (s *Server) queryCreate(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	var q state.PreparedQuery
	if err := decodeBody(r, &q); err != nil {
		s.writeErr(w, err)
		return
	}
	if q.ID != "" {
		s.writeErr(w, badRequest("ID must be empty when creating a new prepared query"))
		return
	}
	if err := validateQueryBody(&q); err != nil {
		s.writeErr(w, err)
		return
	}
	if !mayWriteQuery(authz(r), &q) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	q.ID = acl.NewUUID()
	q.CreateIndex, q.ModifyIndex = 0, 0
	req := &state.PreparedQueryRequest{Datacenter: s.agent.Datacenter(), Op: state.PreparedQueryCreate, Query: &q}
	if _, err := s.agent.Apply(state.PreparedQueryRequestType, req); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, struct{ ID string }{q.ID})
}

// validateQueryBody checks a definition sent to create or update a query.
// Its token may not be the placeholder that hides tokens: a query read
// back without being shown its token and written again would capture the
// placeholder; and keeping the hidden token instead would let anyone
// allowed to change the query's service use it.
func validateQueryBody(q *state.PreparedQuery) error {
	if q.Token == state.RedactedToken {
		return badRequest("Token %q stands for a hidden token: send the token itself, or none", state.RedactedToken)
	}
	return state.ValidatePreparedQuery(q)
}

// existingQuery reads the query an update or delete names, with this
// agent's replica caught up with the leader first: its name decides the
// permission the write needs.
func (s *Server) existingQuery(id string) (*state.PreparedQuery, error) {
	if err := s.agent.ConsistentRead(false); err != nil {
		return nil, err
	}
	_, q, err := s.agent.Store().PreparedQueryGet(nil, id)
	if err != nil {
		return nil, err
	}
	if q == nil {
		return nil, fmt.Errorf("%w: %q", state.ErrQueryNotFound, id)
	}
	return q, nil
}

func (s *Server) queryUpdate(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	var q state.PreparedQuery
	if err := decodeBody(r, &q); err != nil {
		s.writeErr(w, err)
		return
	}
	// The ID is the path's, whatever the body says (as Consul takes it).
	q.ID = r.PathValue("id")
	q.CreateIndex, q.ModifyIndex = 0, 0
	if err := validateQueryBody(&q); err != nil {
		s.writeErr(w, err)
		return
	}
	old, err := s.existingQuery(q.ID)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	// Write permission on the name it has and on the name it takes.
	if a := authz(r); !mayWriteQuery(a, old) || !mayWriteQuery(a, &q) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	req := &state.PreparedQueryRequest{Datacenter: s.agent.Datacenter(), Op: state.PreparedQueryUpdate, Query: &q}
	if _, err := s.agent.Apply(state.PreparedQueryRequestType, req); err != nil {
		s.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) queryDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	old, err := s.existingQuery(r.PathValue("id"))
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if !mayWriteQuery(authz(r), old) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	req := &state.PreparedQueryRequest{Datacenter: s.agent.Datacenter(), Op: state.PreparedQueryDelete,
		Query: &state.PreparedQuery{ID: old.ID}}
	if _, err := s.agent.Apply(state.PreparedQueryRequestType, req); err != nil {
		s.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// queryList lists the queries the token may read, their captured tokens
// hidden but from a management token.
func (s *Server) queryList(w http.ResponseWriter, r *http.Request) {
	a := authz(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, queries, err := s.agent.Store().PreparedQueries(ws)
		if err != nil {
			return 0, nil, err
		}
		queries, dropped := keep(queries, func(q *state.PreparedQuery) bool { return mayReadQuery(a, q) })
		filtered(w, dropped)
		out := make([]*state.PreparedQuery, 0, len(queries))
		for _, q := range queries {
			out = append(out, redactedFor(a, q))
		}
		return idx, out, nil
	})
}

// queryGet answers the query with that ID (not a name, as in Consul), in a
// list of one. A static query without a name is anyone's who knows its
// ID; a named one needs query read permission (403 without it).
func (s *Server) queryGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a := authz(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, q, err := s.agent.Store().PreparedQueryGet(ws, id)
		if err != nil {
			return 0, nil, err
		}
		if q == nil {
			return 0, nil, fmt.Errorf("%w: %q", state.ErrQueryNotFound, id)
		}
		if _, named := q.ACLPrefix(); named && !mayReadQuery(a, q) {
			return 0, nil, errPermissionDenied
		}
		return idx, []*state.PreparedQuery{redactedFor(a, q)}, nil
	})
}

// queryExplain answers the query an execution of the name would run,
// templates rendered for it.
func (s *Server) queryExplain(w http.ResponseWriter, r *http.Request) {
	opts, err := parseQueryOptions(r)
	if err == nil {
		err = s.checkDC(r)
	}
	if err == nil {
		err = s.consistency(opts)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	idx, q, err := s.agent.Store().PreparedQueryResolve(r.PathValue("id"))
	if err != nil {
		s.writeErr(w, err)
		return
	}
	a := authz(r)
	if !mayReadQuery(a, q) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	s.setMeta(w, idx)
	writeJSON(w, struct{ Query *state.PreparedQuery }{redactedFor(a, q)})
}

// queryExecution is one execution of a prepared query.
type queryExecution struct {
	idOrName string
	// near is the caller's ?near=, which overrides the query's Near.
	near string
	// sourceIP is the caller's address, for Near "_ip".
	sourceIP string
	// limit caps the instances answered (0: no cap), after sorting.
	limit int
	// authz filters the instances when the query captured no token.
	authz *acl.Authorizer
	// secret is the caller's token, which requests to other agents carry.
	secret string
	// mode is the read mode those requests ask for: "stale",
	// "consistent" or "" (the default).
	mode string
}

// queryResult is what an execution found, with what its answer says of
// it: the index of what it read and whether ACLs left instances out.
type queryResult struct {
	resp     *state.PreparedQueryExecuteResponse
	index    uint64
	filtered bool
}

// executeResponse is an execution's answer in Consul's shape
// (api.PreparedQueryExecuteResponse): instances as health entries.
type executeResponse struct {
	Service    string
	Nodes      []serviceEntry
	DNS        state.QueryDNSOptions
	Datacenter string
	Failovers  int
}

// toExecuteResponse is resp in Consul's shape, the instances' services
// saying the datacenter they are in.
func toExecuteResponse(resp *state.PreparedQueryExecuteResponse) *executeResponse {
	out := &executeResponse{Service: resp.Service, Nodes: make([]serviceEntry, 0, len(resp.Nodes)), DNS: resp.DNS,
		Datacenter: resp.Datacenter, Failovers: resp.Failovers}
	for _, sn := range resp.Nodes {
		out.Nodes = append(out.Nodes, serviceEntry{Node: sn.Node,
			Service: newAgentService(sn.Service, resp.Datacenter), Checks: nonNil(sn.Checks)})
	}
	return out
}

// fromExecuteResponse reads another agent's answer; entries without a node
// or a service are dropped.
func fromExecuteResponse(in *executeResponse) *state.PreparedQueryExecuteResponse {
	out := &state.PreparedQueryExecuteResponse{Service: in.Service, DNS: in.DNS, Datacenter: in.Datacenter, Failovers: in.Failovers}
	for _, e := range in.Nodes {
		if e.Node == nil || e.Service == nil {
			continue
		}
		out.Nodes = append(out.Nodes, state.ServiceNode{Node: e.Node, Service: e.Service.stateService(e.Node.Node), Checks: e.Checks})
	}
	return out
}

// queryExecute executes a query by ID or name. As in Consul it does not
// block (?index= is ignored), and ?connect, which asks for Connect-capable
// instances, is refused: beacon has no Connect.
func (s *Server) queryExecute(w http.ResponseWriter, r *http.Request) {
	opts, err := parseQueryOptions(r)
	if err == nil {
		err = s.checkDC(r)
	}
	var limit int
	if err == nil {
		limit, err = queryLimit(r)
	}
	if err == nil && r.URL.Query().Has("connect") {
		err = badRequest("Connect-capable service lookups (?connect) are not supported")
	}
	if err == nil {
		err = s.consistency(opts)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	res, err := s.executeQuery(r.Context(), queryExecution{
		idOrName: r.PathValue("id"), near: strings.TrimSpace(r.URL.Query().Get("near")), sourceIP: sourceIP(r),
		limit: limit, authz: authz(r), secret: s.forwardedSecret(r), mode: readMode(opts),
	})
	if err != nil {
		s.writeErr(w, err)
		return
	}
	filtered(w, res.filtered)
	s.setMeta(w, res.index)
	writeJSON(w, toExecuteResponse(res.resp))
}

// queryExecuteHere executes the definition another datacenter's agent sent
// (rendered, with the token it captured) in this datacenter only: it does
// not fail over again, as Consul's remote executions do not.
func (s *Server) queryExecuteHere(w http.ResponseWriter, r *http.Request) {
	opts, err := parseQueryOptions(r)
	var limit int
	if err == nil {
		limit, err = queryLimit(r)
	}
	if err == nil {
		err = s.consistency(opts)
	}
	var q state.PreparedQuery
	if err == nil {
		err = decodeBody(r, &q)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	res, err := s.executeHere(&q, authz(r), "", limit)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	filtered(w, res.filtered)
	s.setMeta(w, res.index)
	writeJSON(w, toExecuteResponse(res.resp))
}

// queryLimit is ?limit=, 0 when absent.
func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest("Bad limit: %q is not a whole number", v)
	}
	return n, nil
}

// readMode is the read mode of opts as a query parameter's name.
func readMode(opts queryOptions) string {
	switch {
	case opts.stale:
		return "stale"
	case opts.consistent:
		return "consistent"
	}
	return ""
}

// sourceIP is the caller's address, for Near "_ip": the first address of
// X-Forwarded-For, else the connection's peer (Consul's order).
func sourceIP(r *http.Request) string {
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		first, _, _ := strings.Cut(fwd, ",")
		return strings.TrimSpace(first)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ExecutePreparedQuery executes a prepared query for DNS
// (<name>.query[.<dc>].<domain>): as an HTTP execution without a token
// would (with the agent's default token), reading this agent's replica as
// it is (DNS does not wait for the leader); in datacenter dc, when it is
// another, by a server there. An ID or name nothing matches is
// state.ErrQueryNotFound.
func (s *Server) ExecutePreparedQuery(ctx context.Context, idOrName, dc string) (*state.PreparedQueryExecuteResponse, error) {
	res, defaultSecret := s.resolver()
	secret := defaultSecret
	if secret == "" {
		secret = acl.AnonymousTokenSecretID
	}
	if dc != "" && !strings.EqualFold(dc, s.agent.Datacenter()) {
		f, ok := s.agent.(ServerForwarder)
		if !ok {
			return nil, fmt.Errorf("datacenter %s: %w", dc, state.ErrNoPathToDC)
		}
		var out executeResponse
		uri := "/v1/query/" + url.PathEscape(idOrName) + "/execute?stale"
		if _, err := callAgentAPI(ctx, f.DatacenterAPI(dc), http.MethodGet, uri, secret, nil, &out); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.status == http.StatusNotFound {
				return nil, fmt.Errorf("%w: %q in datacenter %s", state.ErrQueryNotFound, idOrName, dc)
			}
			return nil, fmt.Errorf("executing prepared query %q in datacenter %s: %w", idOrName, dc, err)
		}
		return fromExecuteResponse(&out), nil
	}
	authz := acl.ManageAll()
	if res != nil {
		var err error
		if authz, _, err = res.Resolve(defaultSecret); err != nil {
			// A default token that does not resolve may read nothing,
			// as DNS's own answers have it.
			authz = acl.DenyAll()
		}
	}
	r, err := s.executeQuery(ctx, queryExecution{idOrName: idOrName, authz: authz, secret: secret, mode: "stale"})
	if err != nil {
		return nil, err
	}
	return r.resp, nil
}

// executeQuery executes a query here, failing over to other datacenters
// when it finds no instance.
func (s *Server) executeQuery(ctx context.Context, ex queryExecution) (*queryResult, error) {
	idx, q, err := s.agent.Store().PreparedQueryResolve(ex.idOrName)
	if err != nil {
		return nil, err
	}
	near := ex.near
	if near == "" {
		near = q.Service.Near
	}
	near = s.nearNodeOf(near, ex.sourceIP)
	if q.Token == state.RedactedToken {
		return s.executeOnServer(ctx, ex, near)
	}
	res, err := s.executeHere(q, ex.authz, near, ex.limit)
	if err != nil {
		return nil, err
	}
	res.index = max(res.index, idx)
	if len(res.resp.Nodes) == 0 {
		if err := s.failover(ctx, q, ex, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// nearNodeOf is the node a Near names: "_agent" is this agent's node,
// "_ip" the node with the caller's address ("" when none has it).
func (s *Server) nearNodeOf(near, sourceIP string) string {
	switch near {
	case "_agent":
		return s.agent.NodeName()
	case "_ip":
		if sourceIP == "" {
			return ""
		}
		if nodes := s.agent.Store().NodesByAddress(sourceIP); len(nodes) > 0 {
			return nodes[0].Node
		}
		return ""
	}
	return near
}

// executeHere runs q against this agent's replica: the instances it
// selects that its captured token (else authz) may read (node and
// service), shuffled, then sorted by estimated round trip time from node
// near with near itself first, at most limit of them.
func (s *Server) executeHere(q *state.PreparedQuery, authz *acl.Authorizer, near string, limit int) (*queryResult, error) {
	store := s.agent.Store()
	idx, nodes, err := store.PreparedQueryInstances(nil, q)
	if err != nil {
		return nil, err
	}
	if q.Token != "" {
		if authz, err = s.capturedAuthorizer(q.Token); err != nil {
			return nil, err
		}
	}
	nodes, dropped := keep(nodes, func(sn state.ServiceNode) bool {
		return authz.NodeRead(sn.Node.Node) && authz.ServiceRead(sn.Service.Service)
	})
	rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	if near != "" {
		sortNear(store, near, nodes, instanceNode)
		nearFirst(nodes, near)
	}
	if limit > 0 && len(nodes) > limit {
		nodes = nodes[:limit]
	}
	resp := &state.PreparedQueryExecuteResponse{Service: q.Service.Service, Nodes: nodes, DNS: q.DNS,
		Datacenter: s.agent.Datacenter()}
	return &queryResult{resp: resp, index: idx, filtered: dropped}, nil
}

// nearFirst moves the instance on node near, if among the first ten, to the
// front: the node asked to be near is nearest to itself, whatever the
// coordinates estimate (as Consul has it).
func nearFirst(nodes []state.ServiceNode, near string) {
	for i := 0; i < len(nodes) && i < 10; i++ {
		if strings.EqualFold(nodes[i].Node.Node, near) {
			found := nodes[i]
			copy(nodes[1:i+1], nodes[:i])
			nodes[0] = found
			return
		}
	}
}

// capturedAuthorizer is what the token a query captured may read.
func (s *Server) capturedAuthorizer(secret string) (*acl.Authorizer, error) {
	res, _ := s.resolver()
	if res == nil {
		return acl.ManageAll(), nil
	}
	if secret == state.RedactedToken {
		return nil, errors.New("the query's captured token is not held by this agent")
	}
	a, _, err := res.Resolve(secret)
	if err != nil {
		return nil, fmt.Errorf("the query's captured token: %w", err)
	}
	return a, nil
}

// executeOnServer has a server execute the query: this client agent's
// replica does not hold the token it captured. near is already a node.
func (s *Server) executeOnServer(ctx context.Context, ex queryExecution, near string) (*queryResult, error) {
	f, ok := s.agent.(ServerForwarder)
	var server http.Handler
	if ok {
		server = f.ServerAPI()
	}
	if server == nil {
		return nil, errors.New("the query's captured token is not held by this agent")
	}
	params := url.Values{}
	if near != "" {
		params.Set("near", near)
	}
	if ex.limit > 0 {
		params.Set("limit", strconv.Itoa(ex.limit))
	}
	uri := "/v1/query/" + url.PathEscape(ex.idOrName) + "/execute?" + withMode(params, ex.mode)
	var out executeResponse
	header, err := callAgentAPI(ctx, server, http.MethodGet, uri, ex.secret, nil, &out)
	if err != nil {
		return nil, err
	}
	return answeredResult(&out, header), nil
}

// withMode encodes params with the read mode's flag.
func withMode(params url.Values, mode string) string {
	enc := params.Encode()
	if mode == "" {
		return enc
	}
	if enc == "" {
		return mode
	}
	return enc + "&" + mode
}

func answeredResult(out *executeResponse, header http.Header) *queryResult {
	idx, _ := strconv.ParseUint(header.Get("X-Consul-Index"), 10, 64)
	return &queryResult{resp: fromExecuteResponse(out), index: idx,
		filtered: header.Get("X-Consul-Results-Filtered-By-ACLs") == "true"}
}

// failover tries the datacenters q's Failover names, in order, until one
// has instances, and counts them in the answer's Failovers. A datacenter
// that fails is logged and passed over, as Consul does; the answer is the
// last one a datacenter gave (this one's, when none answered).
func (s *Server) failover(ctx context.Context, q *state.PreparedQuery, ex queryExecution, res *queryResult) error {
	fo := q.Service.Failover
	if fo.NearestN == 0 && len(fo.Datacenters) == 0 && len(fo.Targets) == 0 {
		return nil
	}
	all, err := s.datacentersNearestFirst(ctx)
	if err != nil {
		return fmt.Errorf("listing the datacenters to fail over to: %w", err)
	}
	failovers := 0
	for _, dc := range failoverDatacenters(fo, s.agent.Datacenter(), all) {
		failovers++
		remote, err := s.executeInDatacenter(ctx, dc, q, ex)
		if err != nil {
			s.logger.Warn("prepared query failover: datacenter failed", "service", q.Service.Service, "datacenter", dc, "error", err)
			continue
		}
		// The answer is the other datacenter's; the index stays this
		// one's, what this agent's answers are indexed by.
		res.resp, res.filtered = remote.resp, remote.filtered
		if len(res.resp.Nodes) > 0 {
			break
		}
	}
	res.resp.Failovers = failovers
	return nil
}

// failoverDatacenters are the datacenters to try, given those this agent
// knows nearest first: the NearestN nearest other ones, then Datacenters
// not among them (Targets' instead of both); the local one and those not
// known are skipped, as Consul skips them.
func failoverDatacenters(fo state.QueryFailoverOptions, local string, nearestFirst []string) []string {
	var others []string
	for _, dc := range nearestFirst {
		if dc != local {
			others = append(others, dc)
		}
	}
	var out []string
	add := func(dc string) {
		if slices.Contains(others, dc) && !slices.Contains(out, dc) {
			out = append(out, dc)
		}
	}
	if len(fo.Targets) > 0 {
		for _, t := range fo.Targets {
			add(t.Datacenter)
		}
		return out
	}
	for i := 0; i < fo.NearestN && i < len(others); i++ {
		add(others[i])
	}
	for _, dc := range fo.Datacenters {
		add(dc)
	}
	return out
}

// datacentersNearestFirst are the datacenters known, nearest first: a
// server's view, which a client agent asks a server for (as
// /v1/catalog/datacenters does).
func (s *Server) datacentersNearestFirst(ctx context.Context) ([]string, error) {
	if f, ok := s.agent.(ServerForwarder); ok {
		if server := f.ServerAPI(); server != nil {
			var dcs []string
			secret := acl.AnonymousTokenSecretID // the list needs no permission
			if _, err := callAgentAPI(ctx, server, http.MethodGet, "/v1/catalog/datacenters", secret, nil, &dcs); err != nil {
				return nil, err
			}
			return dcs, nil
		}
	}
	if f, ok := s.agent.(Federation); ok {
		return f.Datacenters(), nil
	}
	return []string{s.agent.Datacenter()}, nil
}

// executeInDatacenter has a server of datacenter dc execute q there,
// without failing over further.
func (s *Server) executeInDatacenter(ctx context.Context, dc string, q *state.PreparedQuery, ex queryExecution) (*queryResult, error) {
	f, ok := s.agent.(ServerForwarder)
	if !ok {
		return nil, state.ErrNoPathToDC
	}
	params := url.Values{}
	if ex.limit > 0 {
		params.Set("limit", strconv.Itoa(ex.limit))
	}
	var out executeResponse
	header, err := callAgentAPI(ctx, f.DatacenterAPI(dc), http.MethodPost, queryExecuteHerePath+"?"+withMode(params, ex.mode),
		ex.secret, q, &out)
	if err != nil {
		return nil, err
	}
	return answeredResult(&out, header), nil
}

// apiError is another agent's answer that is not a 200.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

// callAgentAPI has h (another agent's HTTP API, as ServerForwarder reaches
// it) answer a request made on this agent's behalf with the caller's
// token, and decodes its JSON answer into out. An answer other than 200 is
// an *apiError.
func callAgentAPI(ctx context.Context, h http.Handler, method, uri, secret string, body, out any) (http.Header, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, uri, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("X-Consul-Token", secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &bufferedResponse{header: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status != http.StatusOK {
		return nil, &apiError{status: rec.status, msg: strings.TrimSpace(rec.body.String())}
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return nil, fmt.Errorf("decoding the answer: %w", err)
	}
	return rec.header, nil
}

// bufferedResponse is the ResponseWriter of callAgentAPI.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
