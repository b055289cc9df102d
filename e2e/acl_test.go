package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// ACLs with the default policy deny, end to end: bootstrap through the
// initial_management token, what the anonymous token (and so DNS, without
// a default token) can no longer see, tokens scoped to a service and to a
// key prefix, the official client's ACL API, and tokens that survive a
// restart and a snapshot restore.
func TestACLsDenyByDefault(t *testing.T) {
	t.Parallel()
	const root = "8f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	a := StartAgent(t, Options{Node: "n1", Token: root, Discovery: []string{
		"acl deny",
		"acl_token initial_management " + root,
	}})
	admin := a.Client.ACL()

	// The initial management token was made by the leader; a bootstrap
	// is refused since.
	self, _, err := admin.TokenReadSelf(nil)
	if err != nil || len(self.Policies) != 1 || self.Policies[0].Name != "global-management" {
		t.Fatalf("token/self of the initial management token: %+v, %v", self, err)
	}
	if _, _, err := admin.Bootstrap(); err == nil || !strings.Contains(err.Error(), "ACL bootstrap no longer allowed") {
		t.Errorf("bootstrap after initial_management: %v", err)
	}

	// The CLI: a policy and a token made with `beacon acl`, the token's
	// secret read back with the management token.
	cli := func(args ...string) string { // acl GROUP VERB flags...
		t.Helper()
		cmd := exec.Command(beaconBin, append(args[:3:3], append([]string{"-http-addr=" + a.HTTPAddr, "-token=" + root}, args[3:]...)...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("beacon %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli("acl", "policy", "create", "-name=ops", `-rules=operator = "read"`); !strings.Contains(out, "Name:         ops") {
		t.Errorf("beacon acl policy create:\n%s", out)
	}
	out := cli("acl", "token", "create", "-description=ops token", "-policy-name=ops")
	if !strings.Contains(out, "SecretID:") || !strings.Contains(out, " - ops") {
		t.Errorf("beacon acl token create:\n%s", out)
	}
	if out := cli("acl", "token", "read", "-self"); !strings.Contains(out, "global-management") {
		t.Errorf("beacon acl token read -self:\n%s", out)
	}

	// Data to protect.
	mustReg := func(name, addr string) {
		t.Helper()
		if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "node-" + name, Address: addr,
			Service: &api.AgentService{ID: name, Service: name, Port: 80}}, nil); err != nil {
			t.Fatalf("registering %s with the management token: %v", name, err)
		}
	}
	mustReg("web", "10.1.0.1")
	mustReg("db", "10.1.0.2")
	for _, k := range []string{"app/config", "app/flags", "secret/password"} {
		if _, err := a.Client.KV().Put(&api.KVPair{Key: k, Value: []byte("v")}, nil); err != nil {
			t.Fatal(err)
		}
	}

	// The anonymous token sees nothing: not KV, not services, over HTTP
	// and over DNS.
	anon := a.clientWithToken(t, "")
	if _, _, err := anon.KV().Get("app/config", nil); !isForbidden(err) {
		t.Errorf("anonymous KV get: %v, want 403", err)
	}
	if svcs, meta, err := anon.Catalog().Services(nil); err != nil || len(svcs) != 0 || !meta.ResultsFilteredByACLs {
		t.Errorf("anonymous catalog services: %v (filtered %v), %v; want none, filtered", svcs, meta != nil && meta.ResultsFilteredByACLs, err)
	}
	if entries, _, err := anon.Health().Service("web", "", false, nil); err != nil || len(entries) != 0 {
		t.Errorf("anonymous health of web: %d entries, %v", len(entries), err)
	}
	if r := a.Query(t, "web.service.consul.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("DNS web without a default token: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if _, err := anon.KV().Put(&api.KVPair{Key: "app/x", Value: []byte("v")}, nil); !isForbidden(err) {
		t.Errorf("anonymous KV put: %v, want 403", err)
	}
	if _, _, err := anon.ACL().TokenList(nil); !isForbidden(err) {
		t.Errorf("anonymous token list: %v, want 403", err)
	}
	if _, _, err := a.clientWithToken(t, "not-a-token").KV().Get("app/config", nil); !isForbidden(err) ||
		!strings.Contains(err.Error(), "ACL not found") {
		t.Errorf("an unknown token: %v, want 403 ACL not found", err)
	}

	// A token that may write web registers web, and is refused db with
	// nothing registered.
	webTok := a.tokenWithRules(t, "web-writer", `service "web" { policy = "write" }
node_prefix "" { policy = "write" }`)
	web := a.clientWithToken(t, webTok)
	if err := web.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 81}); err != nil {
		t.Errorf("registering web with its token: %v", err)
	}
	if err := web.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "db-2", Name: "db", Port: 5432}); !isForbidden(err) {
		t.Errorf("registering db with web's token: %v, want 403", err)
	}
	if svcs, _, _ := a.Client.Catalog().Service("db", "", nil); len(svcs) != 1 {
		t.Errorf("db has %d instances after a refused registration, want 1", len(svcs))
	}

	// A token that reads app/ reads app/ keys and gets the filtered list
	// from a recursive read at the root.
	appTok := a.tokenWithRules(t, "app-reader", `key_prefix "app/" { policy = "read" }`)
	app := a.clientWithToken(t, appTok)
	if kv, _, err := app.KV().Get("app/config", nil); err != nil || kv == nil {
		t.Errorf("reading app/config with app-reader: %v, %v", kv, err)
	}
	pairs, meta, err := app.KV().List("", nil)
	var keys []string
	for _, p := range pairs {
		keys = append(keys, p.Key)
	}
	if err != nil || !slices.Equal(keys, []string{"app/config", "app/flags"}) || !meta.ResultsFilteredByACLs {
		t.Errorf("recursive read at the root with app-reader: %v (filtered %v), %v", keys, meta != nil && meta.ResultsFilteredByACLs, err)
	}
	// A transaction's get-tree is filtered the same way; its write is
	// refused whole.
	ok, tres, _, err := app.Txn().Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: ""}}}, nil)
	var treeKeys []string
	if tres != nil {
		for _, r := range tres.Results {
			treeKeys = append(treeKeys, r.KV.Key)
		}
	}
	if err != nil || !ok || !slices.Equal(treeKeys, []string{"app/config", "app/flags"}) {
		t.Errorf("txn get-tree at the root with app-reader: %v, %v, %v", treeKeys, ok, err)
	}
	if _, _, _, err := app.Txn().Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "app/config", Value: []byte("x")}}}, nil); !isForbidden(err) {
		t.Errorf("txn set with app-reader: %v, want 403", err)
	}
	if _, _, err := app.KV().Get("secret/password", nil); !isForbidden(err) {
		t.Errorf("reading secret/password with app-reader: %v, want 403", err)
	}
	if _, err := app.KV().Put(&api.KVPair{Key: "app/config", Value: []byte("w")}, nil); !isForbidden(err) {
		t.Errorf("writing app/config with app-reader: %v, want 403", err)
	}

	// DNS answers web once the default token may read it and its nodes
	// (Consul's DNS policy: the token is a property, the agent restarts
	// with it), and still not db. The tokens survive the restart.
	dnsTok := a.tokenWithRules(t, "dns-web", `service "web" { policy = "read" }
node_prefix "" { policy = "read" }`)
	a.Opts.Discovery = append(a.Opts.Discovery, "acl_token default "+dnsTok)
	a.stopProcess()
	a.writeCorefile(t)
	a.Restart(t)
	eventually(t, 20*time.Second, func() error {
		if r := a.Query(t, "web.service.consul.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return fmt.Errorf("DNS web with the default token: %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return nil
	})
	if r := a.Query(t, "db.service.consul.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("DNS db with a default token for web only: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if kv, _, err := app.KV().Get("app/config", nil); err != nil || kv == nil {
		t.Errorf("app-reader after the restart: %v, %v", kv, err)
	}

	// A snapshot restore brings back the tokens it holds.
	snap, _, err := a.Client.Snapshot().Save(nil)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(snap)
	snap.Close()
	if err != nil {
		t.Fatal(err)
	}
	tokens, _, err := admin.TokenList(nil)
	if err != nil {
		t.Fatal(err)
	}
	var appAccessor string
	for _, tok := range tokens {
		if tok.Description == "app-reader" {
			appAccessor = tok.AccessorID
		}
	}
	if _, err := admin.TokenDelete(appAccessor, nil); err != nil {
		t.Fatalf("deleting app-reader: %v", err)
	}
	if _, _, err := app.KV().Get("app/config", nil); !isForbidden(err) {
		t.Errorf("a deleted token: %v, want 403", err)
	}
	if err := a.Client.Snapshot().Restore(nil, bytes.NewReader(archive)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		if _, _, err := app.KV().Get("app/config", nil); err != nil {
			return fmt.Errorf("app-reader after the restore: %w", err)
		}
		return nil
	})
}

// clientWithToken is an API client of a that sends secret ("" for none).
func (a *Agent) clientWithToken(t *testing.T, secret string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr
	cfg.Token = secret
	cfg.Transport = a.transport
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenWithRules makes a policy of rules and a token linking it, through
// the official client with the agent's (management) token; it returns the
// token's secret.
func (a *Agent) tokenWithRules(t *testing.T, name, rules string) string {
	t.Helper()
	p, _, err := a.Client.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
	if err != nil {
		t.Fatalf("creating policy %s: %v", name, err)
	}
	tok, _, err := a.Client.ACL().TokenCreate(&api.ACLToken{Description: name,
		Policies: []*api.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
	if err != nil {
		t.Fatalf("creating token %s: %v", name, err)
	}
	if len(tok.Policies) != 1 || tok.Policies[0].Name != name || tok.SecretID == "" {
		t.Fatalf("token %s: %+v", name, tok)
	}
	return tok.SecretID
}

// isForbidden reports whether err is the official client's 403 (its Txn
// reports the body alone: "Failed request: Permission denied").
func isForbidden(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code == 403
	}
	return err != nil && (strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "Permission denied"))
}

// Tokens and policies are replicated: made through a follower, they keep
// working on every server after the leader is killed, and on the killed
// server once it is back.
func TestACLsSurviveLeaderKill(t *testing.T) {
	t.Parallel()
	const root = "3b9d2c7a-1e4f-4a6b-8c5d-7e9f0a1b2c3d"
	servers := StartCluster(t, 3, func(o *Options) {
		o.Token = root
		o.Discovery = append(o.Discovery, "acl deny", "acl_token initial_management "+root)
	})
	leader := leaderOf(t, servers)
	var follower *Agent
	for _, s := range servers {
		if s != leader {
			follower = s
			break
		}
	}
	secret := follower.tokenWithRules(t, "kv-reader", `key_prefix "" { policy = "read" }`)
	if _, err := follower.Client.KV().Put(&api.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}
	leader.Kill(t)
	var survivors []*Agent
	for _, s := range servers {
		if s != leader {
			survivors = append(survivors, s)
		}
	}
	check := func(a *Agent) error {
		c := a.clientWithToken(t, secret)
		if kv, _, err := c.KV().Get("k", &api.QueryOptions{RequireConsistent: true}); err != nil || kv == nil {
			return fmt.Errorf("%s: reading k with kv-reader: %v, %v", a.Opts.Node, kv, err)
		}
		if _, err := c.KV().Put(&api.KVPair{Key: "k", Value: []byte("w")}, nil); !isForbidden(err) {
			return fmt.Errorf("%s: writing k with kv-reader: %v, want 403", a.Opts.Node, err)
		}
		return nil
	}
	for _, s := range survivors {
		eventually(t, 20*time.Second, func() error { return check(s) })
	}
	leader.Restart(t)
	eventually(t, 20*time.Second, func() error { return check(leader) })
}

// A client agent holds no ACL tables: it resolves tokens through the
// servers (caching them), passes the ACL endpoints on to a server, takes
// a default token set through /v1/agent/token for DNS, and when the
// servers are gone goes on (acl_down_policy extend-cache) with the tokens
// it resolved before, denying those it never saw.
func TestACLsOnClientAgent(t *testing.T) {
	t.Parallel()
	const root = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
	server := StartAgent(t, Options{Node: "s1", Token: root, Discovery: []string{
		"acl deny", "acl_token initial_management " + root,
	}})
	client := StartAgent(t, Options{Node: "c1", Client: true, Join: []string{addr(server.Ports.SerfLAN)}, Token: root,
		Discovery: []string{"acl deny", "acl_down_policy extend-cache"}})

	// The ACL API through the client agent is the servers'.
	self, _, err := client.Client.ACL().TokenReadSelf(nil)
	if err != nil || len(self.Policies) != 1 || self.Policies[0].Name != "global-management" {
		t.Fatalf("token/self through the client agent: %+v, %v", self, err)
	}
	dnsReader := client.tokenWithRules(t, "dns", `service "web" { policy = "read" }
node_prefix "" { policy = "read" }`)
	kvReader := client.tokenWithRules(t, "kv", `key_prefix "app/" { policy = "read" }`)
	unused := client.tokenWithRules(t, "unused", `key_prefix "" { policy = "read" }`)
	if tokens, _, err := server.Client.ACL().TokenList(nil); err != nil || len(tokens) < 4 {
		t.Fatalf("tokens made through the client agent, listed on the server: %d, %v", len(tokens), err)
	}
	if _, _, err := client.clientWithToken(t, kvReader).ACL().TokenList(nil); !isForbidden(err) {
		t.Errorf("listing tokens through the client agent with kv's token: %v, want 403", err)
	}

	if _, err := client.Client.Catalog().Register(&api.CatalogRegistration{Node: "node-web", Address: "10.2.0.1",
		Service: &api.AgentService{ID: "web", Service: "web", Port: 80}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Client.KV().Put(&api.KVPair{Key: "app/x", Value: []byte("v")}, nil); err != nil {
		t.Fatal(err)
	}

	// Tokens resolve on the client agent; DNS follows the default token
	// set at run time.
	kv := client.clientWithToken(t, kvReader)
	eventually(t, 10*time.Second, func() error {
		if pair, _, err := kv.KV().Get("app/x", nil); err != nil || pair == nil {
			return fmt.Errorf("reading app/x with kv's token on the client agent: %v, %v", pair, err)
		}
		return nil
	})
	if _, _, err := kv.KV().Get("other", nil); !isForbidden(err) {
		t.Errorf("reading outside app/ with kv's token: %v, want 403", err)
	}
	if r := client.Query(t, "web.service.consul.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("DNS web on the client agent without a default token: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if _, err := client.clientWithToken(t, kvReader).Agent().UpdateDefaultACLToken(dnsReader, nil); !isForbidden(err) {
		t.Errorf("setting the default token with kv's token: %v, want 403", err)
	}
	out, err := exec.Command(beaconBin, "acl", "set-agent-token", "-http-addr="+client.HTTPAddr, "-token="+root,
		"default", dnsReader).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `ACL token "default" set successfully`) {
		t.Fatalf("beacon acl set-agent-token default: %v\n%s", err, out)
	}
	if r := client.Query(t, "web.service.consul.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("DNS web with the default token: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}

	// The servers go: what the client agent resolved goes on working on
	// what it holds (?stale reads, DNS), what it never saw is denied.
	server.Kill(t)
	stale := &api.QueryOptions{AllowStale: true}
	if pair, _, err := kv.KV().Get("app/x", stale); err != nil || pair == nil {
		t.Errorf("a stale read with a cached token, servers down: %v, %v", pair, err)
	}
	if _, _, err := client.clientWithToken(t, unused).KV().Get("app/x", stale); !isForbidden(err) {
		t.Errorf("a stale read with a token never resolved here, servers down: %v, want 403", err)
	}
	if r := client.Query(t, "web.service.consul.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("DNS web with the cached default token, servers down: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if _, _, err := client.Client.ACL().TokenReadSelf(nil); err == nil {
		t.Error("the ACL API answered through the client agent with no server")
	}
}
