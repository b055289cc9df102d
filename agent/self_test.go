package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// /v1/agent/self describes the agent as Consul's does, and holds none of
// its secrets: not the gossip key, not an ACL token.
func TestSelfWithoutSecrets(t *testing.T) {
	const (
		gossipKey  = "3lg9DxVfKNzI8O+IQ5Ek+Q==" // 16 bytes, base64
		management = "6f2f3c1e-5a0b-4c8e-9d6a-2b7e4f1a9c30"
		dflt       = "0c4e7d1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
	)
	c := newAgentConf(t, "n1")
	c.Extra = []string{"encrypt " + gossipKey, "acl deny", "acl_token initial_management " + management,
		"acl_token default " + dflt}
	a := startAgent(t, c)

	self := a.Self()
	b, err := json.Marshal(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{gossipKey, management, dflt} {
		if strings.Contains(string(b), secret) {
			t.Errorf("Self() holds the secret %s:\n%s", secret, b)
		}
	}
	if self.DebugConfig["EncryptKey"] != hidden || self.DebugConfig["ACLsEnabled"] != true ||
		self.DebugConfig["NodeName"] != "n1" || self.DebugConfig["DataDir"] != c.DataDir {
		t.Errorf("DebugConfig = %v", self.DebugConfig)
	}
	if self.Coord == nil || len(self.Coord.Vec) != 8 {
		t.Errorf("Coord = %+v, want the LAN pool's coordinate", self.Coord)
	}
	if self.Member.Name != "n1" || self.Member.Tags["role"] != "consul" || self.Member.Status != 1 {
		t.Errorf("Member = %+v", self.Member)
	}
	for _, section := range []string{"agent", "build", "consul", "raft", "runtime", "serf_lan", "serf_wan"} {
		if len(self.Stats[section]) == 0 {
			t.Errorf("Stats has no %s section: %v", section, self.Stats)
		}
	}
	if self.Stats["serf_lan"]["encrypted"] != "true" || self.Stats["consul"]["acl"] != "enabled" ||
		self.Stats["build"]["version"] == "" {
		t.Errorf("Stats = %v", self.Stats)
	}
}

func TestHostInfo(t *testing.T) {
	c := newAgentConf(t, "n1")
	a := startAgent(t, c)
	info := a.HostInfo()
	if info.Memory == nil || info.Host == nil || info.Disk == nil || info.CPU == nil || len(info.Errors) > 0 {
		t.Fatalf("HostInfo = %+v", info)
	}
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]map[string]any
	_ = json.Unmarshal(b, &decoded) // CPU is a list: only the objects matter here
	if decoded["Memory"]["total"] == nil || decoded["Disk"]["path"] != c.DataDir || decoded["Host"]["hostname"] == nil {
		t.Errorf("/v1/agent/host would say %s", b)
	}
}

// withReloader sets the agent's Corefile reloader for the test.
func withReloader(t *testing.T, reload func() error) {
	t.Helper()
	prev := configReloader.Load()
	t.Cleanup(func() { configReloader.Store(prev) })
	if reload == nil {
		configReloader.Store(nil)
		return
	}
	SetConfigReloader(reload)
}

func TestReloadConfig(t *testing.T) {
	c := newAgentConf(t, "n1")
	startAgent(t, c)

	withReloader(t, nil)
	if code, body, err := call(http.MethodPut, c.HTTP, "/v1/agent/reload", ""); err != nil || code != http.StatusInternalServerError ||
		!strings.Contains(body, "not available") {
		t.Errorf("reload without a reloader: %d %q %v", code, body, err)
	}

	var reloads atomic.Int32 // the handler's goroutine counts
	withReloader(t, func() error { reloads.Add(1); return nil })
	mustCall(t, http.MethodPut, c.HTTP, "/v1/agent/reload", "")
	withReloader(t, func() error {
		reloads.Add(1)
		return errors.New("/etc/beacon/Corefile:3 - Error during parsing: Unknown directive 'nope'")
	})
	code, body, err := call(http.MethodPut, c.HTTP, "/v1/agent/reload", "")
	if err != nil || code != http.StatusInternalServerError || !strings.Contains(body, "Unknown directive 'nope'") {
		t.Errorf("failed reload: %d %q %v, want a 500 that says why", code, body, err)
	}
	if n := reloads.Load(); n != 2 {
		t.Errorf("%d reloads, want 2", n)
	}
}

// A monitor on the agent's API gets the agent's log lines, the debug
// ones too, and ends when its client goes.
func TestMonitorAgentLogs(t *testing.T) {
	c := newAgentConf(t, "n1")
	a := startAgent(t, c)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.HTTP+"/v1/agent/monitor?loglevel=debug", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/agent/monitor: %d", resp.StatusCode)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "monitor test marker") {
				found <- sc.Text()
				return
			}
		}
		close(found)
	}()
	a.logger.Named("test").Debug("monitor test marker", "n", 1)
	select {
	case line, ok := <-found:
		if !ok || !strings.Contains(line, "[DEBUG] beacon.test: monitor test marker: n=1") {
			t.Errorf("monitor line %q (stream open: %v)", line, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the marker did not reach the monitor within 10s")
	}
	cancel() // the client goes; the agent's shutdown finds no monitor left
}
