package raftstore

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/state"
	"github.com/beacon-dns/beacon/state/statetest"
)

// A client agent's replica holds no ACL tables, from the first snapshot
// or from the stream, yet reaches every index; the client resolves tokens
// and reaches the ACL endpoints through a server.
func TestClientHoldsNoSecretsAndAsksTheServers(t *testing.T) {
	leaderStore := state.NewStore()
	addr := freeAddr(t)
	leader, _ := startServer(t, t.TempDir(), addr, leaderStore)
	policy := &acl.Policy{ID: acl.NewUUID(), Name: "web-reader", Rules: `service "web" { policy = "read" }`}
	mustApply(t, leader, state.ACLRequestType, &state.ACLRequest{Op: state.ACLPolicySet, Policy: policy})
	early := &acl.Token{AccessorID: acl.NewUUID(), SecretID: acl.NewUUID(), Policies: []acl.PolicyLink{{ID: policy.ID}}}
	mustApply(t, leader, state.ACLRequestType, &state.ACLRequest{Op: state.ACLTokenSet, Token: early})

	var gotToken string
	leader.SetAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotToken = r.Header.Get("X-Consul-Token")
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Consul-Index", "7")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(r.Method + " " + r.URL.RequestURI() + " " + string(body)))
	}))

	client := startClient(t, ClientConfig{Servers: func() []string { return []string{addr} }, Logger: testLogger(t)}, state.NewStore())
	waitFor(t, 10*time.Second, "the replica to sync", client.Replica().Synced)

	late := &acl.Token{AccessorID: acl.NewUUID(), SecretID: acl.NewUUID(), Policies: []acl.PolicyLink{{ID: policy.ID}}}
	mustApply(t, leader, state.ACLRequestType, &state.ACLRequest{Op: state.ACLTokenSet, Token: late})
	idx := mustApply(t, leader, state.RegisterRequestType, statetest.SvcReq("n1", "10.0.0.1", "web-1", "web", 80, nil))
	if err := client.Replica().WaitApplied(idx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if statetest.GetService(t, client.Replica().Store(), "n1", "web-1") == nil {
		t.Fatal("the catalog did not reach the replica")
	}
	for _, tr := range client.Replica().Store().TableRows() {
		if strings.HasPrefix(tr.Table, "acl") && tr.Rows != 0 {
			t.Errorf("the replica holds %d rows of %s", tr.Rows, tr.Table)
		}
	}
	if _, tok, _ := client.Replica().Store().ACLTokenWithPolicies(late.SecretID, time.Now()); tok != nil {
		t.Error("a token made after the snapshot reached the replica")
	}

	// Tokens resolve through the server, with their policies.
	for _, want := range []*acl.Token{early, late} {
		tok, policies, err := client.ResolveToken(want.SecretID)
		if err != nil || tok.AccessorID != want.AccessorID || len(policies) != 1 || policies[0].Name != "web-reader" {
			t.Errorf("resolving %s: %v, %v, %v", want.AccessorID, tok, policies, err)
		}
	}
	start := time.Now()
	if _, _, err := client.ResolveToken("no-such-secret"); !errors.Is(err, acl.ErrNotFound) {
		t.Errorf("resolving an unknown secret: %v, want ErrNotFound", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("an unknown secret took %v: the answer was retried", time.Since(start))
	}

	// A request passes through to the server's API and back.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPut, "/v1/acl/token?x=1", strings.NewReader(`{"a":1}`))
	req.Header.Set("X-Consul-Token", late.SecretID)
	client.ServerAPI().ServeHTTP(rec, req)
	if rec.Code != http.StatusTeapot || rec.Header().Get("X-Consul-Index") != "7" ||
		rec.Body.String() != `PUT /v1/acl/token?x=1 {"a":1}` || gotToken != late.SecretID {
		t.Errorf("forwarded request: %d %v %q (token %q)", rec.Code, rec.Header(), rec.Body.String(), gotToken)
	}

	// Nothing reaches the server's agent endpoints through here, and a
	// request without a token asks as the anonymous token, never with the
	// server's default one.
	gotToken = ""
	rec = httptest.NewRecorder()
	client.ServerAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/v1/agent/check/register", strings.NewReader(`{}`)))
	if rec.Code != http.StatusForbidden || gotToken != "" {
		t.Errorf("a forwarded agent endpoint: %d %q (the API saw token %q)", rec.Code, rec.Body.String(), gotToken)
	}
	rec = httptest.NewRecorder()
	client.ServerAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/kv/x", nil))
	if rec.Code != http.StatusTeapot || gotToken != acl.AnonymousTokenSecretID {
		t.Errorf("a forwarded request without a token: %d, the API saw token %q", rec.Code, gotToken)
	}
	// A request for another datacenter that crossed one already is not
	// sent on again.
	resp, err := leader.serveForwarded(&forwardedRequest{Method: "GET", URI: "/v1/kv/x?dc=dc9", Datacenter: "dc9", Hops: 1}, "", time.Second)
	if err != nil || resp.Status != http.StatusInternalServerError || !strings.Contains(string(resp.Body), "once") {
		t.Errorf("a second hop: %+v, %v", resp, err)
	}

	// With the server gone, both fail fast with an error of their own.
	_ = leader.Shutdown()
	if _, _, err := client.ResolveToken(late.SecretID); err == nil || errors.Is(err, acl.ErrNotFound) {
		t.Errorf("resolving with no server: %v, want an error other than not found", err)
	}
	rec = httptest.NewRecorder()
	client.ServerAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/acl/tokens", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("forwarding with no server: %d %s", rec.Code, rec.Body.String())
	}
}
