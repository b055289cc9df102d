package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-memdb"
)

// /v1/session/..., Consul's session endpoints.

func (s *Server) sessionRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/session/create", s.sessionCreate)
	mux.HandleFunc("PUT /v1/session/destroy/{id}", s.sessionDestroy)
	mux.HandleFunc("PUT /v1/session/renew/{id}", s.sessionRenew)
	mux.HandleFunc("GET /v1/session/info/{id}", s.sessionInfo)
	mux.HandleFunc("GET /v1/session/node/{node}", s.sessionNode)
	mux.HandleFunc("GET /v1/session/list", s.sessionList)
}

// lockDelay accepts Consul's forms: a duration string, or a number of
// nanoseconds, or, below 1000, of seconds (Consul's backwards compatible
// reading).
type lockDelay struct {
	d   time.Duration
	set bool
}

func (l *lockDelay) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("LockDelay %q is not a duration", s)
		}
		l.d, l.set = d, true
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("LockDelay must be a duration or a number: %v", err)
	}
	if n < 1000 {
		l.d = time.Duration(n) * time.Second
	} else {
		l.d = time.Duration(n)
	}
	l.set = true
	return nil
}

// sessionBody is the create request's body.
type sessionBody struct {
	Name          string
	Node          string
	LockDelay     lockDelay
	Behavior      string
	TTL           string
	NodeChecks    []string
	ServiceChecks []state.ServiceCheck
	// Checks is the older name of NodeChecks.
	Checks []string
}

func (s *Server) sessionCreate(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	var body sessionBody
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			// An empty body (no Content-Length) is a session with defaults.
			if !isEmptyBody(err) {
				s.writeErr(w, err)
				return
			}
		}
	}
	sess := state.Session{Name: body.Name, Node: body.Node, Behavior: body.Behavior, TTL: body.TTL,
		NodeChecks: body.NodeChecks, ServiceChecks: body.ServiceChecks, LockDelay: state.DefaultLockDelay}
	if sess.Node == "" {
		sess.Node = s.agent.NodeName()
	}
	if body.LockDelay.set {
		sess.LockDelay = body.LockDelay.d
	}
	if sess.LockDelay < 0 || sess.LockDelay > state.MaxLockDelay {
		s.writeErr(w, badRequest("Invalid LockDelay %v: must be from 0 to %v", sess.LockDelay, state.MaxLockDelay))
		return
	}
	if sess.NodeChecks == nil {
		sess.NodeChecks = body.Checks
	}
	if sess.NodeChecks == nil && sess.ServiceChecks == nil {
		sess.NodeChecks = []string{state.SerfCheckID}
	}
	switch sess.Behavior {
	case "":
		sess.Behavior = state.SessionRelease
	case state.SessionRelease, state.SessionDelete:
	default:
		s.writeErr(w, badRequest("Invalid Behavior setting '%s'", sess.Behavior))
		return
	}
	if _, err := state.ParseSessionTTL(sess.TTL); err != nil {
		msg := err.Error() // Consul's message, capitalised as it answers it
		s.writeErr(w, badRequest("%s%s", strings.ToUpper(msg[:1]), msg[1:]))
		return
	}
	if len(sess.Name) > 1024 {
		s.writeErr(w, badRequest("Session Name must be at most 1024 bytes"))
		return
	}
	if !authz(r).SessionWrite(sess.Node) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	id := acl.NewUUID()
	sess.ID = id
	if _, err := s.agent.Apply(state.SessionRequestType,
		&state.SessionRequest{Datacenter: s.agent.Datacenter(), Op: state.SessionCreate, Session: sess}); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, map[string]string{"ID": id})
}

func isEmptyBody(err error) bool {
	var br errBadRequest
	return errors.As(err, &br) && br.msg == "Request decode failed: EOF"
}

func (s *Server) sessionDestroy(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	if !s.maySessionWrite(authz(r), r.PathValue("id")) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	if _, err := s.agent.Apply(state.SessionRequestType, &state.SessionRequest{Datacenter: s.agent.Datacenter(),
		Op: state.SessionDestroy, Session: state.Session{ID: r.PathValue("id")}}); err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, true)
}

func (s *Server) sessionRenew(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	id := r.PathValue("id")
	if !s.maySessionWrite(authz(r), id) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	idx, err := s.agent.Apply(state.SessionRequestType, &state.SessionRequest{Datacenter: s.agent.Datacenter(),
		Op: state.SessionRenew, Session: state.Session{ID: id}})
	if errors.Is(err, state.ErrSessionNotFound) {
		httpError(w, http.StatusNotFound, "Session id '"+id+"' not found")
		return
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	_, sess, err := s.agent.Store().GetSession(nil, id)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if sess == nil { // invalidated since the renewal committed
		httpError(w, http.StatusNotFound, "Session id '"+id+"' not found")
		return
	}
	s.setMeta(w, idx)
	writeJSON(w, []*state.Session{sess})
}

func (s *Server) sessionInfo(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a := authz(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, sess, err := s.agent.Store().GetSession(ws, id)
		if err != nil || sess == nil {
			return idx, []*state.Session{}, err
		}
		if !a.SessionRead(sess.Node) {
			filtered(w, true)
			return idx, []*state.Session{}, nil
		}
		return idx, []*state.Session{sess}, nil
	})
}

func (s *Server) sessionNode(w http.ResponseWriter, r *http.Request) {
	s.sessionsOf(w, r, r.PathValue("node"))
}

func (s *Server) sessionList(w http.ResponseWriter, r *http.Request) {
	s.sessionsOf(w, r, "")
}

// sessionsOf answers the sessions of node ("" for all) that the request
// may read.
func (s *Server) sessionsOf(w http.ResponseWriter, r *http.Request, node string) {
	a := authz(r)
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		idx, list, err := s.agent.Store().Sessions(ws, node)
		list, dropped := keep(list, func(sess *state.Session) bool { return a.SessionRead(sess.Node) })
		filtered(w, dropped)
		return idx, nonNil(list), err
	})
}

// maySessionWrite reports whether a may destroy or renew session id:
// session:write on its node. An unknown session is let through, for the
// write to answer as it does without ACLs.
func (s *Server) maySessionWrite(a *acl.Authorizer, id string) bool {
	_, sess, err := s.agent.Store().GetSession(nil, id)
	if err != nil || sess == nil {
		return true
	}
	return a.SessionWrite(sess.Node)
}

// ---- /v1/txn ----

// mayTxnKV reports whether a may run one KV operation of a transaction:
// key:read for reads and checks, key:write for writes, write on every key
// under the prefix for delete-tree; a get-tree is filtered afterwards, as
// a KV ?recurse is. A transaction runs whole or not at all.
func mayTxnKV(a *acl.Authorizer, op *state.TxnKVOp) bool {
	switch op.Verb {
	case state.KVGet, state.KVCheckIndex, state.KVCheckSession, state.KVCheckNotExists:
		return a.KeyRead(op.Key)
	case state.KVGetTree:
		return true
	case state.KVDeleteTree:
		return a.KeyWritePrefix(op.Key)
	}
	return a.KeyWrite(op.Key)
}

// txnOpBody is one operation of a /v1/txn body.
type txnOpBody struct {
	KV *state.TxnKVOp
}

func (s *Server) txnRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/txn", s.txn)
}

func (s *Server) txn(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	var ops []txnOpBody
	if err := decodeBody(r, &ops); err != nil {
		s.writeErr(w, err)
		return
	}
	if len(ops) > state.MaxTxnOps {
		httpError(w, http.StatusRequestEntityTooLarge,
			"Transaction contains too many operations ("+strconv.Itoa(len(ops))+" > "+strconv.Itoa(state.MaxTxnOps)+")")
		return
	}
	req := state.TxnRequest{Datacenter: s.agent.Datacenter()}
	for i, op := range ops {
		if op.KV == nil {
			s.writeErr(w, badRequest("Operation %d: only KV operations are supported", i))
			return
		}
		if len(op.KV.Value) > state.MaxKVValueBytes {
			httpError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("Operation %d: value of %d bytes exceeds the %d byte limit", i, len(op.KV.Value), state.MaxKVValueBytes))
			return
		}
		if !mayTxnKV(authz(r), op.KV) {
			s.writeErr(w, errPermissionDenied)
			return
		}
		req.Ops = append(req.Ops, state.TxnOp{KV: op.KV})
	}
	var res *state.TxnResult
	var idx uint64
	if req.ReadOnly() {
		opts, err := parseQueryOptions(r)
		if err == nil {
			err = s.consistency(opts)
		}
		if err != nil {
			s.writeErr(w, err)
			return
		}
		idx, res = s.agent.Store().TxnRead(&req)
		s.setMeta(w, idx)
	} else {
		_, cr, err := s.agent.ApplyWithResult(state.TxnRequestType, &req)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		if cr == nil || cr.Txn == nil {
			s.writeErr(w, fmt.Errorf("transaction applied without a result"))
			return
		}
		res = cr.Txn
	}
	// A get-tree answers only the keys the token may read, as a KV
	// ?recurse does.
	a := authz(r)
	kept, dropped := keep(res.Results, func(item state.TxnResultItem) bool { return item.KV == nil || a.KeyRead(item.KV.Key) })
	filtered(w, dropped)
	res.Results = kept
	if len(res.Errors) > 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		b, _ := json.Marshal(res)
		w.Write(b)
		return
	}
	writeJSON(w, res)
}
