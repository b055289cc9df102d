package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
)

// Calls a client agent makes of a server for what its replica does not
// hold: the ACL tables are left out of it (stream.go), so a client resolves
// tokens through a server (rpcMethodResolveToken) and passes the ACL
// endpoints on to a server's HTTP API (rpcMethodHTTP), which answers them
// as if asked directly. The request carries the token the client resolved
// for it, so the server decides with the same authority.

const (
	rpcMethodResolveToken = "ResolveToken"
	rpcMethodHTTP         = "HTTP"

	// maxForwardedBody bounds a forwarded answer's body; a larger one is a
	// 500 rather than a frame the client would refuse.
	maxForwardedBody = 8 << 20
	// forwardedBlockingTimeout bounds a forwarded blocking query: the
	// API's longest wait (10 minutes, plus its jitter) and a margin.
	forwardedBlockingTimeout = 11 * time.Minute
	// forwardedTimeout bounds any other forwarded request.
	forwardedTimeout = maxApplyTimeout
	// resolveTimeout bounds a token resolution: a request waiting on it
	// should fall to acl_down_policy quickly when servers are away.
	resolveTimeout = 3 * time.Second
	// forwardRetryWindow is how long a forwarded request is tried on
	// server after server when none takes it; its own timeout is longer,
	// for the time the server may take to answer.
	forwardRetryWindow = 5 * time.Second
)

// forwardedHeaders are the request headers the API reads.
var forwardedHeaders = []string{"X-Consul-Token", "Content-Type"}

// forwardedRequest is an HTTP request passed to a server's API.
type forwardedRequest struct {
	Method string
	// URI is the path and query.
	URI    string
	Header http.Header `json:",omitempty"`
	Body   []byte      `json:",omitempty"`
	// Datacenter is where the request is to be answered: a server of
	// another datacenter passes it on to one there; "" is here.
	Datacenter string `json:",omitempty"`
	// Hops counts the datacenters the request crossed: it crosses one.
	Hops int `json:",omitempty"`
}

// forwardedResponse is the server API's answer.
type forwardedResponse struct {
	Status int
	Header http.Header `json:",omitempty"`
	Body   []byte      `json:",omitempty"`
}

// resolvedToken answers rpcMethodResolveToken.
type resolvedToken struct {
	Token    *acl.Token
	Policies []*acl.Policy `json:",omitempty"`
}

// apiHandler holds the server's HTTP API, for forwarded requests.
type apiHandler struct{ h atomic.Pointer[http.Handler] }

// SetAPI gives the server its HTTP API, which answers the requests client
// agents forward (the ACL endpoints); until then they get 503.
func (s *Server) SetAPI(h http.Handler) { s.api.h.Store(&h) }

// serveForwarded runs a forwarded request through the API.
func (s *Server) serveForwarded(req *forwardedRequest, remote string, timeout time.Duration) (*forwardedResponse, error) {
	h := s.api.h.Load()
	if h == nil {
		return &forwardedResponse{Status: http.StatusServiceUnavailable, Body: []byte("server API not ready\n")}, nil
	}
	if req.Datacenter != "" && req.Datacenter != s.datacenter {
		if req.Hops > 0 {
			// Forwarded here from another datacenter already: a second hop
			// could only bounce between servers until the deadline.
			return &forwardedResponse{Status: http.StatusInternalServerError,
				Body: []byte("No path to datacenter: a request is forwarded across datacenters once\n")}, nil
		}
		resp, err := s.callDatacenter(req.Datacenter, &rpcRequest{Method: rpcMethodHTTP,
			HTTP: &forwardedRequest{Method: req.Method, URI: req.URI, Header: req.Header, Body: req.Body, Hops: 1}}, timeout, unanswered)
		if err != nil {
			return &forwardedResponse{Status: http.StatusInternalServerError, Body: []byte(forwardError(err) + "\n")}, nil
		}
		if resp.HTTP == nil {
			return nil, errors.New("server of the other datacenter sent no answer")
		}
		return resp.HTTP, nil
	}
	u, err := url.ParseRequestURI(req.URI)
	if err != nil || !strings.HasPrefix(u.Path, "/v1/") {
		return nil, fmt.Errorf("%w: forwarded request for %q", state.ErrInvalidRegistration, req.URI)
	}
	if strings.HasPrefix(u.Path, "/v1/agent/") {
		// An agent's endpoints are about the agent asked; nothing forwards
		// them, and a peer on the server port must not reach this one's
		// (check registration, leave, tokens) through here.
		return &forwardedResponse{Status: http.StatusForbidden,
			Body: []byte("Permission denied: agent endpoints are not forwarded\n")}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, req.Method, req.URI, bytes.NewReader(req.Body))
	if err != nil {
		return nil, fmt.Errorf("%w: forwarded request: %v", state.ErrInvalidRegistration, err)
	}
	for _, k := range forwardedHeaders {
		if v := req.Header.Get(k); v != "" {
			r.Header.Set(k, v)
		}
	}
	if r.Header.Get("X-Consul-Token") == "" {
		// Every forwarder names the token; one that does not is asking as
		// the anonymous token, never with this server's default token.
		r.Header.Set("X-Consul-Token", acl.AnonymousTokenSecretID)
	}
	if req.Hops > 0 {
		r.Header.Set(state.ForwardedHopHeader, strconv.Itoa(req.Hops))
	}
	r.RemoteAddr = remote
	r.ContentLength = int64(len(req.Body))
	rec := &recorder{header: http.Header{}}
	(*h).ServeHTTP(rec, r)
	if rec.overflow {
		return &forwardedResponse{Status: http.StatusInternalServerError,
			Body: fmt.Appendf(nil, "answer larger than %d bytes cannot be forwarded\n", maxForwardedBody)}, nil
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &forwardedResponse{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}, nil
}

// recorder is the ResponseWriter of a forwarded request.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(b) > maxForwardedBody {
		w.overflow = true
		return 0, fmt.Errorf("answer larger than %d bytes", maxForwardedBody)
	}
	return w.body.Write(b)
}

// resolveToken answers rpcMethodResolveToken from this server's state.
func (s *Server) resolveToken(secret string) (*resolvedToken, error) {
	token, policies, err := s.store.ACLTokenWithPolicies(secret, time.Now())
	if err != nil {
		return nil, err
	}
	return &resolvedToken{Token: token, Policies: policies}, nil
}

// ResolveToken asks a server for the token whose SecretID is secret and the
// policies it links (acl.TokenFetch): acl.ErrNotFound when none has it.
func (c *Client) ResolveToken(secret string) (*acl.Token, []*acl.Policy, error) {
	resp, err := c.call(&rpcRequest{Method: rpcMethodResolveToken, Secret: secret}, resolveTimeout, unanswered)
	if err != nil {
		return nil, nil, err
	}
	if resp.Token == nil || resp.Token.Token == nil {
		return nil, nil, fmt.Errorf("server sent no token")
	}
	return resp.Token.Token, resp.Token.Policies, nil
}

// ServerAPI is a handler that has a server of the datacenter answer each
// request (the HTTP API of a server, seen from a client agent).
func (c *Client) ServerAPI() http.Handler { return c.DatacenterAPI("") }

// DatacenterAPI is a handler that has a server of datacenter dc answer each
// request, through a server of this datacenter ("" or this datacenter: that
// server answers itself). Reads go to any server that answers; other
// requests move on to another server only when they certainly were not
// sent.
func (c *Client) DatacenterAPI(dc string) http.Handler {
	return forwardingHandler(dc, func(req *rpcRequest, timeout time.Duration, retry func(error) bool) (*rpcResponse, error) {
		return c.call(req, timeout, retry)
	})
}

// DatacenterAPI is a handler that has a server of datacenter dc answer each
// request.
func (s *Server) DatacenterAPI(dc string) http.Handler {
	return forwardingHandler(dc, func(req *rpcRequest, timeout time.Duration, retry func(error) bool) (*rpcResponse, error) {
		req.HTTP.Hops = 1 // the server there answers it, and forwards it no further
		return s.callDatacenter(dc, req, timeout, retry)
	})
}

// forwardingHandler turns a request into an rpcMethodHTTP call sent with
// send, and writes the answer back.
func forwardingHandler(dc string, send func(*rpcRequest, time.Duration, func(error) bool) (*rpcResponse, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, fmt.Sprintf("reading request body: %v", err), http.StatusBadRequest)
			return
		}
		req := &forwardedRequest{Method: r.Method, URI: r.URL.RequestURI(), Header: http.Header{}, Body: body, Datacenter: dc}
		for _, k := range forwardedHeaders {
			if v := r.Header.Get(k); v != "" {
				req.Header.Set(k, v)
			}
		}
		timeout, retryable := forwardedTimeout, noLeaderYet
		if r.Method == http.MethodGet {
			retryable = unanswered
			if r.URL.Query().Has("index") {
				timeout = forwardedBlockingTimeout
			}
		}
		if deadline, ok := r.Context().Deadline(); ok {
			timeout = min(timeout, time.Until(deadline))
		}
		start := time.Now()
		retry := func(err error) bool { return retryable(err) && time.Since(start) < forwardRetryWindow }
		resp, err := send(&rpcRequest{Method: rpcMethodHTTP, HTTP: req}, timeout, retry)
		if err != nil {
			http.Error(w, forwardError(err), http.StatusInternalServerError)
			return
		}
		if resp.HTTP == nil {
			http.Error(w, "rpc error making call: server sent no answer", http.StatusInternalServerError)
			return
		}
		for k, vs := range resp.HTTP.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.HTTP.Status)
		_, _ = w.Write(resp.HTTP.Body)
	})
}

// forwardError is a failed forward's message: Consul's words for a
// datacenter no server knows.
func forwardError(err error) string {
	if errors.Is(err, state.ErrNoPathToDC) {
		return "No path to datacenter"
	}
	return fmt.Sprintf("rpc error making call: %v", err)
}

// callDatacenter sends req to the servers of datacenter dc, as the WAN pool
// knows them, in random order: one round, each with the dial timeout, so
// an unreachable datacenter fails within seconds.
func (s *Server) callDatacenter(dc string, req *rpcRequest, timeout time.Duration, retry func(error) bool) (*rpcResponse, error) {
	var addrs []string
	if s.remoteServers != nil {
		addrs = s.remoteServers(dc)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w %q", state.ErrNoPathToDC, dc)
	}
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	resp, _, err := s.conns.callEach(dc, addrs, req, time.Now().Add(timeout), retry)
	if err != nil {
		return nil, fmt.Errorf("datacenter %s: %w", dc, err)
	}
	return resp, nil
}

// unanswered retries a read elsewhere unless a server answered it with an
// error of its own (a token it does not know, a request it refused).
func unanswered(err error) bool {
	var answered *typedError
	return anyFailure(err) && !errors.As(err, &answered)
}

// remoteAddr names a connection's peer for a forwarded request.
func remoteAddr(conn net.Conn) string {
	if a := conn.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
