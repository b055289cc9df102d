package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// The CLI's catalog, services, info, reload, monitor, validate and version
// commands against real agents, as an operator runs them: the built
// binary, pointed at the agent by BEACON_HTTP_ADDR.

// cliRun is one run of the binary: its exit code and outputs.
type cliRun struct {
	code           int
	stdout, stderr string
}

func (r cliRun) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// beacon runs the binary with args against agent a.
func beacon(t *testing.T, a *Agent, args ...string) cliRun {
	t.Helper()
	code, stdout, stderr := runBeacon(t, a.Dir, []string{"BEACON_HTTP_ADDR=" + a.HTTPAddr}, args...)
	return cliRun{code, stdout, stderr}
}

// wantOK fails the test unless r exited 0 with stdout as given.
func wantOK(t *testing.T, what string, r cliRun, stdout string) {
	t.Helper()
	if r.code != 0 || r.stdout != stdout {
		t.Errorf("%s: %v\nwant exit 0 and stdout:\n%s", what, r, stdout)
	}
}

// wantFail fails the test unless r exited 1 with nothing on stdout and
// stderr saying want.
func wantFail(t *testing.T, what string, r cliRun, want string) {
	t.Helper()
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, want) {
		t.Errorf("%s: %v\nwant exit 1 and stderr saying %q", what, r, want)
	}
}

func TestCLICatalogAndServices(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	self, _, err := a.Client.Catalog().Node("n1", nil)
	if err != nil || self == nil {
		t.Fatalf("catalog node n1: %v, %v", self, err)
	}
	shortID, _, _ := strings.Cut(self.Node.ID, "-")
	// Another node, through the catalog, in rack r2.
	if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "ext-1", Address: "10.0.9.1",
		NodeMeta: map[string]string{"rack": "r2"}, TaggedAddresses: map[string]string{"wan": "198.51.100.9"},
		Service: &api.AgentService{ID: "db", Service: "db", Tags: []string{"pg", "primary"}, Port: 5432}}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("services register and deregister", func(t *testing.T) {
		r := beacon(t, a, "services", "register", "-name=web", "-id=web-1", "-address=10.0.0.5", "-port=80", "-tag=v1", "-meta=team=blue")
		wantOK(t, "register from flags", r, "Registered service: web\n")
		dir := t.TempDir()
		jsonFile, hclFile := filepath.Join(dir, "api.json"), filepath.Join(dir, "cache.hcl")
		if err := os.WriteFile(jsonFile, []byte(`{"service": {"name": "api", "port": 8080, "tags": ["v2"],
			"check": {"ttl": "30s", "status": "passing"}}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hclFile, []byte("service {\n  name = \"cache\"\n  id = \"cache-1\"\n  port = 6379\n"+
			"  meta { zone = \"a\" }\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		wantOK(t, "register from files", beacon(t, a, "services", "register", jsonFile, hclFile),
			"Registered service: api\nRegistered service: cache\n")
		svcs, err := a.Client.Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		if web := svcs["web-1"]; web == nil || web.Address != "10.0.0.5" || web.Port != 80 || !slices.Equal(web.Tags, []string{"v1"}) ||
			web.Meta["team"] != "blue" {
			t.Errorf("web-1 = %+v", web)
		}
		if svcs["api"] == nil || svcs["api"].Port != 8080 || svcs["cache-1"] == nil || svcs["cache-1"].Meta["zone"] != "a" {
			t.Errorf("services from files: %v", keysOf(svcs))
		}
		waitForAddrs(t, a, "web.service.consul.", dns.TypeA, "10.0.0.5")

		// Bad input changes nothing.
		bad := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(bad, []byte(`{"service": {"name": "bad", "prot": 80}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		wantFail(t, "unknown key", beacon(t, a, "services", "register", bad), "invalid config key service.prot")
		wantFail(t, "agent refuses", beacon(t, a, "services", "register", "-name=big", "-port=70000"),
			`Error registering service "big": Unexpected response code: 400`)
		wantFail(t, "bad flag", beacon(t, a, "services", "register", "-nmae=x"), "flag provided but not defined: -nmae")
		wantFail(t, "nothing", beacon(t, a, "services", "register"), "requires at least one argument or flags")
		if after, _ := a.Client.Agent().Services(); len(after) != len(svcs) {
			t.Errorf("bad registrations changed the services: %v, was %v", keysOf(after), keysOf(svcs))
		}

		wantOK(t, "deregister from a file", beacon(t, a, "services", "deregister", hclFile), "Deregistered service: cache-1\n")
		wantFail(t, "deregister unknown", beacon(t, a, "services", "deregister", "-id=nope"),
			`Error deregistering service "nope": Unexpected response code: 404`)
		wantFail(t, "deregister both", beacon(t, a, "services", "deregister", "-id=web-1", hclFile), "not both")
		wantFail(t, "deregister bad flag", beacon(t, a, "services", "deregister", "-name=web"),
			"flag provided but not defined: -name")
		if svcs, _ := a.Client.Agent().Services(); svcs["cache-1"] != nil || svcs["web-1"] == nil {
			t.Errorf("after deregistering cache-1: %v", keysOf(svcs))
		}
	})

	t.Run("catalog", func(t *testing.T) {
		wantOK(t, "datacenters", beacon(t, a, "catalog", "datacenters"), "dc1\n")
		wantOK(t, "services", beacon(t, a, "catalog", "services"), "api\nconsul\ndb\nweb\n")
		wantOK(t, "services -tags", beacon(t, a, "catalog", "services", "-tags"),
			"api         v2\nconsul      \ndb          pg,primary\nweb         v1\n")
		wantOK(t, "services -node", beacon(t, a, "catalog", "services", "-node=ext-1"), "db\n")
		wantOK(t, "services -node-meta", beacon(t, a, "catalog", "services", "-node-meta=rack=r2"), "db\n")
		r := beacon(t, a, "catalog", "services", "-node-meta=rack=r9")
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "No services match the given query") {
			t.Errorf("services on no node: %v", r)
		}

		header := "Node   ID        Address    DC\n"
		n1 := fmt.Sprintf("n1     %-8s  127.0.0.1  dc1\n", shortID)
		ext := "ext-1            10.0.9.1   dc1\n"
		wantOK(t, "nodes", beacon(t, a, "catalog", "nodes"), header+ext+n1)
		// -near puts the nodes with a coordinate first, the agent's own
		// nearest: wait for it to reach the catalog.
		eventually(t, 30*time.Second, func() error {
			entries, _, err := a.Client.Coordinate().Node("n1", nil)
			if err != nil || len(entries) == 0 {
				return fmt.Errorf("n1 has no coordinate in the catalog yet (%v)", err)
			}
			return nil
		})
		wantOK(t, "nodes -near=_agent", beacon(t, a, "catalog", "nodes", "-near=_agent"), header+n1+ext)
		wantOK(t, "nodes -service", beacon(t, a, "catalog", "nodes", "-service=web"),
			"Node  ID        Address    DC\n"+fmt.Sprintf("n1    %-8s  127.0.0.1  dc1\n", shortID))
		wantOK(t, "nodes -node-meta", beacon(t, a, "catalog", "nodes", "-node-meta=rack=r2"),
			"Node   ID  Address   DC\next-1      10.0.9.1  dc1\n")
		r = beacon(t, a, "catalog", "nodes", "-detailed")
		if r.code != 0 || !strings.Contains(r.stdout, "TaggedAddresses") || !strings.Contains(r.stdout, "rack=r2") ||
			!strings.Contains(r.stdout, "wan=198.51.100.9") || !strings.Contains(r.stdout, self.Node.ID) {
			t.Errorf("nodes -detailed: %v", r)
		}
		r = beacon(t, a, "catalog", "nodes", "-service=nothing")
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "No nodes match the given query") {
			t.Errorf("nodes of no service: %v", r)
		}

		wantFail(t, "bad flag", beacon(t, a, "catalog", "nodes", "-detail"), "flag provided but not defined: -detail")
		wantFail(t, "datacenters bad flag", beacon(t, a, "catalog", "datacenters", "-wan"), "flag provided but not defined: -wan")
		wantFail(t, "services bad flag", beacon(t, a, "catalog", "services", "-tag"), "flag provided but not defined: -tag")
		wantFail(t, "argument", beacon(t, a, "catalog", "services", "web"), "Too many arguments (expected 0, got 1)")
		wantFail(t, "bad node-meta", beacon(t, a, "catalog", "nodes", "-node-meta=rack"), `Missing "=" value in argument: rack`)
		wantFail(t, "unknown datacenter", beacon(t, a, "catalog", "nodes", "-datacenter=dc9"), "No path to datacenter")
		wantFail(t, "bad filter", beacon(t, a, "catalog", "nodes", "-filter=Node =="), "Failed to create boolexpr evaluator")
		if r := beacon(t, a, "catalog", "nodes", "-filter=Node == \"n1\""); r.code != 0 || !strings.Contains(r.stdout, "n1") {
			t.Errorf("catalog nodes -filter: %v", r)
		}
		wantFail(t, "no subcommand", beacon(t, a, "catalog"), "Usage: beacon catalog <subcommand>")
	})
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// info prints the agent's Stats, Consul's sections, and /v1/agent/self
// holds no secret.
func TestCLIInfo(t *testing.T) {
	t.Parallel()
	key := newGossipKey(t)
	a := StartAgent(t, Options{Discovery: []string{"encrypt " + key}})
	r := beacon(t, a, "info")
	if r.code != 0 {
		t.Fatalf("info: %v", r)
	}
	for _, want := range []string{"agent:\n\tcheck_monitors = 0\n", "build:\n", "consul:\n", "\tleader = true\n", "raft:\n",
		"\tstate = Leader\n", "runtime:\n", "serf_lan:\n", "\tencrypted = true\n", "serf_wan:\n", "\tmembers = 1\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info does not say %q:\n%s", want, r.stdout)
		}
	}
	wantFail(t, "argument", beacon(t, a, "info", "raft"), `unexpected argument "raft"`)
	wantFail(t, "bad flag", beacon(t, a, "info", "-json"), "flag provided but not defined: -json")

	res := a.Do(t, "GET", "/v1/agent/self", nil, false)
	if res.Status != 200 || strings.Contains(res.Body, key) {
		t.Fatalf("/v1/agent/self: %v (the gossip key must not be in it)", res)
	}
	var self map[string]map[string]any
	if err := json.Unmarshal([]byte(res.Body), &self); err != nil {
		t.Fatal(err)
	}
	if vec, _ := self["Coord"]["Vec"].([]any); len(vec) != 8 || self["DebugConfig"]["EncryptKey"] != "hidden" ||
		self["Member"]["Name"] != "n1" || self["Config"]["Version"] == "" {
		t.Errorf("/v1/agent/self: %s", res.Body)
	}
	host, err := a.Client.Agent().Host()
	if err != nil {
		t.Fatal(err)
	}
	if mem, _ := host["Memory"].(map[string]any); mem["total"] == nil || host["Host"] == nil || host["Disk"] == nil {
		t.Errorf("/v1/agent/host: %v", host)
	}
}

// reload re-reads the Corefile as SIGUSR1 does, and fails, changing
// nothing, on a Corefile that cannot apply.
func TestCLIReload(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "redis-1", Name: "redis", Address: "10.0.0.5",
		Port: 6379}); err != nil {
		t.Fatal(err)
	}
	waitForAddrs(t, a, "redis.service.consul.", dns.TypeA, "10.0.0.5")
	waitTTL(t, a, 0)

	a.Opts.Discovery = append(a.Opts.Discovery, "service_ttl * 30s")
	a.writeCorefile(t)
	wantOK(t, "reload", beacon(t, a, "reload"), "Configuration reload triggered\n")
	// The reload is done when the command returns: no waiting.
	if ttl, err := redisTTL(t, a); err != nil || ttl != 30 {
		t.Errorf("TTL right after the reload: %d, %v; want 30", ttl, err)
	}

	good := a.Opts
	a.Opts.DataDir = filepath.Join(a.Dir, "elsewhere")
	a.writeCorefile(t)
	wantFail(t, "a data_dir change", beacon(t, a, "reload"), "data_dir")
	a.Opts = good
	a.Opts.Discovery = append(a.Opts.Discovery, "service_ttl * 45s")
	a.Opts.ServerBlock = []string{"nosuchplugin"}
	a.writeCorefile(t)
	wantFail(t, "a syntax error", beacon(t, a, "reload"), "Unknown directive 'nosuchplugin'")
	if !a.Running() {
		t.Fatal("the agent exited after a refused reload")
	}
	if ttl, err := redisTTL(t, a); err != nil || ttl != 30 {
		t.Errorf("TTL after refused reloads: %d, %v; want the old 30", ttl, err)
	}
	wantFail(t, "argument", beacon(t, a, "reload", "now"), `unexpected argument "now"`)
	wantFail(t, "bad flag", beacon(t, a, "reload", "-force"), "flag provided but not defined: -force")

	a.Opts = good
	a.writeCorefile(t)
	wantOK(t, "reload back", beacon(t, a, "reload"), "Configuration reload triggered\n")
}

// monitorRun is `beacon monitor` running against an agent.
type monitorRun struct {
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{}
	err    error
}

func startMonitor(t *testing.T, a *Agent, args ...string) *monitorRun {
	t.Helper()
	m := &monitorRun{done: make(chan struct{})}
	m.cmd = exec.Command(beaconBin, append([]string{"monitor", "-http-addr=" + a.HTTPAddr}, args...)...)
	m.cmd.Dir = t.TempDir()
	m.cmd.SysProcAttr = sysProcAttr()
	m.cmd.Stdout, m.cmd.Stderr = &m.stdout, &m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-m.done
	})
	return m
}

// exit waits for the monitor to end and returns its exit code.
func (m *monitorRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the monitor did not end; stdout:\n%s\nstderr:\n%s", m.stdout.String(), m.stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case m.err == nil:
		return 0
	case errors.As(m.err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("monitor: %v", m.err)
	return -1
}

// monitor streams the agent's log lines until interrupted: a reload asked
// of the agent shows in it.
func TestCLIMonitor(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	plain := startMonitor(t, a, "-log-level=debug")
	asJSON := startMonitor(t, a, "-log-json")
	// A monitor attaches at some point after it starts: ask for reloads
	// until both have seen one.
	eventually(t, 30*time.Second, func() error {
		if err := a.Client.Agent().Reload(); err != nil {
			return err
		}
		for _, m := range []*monitorRun{plain, asJSON} {
			if !strings.Contains(m.stdout.String(), "reloading the Corefile, as the HTTP API asked") {
				return fmt.Errorf("monitor %v has not shown a reload yet:\n%s%s", m.cmd.Args[2:], m.stdout.String(), m.stderr.String())
			}
		}
		return nil
	})
	if !strings.Contains(plain.stdout.String(), "[INFO]  beacon: reloading the Corefile") {
		t.Errorf("plain monitor:\n%s", plain.stdout.String())
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(asJSON.stdout.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("-log-json line %q: %v", line, err)
			continue
		}
		found = found || entry["@message"] == "reloading the Corefile, as the HTTP API asked"
	}
	if !found {
		t.Errorf("-log-json monitor has no reload entry:\n%s", asJSON.stdout.String())
	}

	// Interrupted, a monitor ends cleanly.
	if err := plain.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := plain.exit(t); code != 0 {
		t.Errorf("interrupted monitor exited %d\n%s", code, plain.stderr.String())
	}

	wantFail(t, "bad level", beacon(t, a, "monitor", "-log-level=loud"),
		"Error starting monitor: Unexpected response code: 400 (Unknown log level: loud)")
	wantFail(t, "bad flag", beacon(t, a, "monitor", "-level=debug"), "flag provided but not defined: -level")

	// The agent goes: the monitor says so and fails.
	a.Stop(t)
	if code := asJSON.exit(t); code != 1 || !strings.Contains(asJSON.stdout.String(), "Remote side ended the monitor!") {
		t.Errorf("monitor of a stopped agent: exit %d\n%s", code, asJSON.stdout.String())
	}
}

// validate checks a Corefile as the agent's start-up does, without
// starting anything.
func TestCLIValidate(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	// The running agent's own Corefile, checked while it runs.
	wantOK(t, "the agent's Corefile", beacon(t, a, "validate", a.ConfPath), "Configuration is valid!\n")
	wantOK(t, "quiet", beacon(t, a, "validate", "-quiet", a.ConfPath), "")

	lines := strings.Split(a.Corefile(), "\n")
	at := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "node n1") })
	bad := slices.Clone(lines)
	bad[at] = "        bogus_property 1"
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(strings.Join(bad, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := beacon(t, a, "validate", path)
	wantFail(t, "unknown property", r, "Config validation failed: ")
	if want := fmt.Sprintf("%s:%d", path, at+1); !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, `"bogus_property"`) {
		t.Errorf("the error does not name %s and the property: %s", want, r.stderr)
	}
	if err := os.WriteFile(path, []byte("consul:8600 {\n    discovery\n    nosuchplugin\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFail(t, "unknown directive", beacon(t, a, "validate", path), "Unknown directive 'nosuchplugin'")
	wantFail(t, "missing file", beacon(t, a, "validate", filepath.Join(t.TempDir(), "nope")), "no such file or directory")
	wantFail(t, "no file", beacon(t, a, "validate"), "Must specify a Corefile")
	wantFail(t, "bad flag", beacon(t, a, "validate", "-strict", a.ConfPath), "flag provided but not defined: -strict")
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("validate left files behind: %v", entries)
	}
	if !a.Running() {
		t.Error("validating its Corefile disturbed the agent")
	}
}

// version and the usage: the build's version as the agent reports it, and
// every command listed with its summary.
func TestCLIVersionAndUsage(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	r := beacon(t, a, "version", "-format=json")
	var v map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil {
		t.Fatalf("version -format=json: %v", r)
	}
	agentVersion, err := a.Client.Agent().Version()
	if err != nil {
		t.Fatal(err)
	}
	human := "v" + v["Version"].(string)
	if pre, _ := v["Prerelease"].(string); pre != "" {
		human += "-" + pre
	}
	if agentVersion["HumanVersion"] != human {
		t.Errorf("/v1/agent/version says %v, beacon version %s", agentVersion, human)
	}
	if r := beacon(t, a, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "beacon "+human+"\n") {
		t.Errorf("version: %v", r)
	}
	wantFail(t, "bad format", beacon(t, a, "version", "-format=xml"), "Unknown format: xml")
	wantFail(t, "bad flag", beacon(t, a, "version", "-json"), "flag provided but not defined: -json")

	r = beacon(t, a)
	if r.code != 1 {
		t.Errorf("beacon without a command: %v", r)
	}
	for _, cmd := range []string{"agent", "catalog", "services", "info", "reload", "monitor", "validate", "version", "members", "kv"} {
		if !strings.Contains(r.stderr, "\n    "+cmd+" ") {
			t.Errorf("the usage does not list %s:\n%s", cmd, r.stderr)
		}
	}
	for _, args := range [][]string{{"catalog", "nodes", "-h"}, {"services", "register", "-h"}, {"monitor", "-h"}, {"info", "-h"}} {
		if r := beacon(t, a, args...); r.code != 0 || !strings.Contains(r.stdout, "Usage: beacon "+strings.Join(args[:len(args)-1], " ")) ||
			!strings.Contains(r.stdout, "-http-addr") {
			t.Errorf("%q: %v", args, r)
		}
	}
}
