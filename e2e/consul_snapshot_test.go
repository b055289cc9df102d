package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// Moving from Consul: a snapshot saved by Consul v1.22.3 (its README, in
// the same folder, lists what it holds) restores into beacon with one
// command, on a single server and on a cluster with a client agent.
//
// The snapshot's own server node, consul-dev, has a serfHealth check and
// is no member of beacon's gossip: the leader reaps it at its next full
// reconcile (within a minute, as Consul's leader would), taking api-1 and
// the session on it along. The checks below run right after the restore,
// well before that.

const (
	consulSnapshot = "../snapshot/testdata/consul/consul-1.22.3.snap"
	consulSession  = "4813c600-db05-d21b-3ef8-3ff09a77c933"
)

// consulSkipped are the record types of the snapshot a restore leaves
// out: Consul's own machinery, and prepared queries.
var consulSkipped = []string{"Autopilot", "ChunkingState", "ConnectCA", "ConnectCAConfig", "ConnectCAProviderState",
	"FederationState", "Index", "SystemMetadata"}

// consulSnapshotPath is the snapshot's absolute path, for the CLI, which
// runs in a directory of its own.
func consulSnapshotPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(consulSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readConsulSnapshot(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(consulSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runBeaconCLI runs the beacon binary with args and returns its output and
// exit code.
func runBeaconCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, beaconBin, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("beacon %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), exit.ExitCode()
	}
	return string(out), 0
}

// checkConsulState holds what a reads to everything the snapshot holds.
func checkConsulState(t *testing.T, a *Agent, q *api.QueryOptions) error {
	t.Helper()
	nodes, _, err := a.Client.Catalog().Nodes(q)
	if err != nil {
		return err
	}
	wantNodes := map[string]string{"consul-dev": "127.0.0.1", "web-1": "10.0.1.1", "web-2": "10.0.1.2", "db-1": "10.0.2.1"}
	for _, n := range nodes {
		if want, ok := wantNodes[n.Node]; ok {
			if n.Address != want {
				return fmt.Errorf("node %s has address %s, want %s", n.Node, n.Address, want)
			}
			if n.Node == "web-1" && !reflect.DeepEqual(n.Meta, map[string]string{"rack": "r1"}) {
				return fmt.Errorf("web-1's meta is %v", n.Meta)
			}
			delete(wantNodes, n.Node)
		}
	}
	if len(wantNodes) > 0 {
		return fmt.Errorf("nodes missing: %v", wantNodes)
	}

	type instance struct {
		node, address string
		port          int
		tags          []string
		meta          map[string]string
	}
	for svc, want := range map[string]map[string]instance{
		"web": {"web-a": {"web-1", "10.0.1.11", 8080, []string{"v1", "primary"}, map[string]string{"team": "blue"}},
			"web-b": {"web-2", "", 8080, []string{"v2"}, map[string]string{}}},
		"redis": {"redis-1": {"db-1", "", 6379, []string{"primary"}, map[string]string{}}},
		"api":   {"api-1": {"consul-dev", "", 9000, []string{"edge"}, map[string]string{}}},
	} {
		got, _, err := a.Client.Catalog().Service(svc, "", q)
		if err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("service %s has %d instances, want %d", svc, len(got), len(want))
		}
		for _, s := range got {
			w, ok := want[s.ServiceID]
			if !ok || s.Node != w.node || s.ServiceAddress != w.address || s.ServicePort != w.port ||
				!reflect.DeepEqual(s.ServiceTags, w.tags) || !reflect.DeepEqual(s.ServiceMeta, w.meta) {
				return fmt.Errorf("instance %s of %s: node %s address %q port %d tags %v meta %v, want %+v",
					s.ServiceID, svc, s.Node, s.ServiceAddress, s.ServicePort, s.ServiceTags, s.ServiceMeta, w)
			}
		}
	}

	type check struct{ node, status, output, typ string }
	wantChecks := map[string]check{
		"web-a-http": {"web-1", api.HealthPassing, "HTTP GET: 200 OK", ""},
		"web-b-http": {"web-2", api.HealthCritical, "connection refused", ""},
		"api-ttl":    {"consul-dev", api.HealthPassing, "", "ttl"},
		"serfHealth": {"consul-dev", api.HealthPassing, "Agent alive and reachable", ""},
	}
	for _, node := range []string{"web-1", "web-2", "consul-dev"} {
		checks, _, err := a.Client.Health().Node(node, q)
		if err != nil {
			return err
		}
		for _, c := range checks {
			if w, ok := wantChecks[c.CheckID]; ok && w.node == c.Node {
				if c.Status != w.status || c.Output != w.output || c.Type != w.typ {
					return fmt.Errorf("check %s on %s: %s %q type %q, want %+v", c.CheckID, c.Node, c.Status, c.Output, c.Type, w)
				}
				delete(wantChecks, c.CheckID)
			}
		}
	}
	if len(wantChecks) > 0 {
		return fmt.Errorf("checks missing: %v", wantChecks)
	}

	kv := a.Client.KV()
	for key, want := range map[string]struct {
		value   []byte
		flags   uint64
		session string
	}{
		"config/app/db_url":    {[]byte("postgres://db.service.consul:5432/app"), 0, ""},
		"config/app/pool_size": {[]byte("16"), 42, ""},
		"config/web/":          {nil, 0, ""},
		"binary/blob":          {[]byte("\x00\x01\x02binary\xff"), 0, ""},
		"service/leader":       {[]byte("consul-dev"), 0, consulSession},
	} {
		p, _, err := kv.Get(key, q)
		if err != nil {
			return err
		}
		if p == nil {
			return fmt.Errorf("KV %s is missing", key)
		}
		if !bytes.Equal(p.Value, want.value) || p.Flags != want.flags || p.Session != want.session {
			return fmt.Errorf("KV %s = %q flags %d session %q, want %q %d %q", key, p.Value, p.Flags, p.Session,
				want.value, want.flags, want.session)
		}
		if key == "service/leader" && p.LockIndex != 1 {
			return fmt.Errorf("service/leader's lock index is %d, want 1", p.LockIndex)
		}
	}

	s, _, err := a.Client.Session().Info(consulSession, q)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("session %s is missing", consulSession)
	}
	if s.Name != "leader-lock" || s.TTL != "86400s" || s.LockDelay != 15*time.Second || s.Behavior != api.SessionBehaviorRelease ||
		s.Node != "consul-dev" || !slices.Contains(s.NodeChecks, "serfHealth") {
		return fmt.Errorf("session = %+v", s)
	}

	// The prepared query, kept and executable.
	defs, _, err := a.Client.PreparedQuery().Get("075ac0f1-702b-a679-efe7-a48be8dcfb82", q)
	if err != nil || len(defs) != 1 || defs[0].Name != "web-nearest" || !defs[0].Service.OnlyPassing ||
		defs[0].Service.Failover.NearestN != 2 || defs[0].DNS.TTL != "10s" {
		return fmt.Errorf("prepared query web-nearest: %+v, %v", defs, err)
	}
	return nil
}

// webAnswer waits until a answers web.service.consul with the passing
// instance only.
func webAnswer(t *testing.T, a *Agent) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		r := a.Query(t, "web.service.consul.", dns.TypeA)
		if got := addrsOf(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"10.0.1.11"}) {
			return fmt.Errorf("%s answers web.service.consul %s %v, want 10.0.1.11 alone", a.Opts.Node, rcode(r), got)
		}
		return nil
	})
}

// kvState is every KV entry, to tell a refused restore changed nothing.
func kvState(t *testing.T, a *Agent) api.KVPairs {
	t.Helper()
	pairs, _, err := a.Client.KV().List("", &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	return pairs
}

func corruptCopy(b []byte) []byte {
	bad := append([]byte(nil), b...)
	bad[len(bad)/2] ^= 0xff
	return bad
}

// The one command, on a single server: `beacon snapshot restore` of the
// Consul snapshot. Before it, `beacon snapshot inspect` lists its records
// and a corrupt copy is refused with nothing changed.
func TestConsulSnapshotRestoreSingleServer(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{Node: "n1"})

	out, code := runBeaconCLI(t, "snapshot", "inspect", consulSnapshotPath(t))
	if code != 0 {
		t.Fatalf("beacon snapshot inspect: exit %d\n%s", code, out)
	}
	for _, want := range []string{" ID           2-29-1796586133646\n", " Index        29\n", " Term         2\n",
		" Register                    13 ", " KVS                         5 ", " Session                     1 ",
		" PreparedQuery               1 ", " nodes             4\n", " kvs               5\n", " prepared-queries  1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("beacon snapshot inspect lacks %q:\n%s", want, out)
		}
	}

	dir := t.TempDir()
	corrupt := dir + "/corrupt.snap"
	if err := os.WriteFile(corrupt, corruptCopy(readConsulSnapshot(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runBeaconCLI(t, "snapshot", "restore", "-http-addr="+a.HTTPAddr, corrupt)
	if code != 1 || !strings.Contains(out, "invalid snapshot archive") {
		t.Errorf("restoring a corrupt Consul snapshot: exit %d\n%s", code, out)
	}
	if kv := kvState(t, a); len(kv) != 0 {
		t.Errorf("after a refused restore the KV store holds %d entries", len(kv))
	}
	if n, _, err := a.Client.Catalog().Node("web-1", nil); err != nil || n != nil {
		t.Errorf("after a refused restore: web-1 = %+v, %v", n, err)
	}

	logOff := len(a.Log())
	out, code = runBeaconCLI(t, "snapshot", "restore", "-http-addr="+a.HTTPAddr, consulSnapshotPath(t))
	if code != 0 || !strings.HasPrefix(out, "Restored snapshot\nRestored a Consul snapshot (index 29): nodes 4, services 5, checks 4, sessions 1, kvs 5, prepared-queries 1\n") {
		t.Fatalf("beacon snapshot restore: exit %d\n%s", code, out)
	}
	for _, typ := range consulSkipped {
		if !strings.Contains(out, "\n "+typ+" ") {
			t.Errorf("the restore's output does not list %s as skipped:\n%s", typ, out)
		}
	}
	if err := checkConsulState(t, a, nil); err != nil {
		t.Fatal(err)
	}
	webAnswer(t, a)
	log := a.LogSince(logOff)
	for _, want := range []string{"restored a Consul snapshot", "prepared-queries 1", "ConnectCA 1 (Consul-internal"} {
		if !strings.Contains(log, want) {
			t.Errorf("the agent's log lacks %q:\n%s", want, log)
		}
	}
}

// consulRestoreAnswer is the body of the answer to a Consul snapshot's
// restore (PUT /v1/snapshot), as README.md describes it.
type consulRestoreAnswer struct {
	ID     string
	Index  uint64
	Tables []struct {
		Table string
		Rows  int
	}
	Skipped []struct {
		Type   string
		Count  int
		Reason string
	}
}

// On a 3-server cluster with a client agent: the snapshot restored through
// a follower reaches every server and the client agent; the answer and the
// follower's log list what was skipped; a corrupt copy is refused with
// nothing changed.
func TestConsulSnapshotRestoreCluster(t *testing.T) {
	t.Parallel()
	cluster := StartCluster(t, 3)
	client := StartClient(t, "c1", cluster)
	leader := leaderOf(t, cluster)
	var follower *Agent
	for _, a := range cluster {
		if a != leader {
			follower = a
			break
		}
	}

	archive := readConsulSnapshot(t)
	logOff := len(follower.Log())
	r := follower.Do(t, http.MethodPut, "/v1/snapshot", archive, false)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("PUT /v1/snapshot of the Consul snapshot: %v", r)
	}
	var answer consulRestoreAnswer
	if err := json.Unmarshal([]byte(r.Body), &answer); err != nil {
		t.Fatalf("the answer %q: %v", r.Body, err)
	}
	var skipped []string
	for _, s := range answer.Skipped {
		if s.Count <= 0 || s.Reason == "" {
			t.Errorf("skipped %+v", s)
		}
		if !slices.Contains(skipped, s.Type) {
			skipped = append(skipped, s.Type)
		}
	}
	slices.Sort(skipped)
	if answer.Index != 29 || !slices.Equal(skipped, consulSkipped) {
		t.Errorf("answer: index %d, skipped %v, want %v", answer.Index, skipped, consulSkipped)
	}
	log := follower.LogSince(logOff)
	for _, typ := range consulSkipped {
		if !strings.Contains(log, typ+" ") {
			t.Errorf("the follower's log does not list %s as skipped:\n%s", typ, log)
		}
	}

	// Every server, read through the leader, and every replica as it
	// stands, the client agent's included.
	for _, a := range cluster {
		if err := checkConsulState(t, a, nil); err != nil {
			t.Fatalf("on %s: %v", a.Opts.Node, err)
		}
	}
	for _, a := range []*Agent{cluster[0], cluster[1], cluster[2], client} {
		eventually(t, 10*time.Second, func() error { return checkConsulState(t, a, &api.QueryOptions{AllowStale: true}) })
		webAnswer(t, a)
	}

	// beacon's own servers and client agent, which the snapshot does not
	// hold, are back in the catalog at once: the servers with their
	// consul service, as gossip knows them.
	eventually(t, 10*time.Second, func() error {
		instances, _, err := leader.Client.Catalog().Service("consul", "", nil)
		if err != nil {
			return err
		}
		var servers []string
		for _, s := range instances {
			servers = append(servers, s.Node)
		}
		slices.Sort(servers)
		if want := []string{"consul-dev", "s1", "s2", "s3"}; !slices.Equal(servers, want) {
			return fmt.Errorf("consul service on %v, want %v", servers, want)
		}
		if n, _, err := leader.Client.Catalog().Node("c1", nil); err != nil || n == nil {
			return fmt.Errorf("client agent c1 not in the catalog: %v", err)
		}
		return nil
	})

	// A corrupt copy, through the official client on the leader: refused,
	// nothing changed.
	before := kvState(t, leader)
	if err := leader.Client.Snapshot().Restore(nil, bytes.NewReader(corruptCopy(archive))); err == nil ||
		!strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "invalid snapshot archive") {
		t.Errorf("restoring a corrupt Consul snapshot: %v, want a 400", err)
	}
	if after := kvState(t, leader); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused restore changed the KV store:\n got %v\nwant %v", after, before)
	}
	if err := checkConsulState(t, follower, nil); err != nil {
		t.Errorf("after a refused restore: %v", err)
	}
}

// With ACLs on: Consul's ACL records are skipped, so the restored state
// has no tokens; the leader makes the initial_management token again, as
// Consul's does after a restore, and the operator is not locked out.
func TestConsulSnapshotRestoreWithACLs(t *testing.T) {
	t.Parallel()
	const root = "5b0f7a3c-9d2e-4c1b-8a6f-3e2d1c0b9a87"
	a := StartAgent(t, Options{Node: "n1", Token: root, Discovery: []string{"acl deny", "acl_token initial_management " + root}})
	if err := a.Client.Snapshot().Restore(nil, bytes.NewReader(readConsulSnapshot(t))); err != nil {
		t.Fatalf("restore with the management token: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		p, _, err := a.Client.KV().Get("config/app/pool_size", nil)
		if err != nil {
			return err
		}
		if p == nil || p.Flags != 42 {
			return fmt.Errorf("config/app/pool_size = %+v", p)
		}
		return nil
	})
	self, _, err := a.Client.ACL().TokenReadSelf(nil)
	if err != nil || len(self.Policies) != 1 || self.Policies[0].Name != "global-management" {
		t.Errorf("the initial management token after the restore: %+v, %v", self, err)
	}
}
