package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// Corefile.example itself (its addresses made the test's): the agent it
// starts answers a registered instance with the plugin's TTL, and the
// moment the instance is deregistered no longer answers it: nothing caches
// in front of discovery.
func TestCorefileExample(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "Corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	a := StartAgent(t, Options{Node: "dev", Corefile: string(example)})
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web", Name: "web", Address: "10.9.0.1", Port: 80}); err != nil {
		t.Fatal(err)
	}
	r := a.Query(t, "web.service.consul.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.9.0.1" {
		t.Fatalf("web after its registration: %s %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if ttl := r.Answer[0].Header().Ttl; ttl != 0 {
		t.Errorf("web's TTL %d, want the plugin's 0: something caches in front of discovery", ttl)
	}
	start := time.Now()
	if err := a.Client.Agent().ServiceDeregister("web"); err != nil {
		t.Fatal(err)
	}
	if r := a.Query(t, "web.service.consul.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("web right after its deregistration (%v): %s %v, want NXDOMAIN at once", time.Since(start),
			dns.RcodeToString[r.Rcode], r.Answer)
	}
}
