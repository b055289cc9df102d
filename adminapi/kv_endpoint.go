package adminapi

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-memdb"
)

// /v1/kv/:key, Consul's KV endpoint.

func (s *Server) kvRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/kv/{key...}", s.kvGet)
	mux.HandleFunc("PUT /v1/kv/{key...}", s.kvPut)
	mux.HandleFunc("DELETE /v1/kv/{key...}", s.kvDelete)
}

func (s *Server) kvGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	q := r.URL.Query()
	_, recurse := q["recurse"]
	_, keys := q["keys"]
	_, raw := q["raw"]
	sep := q.Get("separator")
	store := s.agent.Store()
	a := authz(r)
	if !keys && !recurse && !a.KeyRead(key) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	s.blockingRead(w, r, func(ws memdb.WatchSet) (uint64, any, error) {
		switch {
		case keys:
			idx, list, err := store.KVKeys(ws, key, sep)
			list, dropped := keep(list, a.KeyRead)
			filtered(w, dropped)
			if err != nil || len(list) == 0 {
				return idx, notFound{}, err
			}
			return idx, list, nil
		case recurse:
			idx, entries, err := store.KVList(ws, key)
			entries, dropped := keep(entries, func(e *state.DirEntry) bool { return a.KeyRead(e.Key) })
			filtered(w, dropped)
			if err != nil || len(entries) == 0 {
				return idx, notFound{}, err
			}
			return idx, entries, nil
		}
		idx, e, err := store.KVGet(ws, key)
		if err != nil || e == nil {
			return idx, notFound{}, err
		}
		if raw {
			return idx, rawBody(e.Value), nil
		}
		return idx, []*state.DirEntry{e}, nil
	})
}

// uintParam reads an unsigned query parameter; ok is false when absent.
func uintParam(r *http.Request, name string) (v uint64, ok bool, err error) {
	q := r.URL.Query()
	vals, ok := q[name]
	if !ok {
		return 0, false, nil
	}
	if len(vals) == 0 || vals[0] == "" {
		return 0, true, badRequest("Missing value for %s", name)
	}
	v, err = strconv.ParseUint(vals[0], 10, 64)
	if err != nil {
		return 0, true, badRequest("Invalid %s: %q is not a whole number", name, vals[0])
	}
	return v, true, nil
}

func (s *Server) kvPut(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	key := r.PathValue("key")
	if key == "" {
		s.writeErr(w, badRequest("Missing key name"))
		return
	}
	if err := checkUTF8("key", key); err != nil {
		s.writeErr(w, err)
		return
	}
	if !authz(r).KeyWrite(key) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	req := state.KVSRequest{Datacenter: s.agent.Datacenter(), Op: state.KVSet, DirEnt: state.DirEntry{Key: key}}
	flags, _, err := uintParam(r, "flags")
	if err != nil {
		s.writeErr(w, err)
		return
	}
	req.DirEnt.Flags = flags
	cas, hasCAS, err := uintParam(r, "cas")
	if err != nil {
		s.writeErr(w, err)
		return
	}
	q := r.URL.Query()
	acquire, hasAcquire := q["acquire"]
	release, hasRelease := q["release"]
	switch {
	case hasAcquire && hasRelease, (hasAcquire || hasRelease) && hasCAS:
		s.writeErr(w, badRequest("Conflicting flags: only one of cas, acquire and release may be given"))
		return
	case hasCAS:
		req.Op, req.DirEnt.ModifyIndex = state.KVCAS, cas
	case hasAcquire:
		req.Op, req.DirEnt.Session = state.KVLock, first(acquire)
	case hasRelease:
		req.Op, req.DirEnt.Session = state.KVUnlock, first(release)
	}
	if (hasAcquire || hasRelease) && req.DirEnt.Session == "" {
		s.writeErr(w, badRequest("Missing session: acquire and release need a session ID"))
		return
	}
	if err := checkUTF8("session", req.DirEnt.Session); err != nil {
		s.writeErr(w, err)
		return
	}
	value, err := readBodyUpTo(r, state.MaxKVValueBytes)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if len(value) > 0 { // an empty value is null, as Consul answers it
		req.DirEnt.Value = value
	}
	_, res, err := s.agent.ApplyWithResult(state.KVSRequestType, &req)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, res != nil && res.OK)
}

// checkUTF8 refuses a key or session ID that is not UTF-8: the state's
// snapshot (JSON) cannot carry one, so replicas restoring it would hold
// another key.
func checkUTF8(what, v string) error {
	if !utf8.ValidString(v) {
		return badRequest("Invalid %s %q: it must be UTF-8", what, v)
	}
	return nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (s *Server) kvDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	key := r.PathValue("key")
	if err := checkUTF8("key", key); err != nil {
		s.writeErr(w, err)
		return
	}
	_, recurse := r.URL.Query()["recurse"]
	req := state.KVSRequest{Datacenter: s.agent.Datacenter(), Op: state.KVDelete, DirEnt: state.DirEntry{Key: key}}
	cas, hasCAS, err := uintParam(r, "cas")
	if err != nil {
		s.writeErr(w, err)
		return
	}
	switch {
	case recurse && hasCAS:
		s.writeErr(w, badRequest("Conflicting flags: cas cannot be used with recurse"))
		return
	case recurse:
		req.Op = state.KVDeleteTree
		if !authz(r).KeyWritePrefix(key) {
			s.writeErr(w, errPermissionDenied)
			return
		}
	case key == "":
		s.writeErr(w, badRequest("Missing key name"))
		return
	case hasCAS:
		req.Op, req.DirEnt.ModifyIndex = state.KVDeleteCAS, cas
	}
	if !recurse && !authz(r).KeyWrite(key) {
		s.writeErr(w, errPermissionDenied)
		return
	}
	_, res, err := s.agent.ApplyWithResult(state.KVSRequestType, &req)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, res != nil && res.OK)
}
