package adminapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/beacon-dns/beacon/snapshot"
	"github.com/beacon-dns/beacon/state"
)

// fakeOperator records what the handlers ask of it.
type fakeOperator struct {
	mu sync.Mutex

	conf    state.RaftConfigurationInfo
	confErr error

	removed   []string // "id=…" or "address=…"
	removeErr error

	archive   []byte
	saveIndex uint64
	saveErr   error // returned after writing half the archive

	restored   [][]byte
	restoreErr error
}

var _ Operator = (*fakeOperator)(nil)

func (o *fakeOperator) SaveSnapshot(w io.Writer) (uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.saveErr != nil {
		w.Write(o.archive[:len(o.archive)/2])
		return 0, o.saveErr
	}
	if _, err := w.Write(o.archive); err != nil {
		return 0, err
	}
	return o.saveIndex, nil
}

func (o *fakeOperator) RestoreSnapshot(r io.Reader) error {
	b, err := io.ReadAll(r)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		return fmt.Errorf("reading snapshot archive: %w", err)
	}
	o.restored = append(o.restored, b)
	return o.restoreErr
}

func (o *fakeOperator) RaftConfiguration() (state.RaftConfigurationInfo, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conf, o.confErr
}

func (o *fakeOperator) RemovePeer(id, address string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id != "" {
		o.removed = append(o.removed, "id="+id)
	} else {
		o.removed = append(o.removed, "address="+address)
	}
	return o.removeErr
}

func (o *fakeOperator) set(f func(o *fakeOperator)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(o)
}

type operatorAPI struct {
	t      *testing.T
	op     *fakeOperator
	srv    *Server
	ts     *httptest.Server
	client *api.Client
}

// newOperatorAPI serves only the operator routes, registered on a fresh mux
// as routes() will register them.
func newOperatorAPI(t *testing.T) *operatorAPI {
	t.Helper()
	op := &fakeOperator{}
	srv := New(newFakeAgent(t), hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	mux := http.NewServeMux()
	srv.operatorRoutes(mux, op)
	ts := httptest.NewServer(srv.withAuthorizer(mux))
	t.Cleanup(ts.Close)
	client, err := api.NewClient(&api.Config{Address: ts.URL, HttpClient: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return &operatorAPI{t: t, op: op, srv: srv, ts: ts, client: client}
}

func (oa *operatorAPI) do(method, path string, body io.Reader) response {
	oa.t.Helper()
	req, err := http.NewRequest(method, oa.ts.URL+path, body)
	if err != nil {
		oa.t.Fatal(err)
	}
	resp, err := oa.ts.Client().Do(req)
	if err != nil {
		oa.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		oa.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func wantStatus(t *testing.T, r response, code int, msg string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.String(), msg) {
		t.Errorf("got %d %q, want %d with a body containing %q", r.code, r.body, code, msg)
	}
}

func TestOperatorRaftConfiguration(t *testing.T) {
	oa := newOperatorAPI(t)
	oa.op.set(func(o *fakeOperator) {
		o.conf = state.RaftConfigurationInfo{Index: 42, Servers: []state.RaftServerInfo{
			{ID: testNodeID, Address: "127.0.0.1:8300", Leader: true, ProtocolVersion: "3", Voter: true},
			{ID: "id-2", Node: "named-by-the-agent", Address: "127.0.0.2:8300", ProtocolVersion: "3", Voter: true},
			{ID: "id-3", Address: "127.0.0.3:8300", ProtocolVersion: "3"},
		}}
	})

	// The official client reads it.
	conf, err := oa.client.Operator().RaftGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &api.RaftConfiguration{Index: 42, Servers: []*api.RaftServer{
		{ID: testNodeID, Node: testNode, Address: "127.0.0.1:8300", Leader: true, ProtocolVersion: "3", Voter: true},
		{ID: "id-2", Node: "named-by-the-agent", Address: "127.0.0.2:8300", ProtocolVersion: "3", Voter: true},
		{ID: "id-3", Node: "(unknown)", Address: "127.0.0.3:8300", ProtocolVersion: "3"},
	}}
	if !reflect.DeepEqual(conf, want) {
		g, _ := json.Marshal(conf)
		w, _ := json.Marshal(want)
		t.Errorf("configuration\n got %s\nwant %s", g, w)
	}

	// Exactly Consul's keys, no more.
	r := oa.do(http.MethodGet, "/v1/operator/raft/configuration", nil)
	mustOK(t, r, nil)
	var raw struct {
		Servers []map[string]any
		Index   uint64
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	var keys []string
	for k := range raw.Servers[0] {
		keys = append(keys, k)
	}
	if len(keys) != 7 {
		t.Errorf("server keys = %v, want ID, Node, Address, Leader, ProtocolVersion, Voter, LastIndex", keys)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	// No servers is an empty list, not null.
	oa.op.set(func(o *fakeOperator) { o.conf = state.RaftConfigurationInfo{} })
	r = oa.do(http.MethodGet, "/v1/operator/raft/configuration", nil)
	if r.code != http.StatusOK || !strings.Contains(r.String(), `"Servers":[]`) {
		t.Errorf("empty configuration: %d %s", r.code, r.body)
	}

	oa.op.set(func(o *fakeOperator) { o.confErr = fmt.Errorf("reading raft configuration: %w", state.ErrNoLeader) })
	wantStatus(t, oa.do(http.MethodGet, "/v1/operator/raft/configuration", nil), 500, "No cluster leader")
	wantStatus(t, oa.do(http.MethodGet, "/v1/operator/raft/configuration?dc=elsewhere", nil), 500, "No path to datacenter")
}

func TestOperatorRaftRemovePeer(t *testing.T) {
	oa := newOperatorAPI(t)
	if err := oa.client.Operator().RaftRemovePeerByID("id-2", nil); err != nil {
		t.Errorf("RaftRemovePeerByID: %v", err)
	}
	if err := oa.client.Operator().RaftRemovePeerByAddress("127.0.0.3:8300", nil); err != nil {
		t.Errorf("RaftRemovePeerByAddress: %v", err)
	}
	if want := []string{"id=id-2", "address=127.0.0.3:8300"}; !reflect.DeepEqual(oa.op.removed, want) {
		t.Errorf("removed %v, want %v", oa.op.removed, want)
	}

	// Bad input reaches nothing.
	for _, path := range []string{"", "?id=", "?address=", "?id=&address=", "?id=a&address=b", "?ID=a"} {
		r := oa.do(http.MethodDelete, "/v1/operator/raft/peer"+path, nil)
		if r.code != http.StatusBadRequest || !strings.Contains(r.String(), "?id") {
			t.Errorf("DELETE peer%s: %d %q, want 400 naming ?id", path, r.code, r.body)
		}
	}
	if len(oa.op.removed) != 2 {
		t.Errorf("bad requests reached the operator: %v", oa.op.removed)
	}

	oa.op.set(func(o *fakeOperator) { o.removeErr = state.ErrNotLeader })
	wantStatus(t, oa.do(http.MethodDelete, "/v1/operator/raft/peer?id=x", nil), 500, "Not the cluster leader")
	oa.op.set(func(o *fakeOperator) {
		o.removeErr = fmt.Errorf("id %q was %w", "x", state.ErrPeerNotFound)
	})
	wantStatus(t, oa.do(http.MethodDelete, "/v1/operator/raft/peer?id=x", nil), 500, `id "x" was not found in the Raft configuration`)
	oa.op.set(func(o *fakeOperator) { o.removeErr = errors.New("need at least one voter in configuration") })
	wantStatus(t, oa.do(http.MethodDelete, "/v1/operator/raft/peer?id=x", nil), 500, "need at least one voter")
	wantStatus(t, oa.do(http.MethodDelete, "/v1/operator/raft/peer?id=x&dc=elsewhere", nil), 500, "No path to datacenter")

	if r := oa.do(http.MethodGet, "/v1/operator/raft/peer?id=x", nil); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET peer: %d, want 405", r.code)
	}
}

func TestSnapshotSaveEndpoint(t *testing.T) {
	oa := newOperatorAPI(t)
	archive := bytes.Repeat([]byte("archive!"), 200_000) // over the 1 MiB body limit, not that it applies
	oa.op.set(func(o *fakeOperator) { o.archive, o.saveIndex = archive, 1234 })

	rc, qm, err := oa.client.Snapshot().Save(nil)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, archive) {
		t.Fatalf("Save body: %d bytes, %v; want the %d-byte archive", len(got), err, len(archive))
	}
	if qm.LastIndex != 1234 {
		t.Errorf("LastIndex %d, want 1234", qm.LastIndex)
	}

	r := oa.do(http.MethodGet, "/v1/snapshot", nil)
	mustOK(t, r, nil)
	if ct := r.header.Get("Content-Type"); ct != "application/x-gzip" {
		t.Errorf("Content-Type %q", ct)
	}
	if cl := r.header.Get("Content-Length"); cl != fmt.Sprint(len(archive)) {
		t.Errorf("Content-Length %q, want %d", cl, len(archive))
	}
	if r.header.Get("X-Consul-Index") != "1234" || r.header.Get("X-Consul-KnownLeader") != "true" {
		t.Errorf("headers %v", r.header)
	}

	// A failure half way is a 500, not half an archive with a 200.
	oa.op.set(func(o *fakeOperator) { o.saveErr = errors.New("disk full") })
	r = oa.do(http.MethodGet, "/v1/snapshot", nil)
	wantStatus(t, r, 500, "disk full")
	if bytes.Contains(r.body, []byte("archive!")) {
		t.Error("the error response carries part of the archive")
	}
	oa.op.set(func(o *fakeOperator) { o.saveErr = state.ErrNoLeader })
	wantStatus(t, oa.do(http.MethodGet, "/v1/snapshot", nil), 500, "No cluster leader")
	wantStatus(t, oa.do(http.MethodGet, "/v1/snapshot?dc=elsewhere", nil), 500, "No path to datacenter")
}

func TestSnapshotRestoreEndpoint(t *testing.T) {
	oa := newOperatorAPI(t)
	archive := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB: over MaxBodyBytes
	if err := oa.client.Snapshot().Restore(nil, bytes.NewReader(archive)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	// Chunked, no Content-Length.
	if r := oa.do(http.MethodPut, "/v1/snapshot", chunked{bytes.NewReader(archive)}); r.code != http.StatusOK {
		t.Errorf("chunked restore: %d %q", r.code, r.body)
	}
	if len(oa.op.restored) != 2 || !bytes.Equal(oa.op.restored[0], archive) || !bytes.Equal(oa.op.restored[1], archive) {
		t.Errorf("the operator did not receive the archive intact")
	}

	oa.op.set(func(o *fakeOperator) {
		o.restoreErr = fmt.Errorf("%w: checksum mismatch for state.bin", snapshot.ErrInvalid)
	})
	err := oa.client.Snapshot().Restore(nil, strings.NewReader("corrupt"))
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("Restore of a corrupt archive: %v, want a 400 naming the problem", err)
	}
	oa.op.set(func(o *fakeOperator) { o.restoreErr = state.ErrNotLeader })
	wantStatus(t, oa.do(http.MethodPut, "/v1/snapshot", strings.NewReader("x")), 500, "Not the cluster leader")
	oa.op.set(func(o *fakeOperator) { o.restoreErr = state.ErrNoLeader })
	wantStatus(t, oa.do(http.MethodPut, "/v1/snapshot", strings.NewReader("x")), 500, "No cluster leader")
	wantStatus(t, oa.do(http.MethodPut, "/v1/snapshot?dc=elsewhere", strings.NewReader("x")), 500, "No path to datacenter")

	if r := oa.do(http.MethodPost, "/v1/snapshot", strings.NewReader("x")); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/snapshot: %d, want 405", r.code)
	}
}

// A declared length over MaxSnapshotBytes is refused before any of the body
// is read.
func TestSnapshotRestoreDeclaredTooLarge(t *testing.T) {
	oa := newOperatorAPI(t)
	conn, err := net.Dial("tcp", oa.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "PUT /v1/snapshot HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", MaxSnapshotBytes+1)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "too large") {
		t.Errorf("got %d %q, want 413", resp.StatusCode, body)
	}
	if len(oa.op.restored) != 0 {
		t.Error("the operator was called")
	}
}

// A body over the limit without a declared length is cut off at the limit
// and answered with 413 (with a small limit: the real one is 1 GiB).
func TestSnapshotRestoreStreamTooLarge(t *testing.T) {
	oa := newOperatorAPI(t)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		oa.srv.snapshotRestore(w, r, oa.op, 1024)
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	for _, tc := range []struct {
		size int
		code int
	}{{1024, http.StatusOK}, {1025, http.StatusRequestEntityTooLarge}} {
		req, _ := http.NewRequest(http.MethodPut, ts.URL+"/v1/snapshot", chunked{bytes.NewReader(make([]byte, tc.size))})
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("chunked body of %d bytes: %d %q, want %d", tc.size, resp.StatusCode, body, tc.code)
		}
	}
}

func TestBodyLimitExemptsSnapshotRestore(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         int64
	}{
		{http.MethodPut, "/v1/snapshot", MaxSnapshotBytes},
		{http.MethodGet, "/v1/snapshot", MaxBodyBytes},
		{http.MethodPut, "/v1/snapshot/", MaxBodyBytes},
		{http.MethodPut, "/v1/snapshotx", MaxBodyBytes},
		{http.MethodPut, "/v1/catalog/register", MaxBodyBytes},
		{http.MethodDelete, "/v1/operator/raft/peer", MaxBodyBytes},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if got := bodyLimit(r); got != tc.want {
			t.Errorf("bodyLimit(%s %s) = %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
}
