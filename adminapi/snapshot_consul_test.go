package adminapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/beacon-dns/beacon/snapshot"
)

// The Consul snapshot the snapshot package's tests describe.
const consulFixture = "../snapshot/testdata/consul/consul-1.22.3.snap"

// A Consul snapshot is turned into beacon's archive before the operator
// sees it; the answer and the log say what was restored and skipped.
func TestSnapshotRestoreConsul(t *testing.T) {
	consul, err := os.ReadFile(consulFixture)
	if err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	op := &fakeOperator{}
	srv := New(newFakeAgent(t), hclog.New(&hclog.LoggerOptions{Output: &log}))
	mux := http.NewServeMux()
	srv.operatorRoutes(mux, op)
	ts := httptest.NewServer(srv.withAuthorizer(mux))
	defer ts.Close()
	oa := &operatorAPI{t: t, op: op, srv: srv, ts: ts}

	r := oa.do(http.MethodPut, "/v1/snapshot", bytes.NewReader(consul))
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("restore: %d %q", r.code, r.body)
	}
	var rep snapshot.ConsulReport
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
	skipped := map[string]int{}
	for _, s := range rep.Skipped {
		skipped[s.Type] = s.Count
	}
	if rep.Index != 29 || skipped["PreparedQuery"] != 0 || skipped["ConnectCA"] != 1 || skipped["Autopilot"] != 1 {
		t.Errorf("answer = %+v", rep)
	}
	for _, want := range []string{"restored a Consul snapshot", "index=29", "nodes 4", "kvs 5",
		"prepared-queries 1", "ChunkingState 1 (Consul-internal"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}

	// What reached the operator is beacon's archive of the same state.
	if len(op.restored) != 1 {
		t.Fatalf("the operator restored %d archives", len(op.restored))
	}
	a, err := snapshot.Read(bytes.NewReader(op.restored[0]))
	if err != nil {
		t.Fatalf("the operator got an archive that does not read: %v", err)
	}
	defer a.Close()
	if a.Consul != nil || a.Meta.Index != 29 || a.Meta.Term != 2 {
		t.Errorf("the operator got %+v", a.Meta)
	}

	// Through the official client: 200, which is all it looks at.
	client, err := api.NewClient(&api.Config{Address: ts.URL, HttpClient: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Snapshot().Restore(nil, bytes.NewReader(consul)); err != nil {
		t.Errorf("Restore through the official client: %v", err)
	}

	// A corrupt Consul snapshot is refused before the operator is asked.
	bad := append([]byte(nil), consul...)
	bad[len(bad)/2] ^= 0xff
	wantStatus(t, oa.do(http.MethodPut, "/v1/snapshot", bytes.NewReader(bad)), http.StatusBadRequest, "invalid snapshot archive")
	if len(op.restored) != 2 {
		t.Errorf("the operator restored %d archives, want 2", len(op.restored))
	}

	// Over the limit while being read: 413, as a beacon archive.
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.snapshotRestore(w, r, op, int64(len(consul)-1))
	})
	lts := httptest.NewServer(limited)
	defer lts.Close()
	req, _ := http.NewRequest(http.MethodPut, lts.URL+"/v1/snapshot", chunked{bytes.NewReader(consul)})
	resp, err := lts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a Consul snapshot over the limit: %d %q", resp.StatusCode, body)
	}
}
