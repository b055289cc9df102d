package e2e

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// TestNoFalseFailuresUnderCPUStress runs busy loops on every core for 30 s
// (BEACON_STRESS_SECONDS) while a server and two clients gossip, and counts
// the times a healthy agent was declared failed or its service dropped out
// of DNS: Lifeguard must keep that at zero. It is not parallel, so the other
// tests of the package do not run under the stress.
func TestNoFalseFailuresUnderCPUStress(t *testing.T) {
	secs := 30
	if v, err := strconv.Atoi(os.Getenv("BEACON_STRESS_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	server := StartAgent(t, Options{Node: "s1"})
	clients := []*Agent{StartClient(t, "c1", []*Agent{server}), StartClient(t, "c2", []*Agent{server})}
	for i, c := range clients {
		if err := c.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: "app", Name: "app-" + c.Opts.Node, Address: "10.0.3." + strconv.Itoa(i+1), Port: 80}); err != nil {
			t.Fatal(err)
		}
		waitForAddrs(t, server, "app-"+c.Opts.Node+".service.consul.", dns.TypeA, "10.0.3."+strconv.Itoa(i+1))
	}

	var loops []*exec.Cmd
	defer func() {
		for _, c := range loops {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	for range runtime.NumCPU() {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			t.Fatalf("starting a busy loop: %v", err)
		}
		loops = append(loops, c)
	}

	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	falseFailures, dnsMisses, samples := 0, 0, 0
	sample := time.NewTicker(100 * time.Millisecond)
	defer sample.Stop()
	for ; time.Now().Before(deadline); <-sample.C {
		samples++
		members, err := server.Client.Agent().Members(false)
		if err != nil {
			t.Fatalf("members under stress: %v", err)
		}
		for _, m := range members {
			if m.Status != 1 {
				falseFailures++
				t.Logf("%s: member %s has status %d", time.Now().Format(time.StampMilli), m.Name, m.Status)
			}
		}
		critical, _, err := server.Client.Health().State("critical", &api.QueryOptions{AllowStale: true})
		if err != nil {
			t.Fatalf("critical checks under stress: %v", err)
		}
		for _, c := range critical {
			falseFailures++
			t.Logf("%s: check %s of %s is critical: %s", time.Now().Format(time.StampMilli), c.CheckID, c.Node, c.Output)
		}
		for _, c := range clients {
			r, err := server.Exchange(question("app-"+c.Opts.Node+".service.consul.", dns.TypeA), "udp")
			if err != nil || len(r.Answer) != 1 {
				dnsMisses++
				t.Logf("%s: DNS for app-%s: %v %v", time.Now().Format(time.StampMilli), c.Opts.Node, r, err)
			}
		}
	}
	t.Logf("%d s of CPU stress on %d cores, %d samples: %d false failures, %d DNS misses",
		secs, len(loops), samples, falseFailures, dnsMisses)
	if falseFailures > 0 || dnsMisses > 0 {
		t.Errorf("under CPU stress: %d false failures, %d DNS misses; want none", falseFailures, dnsMisses)
	}
}
