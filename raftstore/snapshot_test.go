package raftstore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/beacon-dns/beacon/snapshot"
	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
	"github.com/hashicorp/raft"
)

func mustApply(t *testing.T, srv *Server, typ state.MessageType, msg any) uint64 {
	t.Helper()
	idx, err := srv.Apply(typ, msg, 5*time.Second)
	if err != nil {
		t.Fatalf("Apply %s: %v", typ, err)
	}
	return idx
}

func saveSnapshot(t *testing.T, srv *Server) ([]byte, uint64) {
	t.Helper()
	var buf bytes.Buffer
	idx, err := srv.SaveSnapshot(&buf)
	if err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	return buf.Bytes(), idx
}

// The files of an archive, as package snapshot names them.
const (
	archiveMeta  = "meta.json"
	archiveState = "state.bin"
	archiveSums  = "SHA256SUMS"
)

// archiveEntry is one file of a hand-built archive.
type archiveEntry struct {
	name string
	data []byte
	typ  byte // tar.TypeReg when zero
}

// buildArchive writes entries as a gzip'd tar, as snapshot.Write lays one out.
func buildArchive(t *testing.T, entries []archiveEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.data))
		if typ != tar.TypeReg {
			size = 0
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o600, Size: size, Typeflag: typ}); err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unpackArchive returns an archive's files by name, in order.
func unpackArchive(t *testing.T, archive []byte) []archiveEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []archiveEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, archiveEntry{name: hdr.Name, data: b})
	}
}

func sumsOf(entries ...archiveEntry) []byte {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256(e.data), e.name)
	}
	return []byte(b.String())
}

// signedArchive builds an archive of meta and state with correct checksums:
// what a careless or malicious writer could produce.
func signedArchive(t *testing.T, meta raft.SnapshotMeta, state []byte) []byte {
	t.Helper()
	mj, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	m := archiveEntry{name: archiveMeta, data: mj}
	s := archiveEntry{name: archiveState, data: state}
	return buildArchive(t, []archiveEntry{m, s, {name: archiveSums, data: sumsOf(m, s)}})
}

func TestSnapshotArchiveRoundTrip(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	store := state.NewStore()
	srv, stop := startServer(t, dir, addr, store)

	mustApply(t, srv, state.RegisterRequestType, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, []string{"v1"},
		&state.HealthCheck{CheckID: "web-1-http", Name: "http", ServiceID: "web-1", Status: state.HealthPassing}))
	mustApply(t, srv, state.RegisterRequestType, statetest.SvcReq("n2", "10.0.0.2", "db", "db", 5432, nil))
	last := mustApply(t, srv, state.RegisterRequestType, statetest.NodeReq("n3", "10.0.0.3"))
	want, wantIdx := statetest.Tables(t, store), statetest.Indexes(t, store)

	archive, idx := saveSnapshot(t, srv)
	if idx < last {
		t.Errorf("SaveSnapshot index %d, below the last write %d", idx, last)
	}

	info, err := snapshot.Inspect(bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("InspectSnapshot: %v", err)
	}
	if info.Index != idx || info.Term == 0 || info.Version != int(raft.SnapshotVersionMax) || info.Size <= 0 || info.ID == "" {
		t.Errorf("InspectSnapshot = %+v, want index %d and a term, version, size and ID", info, idx)
	}
	if wantRows := store.TableRows(); !reflect.DeepEqual(info.Tables, wantRows) {
		t.Errorf("InspectSnapshot tables = %v, want %v", info.Tables, wantRows)
	}
	// The archive is what the format says: the three files, in order.
	var names []string
	for _, e := range unpackArchive(t, archive) {
		names = append(names, e.name)
	}
	if !reflect.DeepEqual(names, []string{archiveMeta, archiveState, archiveSums}) {
		t.Errorf("archive holds %v", names)
	}

	// Change everything after the snapshot: add, update, remove.
	mustApply(t, srv, state.RegisterRequestType, statetest.NodeReq("n4", "10.0.0.4"))
	mustApply(t, srv, state.RegisterRequestType, statetest.SvcReq("n2", "10.0.0.2", "db", "db", 6543, []string{"moved"}))
	before := mustApply(t, srv, state.DeregisterRequestType, &state.DeregisterRequest{Node: "n1"})
	if reflect.DeepEqual(statetest.Tables(t, store), want) {
		t.Fatal("the writes after the snapshot changed nothing")
	}

	confBefore, err := srv.RaftConfiguration()
	if err != nil || confBefore.Index == 0 {
		t.Fatalf("RaftConfiguration = %+v, %v", confBefore, err)
	}
	abandon := store.AbandonCh()
	if err := srv.RestoreSnapshot(bytes.NewReader(archive)); err != nil {
		t.Fatalf("RestoreSnapshot: %v", err)
	}
	if got := statetest.Tables(t, store); !reflect.DeepEqual(got, want) {
		t.Errorf("state after restore differs from the saved state:\n got %v\nwant %v", got, want)
	}
	if got := statetest.Indexes(t, store); !reflect.DeepEqual(got, wantIdx) {
		t.Errorf("indexes after restore = %v, want %v", got, wantIdx)
	}
	select {
	case <-abandon:
	default:
		t.Error("the restore did not wake blocking queries (AbandonCh still open)")
	}
	// The membership is the cluster's, not the archive's, and so is its
	// index (the hole the restore leaves in the log is not a change).
	if conf, err := srv.RaftConfiguration(); err != nil || !reflect.DeepEqual(conf, confBefore) {
		t.Errorf("configuration after restore = %+v, %v; want %+v", conf, err, confBefore)
	}

	// The log goes on after the restore, above every index seen before it.
	after := mustApply(t, srv, state.RegisterRequestType, statetest.NodeReq("n5", "10.0.0.5"))
	if after <= before {
		t.Errorf("write after the restore got index %d, not above %d", after, before)
	}
	wantAfter := statetest.Tables(t, store)

	// The restored state is durable: a restart comes back to it.
	stop()
	store2 := state.NewStore()
	srv2, _ := startServer(t, dir, addr, store2)
	if err := srv2.Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := statetest.Tables(t, store2); !reflect.DeepEqual(got, wantAfter) {
		t.Errorf("state after restart differs:\n got %v\nwant %v", got, wantAfter)
	}
}

// A cluster that has applied no command yet still saves (an empty state),
// and restoring that empties a store.
func TestSnapshotOfFreshCluster(t *testing.T) {
	fresh, _ := startServer(t, t.TempDir(), freeAddr(t), state.NewStore())
	archive, idx := saveSnapshot(t, fresh)
	if idx == 0 {
		t.Error("SaveSnapshot returned index 0")
	}
	info, err := snapshot.Inspect(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range info.Tables {
		if tr.Rows != 0 {
			t.Errorf("fresh snapshot has %d rows in %s", tr.Rows, tr.Table)
		}
	}
	// Saving twice in a row (nothing new in between) works too.
	saveSnapshot(t, fresh)

	store := state.NewStore()
	srv, _ := startServer(t, t.TempDir(), freeAddr(t), store)
	mustApply(t, srv, state.RegisterRequestType, statetest.NodeReq("n1", "10.0.0.1"))
	if err := srv.RestoreSnapshot(bytes.NewReader(archive)); err != nil {
		t.Fatalf("RestoreSnapshot: %v", err)
	}
	if got := statetest.Tables(t, store); len(got) != 0 {
		t.Errorf("restoring an empty snapshot left %v", got)
	}
}

func TestRestoreSnapshotRejectsBadArchives(t *testing.T) {
	store := state.NewStore()
	srv, _ := startServer(t, t.TempDir(), freeAddr(t), store)
	mustApply(t, srv, state.RegisterRequestType, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil))
	good, _ := saveSnapshot(t, srv)
	mustApply(t, srv, state.RegisterRequestType, statetest.NodeReq("n2", "10.0.0.2"))

	files := unpackArchive(t, good)
	meta, state, sums := files[0], files[1], files[2]
	var goodMeta raft.SnapshotMeta
	if err := json.Unmarshal(meta.data, &goodMeta); err != nil {
		t.Fatal(err)
	}
	withMeta := func(change func(m *raft.SnapshotMeta)) []byte {
		m := goodMeta
		change(&m)
		return signedArchive(t, m, state.data)
	}
	flipped := append([]byte(nil), state.data...)
	flipped[len(flipped)/2] ^= 0x20
	badState := []byte(`{"Version":1}` + "\n" + `{"T":"nodes","R":{"Node":5}}` + "\n")
	badStateMeta := goodMeta
	badStateMeta.Size = int64(len(badState))
	notJSON := archiveEntry{name: archiveMeta, data: []byte("{not json")}

	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"empty", nil, "not a gzip stream"},
		{"garbage", []byte("this is not a snapshot"), "not a gzip stream"},
		{"gzip of garbage", func() []byte {
			var b bytes.Buffer
			gz := gzip.NewWriter(&b)
			gz.Write(bytes.Repeat([]byte("junk"), 300))
			gz.Close()
			return b.Bytes()
		}(), "reading tar"},
		{"truncated in half", good[:len(good)/2], "unexpected EOF"},
		{"truncated by one byte", good[:len(good)-1], "unexpected EOF"},
		{"corrupt compressed byte", func() []byte {
			b := append([]byte(nil), good...)
			b[len(b)/2] ^= 0xff
			return b
		}(), "invalid snapshot archive"},
		{"state changed, checksums not", buildArchive(t, []archiveEntry{meta, {name: archiveState, data: flipped}, sums}),
			"checksum mismatch for state.bin"},
		{"meta changed, checksums not", buildArchive(t, []archiveEntry{{name: archiveMeta, data: bytes.Replace(meta.data,
			[]byte(`"Term": `), []byte(`"Term": 9`), 1)}, state, sums}), "checksum mismatch for meta.json"},
		{"no checksums", buildArchive(t, []archiveEntry{meta, state}), "SHA256SUMS is missing"},
		{"no state", buildArchive(t, []archiveEntry{meta, {name: archiveSums, data: sumsOf(meta)}}), "state.bin is missing"},
		{"checksum of state missing", buildArchive(t, []archiveEntry{meta, state, {name: archiveSums, data: sumsOf(meta)}}),
			"no checksum for state.bin"},
		{"malformed checksums", buildArchive(t, []archiveEntry{meta, state, {name: archiveSums, data: []byte("xyz  meta.json\n")}}),
			"malformed checksum"},
		{"checksums of files not there", buildArchive(t, []archiveEntry{meta, state,
			{name: archiveSums, data: append(sumsOf(meta, state), sumsOf(archiveEntry{name: "extra"})...)}}), "does not hold"},
		{"unexpected file", buildArchive(t, []archiveEntry{meta, state, sums, {name: "extra", data: []byte("x")}}),
			`unexpected file "extra"`},
		{"file twice", buildArchive(t, []archiveEntry{meta, state, state, sums}), "state.bin appears twice"},
		{"not a regular file", buildArchive(t, []archiveEntry{{name: archiveMeta, typ: tar.TypeSymlink}, state, sums}),
			"not a regular file"},
		{"meta not JSON", buildArchive(t, []archiveEntry{notJSON, state, {name: archiveSums, data: sumsOf(notJSON, state)}}),
			"decoding meta.json"},
		{"state does not decode", signedArchive(t, badStateMeta, badState), "decoding snapshot nodes row"},
		{"unknown raft snapshot version", withMeta(func(m *raft.SnapshotMeta) { m.Version = 99 }), "snapshot version 99"},
		{"index zero", withMeta(func(m *raft.SnapshotMeta) { m.Index = 0 }), "index 0 is out of range"},
		{"index near overflow", withMeta(func(m *raft.SnapshotMeta) { m.Index = 1<<64 - 1 }), "out of range"},
		{"index below the state's writes", withMeta(func(m *raft.SnapshotMeta) { m.Index = 1 }), "after the snapshot's index 1"},
		{"size disagrees", withMeta(func(m *raft.SnapshotMeta) { m.Size++ }), "but meta.json says"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := statetest.Tables(t, store)
			lastIndex := srv.raft.LastIndex()
			err := srv.RestoreSnapshot(bytes.NewReader(tc.archive))
			if !errors.Is(err, snapshot.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RestoreSnapshot error = %v, want an snapshot.ErrInvalid containing %q", err, tc.want)
			}
			if after := statetest.Tables(t, store); !reflect.DeepEqual(after, before) {
				t.Errorf("a rejected restore changed the state: %v", after)
			}
			if got := srv.raft.LastIndex(); got != lastIndex {
				t.Errorf("a rejected restore reached raft: last index %d, was %d", got, lastIndex)
			}
			if _, err := snapshot.Inspect(bytes.NewReader(tc.archive)); !errors.Is(err, snapshot.ErrInvalid) {
				t.Errorf("InspectSnapshot error = %v, want snapshot.ErrInvalid", err)
			}
		})
	}

	// After all that, the good archive still restores.
	if err := srv.RestoreSnapshot(bytes.NewReader(good)); err != nil {
		t.Fatalf("RestoreSnapshot of the good archive: %v", err)
	}
	if n := statetest.GetNode(t, store, "n2"); n != nil {
		t.Error("node n2, written after the snapshot, survived the restore")
	}
	if n := statetest.GetNode(t, store, "n1"); n == nil {
		t.Error("node n1 is missing after the restore")
	}
}

// startFollower starts a server that does not bootstrap and adds it to
// leader's configuration as a non-voter (a voter would need a quorum of
// two, and the test wants a cluster that keeps a leader whatever the
// follower does).
func startFollower(t *testing.T, leader *Server, id string, store *state.Store) (srv *Server, addr string, confIndex uint64) {
	t.Helper()
	addr = freeAddr(t)
	srv, err := NewServer(ServerConfig{NodeID: id, DataDir: t.TempDir(), RPCAddr: addr, Logger: testLogger(t)}, store)
	if err != nil {
		t.Fatalf("NewServer %s: %v", id, err)
	}
	t.Cleanup(func() { srv.Shutdown() })
	f := leader.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second)
	if err := f.Error(); err != nil {
		t.Fatalf("AddNonvoter %s: %v", id, err)
	}
	waitFor(t, 10*time.Second, id+" to follow the leader", func() bool { return srv.Leader() == leader.Leader() })
	return srv, addr, f.Index()
}

func TestRaftConfigurationRemovePeerAndFollowers(t *testing.T) {
	leaderStore := state.NewStore()
	leaderAddr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), leaderAddr, leaderStore)
	followerStore := state.NewStore()
	follower, followerAddr, confIndex := startFollower(t, leader, "server-2", followerStore)

	want := state.RaftConfigurationInfo{Index: confIndex, Servers: []state.RaftServerInfo{
		{ID: "server-1", Address: leaderAddr, Leader: true, ProtocolVersion: "3", Voter: true},
		{ID: "server-2", Address: followerAddr, Leader: false, ProtocolVersion: "3", Voter: false},
	}}
	for name, srv := range map[string]*Server{"leader": leader, "follower": follower} {
		var got state.RaftConfigurationInfo
		waitFor(t, 10*time.Second, "the "+name+" to know both servers", func() bool {
			var err error
			got, err = srv.RaftConfiguration()
			if err != nil {
				t.Fatalf("RaftConfiguration on the %s: %v", name, err)
			}
			return len(got.Servers) == 2
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("RaftConfiguration on the %s = %+v, want %+v", name, got, want)
		}
	}

	// A follower passes restores and removals on to the leader, whose
	// answers come back typed; an upload that fails on the way restores
	// nothing.
	before := statetest.Tables(t, leaderStore)
	if err := follower.RestoreSnapshot(iotest.ErrReader(errors.New("read the body"))); err == nil || !strings.Contains(err.Error(), "read the body") {
		t.Errorf("RestoreSnapshot on a follower of a failing upload = %v, want the read error", err)
	}
	if err := follower.RestoreSnapshot(strings.NewReader("not an archive")); !errors.Is(err, snapshot.ErrInvalid) {
		t.Errorf("RestoreSnapshot on a follower of garbage = %v, want snapshot.ErrInvalid from the leader", err)
	}
	if !reflect.DeepEqual(statetest.Tables(t, leaderStore), before) {
		t.Error("a failed restore through the follower changed the leader's state")
	}
	if err := follower.RemovePeer("nope", ""); !errors.Is(err, state.ErrPeerNotFound) {
		t.Errorf("RemovePeer of an unknown peer on a follower = %v, want ErrPeerNotFound from the leader", err)
	}

	// A restore sent to the follower is done by the leader and reaches the
	// follower by InstallSnapshot (the restore leaves a hole in the log).
	mustApply(t, leader, state.RegisterRequestType, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil))
	archive, _ := saveSnapshot(t, leader)
	saved := statetest.Tables(t, leaderStore)
	mustApply(t, leader, state.RegisterRequestType, statetest.NodeReq("n2", "10.0.0.2"))
	waitFor(t, 10*time.Second, "the follower to apply n2", func() bool { return statetest.GetNode(t, followerStore, "n2") != nil })
	if err := follower.RestoreSnapshot(bytes.NewReader(archive)); err != nil {
		t.Fatalf("RestoreSnapshot through the follower: %v", err)
	}
	waitFor(t, 10*time.Second, "both servers to install the restored state", func() bool {
		return reflect.DeepEqual(statetest.Tables(t, followerStore), saved) && reflect.DeepEqual(statetest.Tables(t, leaderStore), saved)
	})
	// A follower can save a snapshot of its replica.
	if _, err := follower.SaveSnapshot(io.Discard); err != nil {
		t.Errorf("SaveSnapshot on a follower: %v", err)
	}

	// Removing.
	for _, tc := range []struct{ id, addr, want string }{
		{"", "", "ID or its address"},
		{"server-2", followerAddr, "not both"},
		{"nope", "", `id "nope" was not found`},
		{"", "127.0.0.1:1", `address "127.0.0.1:1" was not found`},
	} {
		err := leader.RemovePeer(tc.id, tc.addr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RemovePeer(%q, %q) = %v, want an error containing %q", tc.id, tc.addr, err, tc.want)
		}
		if strings.Contains(tc.want, "not found") && !errors.Is(err, state.ErrPeerNotFound) {
			t.Errorf("RemovePeer(%q, %q) = %v, want ErrPeerNotFound", tc.id, tc.addr, err)
		}
	}
	if err := leader.RemovePeer("", followerAddr); err != nil {
		t.Fatalf("RemovePeer by address: %v", err)
	}
	got, err := leader.RaftConfiguration()
	if err != nil || len(got.Servers) != 1 || got.Servers[0].ID != "server-1" || got.Index <= confIndex {
		t.Errorf("configuration after the removal = %+v, %v", got, err)
	}
	// The last voter cannot go.
	if err := leader.RemovePeer("server-1", ""); err == nil {
		t.Error("RemovePeer of the only voter succeeded")
	}
	if !leader.IsLeader() {
		t.Error("the leader lost leadership")
	}
}

// The archive package reads the snapshot versions of the raft library
// beacon is built with; it does not import raft, so the two are held
// together here.
func TestArchiveVersionsMatchRaft(t *testing.T) {
	if snapshot.MinVersion != int(raft.SnapshotVersionMin) || snapshot.MaxVersion != int(raft.SnapshotVersionMax) {
		t.Errorf("snapshot versions %d..%d, raft's %d..%d", snapshot.MinVersion, snapshot.MaxVersion,
			raft.SnapshotVersionMin, raft.SnapshotVersionMax)
	}
	m := &raft.SnapshotMeta{Version: 1, ID: "1-2-3", Index: 9, Term: 2, Peers: []byte("p"), ConfigurationIndex: 4, Size: 10,
		Configuration: raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Nonvoter, ID: "a", Address: "127.0.0.1:1"}}}}
	if back := metaForRaft(metaForArchive(m)); !reflect.DeepEqual(back, m) {
		t.Errorf("metadata round trip = %+v, want %+v", back, m)
	}
	a, _ := json.Marshal(m)
	b, _ := json.Marshal(metaForArchive(m))
	if !bytes.Equal(a, b) {
		t.Errorf("meta.json differs from raft's encoding:\n%s\n%s", b, a)
	}
}
