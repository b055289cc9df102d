package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// answers reports whether a's DNS answers name with exactly want (none:
// NXDOMAIN).
func answersNow(t testing.TB, a *Agent, name string) []string {
	t.Helper()
	r, err := a.Exchange(question(name, dns.TypeA), "udp")
	if err != nil {
		t.Fatalf("DNS %s on %s: %v", name, a.Opts.Node, err)
	}
	return addrsOf(r.Answer)
}

// waitGone waits until a's DNS no longer answers name and returns how long
// that took from since.
func waitGone(t testing.TB, a *Agent, name string, since time.Time) time.Duration {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		if got := answersNow(t, a, name); len(got) != 0 {
			return fmt.Errorf("%s still answers %s with %v", a.Opts.Node, name, got)
		}
		return nil
	})
	return time.Since(since)
}

func TestChecksTakeInstancesOutOfDNS(t *testing.T) {
	t.Parallel()
	server := StartAgent(t, Options{Node: "s1"})
	c1 := StartClient(t, "c1", []*Agent{server})
	c2 := StartClient(t, "c2", []*Agent{server})

	// TCP: a port the test holds open, then closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	// HTTP: a server whose answer the test chooses.
	var code atomic.Int32
	code.Store(http.StatusOK)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
		fmt.Fprintf(w, "status %d", code.Load())
	}))
	defer web.Close()

	reg := func(a *Agent, r *api.AgentServiceRegistration) {
		t.Helper()
		if err := a.Client.Agent().ServiceRegister(r); err != nil {
			t.Fatalf("register %s on %s: %v", r.ID, a.Opts.Node, err)
		}
	}
	reg(c1, &api.AgentServiceRegistration{ID: "db", Name: "db", Address: "10.0.1.1", Port: 5432,
		Check: &api.AgentServiceCheck{TCP: ln.Addr().String(), Interval: "1s", Timeout: "1s"}})
	reg(c1, &api.AgentServiceRegistration{ID: "web", Name: "web", Address: "10.0.1.2", Port: 80,
		Check: &api.AgentServiceCheck{HTTP: web.URL, Interval: "1s", Timeout: "1s"}})
	reg(c2, &api.AgentServiceRegistration{ID: "worker", Name: "worker", Address: "10.0.2.1", Port: 9000,
		Check: &api.AgentServiceCheck{CheckID: "worker-ttl", TTL: "3s"}})

	// The TCP and HTTP checks pass on their first run; the TTL check starts
	// critical until it is refreshed.
	waitForAddrs(t, server, "db.service.consul.", dns.TypeA, "10.0.1.1")
	waitForAddrs(t, server, "web.service.consul.", dns.TypeA, "10.0.1.2")
	if got := answersNow(t, server, "worker.service.consul."); len(got) != 0 {
		t.Errorf("worker answered %v before its TTL check was ever refreshed", got)
	}
	if err := c2.Client.Agent().PassTTL("worker-ttl", "all good"); err != nil {
		t.Fatalf("pass TTL: %v", err)
	}
	waitForAddrs(t, server, "worker.service.consul.", dns.TypeA, "10.0.2.1")
	checks, err := c2.Client.Agent().Checks()
	if err != nil || checks["worker-ttl"] == nil || checks["worker-ttl"].Output != "all good" || checks["worker-ttl"].Status != "passing" {
		t.Errorf("c2's checks after PassTTL = %+v, %v", checks["worker-ttl"], err)
	}

	// The port closes: db leaves DNS on every agent.
	ln.Close()
	closed := time.Now()
	d := waitGone(t, server, "db.service.consul.", closed)
	t.Logf("TCP check: db left the server's DNS %v after its port closed", d.Round(time.Millisecond))
	waitGone(t, c2, "db.service.consul.", closed)

	// HTTP 500 takes web out, 200 brings it back; 429 is a warning, which
	// DNS still answers.
	code.Store(http.StatusInternalServerError)
	failed := time.Now()
	d = waitGone(t, server, "web.service.consul.", failed)
	t.Logf("HTTP check: web left the server's DNS %v after it began answering 500", d.Round(time.Millisecond))
	hc, _, err := server.Client.Health().Checks("web", nil)
	if err != nil || len(hc) != 1 || hc[0].Status != "critical" || hc[0].Output == "" {
		t.Errorf("web's check in the catalog = %+v, %v; want critical with the HTTP output", hc, err)
	}
	code.Store(http.StatusTooManyRequests)
	waitForAddrs(t, server, "web.service.consul.", dns.TypeA, "10.0.1.2")
	eventually(t, 10*time.Second, func() error {
		hc, _, err := server.Client.Health().Checks("web", nil)
		if err != nil || len(hc) != 1 || hc[0].Status != "warning" {
			return fmt.Errorf("web's check = %+v, %v; want warning", hc, err)
		}
		return nil
	})
	code.Store(http.StatusOK)

	// Service maintenance takes web out too, whatever its check says.
	if err := c1.Client.Agent().EnableServiceMaintenance("web", "upgrading"); err != nil {
		t.Fatal(err)
	}
	waitGone(t, server, "web.service.consul.", time.Now())
	if err := c1.Client.Agent().DisableServiceMaintenance("web"); err != nil {
		t.Fatal(err)
	}
	waitForAddrs(t, server, "web.service.consul.", dns.TypeA, "10.0.1.2")

	// The TTL is not refreshed: worker leaves DNS once it expires.
	refreshed := time.Now()
	if err := c2.Client.Agent().PassTTL("worker-ttl", "still good"); err != nil {
		t.Fatal(err)
	}
	d = waitGone(t, server, "worker.service.consul.", refreshed)
	t.Logf("TTL check (3s): worker left DNS %v after its last refresh", d.Round(time.Millisecond))
	eventually(t, 10*time.Second, func() error {
		checks, err := c2.Client.Agent().Checks()
		if err != nil || checks["worker-ttl"] == nil || checks["worker-ttl"].Status != "critical" || !strings.HasPrefix(checks["worker-ttl"].Output, "TTL expired") {
			return fmt.Errorf("c2's TTL check after expiry = %+v, %v", checks["worker-ttl"], err)
		}
		return nil
	})

	// A restart of c2 brings its service and check back without
	// re-registration.
	c2.Kill(t)
	c2.Restart(t)
	svcs, err := c2.Client.Agent().Services()
	if err != nil || svcs["worker"] == nil {
		t.Fatalf("c2's services after restart = %v, %v", svcs, err)
	}
	checks, err = c2.Client.Agent().Checks()
	if err != nil || checks["worker-ttl"] == nil {
		t.Fatalf("c2's checks after restart = %v, %v", checks, err)
	}
	if err := c2.Client.Agent().PassTTL("worker-ttl", "back"); err != nil {
		t.Fatalf("pass TTL after restart: %v", err)
	}
	waitForAddrs(t, server, "worker.service.consul.", dns.TypeA, "10.0.2.1")

	// Unknown and non-TTL checks are refused as Consul refuses them.
	if err := c2.Client.Agent().PassTTL("nope", ""); err == nil {
		t.Error("PassTTL of an unknown check succeeded")
	}
	if err := c1.Client.Agent().PassTTL("service:web", ""); err == nil {
		t.Error("PassTTL of an HTTP check succeeded")
	}
	// A node check that fails takes every service of the node out.
	if err := c1.Client.Agent().CheckRegister(&api.AgentCheckRegistration{ID: "disk", Name: "disk",
		AgentServiceCheck: api.AgentServiceCheck{TTL: "1m", Status: "critical"}}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, server, "web.service.consul.", time.Now())
	if err := c1.Client.Agent().CheckDeregister("disk"); err != nil {
		t.Fatal(err)
	}
	waitForAddrs(t, server, "web.service.consul.", dns.TypeA, "10.0.1.2")
}
