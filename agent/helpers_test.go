package agent

// Helpers for the agent's tests: real agents on 127.0.0.1 with free ports and
// a data_dir under t.TempDir(), configured from a Corefile block through the
// corefile parser, as CoreDNS configures them.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/beacon-dns/beacon/corefile"
)

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freeAddr returns a 127.0.0.1 address whose port is free for both TCP and
// UDP (gossip listens on both) and that no other agent of this test binary
// has been given.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("allocating a port: %v", err)
		}
		addr := l.Addr().String()
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue // taken for UDP
		}
		u.Close()
		portsMu.Lock()
		used := portsUsed[port]
		portsUsed[port] = true
		portsMu.Unlock()
		if !used {
			return addr
		}
	}
	t.Fatal("no port free for both TCP and UDP after 200 tries")
	return ""
}

// agentConf is a test agent's discovery block.
type agentConf struct {
	Node    string
	DataDir string
	Bind    string
	HTTP    string
	RPC     string
	SerfLAN string
	SerfWAN string
	// Client makes a client agent (no server, no bootstrap_expect);
	// otherwise the agent is a single server that bootstraps alone.
	Client bool
	Join   []string
	// Extra are more lines of the block.
	Extra []string
}

// newAgentConf is a single server named node with its own data_dir and
// free ports.
func newAgentConf(t *testing.T, node string) agentConf {
	t.Helper()
	return agentConf{
		Node: node, DataDir: filepath.Join(t.TempDir(), "data"), Bind: "127.0.0.1",
		HTTP: freeAddr(t), RPC: freeAddr(t), SerfLAN: freeAddr(t), SerfWAN: freeAddr(t),
	}
}

func (c agentConf) block() string {
	lines := []string{
		"node " + c.Node,
		"data_dir " + c.DataDir,
		"bind " + c.Bind,
		"http " + c.HTTP,
		"rpc " + c.RPC,
		"serf_lan " + c.SerfLAN,
		"serf_wan " + c.SerfWAN,
	}
	if !c.Client {
		lines = append(lines, "server", "bootstrap_expect 1")
	}
	if len(c.Join) > 0 {
		lines = append(lines, "join "+strings.Join(c.Join, " "))
	}
	lines = append(lines, c.Extra...)
	return "discovery {\n\t" + strings.Join(lines, "\n\t") + "\n}"
}

// parseBlock parses one discovery block as CoreDNS hands it to the plugin.
func parseBlock(t *testing.T, block string) *corefile.Config {
	t.Helper()
	c := caddy.NewTestController("dns", block)
	c.ServerBlockKeys = []string{"consul.:8600"}
	cfg, err := corefile.Parse(c)
	if err != nil {
		t.Fatalf("parsing\n%s\n: %v", block, err)
	}
	return cfg
}

func (c agentConf) parse(t *testing.T) *corefile.Config {
	t.Helper()
	return parseBlock(t, c.block())
}

// startAgent starts an agent outside the process-wide singleton; it is shut
// down when the test ends.
func startAgent(t *testing.T, c agentConf) *Agent {
	t.Helper()
	a, err := start(c.parse(t).Agent)
	if err != nil {
		t.Fatalf("starting agent %s: %v", c.Node, err)
	}
	t.Cleanup(func() {
		if err := a.shutdown(); err != nil {
			t.Errorf("shutting down agent %s: %v", c.Node, err)
		}
	})
	return a
}

// acquire is Acquire for a test that owns the singleton: none may run when
// it starts, and ShutdownFinal runs when it ends.
func acquire(t *testing.T, cfg *corefile.Config) *Agent {
	t.Helper()
	ownSingleton(t)
	a, err := Acquire(cfg)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return a
}

// ownSingleton fails the test if an agent is the process's agent already,
// and has ShutdownFinal run when the test ends.
func ownSingleton(t *testing.T) {
	t.Helper()
	singletonMu.Lock()
	leftover := running != nil
	singletonMu.Unlock()
	if leftover {
		t.Fatal("an agent from an earlier test is still the process's agent")
	}
	t.Cleanup(func() {
		if err := ShutdownFinal(); err != nil {
			t.Errorf("ShutdownFinal: %v", err)
		}
	})
}

// httpClient opens a connection per request, so that a request never rides
// on a connection from before a shutdown, and no idle connection outlives a
// test.
var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// call sends a request to the agent's HTTP API at addr; err is a transport
// error (the API did not answer).
func call(method, addr, path, body string) (code int, respBody string, err error) {
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mustCall is call that fails the test unless the API answers with 200.
func mustCall(t *testing.T, method, addr, path, body string) string {
	t.Helper()
	code, b, err := call(method, addr, path, body)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, addr, path, err)
	}
	if code != http.StatusOK {
		t.Fatalf("%s %s%s: %d %q, want 200", method, addr, path, code, b)
	}
	return b
}

// refused reports whether err is a refused connection: nothing listens.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// eventually polls f until it returns nil, failing the test with f's last
// error after timeout.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 5 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", timeout, err)
		}
		time.Sleep(interval) // a poll interval, not synchronisation
		interval = min(interval*2, 100*time.Millisecond)
	}
}

// leaderTimeout bounds a single server's first election and its first
// committed write.
const leaderTimeout = 15 * time.Second

// waitWritable polls until a KV write through the agent's HTTP API commits.
func waitWritable(t *testing.T, httpAddr string) {
	t.Helper()
	eventually(t, leaderTimeout, func() error {
		code, b, err := call(http.MethodPut, httpAddr, "/v1/kv/probe", "x")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("PUT /v1/kv/probe: %d %q", code, b)
		}
		return nil
	})
}

// portsFree fails the test unless each of addrs can be bound for TCP, and
// each of udp for UDP, at once.
func portsFree(t *testing.T, tcp, udp []string) {
	t.Helper()
	for _, addr := range tcp {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("TCP %s is still taken: %v", addr, err)
			continue
		}
		l.Close()
	}
	for _, addr := range udp {
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Errorf("UDP %s is still taken: %v", addr, err)
			continue
		}
		u.Close()
	}
}
