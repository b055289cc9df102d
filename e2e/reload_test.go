package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// redisTTL asks for redis.service.consul. and returns the TTL of its answer.
// A transport error is returned (a datagram may be lost while listeners
// change hands); a wrong answer fails the test at once: DNS must keep
// answering correctly through a reload.
func redisTTL(t testing.TB, a *Agent) (uint32, error) {
	t.Helper()
	r, err := a.Exchange(question("redis.service.consul.", dns.TypeA), "udp")
	if err != nil {
		return 0, err
	}
	if got := addrsOf(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"10.0.0.5"}) {
		t.Fatalf("A redis.service.consul.: %s %v, want NOERROR [10.0.0.5]\n%v", rcode(r), got, r)
	}
	return r.Answer[0].Header().Ttl, nil
}

func waitTTL(t testing.TB, a *Agent, want uint32) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		ttl, err := redisTTL(t, a)
		if err != nil {
			return err
		}
		if ttl != want {
			return fmt.Errorf("A redis.service.consul.: TTL %d, want %d", ttl, want)
		}
		return nil
	})
}

func TestReload(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379}); err != nil {
		t.Fatal(err)
	}
	waitForAddrs(t, a, "redis.service.consul.", dns.TypeA, "10.0.0.5")
	waitTTL(t, a, 0) // DESIGN: service TTLs default to 0

	t.Run("DNS setting changes live", func(t *testing.T) {
		a.Reload(t, func(o *Options) { o.Discovery = append(o.Discovery, "service_ttl * 30s") })
		waitTTL(t, a, 30)
		if !a.Running() {
			t.Fatal("the agent exited on reload")
		}
		if leader, err := a.Client.Status().Leader(); err != nil || leader == "" {
			t.Errorf("GET /v1/status/leader after the reload: %q, %v", leader, err)
		}
		// The agent (and its registrations) outlived the reload.
		if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "api-1", Name: "api", Address: "10.0.0.6", Port: 80}); err != nil {
			t.Fatalf("registering after the reload: %v", err)
		}
		waitForAddrs(t, a, "api.service.consul.", dns.TypeA, "10.0.0.6")
	})

	t.Run("data_dir change is refused and the old config keeps serving", func(t *testing.T) {
		oldDataDir := a.dataDir()
		otherDir := filepath.Join(a.Dir, "other-data")
		off := a.Reload(t, func(o *Options) {
			o.DataDir = otherDir
			o.Discovery = slices.DeleteFunc(o.Discovery, func(l string) bool { return strings.HasPrefix(l, "service_ttl") })
			o.Discovery = append(o.Discovery, "service_ttl * 45s") // must not be half-applied
		})
		eventually(t, 15*time.Second, func() error {
			if log := a.LogSince(off); !strings.Contains(log, "data_dir") {
				return fmt.Errorf("the log since the reload does not mention data_dir:\n%s", log)
			}
			return nil
		})
		if !a.Running() {
			t.Fatal("the agent exited on a refused reload")
		}
		t.Logf("the refused reload logged:\n%s", a.LogSince(off))
		for range 5 {
			ttl, err := redisTTL(t, a)
			if err != nil {
				t.Fatalf("DNS after the refused reload: %v", err)
			}
			if ttl != 30 {
				t.Fatalf("A redis.service.consul.: TTL %d after the refused reload, want the old 30", ttl)
			}
		}
		waitForAddrs(t, a, "api.service.consul.", dns.TypeA, "10.0.0.6")
		if leader, err := a.Client.Status().Leader(); err != nil || leader == "" {
			t.Errorf("GET /v1/status/leader after the refused reload: %q, %v", leader, err)
		}
		if svcs, err := a.Client.Agent().Services(); err != nil || svcs["redis-1"] == nil {
			t.Errorf("GET /v1/agent/services after the refused reload: %v, %v", keys(svcs), err)
		}
		if entries, err := os.ReadDir(otherDir); err == nil && len(entries) > 0 {
			t.Errorf("the refused reload wrote into the new data_dir %s: %v", otherDir, entries)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Error(err)
		}

		// Still reloadable: put data_dir back and change the TTL again.
		a.Reload(t, func(o *Options) {
			o.DataDir = oldDataDir
			o.Discovery = slices.DeleteFunc(o.Discovery, func(l string) bool { return strings.HasPrefix(l, "service_ttl") })
			o.Discovery = append(o.Discovery, "service_ttl * 60s")
		})
		waitTTL(t, a, 60)
	})
}
