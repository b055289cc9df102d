package e2e

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// TestSnapshotSaveRestoreIntoFreshCluster saves a snapshot through the
// official client on one agent and restores it into a fresh three-server
// cluster, through a follower: the catalog and the KV store are identical
// on every server and DNS answers from them.
func TestSnapshotSaveRestoreIntoFreshCluster(t *testing.T) {
	t.Parallel()
	src := StartAgent(t, Options{Node: "n1"})
	for i := 0; i < 5; i++ {
		if _, err := src.Client.Catalog().Register(&api.CatalogRegistration{
			Node: fmt.Sprintf("ext-%d", i), Address: fmt.Sprintf("10.2.0.%d", i+1),
			Service: &api.AgentService{ID: "db", Service: "db", Port: 5432, Tags: []string{"v1"}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		if _, err := src.Client.KV().Put(&api.KVPair{Key: fmt.Sprintf("cfg/%02d", i), Value: []byte{byte(i), 0, 255},
			Flags: uint64(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	wantKV, _, err := src.Client.KV().List("", nil)
	if err != nil || len(wantKV) != 20 {
		t.Fatalf("source KV = %d entries, %v", len(wantKV), err)
	}
	rc, _, err := src.Client.Snapshot().Save(nil)
	if err != nil {
		t.Fatalf("snapshot save: %v", err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(archive) == 0 {
		t.Fatalf("reading the snapshot: %d bytes, %v", len(archive), err)
	}
	want, _, err := src.Client.Catalog().Service("db", "", nil)
	if err != nil {
		t.Fatal(err)
	}

	cluster := StartCluster(t, 3)
	leader := leaderOf(t, cluster)
	var dst *Agent
	for _, a := range cluster {
		if a != leader {
			dst = a // a follower passes the restore on to the leader
			break
		}
	}
	if err := dst.Client.Snapshot().Restore(nil, bytes.NewReader(archive)); err != nil {
		t.Fatalf("snapshot restore through a follower: %v", err)
	}
	for _, a := range cluster {
		got, _, err := a.Client.Catalog().Service("db", "", &api.QueryOptions{RequireConsistent: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("restored catalog on %s differs:\n got %+v\nwant %+v", a.Opts.Node, got, want)
		}
		gotKV, _, err := a.Client.KV().List("", &api.QueryOptions{RequireConsistent: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotKV, wantKV) {
			t.Fatalf("restored KV on %s differs:\n got %+v\nwant %+v", a.Opts.Node, gotKV, wantKV)
		}
	}
	eventually(t, 5*time.Second, func() error {
		r := dst.Query(t, "v1.db.service.consul.", dns.TypeA)
		if len(addrsOf(r.Answer)) != 5 {
			return fmt.Errorf("restored agent answers %s %v", rcode(r), addrsOf(r.Answer))
		}
		return nil
	})

	// A corrupt archive is refused and changes nothing.
	bad := append([]byte(nil), archive...)
	bad[len(bad)/2] ^= 0xff
	if err := dst.Client.Snapshot().Restore(nil, bytes.NewReader(bad)); err == nil {
		t.Fatal("restoring a corrupt archive succeeded")
	}
	again, _, err := dst.Client.Catalog().Service("db", "", nil)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("after a refused restore the catalog is %+v, %v", again, err)
	}
}
