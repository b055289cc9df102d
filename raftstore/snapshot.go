package raftstore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// Snapshot archives: what `beacon snapshot save` writes and `restore` reads.
//
// An archive is a gzip'd tar holding, in this order,
//
//	meta.json    the raft.SnapshotMeta (ID, index, term, configuration, size, version)
//	state.bin    the FSM snapshot, exactly as the FSM persists it
//	SHA256SUMS   "<hex sha256>  <name>" for meta.json and state.bin, as sha256sum writes it
//
// which is Consul's layout (the state inside is beacon's, so neither
// restores the other's). `tar xzf` and `sha256sum -c SHA256SUMS` check an
// archive by hand; every read here verifies the checksums, that the state
// decodes, and that the metadata agrees with it, before anything is
// restored.
const (
	archiveMeta  = "meta.json"
	archiveState = "state.bin"
	archiveSums  = "SHA256SUMS"
)

// Limits on what an archive may hold once decompressed. The state is also
// decoded into memory in full, so anything near the limit could not be
// restored anyway; the limit stops a small, highly compressed upload from
// filling the disk.
const (
	// MaxSnapshotStateBytes bounds state.bin, decompressed.
	MaxSnapshotStateBytes = 4 << 30
	maxArchiveMetaBytes   = 1 << 20
	maxArchiveSumsBytes   = 64 << 10
	// maxArchiveTrailer is how much may follow the tar's end inside the
	// gzip stream (tar writers pad to a record size).
	maxArchiveTrailer = 64 << 10
)

// Timeouts of the operator's Raft operations.
const (
	// snapshotBarrierTimeout bounds the barrier a leader commits before a
	// snapshot, so the snapshot holds every acknowledged write.
	snapshotBarrierTimeout = 30 * time.Second
	// snapshotRestoreTimeout bounds how long a restore waits to be taken up
	// by Raft (not the restore itself).
	snapshotRestoreTimeout = time.Minute
	// configChangeTimeout bounds how long a peer removal waits to be taken
	// up by Raft.
	configChangeTimeout = 30 * time.Second
)

// ErrInvalidSnapshot marks an archive that is corrupt, truncated, or not one
// this beacon reads. Nothing was restored: it is the caller's bad input.
var ErrInvalidSnapshot = errors.New("invalid snapshot archive")

// ErrPeerNotFound is returned by RemovePeer for a server that is not in the
// Raft configuration.
var ErrPeerNotFound = errors.New("not found in the Raft configuration")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSnapshot, fmt.Sprintf(format, args...))
}

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
	if err := writeArchive(w, meta, rc); err != nil {
		return 0, err
	}
	return meta.Index, nil
}

// writeArchive writes meta and the meta.Size bytes of state read from state
// as an archive.
func writeArchive(w io.Writer, meta *raft.SnapshotMeta, state io.Reader) error {
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding snapshot metadata: %w", err)
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	now := time.Now()
	header := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: now, Typeflag: tar.TypeReg})
	}

	if err := header(archiveMeta, int64(len(metaJSON))); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	if _, err := tw.Write(metaJSON); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	metaSum := sha256.Sum256(metaJSON)

	if err := header(archiveState, meta.Size); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(tw, h), state, meta.Size)
	if err == io.EOF {
		return fmt.Errorf("raft snapshot is %d bytes, shorter than the %d its metadata says", n, meta.Size)
	}
	if err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}

	sums := fmt.Sprintf("%x  %s\n%x  %s\n", metaSum, archiveMeta, h.Sum(nil), archiveState)
	if err := header(archiveSums, int64(len(sums))); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	if _, err := io.WriteString(tw, sums); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing snapshot archive: %w", err)
	}
	return nil
}

// verifiedArchive is an archive whose checksums matched and whose state
// decoded; its state is spooled to a temporary file.
type verifiedArchive struct {
	meta  raft.SnapshotMeta
	state *os.File
	db    *memdb.MemDB
}

func (a *verifiedArchive) Close() {
	a.state.Close()
	os.Remove(a.state.Name())
}

// trackedReader remembers the first error of its source other than EOF: a
// failed read of the upload is not a corrupt archive.
type trackedReader struct {
	r   io.Reader
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// trackedWriter remembers its destination's first error: a full disk is not
// a corrupt archive either.
type trackedWriter struct {
	w   io.Writer
	err error
}

func (t *trackedWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

// readArchive reads and verifies an archive: checksums, metadata, and that
// the state decodes into a database consistent with the metadata. On
// success the caller owns the result and must Close it.
func readArchive(r io.Reader) (_ *verifiedArchive, err error) {
	src := &trackedReader{r: r}
	tmp, err := os.CreateTemp("", "beacon-snapshot-*.bin")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file for the snapshot: %w", err)
	}
	a := &verifiedArchive{state: tmp}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	dst := &trackedWriter{w: tmp}
	// classify tells a fault of the archive from a fault of the reader or
	// the disk.
	classify := func(err error) error {
		switch {
		case src.err != nil:
			return fmt.Errorf("reading snapshot archive: %w", src.err)
		case dst.err != nil:
			return fmt.Errorf("spooling snapshot state: %w", dst.err)
		case errors.Is(err, ErrInvalidSnapshot):
			return err
		}
		return fmt.Errorf("%w: %v", ErrInvalidSnapshot, err)
	}

	gz, err := gzip.NewReader(src)
	if err != nil {
		return nil, classify(fmt.Errorf("not a gzip stream: %v", err))
	}
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	var metaJSON, sumsText []byte
	var stateSum []byte
	var stateSize int64
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, classify(fmt.Errorf("reading tar: %v", err))
		}
		if seen[hdr.Name] {
			return nil, classify(invalidf("%s appears twice", hdr.Name))
		}
		seen[hdr.Name] = true
		if hdr.Typeflag != tar.TypeReg {
			return nil, classify(invalidf("%s is not a regular file", hdr.Name))
		}
		switch hdr.Name {
		case archiveMeta:
			metaJSON, err = readSmall(tr, hdr, maxArchiveMetaBytes)
		case archiveSums:
			sumsText, err = readSmall(tr, hdr, maxArchiveSumsBytes)
		case archiveState:
			if hdr.Size > MaxSnapshotStateBytes {
				return nil, classify(invalidf("%s is %d bytes, over the limit of %d", archiveState, hdr.Size, int64(MaxSnapshotStateBytes)))
			}
			h := sha256.New()
			stateSize, err = io.Copy(io.MultiWriter(dst, h), tr)
			stateSum = h.Sum(nil)
		default:
			return nil, classify(invalidf("unexpected file %q", hdr.Name))
		}
		if err != nil {
			return nil, classify(fmt.Errorf("reading %s: %v", hdr.Name, err))
		}
	}
	// Read the rest of the gzip stream: its CRC and length check the
	// compressed data end to end.
	n, err := io.Copy(io.Discard, io.LimitReader(gz, maxArchiveTrailer+1))
	if err != nil {
		return nil, classify(fmt.Errorf("reading the end of the archive: %v", err))
	}
	if n > maxArchiveTrailer {
		return nil, classify(invalidf("unexpected data after the archive's end"))
	}
	for _, name := range []string{archiveMeta, archiveState, archiveSums} {
		if !seen[name] {
			return nil, classify(invalidf("%s is missing", name))
		}
	}
	sums, err := parseSums(sumsText)
	if err != nil {
		return nil, classify(err)
	}
	metaSum := sha256.Sum256(metaJSON)
	if err := checkSum(sums, archiveMeta, metaSum[:]); err != nil {
		return nil, classify(err)
	}
	if err := checkSum(sums, archiveState, stateSum); err != nil {
		return nil, classify(err)
	}
	if len(sums) != 2 {
		return nil, classify(invalidf("%s lists files the archive does not hold", archiveSums))
	}

	if err := json.Unmarshal(metaJSON, &a.meta); err != nil {
		return nil, invalidf("decoding %s: %v", archiveMeta, err)
	}
	if err := validateMeta(&a.meta, stateSize); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("spooling snapshot state: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spooling snapshot state: %w", err)
	}
	// The FSM's own reader: what decodes here restores there. Raft
	// panics if a restore fails in the FSM, so this check is what keeps a
	// bad archive from taking the leader down.
	a.db, err = readSnapshot(tmp)
	if err != nil {
		return nil, invalidf("%s: %v", archiveState, err)
	}
	// Writes after a restore take indexes above the snapshot's; a state
	// claiming later writes would make those indexes go backwards.
	if high := highestIndex(a.db); high > a.meta.Index {
		return nil, invalidf("the state holds writes up to index %d, after the snapshot's index %d", high, a.meta.Index)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spooling snapshot state: %w", err)
	}
	return a, nil
}

// maxSnapshotIndex is far above any real log and far below the point where
// raft's index arithmetic (restore uses index+1) would wrap.
const maxSnapshotIndex = 1 << 62

// highestIndex is the highest index the index table records.
func highestIndex(db *memdb.MemDB) uint64 {
	var high uint64
	it, err := db.Txn(false).Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		high = max(high, raw.(*indexEntry).Value)
	}
	return high
}

// validateMeta checks what raft would trust of the metadata: the version,
// the index (a restore continues the log after it) and the size.
func validateMeta(m *raft.SnapshotMeta, stateSize int64) error {
	if m.Version < raft.SnapshotVersionMin || m.Version > raft.SnapshotVersionMax {
		return invalidf("snapshot version %d is not one this beacon reads (%d to %d)", m.Version, raft.SnapshotVersionMin, raft.SnapshotVersionMax)
	}
	if m.Index == 0 || m.Index > maxSnapshotIndex {
		return invalidf("snapshot index %d is out of range", m.Index)
	}
	if m.Size != stateSize {
		return invalidf("%s is %d bytes, but %s says %d", archiveState, stateSize, archiveMeta, m.Size)
	}
	return nil
}

func readSmall(r io.Reader, hdr *tar.Header, limit int64) ([]byte, error) {
	if hdr.Size > limit {
		return nil, invalidf("%s is %d bytes, over the limit of %d", hdr.Name, hdr.Size, limit)
	}
	return io.ReadAll(r)
}

// parseSums reads sha256sum output: one "<hex>  <name>" per line (a '*'
// before the name marks binary mode, as sha256sum -b writes it).
func parseSums(text []byte) (map[string][]byte, error) {
	sums := map[string][]byte{}
	for i, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, " ")
		if !ok {
			return nil, invalidf("%s line %d is not \"<sha256>  <name>\"", archiveSums, i+1)
		}
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		b, err := hex.DecodeString(sum)
		if err != nil || len(b) != sha256.Size {
			return nil, invalidf("%s line %d has a malformed checksum", archiveSums, i+1)
		}
		if _, dup := sums[name]; dup {
			return nil, invalidf("%s lists %s twice", archiveSums, name)
		}
		sums[name] = b
	}
	return sums, nil
}

func checkSum(sums map[string][]byte, name string, got []byte) error {
	want, ok := sums[name]
	if !ok {
		return invalidf("%s has no checksum for %s", archiveSums, name)
	}
	if !bytes.Equal(want, got) {
		return invalidf("checksum mismatch for %s: the archive is corrupt", name)
	}
	return nil
}

// RestoreSnapshot replaces the whole replicated state with an archive's. It
// verifies the archive first (checksums, metadata, and that the state
// decodes); a bad archive is an ErrInvalidSnapshot and restores nothing.
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
		return ErrNoLeader
	}
	return forwardRestore(leader, r)
}

// restoreLocal is RestoreSnapshot on the leader.
func (s *Server) restoreLocal(r io.Reader) error {
	if !s.IsLeader() {
		return s.notLeader()
	}
	a, err := readArchive(r)
	if err != nil {
		return err
	}
	defer a.Close()
	// raft writes the state to its snapshot store, restores the FSM from
	// it and commits an entry past it, so followers install it too.
	meta := a.meta
	a.db = nil // decoded only to check it; raft decodes the file again
	if err := s.raft.Restore(&meta, a.state, snapshotRestoreTimeout); err != nil {
		return s.leaderErr(fmt.Errorf("raft restore: %w", err))
	}
	return nil
}

// notLeader is the error for an operation only the leader performs.
func (s *Server) notLeader() error {
	if s.Leader() == "" {
		return ErrNoLeader
	}
	return ErrNotLeader
}

// leaderErr turns raft's leadership errors into ours.
func (s *Server) leaderErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return s.notLeader()
	}
	return err
}

// SnapshotInfo describes an archive, for `beacon snapshot inspect`.
type SnapshotInfo struct {
	ID      string
	Index   uint64
	Term    uint64
	Version int
	// Size is the size of the state in bytes, uncompressed.
	Size int64
	// Tables counts the rows of each table of the state, in snapshot order.
	Tables []TableRows
}

// TableRows is the row count of one table.
type TableRows struct {
	Table string
	Rows  int
}

// InspectSnapshot reads and verifies an archive, as RestoreSnapshot does,
// and describes it.
func InspectSnapshot(r io.Reader) (SnapshotInfo, error) {
	a, err := readArchive(r)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer a.Close()
	info := SnapshotInfo{ID: a.meta.ID, Index: a.meta.Index, Term: a.meta.Term,
		Version: int(a.meta.Version), Size: a.meta.Size}
	tx := a.db.Txn(false)
	for _, table := range snapshotTables {
		it, err := tx.Get(table, "id")
		if err != nil {
			return SnapshotInfo{}, fmt.Errorf("counting %s: %w", table, err)
		}
		n := 0
		for raw := it.Next(); raw != nil; raw = it.Next() {
			n++
		}
		info.Tables = append(info.Tables, TableRows{Table: table, Rows: n})
	}
	return info, nil
}

// RaftServerInfo is one server of the Raft configuration, in the shape of
// Consul's /v1/operator/raft/configuration.
type RaftServerInfo struct {
	ID string
	// Node is the server's node name; raftstore does not know it and
	// leaves it empty for the caller to fill in.
	Node            string
	Address         string
	Leader          bool
	ProtocolVersion string
	Voter           bool
}

// RaftConfigurationInfo is the Raft configuration and the index it was
// committed at.
type RaftConfigurationInfo struct {
	Servers []RaftServerInfo
	Index   uint64
}

// RaftConfiguration returns the servers of the latest Raft configuration
// this server knows, sorted by ID, with the leader marked.
func (s *Server) RaftConfiguration() (RaftConfigurationInfo, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return RaftConfigurationInfo{}, fmt.Errorf("reading raft configuration: %w", err)
	}
	leaderAddr, leaderID := s.raft.LeaderWithID()
	proto := s.raft.Stats()["protocol_version"]
	info := RaftConfigurationInfo{Index: s.configurationIndex(), Servers: []RaftServerInfo{}}
	for _, srv := range f.Configuration().Servers {
		leader := leaderID != "" && srv.ID == leaderID
		if leaderID == "" && leaderAddr != "" {
			leader = srv.Address == leaderAddr
		}
		info.Servers = append(info.Servers, RaftServerInfo{
			ID: string(srv.ID), Address: string(srv.Address), Leader: leader,
			ProtocolVersion: proto, Voter: srv.Suffrage == raft.Voter,
		})
	}
	sort.Slice(info.Servers, func(i, j int) bool { return info.Servers[i].ID < info.Servers[j].ID })
	return info, nil
}

// configurationIndex is the index of the latest configuration entry in the
// log or, when compaction has removed it, of the latest snapshot, which
// carries the configuration. raft's ConfigurationFuture.Index() would say,
// but since raft made GetConfiguration non-blocking it is always 0.
func (s *Server) configurationIndex() uint64 {
	first, err1 := s.logs.FirstIndex()
	last, err2 := s.logs.LastIndex()
	if err1 == nil && err2 == nil && first > 0 {
		var l raft.Log
		for i := last; i >= first; i-- {
			// A restore leaves a hole in the log at the restored
			// snapshot's index: skip missing entries.
			if err := s.logs.GetLog(i, &l); err == nil && l.Type == raft.LogConfiguration {
				return i
			}
		}
	}
	idx, _ := strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64)
	return idx
}

// RemovePeer removes a server from the Raft configuration, by ID or, when
// id is empty, by address. A follower passes the request on to the leader;
// with no leader it returns ErrNoLeader. A server not in the configuration
// is an ErrPeerNotFound.
func (s *Server) RemovePeer(id, address string) error {
	if err := checkPeerArgs(id, address); err != nil {
		return err
	}
	if s.IsLeader() {
		return s.removePeerLocal(id, address)
	}
	leader := s.Leader()
	if leader == "" {
		return ErrNoLeader
	}
	resp, err := s.pool.call(leader, &rpcRequest{Method: rpcMethodRemovePeer, PeerID: id, PeerAddress: address}, configChangeTimeout)
	if err != nil {
		return fmt.Errorf("passing the peer removal on to the leader: %w", err)
	}
	return remoteError(resp)
}

func checkPeerArgs(id, address string) error {
	switch {
	case id == "" && address == "":
		return errors.New("removing a raft peer needs its ID or its address")
	case id != "" && address != "":
		return errors.New("removing a raft peer takes its ID or its address, not both")
	}
	return nil
}

// removePeerLocal is RemovePeer on the leader.
func (s *Server) removePeerLocal(id, address string) error {
	if err := checkPeerArgs(id, address); err != nil {
		return err
	}
	if !s.IsLeader() {
		return s.notLeader()
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("reading raft configuration: %w", err)
	}
	var found raft.ServerID
	for _, srv := range f.Configuration().Servers {
		if (id != "" && string(srv.ID) == id) || (id == "" && string(srv.Address) == address) {
			found = srv.ID
			break
		}
	}
	if found == "" {
		if id != "" {
			return fmt.Errorf("id %q was %w", id, ErrPeerNotFound)
		}
		return fmt.Errorf("address %q was %w", address, ErrPeerNotFound)
	}
	// prevIndex 0: unconditional. Removing a server that a concurrent
	// change already removed is a no-op for raft.
	if err := s.raft.RemoveServer(found, 0, configChangeTimeout).Error(); err != nil {
		return s.leaderErr(fmt.Errorf("removing raft peer %s: %w", found, err))
	}
	return nil
}
