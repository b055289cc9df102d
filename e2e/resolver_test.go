package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// beacon as a host's resolver: an agent on 127.0.0.1:53 of its own
// network namespace, and glibc (getent) in a private mount namespace whose
// /etc/resolv.conf names it, resolves service, tag, node and RFC 2782
// names, follows truncation to TCP for a large service, applies a search
// list, and still resolves an outside name through the chained upstream (a
// fake upstream: CoreDNS's hosts plugin in another block of the same
// process).
func TestGlibcResolvesThroughBeaconOnPort53(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"unshare", "getent", "mount"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("the resolver test needs %s: %v", bin, err)
		}
	}
	lab := newNetLab(t, "host")
	h := lab.host("host")
	ip := h.IP
	corefile := fmt.Sprintf(`consul:53 dc1:53 {
    bind 127.0.0.1 %[1]s
    discovery {
        datacenter dc1
        node host
        data_dir DATADIR
        server
        bootstrap_expect 1
        bind %[1]s
        http %[1]s:%[2]d
        rpc %[1]s:%[3]d
        serf_lan %[1]s:%[4]d
        serf_wan %[1]s:%[5]d
    }
}
.:53 {
    bind 127.0.0.1 %[1]s
    forward . 127.0.0.1:5300
    loop
}
.:5300 {
    bind 127.0.0.1
    hosts {
        192.0.2.7 outside.example
    }
}
`, ip, nsHTTPPort, nsRPCPort, nsSerfLANPort, nsSerfWANPort)
	a := lab.nsAgent(h, Options{Corefile: corefile})
	a.setPorts(Ports{DNS: 53, HTTP: nsHTTPPort, RPC: nsRPCPort, SerfLAN: nsSerfLANPort, SerfWAN: nsSerfWANPort})
	a.Client = apiClient(a, a.transport, agentAPITimeout)
	a.writeCorefile(t)
	if err := a.launch(); err != nil {
		t.Fatal(err)
	}
	checkExecd(t, a)
	if err := a.waitReady(startTimeout); err != nil {
		t.Fatalf("agent on port 53 did not become ready: %v", err)
	}

	reg := func(node, addr, svc string, tags ...string) {
		t.Helper()
		if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: node, Address: addr,
			Service: &api.AgentService{ID: svc, Service: svc, Port: 80, Tags: tags}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	reg("web-node", "10.30.0.1", "web", "primary")
	const big = 40 // 40 A records are more than a 512-byte UDP answer holds
	for i := range big {
		reg(fmt.Sprintf("big-%d", i), fmt.Sprintf("10.31.0.%d", i+1), "big")
	}

	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\nsearch service.consul consul\noptions ndots:1 timeout:2 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	getent := func(db, name string) ([]string, error) {
		script := "mount --bind " + resolv + " /etc/resolv.conf && exec getent " + db + " " + name
		cmd := exec.Command("ip", "netns", "exec", h.NS, "unshare", "-m", "sh", "-c", script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("getent %s %s: %v: %s", db, name, err, out)
		}
		var addrs []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) > 0 && !slices.Contains(addrs, f[0]) {
				addrs = append(addrs, f[0])
			}
		}
		slices.Sort(addrs)
		return addrs, nil
	}
	for _, tc := range []struct{ db, name, want string }{
		{"hosts", "web.service.consul", "10.30.0.1"},
		{"hosts", "primary.web.service.consul", "10.30.0.1"},
		{"hosts", "_web._tcp.service.consul", "10.30.0.1"},
		{"hosts", "web-node.node.consul", "10.30.0.1"},
		{"ahosts", "web.service.dc1.consul", "10.30.0.1"},
		{"hosts", "web", "10.30.0.1"},           // the search list: web.service.consul
		{"hosts", "web-node.node", "10.30.0.1"}, // ... and consul
		{"hosts", "outside.example", "192.0.2.7"},
	} {
		got, err := getent(tc.db, tc.name)
		if err != nil || !slices.Equal(got, []string{tc.want}) {
			t.Errorf("getent %s %s: %v, %v; want %s", tc.db, tc.name, got, err, tc.want)
		}
	}
	if _, err := getent("hosts", "nothing.service.consul"); err == nil {
		t.Error("getent found a service that does not exist")
	}

	// The large service: UDP is truncated, glibc asks again over TCP and
	// gets every address.
	got, err := getent("ahosts", "big.service.consul")
	if err != nil || len(got) != big {
		t.Errorf("getent ahosts big.service.consul: %d addresses (%v), want %d", len(got), err, big)
	}
	r, err := a.Exchange(question("big.service.consul.", dns.TypeA), "udp")
	if err != nil || !r.Truncated {
		t.Errorf("UDP answer of the large service: truncated %v, %v; the test needs it truncated", r != nil && r.Truncated, err)
	}
}
