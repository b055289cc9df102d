package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-msgpack/v2/codec"
)

// consulFixture is a snapshot saved by Consul v1.22.3 (see its README):
// what the tests hold the decoder to.
const consulFixture = "testdata/consul/consul-1.22.3.snap"

const leaderSession = "4813c600-db05-d21b-3ef8-3ff09a77c933"

func readConsulFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(consulFixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readConsulFixtureStore reads the fixture as a restore would and returns
// the store the restore installs.
func readConsulFixtureStore(t *testing.T) (*Archive, *state.Store) {
	t.Helper()
	a, err := Read(bytes.NewReader(readConsulFixture(t)))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	t.Cleanup(a.Close)
	if a.Consul == nil {
		t.Fatal("a Consul snapshot read without a Consul report")
	}
	// What the FSM restores: the state Read put in the archive's place.
	st, err := state.ReadSnapshot(a.State)
	if err != nil {
		t.Fatalf("the converted state does not read back: %v", err)
	}
	return a, st
}

// Every record the fixture's README lists, with its values.
func TestConsulSnapshotDecodesEveryRecord(t *testing.T) {
	a, st := readConsulFixtureStore(t)
	if a.Meta.Index != 29 || a.Meta.Term != 2 || a.Meta.ID != "2-29-1796586133646" || a.Meta.Version != 1 {
		t.Errorf("meta = %+v", a.Meta)
	}
	if a.Consul.Size != 13370 || a.Consul.Index != 29 || a.Consul.Term != 2 {
		t.Errorf("report's metadata = %+v", a.Consul)
	}

	// Nodes.
	wantNodes := map[string]string{"consul-dev": "127.0.0.1", "web-1": "10.0.1.1", "web-2": "10.0.1.2", "db-1": "10.0.2.1"}
	_, nodes, _ := st.Nodes(nil)
	if len(nodes) != len(wantNodes) {
		t.Errorf("%d nodes, want %d", len(nodes), len(wantNodes))
	}
	for _, n := range nodes {
		if wantNodes[n.Node] != n.Address || n.Datacenter != "dc1" {
			t.Errorf("node %+v", n)
		}
	}
	if _, n, _ := st.GetNode(nil, "web-1"); n == nil || !reflect.DeepEqual(n.Meta, map[string]string{"rack": "r1"}) ||
		n.CreateIndex != 18 || n.ModifyIndex != 18 {
		t.Errorf("web-1 = %+v", n)
	}
	if _, n, _ := st.GetNode(nil, "consul-dev"); n == nil || n.ID != "3a087e7b-0396-b040-56f3-9b31c296bffb" ||
		n.TaggedAddresses["lan"] != "127.0.0.1" {
		t.Errorf("consul-dev = %+v", n)
	}

	// Services, with their checks.
	type svc struct {
		node, service, address string
		port                   int
		tags                   []string
		meta                   map[string]string
	}
	wantSvcs := map[string]svc{
		"web-a":   {"web-1", "web", "10.0.1.11", 8080, []string{"v1", "primary"}, map[string]string{"team": "blue"}},
		"web-b":   {"web-2", "web", "", 8080, []string{"v2"}, map[string]string{}},
		"redis-1": {"db-1", "redis", "", 6379, []string{"primary"}, map[string]string{}},
		"api-1":   {"consul-dev", "api", "", 9000, []string{"edge"}, map[string]string{}},
	}
	seen := 0
	for _, name := range []string{"consul-dev", "web-1", "web-2", "db-1"} {
		_, _, services, _ := st.NodeServices(nil, name)
		for _, s := range services {
			seen++
			if s.ID == "consul" {
				if s.Service != "consul" || name != "consul-dev" {
					t.Errorf("consul service %+v on %s", s, name)
				}
				continue
			}
			w, ok := wantSvcs[s.ID]
			if !ok || w.node != name || w.service != s.Service || w.address != s.Address || w.port != s.Port ||
				!reflect.DeepEqual(w.tags, s.Tags) || !reflect.DeepEqual(w.meta, s.Meta) ||
				s.Weights != (state.Weights{Passing: 1, Warning: 1}) {
				t.Errorf("service %+v on %s, want %+v", s, name, w)
			}
		}
	}
	if seen != 5 {
		t.Errorf("%d services, want 5", seen)
	}
	type chk struct{ node, service, status, output, typ string }
	wantChecks := map[string]chk{
		"web-a-http": {"web-1", "web-a", state.HealthPassing, "HTTP GET: 200 OK", ""},
		"web-b-http": {"web-2", "web-b", state.HealthCritical, "connection refused", ""},
		"api-ttl":    {"consul-dev", "api-1", state.HealthPassing, "", "ttl"},
		"serfHealth": {"consul-dev", "", state.HealthPassing, "Agent alive and reachable", ""},
	}
	_, checks, _ := st.ChecksInState(nil, state.HealthAny)
	if len(checks) != len(wantChecks) {
		t.Errorf("%d checks, want %d", len(checks), len(wantChecks))
	}
	for _, c := range checks {
		w := wantChecks[c.CheckID]
		if w.node != c.Node || w.service != c.ServiceID || w.status != c.Status || w.output != c.Output || w.typ != c.Type {
			t.Errorf("check %+v, want %+v", c, w)
		}
	}
	if got := st.HealthyInstances(nil, "web", "", true); len(got) != 1 || got[0].Service.ID != "web-a" {
		t.Errorf("healthy web instances = %v", got)
	}

	// KV.
	wantKV := map[string]struct {
		value   []byte
		flags   uint64
		session string
	}{
		"config/app/db_url":    {[]byte("postgres://db.service.consul:5432/app"), 0, ""},
		"config/app/pool_size": {[]byte("16"), 42, ""},
		"config/web/":          {nil, 0, ""},
		"binary/blob":          {[]byte("\x00\x01\x02binary\xff"), 0, ""},
		"service/leader":       {[]byte("consul-dev"), 0, leaderSession},
	}
	_, kvs, _ := st.KVList(nil, "")
	if len(kvs) != len(wantKV) {
		t.Errorf("%d KV entries, want %d", len(kvs), len(wantKV))
	}
	for _, e := range kvs {
		w, ok := wantKV[e.Key]
		if !ok || !bytes.Equal(e.Value, w.value) || e.Flags != w.flags || e.Session != w.session {
			t.Errorf("KV %q = %q flags %d session %q", e.Key, e.Value, e.Flags, e.Session)
		}
	}
	if _, e, _ := st.KVGet(nil, "service/leader"); e == nil || e.LockIndex != 1 || e.CreateIndex != 28 || e.ModifyIndex != 28 {
		t.Errorf("service/leader = %+v", e)
	}

	// The session holding the lock.
	_, sess, _ := st.GetSession(nil, leaderSession)
	want := &state.Session{ID: leaderSession, Name: "leader-lock", Node: "consul-dev", LockDelay: 15 * time.Second,
		Behavior: state.SessionRelease, TTL: "86400s", NodeChecks: []string{"serfHealth"}, CreateIndex: 27, ModifyIndex: 27}
	if !reflect.DeepEqual(sess, want) {
		t.Errorf("session = %+v, want %+v", sess, want)
	}

	// The prepared query, as Consul's README of the fixture lists it.
	_, q, err := st.PreparedQueryGet(nil, "075ac0f1-702b-a679-efe7-a48be8dcfb82")
	if err != nil || q == nil || q.Name != "web-nearest" || q.Service.Service != "web" || !q.Service.OnlyPassing ||
		!reflect.DeepEqual(q.Service.Tags, []string{"!v2"}) || q.Service.Failover.NearestN != 2 || q.DNS.TTL != "10s" ||
		q.CreateIndex != 29 {
		t.Errorf("prepared query = %+v, %v", q, err)
	}

	// Indexes: Consul's, for the tables beacon has.
	if got := st.LastIndex(); got != 29 {
		t.Errorf("LastIndex = %d, want 29 (the prepared query's)", got)
	}
}

// The report: records by type as `consul snapshot inspect` counts them,
// and every skip with its reason.
func TestConsulSnapshotReport(t *testing.T) {
	a, _ := readConsulFixtureStore(t)
	counts := map[string]int{}
	var total int64
	for _, r := range a.Consul.Records {
		counts[r.Type] = r.Count
		total += r.Size
	}
	want := map[string]int{"Register": 13, "KVS": 5, "Session": 1, "PreparedQuery": 1, "ConnectCA": 1,
		"ConnectCAProviderState": 1, "ConnectCAConfig": 1, "Autopilot": 1, "SystemMetadata": 3,
		"FederationState": 1, "ChunkingState": 1, "Index": 27}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("record counts = %v, want %v", counts, want)
	}
	if total != a.Consul.Size {
		t.Errorf("record sizes add up to %d, state.bin is %d", total, a.Consul.Size)
	}
	for i := 1; i < len(a.Consul.Records); i++ {
		if a.Consul.Records[i].Size > a.Consul.Records[i-1].Size {
			t.Errorf("records not largest first: %v", a.Consul.Records)
		}
	}
	skipped := map[string]int{}
	for _, s := range a.Consul.Skipped {
		skipped[s.Type] += s.Count
		if s.Reason == "" {
			t.Errorf("%s skipped without a reason", s.Type)
		}
		if !strings.HasPrefix(s.Reason, "Consul-internal") {
			t.Errorf("%s skipped as %q", s.Type, s.Reason)
		}
	}
	wantSkipped := map[string]int{"ConnectCA": 1, "ConnectCAProviderState": 1, "ConnectCAConfig": 1,
		"Autopilot": 1, "SystemMetadata": 3, "FederationState": 1, "ChunkingState": 1, "Index": 21}
	if !reflect.DeepEqual(skipped, wantSkipped) {
		t.Errorf("skipped = %v, want %v", skipped, wantSkipped)
	}
	rows := map[string]int{}
	for _, r := range a.Consul.Tables {
		rows[r.Table] = r.Rows
	}
	if rows["nodes"] != 4 || rows["services"] != 5 || rows["checks"] != 4 || rows["kvs"] != 5 || rows["sessions"] != 1 ||
		rows["prepared-queries"] != 1 {
		t.Errorf("tables = %v", a.Consul.Tables)
	}
	if s := a.Consul.SkippedSummary(); strings.Contains(s, "PreparedQuery") || !strings.Contains(s, "ConnectCA 1") {
		t.Errorf("summary = %s", s)
	}

	info, err := Inspect(bytes.NewReader(readConsulFixture(t)))
	if err != nil {
		t.Fatal(err)
	}
	if info.Consul == nil || info.Size != 13370 || info.Index != 29 || !reflect.DeepEqual(info.Tables, a.Consul.Tables) {
		t.Errorf("Inspect = %+v", info)
	}
}

// PrepareRestore turns a Consul snapshot into a beacon archive that reads
// back as beacon's, with the same state; a beacon archive passes through
// untouched.
func TestConsulSnapshotPrepareRestore(t *testing.T) {
	rc, rep, err := PrepareRestore(bytes.NewReader(readConsulFixture(t)))
	if err != nil {
		t.Fatal(err)
	}
	converted, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep == nil || rep.Index != 29 || len(rep.Skipped) == 0 {
		t.Fatalf("report = %+v", rep)
	}
	b, err := Read(bytes.NewReader(converted))
	if err != nil {
		t.Fatalf("the converted archive does not read: %v", err)
	}
	defer b.Close()
	a, _ := readConsulFixtureStore(t)
	if b.Consul != nil || !reflect.DeepEqual(b.Meta, a.Meta) {
		t.Errorf("converted archive: meta %+v (Consul report %v), want %+v", b.Meta, b.Consul, a.Meta)
	}
	got, _ := io.ReadAll(b.State)
	a.State.Seek(0, io.SeekStart)
	want, _ := io.ReadAll(a.State)
	if !bytes.Equal(got, want) {
		t.Error("the converted archive holds another state")
	}

	st := state.NewStore()
	beacon, _, _ := archiveOf(t, st)
	rc, rep, err = PrepareRestore(bytes.NewReader(beacon))
	if err != nil || rep != nil {
		t.Fatalf("beacon archive: %v, %v", rep, err)
	}
	same, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(same, beacon) {
		t.Error("a beacon archive was changed on its way")
	}

	// Not an archive at all: passed on, for the leader to refuse.
	rc, rep, err = PrepareRestore(strings.NewReader("hello"))
	if err != nil || rep != nil {
		t.Fatalf("garbage: %v, %v", rep, err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "hello" {
		t.Errorf("garbage came through as %q", b)
	}

	// A failing upload is the reader's error, not a bad archive, whether
	// it fails while its format is told or later.
	boom := errors.New("connection reset")
	fixture := readConsulFixture(t)
	for _, cut := range []int{0, 100, len(fixture) / 2, len(fixture) - 1} {
		rc, _, err := PrepareRestore(io.MultiReader(bytes.NewReader(fixture[:cut]), iotest.ErrReader(boom)))
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
			t.Errorf("cut at %d: %v, want the reader's error", cut, err)
		}
	}
}

// consulArchive archives stateBin as Consul's snapshot at index.
func consulArchive(t testing.TB, index uint64, stateBin []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	meta := &Meta{Version: 1, ID: fmt.Sprintf("2-%d-1700000000000", index), Index: index, Term: 2, Size: int64(len(stateBin))}
	if err := Write(&out, meta, bytes.NewReader(stateBin)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// consulStream writes a Consul state.bin: a header, then records, as
// Consul's servers do.
type consulStream struct {
	buf bytes.Buffer
	enc *codec.Encoder
}

func newConsulStream(t testing.TB, lastIndex uint64) *consulStream {
	s := &consulStream{}
	s.enc = codec.NewEncoder(&s.buf, &codec.MsgpackHandle{})
	if err := s.enc.Encode(map[string]any{"LastIndex": lastIndex}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *consulStream) add(t testing.TB, typ byte, v any) *consulStream {
	t.Helper()
	s.buf.WriteByte(typ)
	if err := s.enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *consulStream) bytes() []byte { return s.buf.Bytes() }

type m = map[string]any

func regNode(node, addr string, idx uint64) m {
	return m{"Node": node, "Address": addr, "Datacenter": "dc1", "CreateIndex": idx, "ModifyIndex": idx}
}

func withKey(rec m, k string, v any) m {
	out := m{}
	for a, b := range rec {
		out[a] = b
	}
	out[k] = v
	return out
}

func coord(node string, vec ...float64) m {
	return m{"Node": node, "Coord": m{"Vec": vec, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-5}}
}

var vec8 = []float64{0.1, 0, 0, 0, 0, 0, 0, 0}

// What the fixture lacks: coordinates, tombstones, legacy session checks,
// records of types beacon does not know, peered and Enterprise records.
func TestConsulSnapshotSyntheticRecords(t *testing.T) {
	n1 := regNode("n1", "10.0.0.1", 3)
	s := newConsulStream(t, 40).
		add(t, consulRegister, n1).
		add(t, consulRegister, withKey(n1, "Check", m{"Node": "n1", "CheckID": "serfHealth", "Status": "passing", "CreateIndex": 3, "ModifyIndex": 3})).
		add(t, consulRegister, withKey(n1, "Service", m{"ID": "db", "Service": "db", "Port": 5432, "Weights": nil,
			"TaggedAddresses": m{"lan": m{"Address": "10.0.0.9", "Port": 5433}}, "CreateIndex": 4, "ModifyIndex": 4})).
		add(t, consulRegister, withKey(n1, "Check", m{"Node": "n1", "CheckID": "db-tcp", "ServiceID": "db", "Status": "warning",
			"Definition":  m{"TCP": "10.0.0.9:5432", "Interval": int64(10 * time.Second), "Timeout": int64(time.Second)},
			"CreateIndex": 5, "ModifyIndex": 6})).
		add(t, consulRegister, withKey(regNode("far", "10.9.0.1", 7), "PeerName", "other-cluster")).
		add(t, consulRegister, withKey(regNode("ent", "10.8.0.1", 7), "Partition", "team-a")).
		add(t, consulSession, m{"ID": "s-1", "Node": "n1", "Checks": []string{"serfHealth"}, "Behavior": "delete",
			"LockDelay": int64(90 * time.Second), "CreateIndex": 8, "ModifyIndex": 8}).
		add(t, consulKVS, m{"Key": "lock", "Value": []byte("x"), "Session": "s-1", "LockIndex": 3, "CreateIndex": 9, "ModifyIndex": 9}).
		add(t, consulTombstone, m{"Key": "gone", "CreateIndex": 10, "ModifyIndex": 33}).
		add(t, consulCoordinates, []any{coord("N1", vec8...), coord("ghost", vec8...)}).
		add(t, consulCoordinates, []any{coord("n1", 1, 2)}).
		add(t, 200, m{"Whatever": []any{1, "two", nil}}).
		add(t, consulACLToken, m{"AccessorID": "a", "SecretID": "b"}).
		add(t, consulIndex, m{"Key": "coordinates", "Value": 35}).
		add(t, consulIndex, m{"Key": "peerings", "Value": 30}).
		add(t, consulIndex, m{"Key": "acl-tokens", "Value": 12}) // beacon's name too, but no rows come over
	a, err := Read(bytes.NewReader(consulArchive(t, 40, s.bytes())))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	defer a.Close()
	st, err := state.ReadSnapshot(a.State)
	if err != nil {
		t.Fatal(err)
	}
	_, nodes, _ := st.Nodes(nil)
	if len(nodes) != 1 || nodes[0].Node != "n1" {
		t.Errorf("nodes = %v", nodes)
	}
	_, _, services, _ := st.NodeServices(nil, "n1")
	if len(services) != 1 || services[0].Weights != (state.Weights{Passing: 1, Warning: 1}) ||
		services[0].TaggedAddresses["lan"] != (state.ServiceAddress{Address: "10.0.0.9", Port: 5433}) {
		t.Errorf("services = %+v", services)
	}
	_, checks, _ := st.NodeChecks(nil, "n1")
	for _, c := range checks {
		if c.CheckID == "db-tcp" && (c.Definition.Interval != "10s" || c.Definition.Timeout != "1s" ||
			c.Definition.TCP != "10.0.0.9:5432" || c.ServiceName != "db" || c.Status != state.HealthWarning) {
			t.Errorf("db-tcp = %+v", c)
		}
	}
	_, sess, _ := st.GetSession(nil, "s-1")
	if sess == nil || !reflect.DeepEqual(sess.NodeChecks, []string{"serfHealth"}) || sess.LockDelay != state.MaxLockDelay ||
		sess.Behavior != state.SessionDelete {
		t.Errorf("session = %+v", sess)
	}
	_, coords, _ := st.Coordinates(nil)
	if len(coords) != 1 || coords[0].Node != "n1" || coords[0].Coord.Error != 1.5 {
		t.Errorf("coordinates = %+v", coords)
	}
	if idx, _, _ := st.KVGet(nil, "lock"); idx != 33 {
		t.Errorf("KV index = %d, want the tombstone's 33", idx)
	}
	if idx, _, _ := st.Coordinates(nil); idx != 35 {
		t.Errorf("coordinates index = %d, want Consul's 35", idx)
	}

	got := map[string]int{}
	for _, sk := range a.Consul.Skipped {
		got[sk.Type+": "+sk.Reason] += sk.Count
	}
	want := map[string]int{
		"Register: " + reasonPeered:                    1,
		"Register: " + reasonPartition:                 1,
		"Tombstone: " + reasonTombstone:                1,
		"CoordinateBatchUpdate: " + reasonCoordNoNode:  1,
		"CoordinateBatchUpdate: " + reasonCoordInvalid: 1,
		"unknown type 200: " + reasonUnknown:           1,
		"ACLToken: " + reasonACL:                       1,
		"Index: " + reasonIndex:                        2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("skipped = %v, want %v", got, want)
	}
}

// Records that decode but break the store's rules fail the restore, with
// the rule named; nothing is half-read.
func TestConsulSnapshotInconsistent(t *testing.T) {
	n1 := regNode("n1", "10.0.0.1", 3)
	for _, tc := range []struct {
		name string
		s    func(*consulStream)
		want string
	}{
		{"lock of a missing session", func(s *consulStream) {
			s.add(t, consulKVS, m{"Key": "k", "Session": "nope", "CreateIndex": 4, "ModifyIndex": 4})
		}, `KV entry "k" is locked by session "nope", which does not exist`},
		{"session on a missing check", func(s *consulStream) {
			s.add(t, consulSession, m{"ID": "s", "Node": "n1", "NodeChecks": []string{"serfHealth"}, "CreateIndex": 4, "ModifyIndex": 4})
		}, `session "s" is bound to check "serfHealth", which is not on node "n1"`},
		{"check of a missing service", func(s *consulStream) {
			s.add(t, consulRegister, withKey(n1, "Check", m{"CheckID": "c", "ServiceID": "ghost", "Status": "passing"}))
		}, `check "c" on node "n1" is of service "ghost", which is not on that node`},
		{"bad status", func(s *consulStream) {
			s.add(t, consulRegister, withKey(n1, "Check", m{"CheckID": "c", "Status": "maybe"}))
		}, `has status "maybe"`},
		{"writes after the snapshot", func(s *consulStream) {
			s.add(t, consulKVS, m{"Key": "k", "CreateIndex": 4, "ModifyIndex": 99})
		}, "the state holds writes up to index 99, after the snapshot's index 40"},
		{"value over the limit", func(s *consulStream) {
			s.add(t, consulKVS, m{"Key": "big", "Value": make([]byte, state.MaxKVValueBytes+1), "CreateIndex": 4, "ModifyIndex": 4})
		}, `KV entry "big" is 524289 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newConsulStream(t, 40).add(t, consulRegister, n1)
			tc.s(s)
			_, err := Read(bytes.NewReader(consulArchive(t, 40, s.bytes())))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

// Bad Consul snapshots are refused with an error that says why.
func TestConsulSnapshotBadInput(t *testing.T) {
	fixture := readConsulFixture(t)
	members := tarMembers(t, fixture)
	stateBin := members[archiveState]

	rearchive := func(meta, stateBin, sums []byte) []byte {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		for _, mem := range []struct {
			name string
			body []byte
		}{{archiveMeta, meta}, {archiveState, stateBin}, {archiveSums, sums}} {
			tw.WriteHeader(&tar.Header{Name: mem.name, Mode: 0o600, Size: int64(len(mem.body)), Typeflag: tar.TypeReg})
			tw.Write(mem.body)
		}
		tw.Close()
		var out bytes.Buffer
		gz := gzip.NewWriter(&out)
		gz.Write(raw.Bytes())
		gz.Close()
		return out.Bytes()
	}
	sumsOf := func(meta, stateBin []byte) []byte {
		return fmt.Appendf(nil, "%x  %s\n%x  %s\n", sha256.Sum256(meta), archiveMeta, sha256.Sum256(stateBin), archiveState)
	}
	// The state with a byte changed, checksums left as they were.
	tampered := append([]byte(nil), stateBin...)
	tampered[len(tampered)/2] ^= 0x01
	// A state cut short, and one whose first record is no record, each
	// with checksums and meta that agree with it.
	withState := func(stateBin []byte) []byte {
		meta := fmt.Appendf(nil, `{"Version":1,"ID":"2-29-1","Index":29,"Term":2,"Size":%d}`, len(stateBin))
		return rearchive(meta, stateBin, sumsOf(meta, stateBin))
	}
	header := newConsulStream(t, 29).bytes()

	for _, tc := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"bad checksum", rearchive(members[archiveMeta], tampered, members[archiveSums]),
			"checksum mismatch for state.bin: the archive is corrupt"},
		{"truncated archive", fixture[:len(fixture)*2/3], "invalid snapshot archive"},
		{"truncated state", withState(stateBin[:len(stateBin)-40]), "the state ends within the record"},
		{"garbage record", withState(append(append([]byte(nil), header...), consulRegister, 0x2a)),
			"record 1 (Register): decoding: "},
		{"unusable byte", withState(append(append([]byte(nil), header...), consulSystemMetadata, 0xc1)),
			"record 1 (SystemMetadata): decoding: "},
		{"garbage header", withState([]byte{0x81, 0xa9, 'L', 'a', 's', 't', 'I', 'n', 'd', 'e', 'x', 0xc1}),
			"reading Consul's snapshot header"},
		{"a string for a number", withState(newConsulStream(t, 29).add(t, consulKVS, m{"Key": "k", "Flags": "many"}).bytes()),
			"record 1 (KVS): decoding: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.archive))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read: %v, want ErrInvalid saying %q", err, tc.want)
			}
			_, _, perr := PrepareRestore(bytes.NewReader(tc.archive))
			if tc.name != "truncated archive" && (perr == nil || perr.Error() != err.Error()) {
				t.Errorf("PrepareRestore: %v, want Read's error", perr)
			}
		})
	}
}

// tarMembers returns the members of a gzip'd tar.
func tarMembers(t testing.TB, archive []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
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
		out[hdr.Name] = b
	}
}
