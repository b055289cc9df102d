package raftstore

import (
	"fmt"
	"io"
	"time"

	"github.com/beacon-dns/beacon/snapshot"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/raft"
)

// Saving and restoring the replicated state as a snapshot archive (the
// archive format is package snapshot's).

const (
	// snapshotBarrierTimeout bounds the barrier a leader commits before a
	// snapshot, so the snapshot holds every acknowledged write.
	snapshotBarrierTimeout = 30 * time.Second
	// snapshotRestoreTimeout bounds how long a restore waits to be taken up
	// by Raft (not the restore itself).
	snapshotRestoreTimeout = time.Minute
)

// SaveSnapshot takes a Raft snapshot and writes it to w as an archive. It
// returns the Raft index the snapshot reflects. It works on any server; on
// the leader the snapshot includes every write acknowledged before the call.
func (s *Server) SaveSnapshot(w io.Writer) (uint64, error) {
	if s.IsLeader() {
		// Also gives the FSM an index to snapshot at on a cluster that has
		// applied no command yet, and lets a snapshot follow a
		// configuration change (raft refuses a snapshot below the latest
		// committed configuration entry).
		if err := s.waitQueued(s.raft.Barrier(snapshotBarrierTimeout)); err != nil {
			return 0, s.leaderErr(fmt.Errorf("raft barrier before snapshot: %w", err))
		}
	}
	f := s.raft.Snapshot()
	if err := f.Error(); err != nil {
		return 0, fmt.Errorf("taking raft snapshot: %w", err)
	}
	meta, rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("opening raft snapshot: %w", err)
	}
	defer rc.Close()
	if err := snapshot.Write(w, metaForArchive(meta), rc); err != nil {
		return 0, err
	}
	return meta.Index, nil
}

// RestoreSnapshot replaces the whole replicated state with an archive's. It
// verifies the archive first (checksums, metadata, and that the state
// decodes); a bad archive is a snapshot.ErrInvalid and restores nothing.
// The leader installs the state and sends it to the followers; a follower
// passes the archive on to the leader; with no leader it returns
// ErrNoLeader without reading r. The cluster's membership is kept, not
// taken from the archive.
func (s *Server) RestoreSnapshot(r io.Reader) error {
	if s.IsLeader() {
		return s.restoreLocal(r)
	}
	leader := s.Leader()
	if leader == "" {
		return state.ErrNoLeader
	}
	return forwardRestore(s.conns.tls, leader, r)
}

// restoreLocal is RestoreSnapshot on the leader.
func (s *Server) restoreLocal(r io.Reader) error {
	if !s.IsLeader() {
		return s.notLeader()
	}
	a, err := snapshot.Read(r)
	if err != nil {
		return err
	}
	defer a.Close()
	// raft writes the state to its snapshot store, restores the FSM from
	// it and commits an entry past it, so followers install it too.
	if err := s.raft.Restore(metaForRaft(&a.Meta), a.State, snapshotRestoreTimeout); err != nil {
		return s.leaderErr(fmt.Errorf("raft restore: %w", err))
	}
	return nil
}

// metaForArchive is raft's snapshot metadata as an archive holds it.
func metaForArchive(m *raft.SnapshotMeta) *snapshot.Meta {
	out := &snapshot.Meta{Version: int(m.Version), ID: m.ID, Index: m.Index, Term: m.Term,
		Peers: m.Peers, ConfigurationIndex: m.ConfigurationIndex, Size: m.Size}
	for _, srv := range m.Configuration.Servers {
		out.Configuration.Servers = append(out.Configuration.Servers, snapshot.Server{
			Suffrage: int(srv.Suffrage), ID: string(srv.ID), Address: string(srv.Address)})
	}
	return out
}

// metaForRaft is an archive's metadata as raft takes it.
func metaForRaft(m *snapshot.Meta) *raft.SnapshotMeta {
	out := &raft.SnapshotMeta{Version: raft.SnapshotVersion(m.Version), ID: m.ID, Index: m.Index, Term: m.Term,
		Peers: m.Peers, ConfigurationIndex: m.ConfigurationIndex, Size: m.Size}
	for _, srv := range m.Configuration.Servers {
		out.Configuration.Servers = append(out.Configuration.Servers, raft.Server{
			Suffrage: raft.ServerSuffrage(srv.Suffrage), ID: raft.ServerID(srv.ID), Address: raft.ServerAddress(srv.Address)})
	}
	return out
}
