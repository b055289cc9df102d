package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/snapshot"
	"github.com/beacon-dns/beacon/state"
)

// consulFixture is a snapshot saved by Consul v1.22.3 (its README is
// beside it).
const consulFixture = "../snapshot/testdata/consul/consul-1.22.3.snap"

// inspect reads a Consul snapshot as `consul snapshot inspect` does, then
// says what a restore into beacon holds and skips.
func TestSnapshotInspectConsul(t *testing.T) {
	r := runCLI("snapshot", "inspect", consulFixture)
	if r.code != 0 {
		t.Fatalf("inspect: %v", r)
	}
	for _, want := range []string{
		" ID           2-29-1796586133646\n Size         13370\n Index        29\n Term         2\n Version      1\n\n",
		" Type                        Count      Size\n ----                        ----       ----\n Register                    13         8.2KB\n",
		" KVS                         5          507B\n",
		" Session                     1          196B\n",
		" PreparedQuery               1          318B\n",
		" Index                       27         809B\n",
		" Total                                  13.1KB\n",
		" nodes             4\n services          5\n checks            4\n sessions          1\n kvs               5\n",
		" prepared-queries  1\n",
		"Skipped (not restored):\n",
		" ConnectCA               1      Consul-internal: service mesh (Connect) state; beacon has no service mesh\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing blanks on %q", line)
		}
	}

	b, err := os.ReadFile(consulFixture)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir() + "/corrupt.snap"
	b[len(b)/3] ^= 0x10
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI("snapshot", "inspect", corrupt); r.code != 1 || r.stdout != "" ||
		!strings.Contains(r.stderr, "Error inspecting snapshot: invalid snapshot archive") {
		t.Errorf("corrupt: %v", r)
	}
}

// restore uploads the Consul snapshot as it is and prints what the agent
// answers it restored and skipped.
func TestSnapshotRestoreConsul(t *testing.T) {
	consul, err := os.ReadFile(consulFixture)
	if err != nil {
		t.Fatal(err)
	}
	report := snapshot.ConsulReport{ID: "2-29-1796586133646", Index: 29,
		Tables: []state.TableRows{{Table: "nodes", Rows: 4}, {Table: "services", Rows: 5}, {Table: "acl-tokens", Rows: 0}, {Table: "index", Rows: 5}},
		Skipped: []snapshot.SkippedRecords{{Type: "PreparedQuery", Count: 1, Reason: "prepared queries: this beacon has none yet"},
			{Type: "Autopilot", Count: 1, Reason: "Consul-internal: autopilot settings"}}}
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(report)
	})
	r := runCLI("snapshot", "restore", "-http-addr="+api.addr(), consulFixture)
	want := "Restored snapshot\n" +
		"Restored a Consul snapshot (index 29): nodes 4, services 5\n" +
		"Skipped (not restored):\n" +
		" Type           Count  Reason\n" +
		" PreparedQuery  1      prepared queries: this beacon has none yet\n" +
		" Autopilot      1      Consul-internal: autopilot settings\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("restore: %v\nwant:\n%s", r, want)
	}
	if got := api.recorded(); len(got) != 1 || !bytes.Equal(got[0].body, consul) {
		t.Errorf("the agent did not receive the Consul snapshot as it is")
	}
}
