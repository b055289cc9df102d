package snapshot

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/beacon-dns/beacon/state"
)

// FuzzConsulState: any bytes as a Consul state.bin are an error or a store
// and a report; a store's own snapshot reads back into the same tables,
// its reads answer without panicking, and the report accounts for every
// byte read. Its seeds (testdata/fuzz/FuzzConsulState) include the state
// of the Consul fixture.
func FuzzConsulState(f *testing.F) {
	f.Add(tarMembers(f, readConsulFixture(f))[archiveState])
	f.Fuzz(func(t *testing.T, data []byte) {
		st, rep, err := readConsulState(bytes.NewReader(data))
		if err != nil {
			if st != nil || rep != nil {
				t.Fatal("an error with a result")
			}
			return
		}
		var sum int64
		for _, r := range rep.Records {
			if r.Count <= 0 || r.Size <= 0 {
				t.Fatalf("record stats %+v", r)
			}
			sum += r.Size
		}
		if len(rep.Records) > 0 && sum != int64(len(data)) {
			t.Fatalf("records add up to %d bytes of %d", sum, len(data))
		}
		for _, s := range rep.Skipped {
			if s.Count <= 0 || s.Reason == "" || s.Type == "" {
				t.Fatalf("skipped %+v", s)
			}
		}
		var buf bytes.Buffer
		if err := st.Snapshot().Write(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := state.ReadSnapshot(&buf)
		if err != nil {
			t.Fatalf("the state decoded from Consul's does not read back: %v", err)
		}
		if !reflect.DeepEqual(again.TableRows(), st.TableRows()) || !reflect.DeepEqual(rep.Tables, st.TableRows()) {
			t.Fatalf("tables %v, read back %v, reported %v", st.TableRows(), again.TableRows(), rep.Tables)
		}
		_, nodes, _ := st.Nodes(nil)
		for _, n := range nodes {
			st.NodeServices(nil, n.Node)
			st.NodeChecks(nil, n.Node)
			st.Sessions(nil, n.Node)
		}
		_, services, _ := st.Services(nil)
		for name := range services {
			st.HealthyInstances(nil, name, "", true)
		}
		st.KVList(nil, "")
		st.LANCoordinates()
	})
}
