package adminapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/snapshot"
	"github.com/beacon-dns/beacon/state"
)

// Operator is what the operator endpoints (/v1/operator/raft/..., /v1/snapshot)
// need of the running agent.
type Operator interface {
	// SaveSnapshot writes a snapshot archive to w and returns the Raft
	// index it reflects.
	SaveSnapshot(w io.Writer) (uint64, error)
	// RestoreSnapshot replaces the state with an archive's. An archive it
	// rejects is a snapshot.ErrInvalid.
	RestoreSnapshot(r io.Reader) error
	RaftConfiguration() (state.RaftConfigurationInfo, error)
	// RemovePeer removes a Raft server by ID, or by address when id is "".
	RemovePeer(id, address string) error
}

// MaxSnapshotBytes bounds the body of a snapshot restore (PUT /v1/snapshot),
// which bypasses the general MaxBodyBytes: an archive is the whole state.
const MaxSnapshotBytes = 1 << 30

const snapshotRestorePath = "/v1/snapshot"

// bodyLimit is the request body limit for r: MaxSnapshotBytes for a
// snapshot restore, MaxBodyBytes for everything else.
func bodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPut && r.URL.Path == snapshotRestorePath {
		return MaxSnapshotBytes
	}
	return MaxBodyBytes
}

// unknownNode is what Consul reports for a server whose node it does not know.
const unknownNode = "(unknown)"

func (s *Server) operatorRoutes(mux *http.ServeMux, op Operator) {
	mux.HandleFunc("GET /v1/operator/raft/configuration", s.guarded((*acl.Authorizer).OperatorRead, func(w http.ResponseWriter, r *http.Request) {
		s.operatorRaftConfiguration(w, r, op)
	}))
	mux.HandleFunc("DELETE /v1/operator/raft/peer", s.guarded((*acl.Authorizer).OperatorWrite, func(w http.ResponseWriter, r *http.Request) {
		s.operatorRaftPeer(w, r, op)
	}))
	// A snapshot holds every secret: management only, as Consul.
	mux.HandleFunc("GET /v1/snapshot", s.guarded((*acl.Authorizer).Snapshot, func(w http.ResponseWriter, r *http.Request) {
		s.snapshotSave(w, r, op)
	}))
	mux.HandleFunc("PUT "+snapshotRestorePath, s.guarded((*acl.Authorizer).Snapshot, func(w http.ResponseWriter, r *http.Request) {
		s.snapshotRestore(w, r, op, MaxSnapshotBytes)
	}))
}

func (s *Server) operatorRaftConfiguration(w http.ResponseWriter, r *http.Request, op Operator) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	if f, ok := s.agent.(ServerForwarder); ok {
		if server := f.ServerAPI(); server != nil {
			s.passOn(w, r, server) // a server knows its peers' names
			return
		}
	}
	conf, err := op.RaftConfiguration()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if conf.Servers == nil {
		conf.Servers = []state.RaftServerInfo{}
	}
	for i := range conf.Servers {
		srv := &conf.Servers[i]
		if srv.Node == "" && srv.ID == s.agent.NodeID() {
			srv.Node = s.agent.NodeName()
		}
		if srv.Node == "" {
			srv.Node = unknownNode
		}
	}
	writeJSON(w, conf)
}

func (s *Server) operatorRaftPeer(w http.ResponseWriter, r *http.Request, op Operator) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	q := r.URL.Query()
	id, address := q.Get("id"), q.Get("address")
	switch {
	case id == "" && address == "":
		s.writeErr(w, badRequest("Must specify either ?id with the server's ID or ?address with IP:port of peer to remove"))
		return
	case id != "" && address != "":
		s.writeErr(w, badRequest("Must specify only one of ?id or ?address"))
		return
	}
	if err := op.RemovePeer(id, address); err != nil {
		if errors.Is(err, state.ErrPeerNotFound) {
			// Consul answers 500 with the message, so does beacon; no
			// need to log an operator's typo as a server error.
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		s.writeErr(w, err)
		return
	}
}

// snapshotSave streams a snapshot archive. The archive is written to a
// temporary file first, so a failure is a 500 rather than a truncated 200,
// and the response carries the snapshot's index and exact length.
func (s *Server) snapshotSave(w http.ResponseWriter, r *http.Request, op Operator) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	tmp, err := os.CreateTemp("", "beacon-snapshot-*.tgz")
	if err != nil {
		s.writeErr(w, fmt.Errorf("creating a temporary file for the snapshot: %w", err))
		return
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	index, err := op.SaveSnapshot(tmp)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		s.writeErr(w, fmt.Errorf("reading back the snapshot: %w", err))
		return
	}
	s.setMeta(w, index)
	w.Header().Set("Content-Type", "application/x-gzip")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	if _, err := io.Copy(w, tmp); err != nil {
		// Headers are out: all that is left is to cut the response short,
		// which the client sees as a short body against Content-Length.
		s.logger.Warn("sending snapshot failed", "error", err)
	}
}

// snapshotRestore restores the archive in the request body, of at most
// limit bytes. A Consul snapshot is turned into beacon's archive here
// (snapshot.PrepareRestore); its answer is 200 with what it restored and
// skipped as JSON (a snapshot.ConsulReport), also logged. A beacon
// archive's is 200 with no body, as Consul answers.
func (s *Server) snapshotRestore(w http.ResponseWriter, r *http.Request, op Operator, limit int64) {
	if err := s.checkDC(r); err != nil {
		s.writeErr(w, err)
		return
	}
	if r.ContentLength > limit {
		httpError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body too large: %d bytes, the snapshot limit is %d", r.ContentLength, limit))
		return
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	archive, consul, err := snapshot.PrepareRestore(body)
	if err == nil {
		defer archive.Close()
		err = op.RestoreSnapshot(archive)
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil && consul != nil:
		s.logger.Info("restored a Consul snapshot", "id", consul.ID, "index", consul.Index,
			"restored", consul.TablesSummary(), "skipped", consul.SkippedSummary())
		writeJSON(w, consul)
	case err == nil:
	case errors.As(err, &tooLarge):
		httpError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body too large: the snapshot limit is %d bytes", tooLarge.Limit))
	case errors.Is(err, snapshot.ErrInvalid):
		httpError(w, http.StatusBadRequest, err.Error())
	default:
		s.writeErr(w, err)
	}
}
