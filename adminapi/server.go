package adminapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beacon-dns/beacon/acl"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
)

// Agent is what the API needs of the running agent.
type Agent interface {
	Store() *state.Store
	NodeName() string
	NodeID() string
	Datacenter() string
	// Apply commits a command through Raft and returns its index.
	Apply(t state.MessageType, msg any) (uint64, error)
	// ApplyWithResult is Apply for commands with a result (conditional KV writes,
	// transactions).
	ApplyWithResult(t state.MessageType, msg any) (uint64, *state.CommandResult, error)
	Leader() string
	// LastContact is the time since the leader was last heard from: 0 on
	// the leader, negative when never.
	LastContact() time.Duration
	Peers() ([]string, error)
	// ConsistentRead readies the local replica for a read in the default
	// mode (caught up with the leader) or, with verify, a linearizable one
	// (caught up with a leader a quorum confirmed after the read began).
	ConsistentRead(verify bool) error
	AddService(svc *state.Service, checks []*state.HealthCheck) error
	RemoveService(id string) (bool, error)
	LocalServices() []*state.Service
	LocalChecks() []*state.HealthCheck
	Self() AgentSelf
}

// Limits.
const (
	// MaxBodyBytes bounds every request body; a larger one gets 413.
	MaxBodyBytes      = 1 << 20
	readHeaderTimeout = 10 * time.Second
	// writeTimeout leaves room for the longest blocking query.
	writeTimeout = maxWait + maxWait/16 + 30*time.Second
	idleTimeout  = 2 * time.Minute
)

// Server is the HTTP API server.
type Server struct {
	agent  Agent
	logger hclog.Logger
	http   *http.Server
	// serving counts the listeners being served (HTTP, HTTPS).
	serving sync.WaitGroup
	// stop cancels every request's context: blocking queries end at once
	// on shutdown instead of holding it for their whole wait.
	stop context.CancelFunc
	// waiting, when set, is called each time a blocking query starts to
	// wait for a change, after its read: tests wait for it before writing
	// what should (or should not) wake the query.
	waiting func()
}

// New returns an API server for agent; Handler serves its routes.
func New(agent Agent, logger hclog.Logger) *Server {
	s := &Server{agent: agent, logger: logger}
	base, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.http = &http.Server{
		Handler:           s.Handler(),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	return s
}

// Listen starts serving the API on addr over plain HTTP; with addr "" (http
// off) it serves nothing until ListenTLS adds HTTPS.
func Listen(addr string, agent Agent, logger hclog.Logger) (*Server, error) {
	s := New(agent, logger)
	if addr == "" {
		return s, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for HTTP on %s: %w", addr, err)
	}
	s.serve(ln, "HTTP")
	return s, nil
}

// ListenTLS serves the API over HTTPS on addr as well, with cfg (whose
// GetConfigForClient may hand each handshake the current certificates).
func (s *Server) ListenTLS(addr string, cfg *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for HTTPS on %s: %w", addr, err)
	}
	s.serve(tls.NewListener(ln, cfg), "HTTPS")
	return nil
}

func (s *Server) serve(ln net.Listener, what string) {
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error(what+" server stopped", "error", err)
		}
	}()
}

// Shutdown stops accepting requests and waits (up to ctx) for those in flight;
// blocking queries are cut short.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.http.Close())
	}
	s.serving.Wait()
	return err
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.routes(mux)
	return measured(mux, limitBody(s.forwardToServer(s.withAuthorizer(mux))))
}

// ServerForwarder is the agent's way to other agents' APIs: a server's of
// its datacenter, for what a client agent's replica does not hold, and one
// of another datacenter's servers.
type ServerForwarder interface {
	// ServerAPI has a server of the datacenter answer requests; nil on a
	// server.
	ServerAPI() http.Handler
	// DatacenterAPI has a server of datacenter dc answer requests.
	DatacenterAPI(dc string) http.Handler
}

// forwardToServer passes on what this agent does not answer itself: a
// request for another datacenter (?dc=) to a server there (through a local
// server from a client agent), and, on a client agent, what its replica
// does not hold to a server (answeredByServer). The request carries the
// secret this agent would have used, so the server decides as this agent
// would with the tables.
func (s *Server) forwardToServer(next http.Handler) http.Handler {
	f, ok := s.agent.(ServerForwarder)
	if !ok {
		return next
	}
	server := f.ServerAPI()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := server
		if dc := r.URL.Query().Get("dc"); dc != "" && dc != s.agent.Datacenter() && forwardsByDC(r.URL.Path) {
			if r.Header.Get(state.ForwardedHopHeader) != "" {
				s.writeErr(w, state.ErrNoPathToDC) // it crossed a datacenter already
				return
			}
			to = f.DatacenterAPI(dc)
		} else if to == nil || !answeredByServer(r) {
			next.ServeHTTP(w, r)
			return
		}
		s.passOn(w, r, to)
	})
}

// maxPassedBody bounds the body of a request passed to another agent: it
// travels in one frame of the server port (wire's base64 included).
const maxPassedBody = 2 << 20

// passOn has the agent behind to answer r, with the secret this agent
// would have used: the request's own, else the agent's default token,
// else the anonymous one, so the other agent decides as this one would.
func (s *Server) passOn(w http.ResponseWriter, r *http.Request, to http.Handler) {
	if r.ContentLength > maxPassedBody {
		httpError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body too large to pass to another agent: %d bytes, the limit is %d", r.ContentLength, maxPassedBody))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPassedBody)
	r.Header.Set("X-Consul-Token", s.forwardedSecret(r))
	r.Header.Del("Authorization")
	to.ServeHTTP(w, r)
}

// forwardedSecret is the token a request this agent passes on carries: the
// request's own, else the agent's default token, else the anonymous one.
func (s *Server) forwardedSecret(r *http.Request) string {
	secret := requestToken(r)
	if _, defaultToken := s.resolver(); secret == "" {
		secret = defaultToken
	}
	if secret == "" {
		secret = acl.AnonymousTokenSecretID
	}
	return secret
}

// answeredByServer reports whether a client agent has a server answer the
// request, for what its replica leaves out: the ACL endpoints (it holds no
// ACL tables), and the reads that show prepared query definitions (it
// holds them without the tokens they captured, which a management token
// is shown).
func answeredByServer(r *http.Request) bool {
	path := r.URL.Path
	if strings.HasPrefix(path, "/v1/acl/") {
		return true
	}
	if r.Method != http.MethodGet {
		return false
	}
	if path == "/v1/query" {
		return true
	}
	rest, ok := strings.CutPrefix(path, "/v1/query/")
	return ok && (!strings.Contains(rest, "/") || strings.HasSuffix(rest, "/explain"))
}

// forwardsByDC reports whether ?dc= sends a request to another datacenter:
// everything but the agent's own endpoints, which are about this agent
// (as in Consul, where they take no dc).
func forwardsByDC(path string) bool {
	return !strings.HasPrefix(path, "/v1/agent/")
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := bodyLimit(r)
		if r.ContentLength > limit {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body too large: %d bytes, the limit is %d", r.ContentLength, limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// httpError writes a plain-text error, as Consul does.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// ErrNotFound, ErrInvalid and ErrTooLarge mark an agent's errors that the
// API answers with 404, 400 and 413: wrap them as fmt.Errorf("%w: message",
// ErrNotFound), and the message is the answer.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid request")
	ErrTooLarge = errors.New("too large")
)

// wrappedMessage is err's message without the sentinel's prefix.
func wrappedMessage(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

// errBadRequest marks errors caused by the request, answered with 400.
type errBadRequest struct{ msg string }

func (e errBadRequest) Error() string { return e.msg }

func badRequest(format string, args ...any) error { return errBadRequest{fmt.Sprintf(format, args...)} }

// writeErr maps an error to its status code.
func (s *Server) writeErr(w http.ResponseWriter, err error) {
	var br errBadRequest
	var tooLarge *http.MaxBytesError
	var other *apiError
	if code, msg, ok := aclErr(err); ok {
		httpError(w, code, msg)
		return
	}
	switch {
	case errors.As(err, &other):
		// Another agent's answer, passed on as it gave it.
		httpError(w, other.status, other.msg)
	case errors.Is(err, state.ErrQueryNotFound):
		httpError(w, http.StatusNotFound, "Query not found")
	case errors.As(err, &tooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body too large: the limit is %d bytes", tooLarge.Limit))
	case errors.As(err, &br):
		httpError(w, http.StatusBadRequest, br.msg)
	case errors.Is(err, ErrTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, wrappedMessage(err, ErrTooLarge))
	case errors.Is(err, state.ErrInvalidSession), errors.Is(err, state.ErrSessionNotFound):
		httpError(w, http.StatusInternalServerError, err.Error())
	case errors.Is(err, ErrNotFound):
		httpError(w, http.StatusNotFound, wrappedMessage(err, ErrNotFound))
	case errors.Is(err, ErrInvalid):
		httpError(w, http.StatusBadRequest, wrappedMessage(err, ErrInvalid))
	case errors.Is(err, state.ErrNoServers):
		httpError(w, http.StatusInternalServerError, "No known servers")
	case errors.Is(err, state.ErrNoLeader):
		httpError(w, http.StatusInternalServerError, "No cluster leader")
	case errors.Is(err, state.ErrNotLeader):
		httpError(w, http.StatusInternalServerError, "Not the cluster leader; retry")
	case errors.Is(err, state.ErrNoPathToDC):
		httpError(w, http.StatusInternalServerError, "No path to datacenter")
	case errors.Is(err, state.ErrMissingNode), errors.Is(err, state.ErrInvalidRegistration),
		errors.Is(err, ErrUnknownService):
		httpError(w, http.StatusBadRequest, err.Error())
	default:
		s.logger.Error("request failed", "error", err)
		httpError(w, http.StatusInternalServerError, err.Error())
	}
}

// decodeBody decodes a JSON body into v. Unknown fields are ignored, as
// Consul ignores them; a malformed body or a wrong type is a 400.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badRequest("Request decode failed: %v", err)
	}
	// Exactly one JSON value: anything after it but white space is an error.
	if _, err := dec.Token(); err != io.EOF {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badRequest("Request decode failed: unexpected data after the JSON body")
	}
	return nil
}

// readBodyUpTo reads a request body of at most limit bytes (a KV value, a
// user event's payload); a larger one is ErrTooLarge, a 413, in Consul's
// words for a KV value.
func readBodyUpTo(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: Request body(%d bytes) too large, max size: %d bytes", ErrTooLarge, r.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: Request body too large, max size: %d bytes", ErrTooLarge, limit)
	}
	return body, nil
}

// writeJSON writes v with the query metadata headers.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// A known length spares net/http the chunked encoding.
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// setMeta sets Consul's query metadata headers.
func (s *Server) setMeta(w http.ResponseWriter, index uint64) {
	if index == 0 {
		index = 1 // Consul never reports 0: clients treat it as "no blocking"
	}
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(index, 10))
	h.Set("X-Consul-KnownLeader", strconv.FormatBool(s.agent.Leader() != ""))
	lc := s.agent.LastContact()
	if lc < 0 {
		lc = 0
	}
	h.Set("X-Consul-LastContact", strconv.FormatInt(lc.Milliseconds(), 10))
}

// checkDC refuses requests for another datacenter: WAN federation comes later.
func (s *Server) checkDC(r *http.Request) error {
	if dc := r.URL.Query().Get("dc"); dc != "" && dc != s.agent.Datacenter() {
		return state.ErrNoPathToDC
	}
	return nil
}
