package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func newGossipKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func startEncryptedClient(t *testing.T, node, key string, server *Agent) *Agent {
	t.Helper()
	opts := Options{Node: node, Client: true, Join: []string{addr(server.Ports.SerfLAN)}}
	if key != "" {
		opts.Discovery = []string{"encrypt " + key}
	}
	return StartAgent(t, opts)
}

// lanKeys returns the LAN pool's key counts and primary key counts.
func lanKeys(t testing.TB, a *Agent) (map[string]int, map[string]int) {
	t.Helper()
	resp, err := a.Client.Operator().KeyringList(nil)
	if err != nil {
		t.Fatalf("keyring list on %s: %v", a.Opts.Node, err)
	}
	for _, r := range resp {
		if !r.WAN {
			return r.Keys, r.PrimaryKeys
		}
	}
	t.Fatalf("keyring list on %s has no LAN pool: %+v", a.Opts.Node, resp)
	return nil, nil
}

func TestGossipEncryptionKeyringAndForceLeave(t *testing.T) {
	t.Parallel()
	k1, k2 := newGossipKey(t), newGossipKey(t)
	server := StartAgent(t, Options{Node: "s1", Discovery: []string{"encrypt " + k1}})
	c1 := startEncryptedClient(t, "c1", k1, server)

	// An agent without the key cannot join: it never becomes a member.
	plain := &Agent{Opts: Options{Node: "plain", Datacenter: "dc1", Client: true, Join: []string{addr(server.Ports.SerfLAN)}}}
	plain.Dir = t.TempDir()
	plain.ConfPath, plain.LogPath = plain.Dir+"/Corefile", plain.Dir+"/agent.log"
	t.Cleanup(func() { plain.cleanup(t) })
	plain.setPorts(allocatePorts(t))
	plain.writeCorefile(t)
	if err := plain.launch(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		if !strings.Contains(plain.Log(), "join attempt failed") {
			return fmt.Errorf("the keyless agent has not failed a join yet")
		}
		return nil
	})
	if st := memberStatus(t, server, "plain"); st != 0 {
		t.Errorf("the keyless agent is a member with status %d", st)
	}

	// Rotation: install k2 everywhere, make it primary, remove k1.
	keys, primary := lanKeys(t, server)
	if keys[k1] != 2 || primary[k1] != 2 {
		t.Fatalf("keys before the rotation = %v, primary %v; want k1 on both members", keys, primary)
	}
	op := server.Client.Operator()
	if err := op.KeyringInstall(k2, nil); err != nil {
		t.Fatalf("install: %v", err)
	}
	if err := op.KeyringRemove(k1, nil); err == nil {
		t.Error("removing the primary key succeeded")
	}
	if err := op.KeyringUse(k2, nil); err != nil {
		t.Fatalf("use: %v", err)
	}
	if err := op.KeyringRemove(k1, nil); err != nil {
		t.Fatalf("remove: %v", err)
	}
	keys, primary = lanKeys(t, c1)
	if keys[k2] != 2 || primary[k2] != 2 || keys[k1] != 0 {
		t.Errorf("keys after the rotation = %v, primary %v; want only k2 on both", keys, primary)
	}
	// The server's WAN pool, encrypted with the same key, rotated with it.
	pools, err := op.KeyringList(nil)
	if err != nil || len(pools) != 2 || !pools[0].WAN || pools[0].Keys[k2] != 1 || pools[0].PrimaryKeys[k2] != 1 || pools[0].Keys[k1] != 0 {
		t.Errorf("the server's keyrings after the rotation: %+v, %v; want the WAN pool first, with k2 only", pools, err)
	}
	if err := op.KeyringInstall("not-a-key", nil); err == nil {
		t.Error("installing a malformed key succeeded")
	}

	// The keyring is kept in data_dir: after a restart the server still
	// speaks k2 (its Corefile still says k1), and an agent that has only
	// k2 joins.
	server.Restart(t)
	c2 := startEncryptedClient(t, "c2", k2, server)
	eventually(t, 20*time.Second, func() error {
		if st := memberStatus(t, server, "c2"); st != 1 {
			return fmt.Errorf("c2 has status %d on the server", st)
		}
		if st := memberStatus(t, server, "c1"); st != 1 {
			return fmt.Errorf("c1 has status %d on the server", st)
		}
		return nil
	})

	// Force-leave: a killed client is failed until forced out, then left
	// and gone from the catalog. Every member asked must see it failed
	// (force-leave refuses to evict a member some agent sees alive).
	c1.Kill(t)
	eventually(t, 20*time.Second, func() error {
		for _, a := range []*Agent{server, c2} {
			if st := memberStatus(t, a, "c1"); st != 4 {
				return fmt.Errorf("c1 has status %d on %s, want failed", st, a.Opts.Node)
			}
		}
		return nil
	})
	if err := server.Client.Agent().ForceLeave("c1"); err != nil {
		t.Fatalf("force-leave: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		if st := memberStatus(t, server, "c1"); st != 3 {
			return fmt.Errorf("c1 has status %d, want left", st)
		}
		nodes, _, err := server.Client.Catalog().Nodes(nil)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(nodes, func(n *api.Node) bool { return n.Node == "c1" }) {
			return fmt.Errorf("c1 is still in the catalog")
		}
		return nil
	})
	if err := server.Client.Agent().ForceLeave("nobody"); err == nil {
		t.Error("force-leave of an unknown node succeeded")
	}
}
