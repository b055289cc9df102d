package discovery

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/corefile"
	"github.com/beacon-dns/beacon/state"
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// fakeAgent is an agent with an empty store.
type fakeAgent struct{ store *state.Store }

func (a *fakeAgent) Store() *state.Store { return a.store }
func (a *fakeAgent) Config() corefile.AgentConfig {
	return corefile.AgentConfig{Datacenter: "dc1", Node: "n1", Domain: "consul."}
}
func (a *fakeAgent) RemoteServiceInstances(context.Context, string, string, string) ([]state.ServiceNode, error) {
	return nil, errors.New("no other datacenter")
}
func (a *fakeAgent) RemoteNode(context.Context, string, string) (*state.Node, error) {
	return nil, errors.New("no other datacenter")
}
func (a *fakeAgent) Ready() bool                    { return true }
func (a *fakeAgent) Staleness() time.Duration       { return 0 }
func (a *fakeAgent) DNSAuthorizer() *acl.Authorizer { return nil }

// refusingAgents fails the test if the agent is asked for.
func refusingAgents(t *testing.T) Agents {
	return Agents{
		Acquire: func(*corefile.Config) (Agent, error) {
			t.Error("the agent was acquired for a block that does not parse")
			return nil, errors.New("no agent")
		},
		ShutdownFinal: func() error { return nil },
	}
}

// TestSetupErrors covers the inputs that fail before the agent is acquired.
func TestSetupErrors(t *testing.T) {
	tests := []struct {
		input string
		want  string // substring of the error
	}{
		{"discovery {\n    bogus 1\n}", `Testfile:2 - Error during parsing: discovery: property "bogus": unknown property`},
		{"discovery {\n    node_ttl\n}", `property "node_ttl": missing value`},
		{"discovery {\n    node_ttl forever\n}", `property "node_ttl"`},
		{"discovery {\n    a_record_limit -1\n}", `property "a_record_limit"`},
		{"discovery {\n    datacenter dc.1\n}", `property "datacenter"`},
		{"discovery {\n    only_passing yes\n}", `property "only_passing"`},
		{"discovery {\n    bootstrap_expect 3\n}", `property "bootstrap_expect"`},
		{"discovery\ndiscovery", "only one discovery block"},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			c := caddy.NewTestController("dns", tt.input)
			err := setup(c, refusingAgents(t))
			if err == nil {
				t.Fatal("setup succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "plugin/discovery: ") {
				t.Errorf("error %q does not name the plugin", err)
			}
		})
	}
}

// A valid block acquires the agent with its configuration and adds the
// handler to the server block (the agent's final shutdown is registered, not
// run: caddy's test controller does not show its callbacks); a refusal
// (a reload that changes what cannot change live) fails setup whole.
func TestSetupAttachesToTheAgent(t *testing.T) {
	var got *corefile.Config
	shutdowns := 0
	agents := Agents{
		Acquire: func(cfg *corefile.Config) (Agent, error) {
			got = cfg
			return &fakeAgent{store: state.NewStore()}, nil
		},
		ShutdownFinal: func() error { shutdowns++; return nil },
	}
	c := caddy.NewTestController("dns", "discovery {\n    node_ttl 7s\n}")
	if err := setup(c, agents); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if got == nil || got.DNS.NodeTTL != 7*time.Second {
		t.Fatalf("Acquire got %+v, want the parsed block", got)
	}
	if n := len(dnsserver.GetConfig(c).Plugin); n != 1 {
		t.Errorf("%d handlers added, want 1", n)
	}
	if shutdowns != 0 {
		t.Errorf("setup ran the agent's final shutdown")
	}

	refused := Agents{
		Acquire: func(*corefile.Config) (Agent, error) {
			return nil, errors.New("agent setting data_dir cannot change while the agent runs")
		},
		ShutdownFinal: func() error { return nil },
	}
	c = caddy.NewTestController("dns", "discovery")
	err := setup(c, refused)
	if err == nil || !strings.Contains(err.Error(), "plugin/discovery: agent setting data_dir cannot change") {
		t.Errorf("setup with a refused agent = %v", err)
	}
	if n := len(dnsserver.GetConfig(c).Plugin); n != 0 {
		t.Errorf("a refused setup added %d handlers", n)
	}
}
