package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// Views in the shape Consul's server sends them: its own field order, and
// fields Consul's client does not know (which it drops).
const (
	healthServiceJSON = `[{
 "Node":{"ID":"40e4a748-2192-161a-0510-9bf59fe950b5","Node":"n1","Address":"10.0.0.1","Datacenter":"dc1",
  "TaggedAddresses":{"lan":"10.0.0.1","wan":"10.0.0.1"},"Meta":{"consul-network-segment":""},"CreateIndex":5,"ModifyIndex":7},
 "Service":{"ID":"web-1","Service":"web","Tags":["v1"],"Address":"","Meta":null,"Port":8080,
  "Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"Proxy":{"Mode":"","MeshGateway":{},"Expose":{}},
  "Connect":{},"PeerName":"","CreateIndex":8,"ModifyIndex":8},
 "Checks":[
  {"Node":"n1","CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing","Notes":"","Output":"Agent alive and reachable",
   "ServiceID":"","ServiceName":"","ServiceTags":[],"Type":"","Interval":"","Timeout":"","ExposedPort":0,"Definition":{},
   "CreateIndex":5,"ModifyIndex":5},
  {"Node":"n1","CheckID":"service:web-1","Name":"web HTTP","Status":"critical","Notes":"","Output":"connection <refused>",
   "ServiceID":"web-1","ServiceName":"web","ServiceTags":["v1"],"Type":"http","ExposedPort":0,
   "Definition":{"HTTP":"http://localhost:8080/health","Header":{"X-A":["b"]},"Interval":"10s","Timeout":"1s",
    "DeregisterCriticalServiceAfter":"1m30s","TLSSkipVerify":true},
   "CreateIndex":9,"ModifyIndex":11,"Unknown":1}]
}]`
	catalogNodesJSON = `[
 {"ID":"40e4a748-2192-161a-0510-9bf59fe950b5","Node":"n1","Address":"10.0.0.1","Datacenter":"dc1",
  "TaggedAddresses":{"lan":"10.0.0.1"},"Meta":{"rack":"r1"},"CreateIndex":5,"ModifyIndex":7},
 {"ID":"","Node":"n2","Address":"10.0.0.2","Datacenter":"dc1","TaggedAddresses":null,"Meta":null,
  "Locality":{"Region":"eu","Zone":"a"},"CreateIndex":6,"ModifyIndex":6}
]`
	catalogServicesJSON = `{"web":["v2","v1"],"consul":[]}`
	healthChecksJSON    = `[{"Node":"n1","CheckID":"c1","Name":"disk","Status":"warning","Notes":"n","Output":"80%",
  "ServiceID":"","ServiceName":"","ServiceTags":null,"Type":"script","Definition":{"IntervalDuration":"5s","Interval":"1s"},
  "CreateIndex":3,"ModifyIndex":4}]`
	eventListJSON = `[{"ID":"b54fe110-7af5-cafc-d1fb-afc8ba432b1c","Name":"deploy","Payload":"MTYwOTAzMA==",
  "NodeFilter":"","ServiceFilter":"web","TagFilter":"","Version":1,"LTime":19}]`
)

// consulPrint is what Consul's watch prints for body decoded into its
// client's type T: the client's struct marshalled again, indented.
func consulPrint[T any](t *testing.T, body string) string {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// consulEncode is what Consul's watch gives a handler on stdin.
func consulEncode[T any](t *testing.T, body string) string {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Without a handler, watch prints the first answer as Consul's does and
// exits.
func TestWatchPrints(t *testing.T) {
	// fixed is a view's expected output; fromKV one computed from what
	// the fake KV sends for the keys.
	fixed := func(s string) func(*fakeKV) string { return func(*fakeKV) string { return s } }
	fromKV := func(keys ...string) func(*fakeKV) string {
		return func(f *fakeKV) string {
			var pairs []*consulapi.KVPair
			for _, k := range keys {
				pairs = append(pairs, f.get(k))
			}
			b, _ := json.Marshal(pairs)
			if len(keys) == 1 {
				return consulPrint[*consulapi.KVPair](t, string(b[1:len(b)-1]))
			}
			return consulPrint[consulapi.KVPairs](t, string(b))
		}
	}
	for _, tc := range []struct {
		name  string
		args  []string
		setup func(f *fakeKV)
		call  string
		want  func(f *fakeKV) string
	}{
		{"key", []string{"-type=key", "-key=cfg"}, func(f *fakeKV) { f.set("cfg", "<v>", 3) },
			"GET /v1/kv/cfg", fromKV("cfg")},
		{"no such key", []string{"-type=key", "-key=nope"}, func(f *fakeKV) {}, "GET /v1/kv/nope", fixed("null\n")},
		{"keyprefix", []string{"-type=keyprefix", "-prefix=app", "-stale"},
			func(f *fakeKV) { f.set("app/a", "1", 0); f.set("app/b", "", 7); f.set("other", "x", 0) },
			"GET /v1/kv/app?recurse=&stale=", fromKV("app/a", "app/b")},
		{"keyprefix, nothing", []string{"-type=keyprefix", "-prefix=none"}, func(f *fakeKV) {}, "GET /v1/kv/none?recurse=",
			fixed("null\n")},
		{"services", []string{"-type=services", "-datacenter=dc2"},
			func(f *fakeKV) { f.setView("/v1/catalog/services", catalogServicesJSON) },
			"GET /v1/catalog/services?dc=dc2", fixed(consulPrint[map[string][]string](t, catalogServicesJSON))},
		{"nodes", []string{"-type=nodes", "-filter=Meta.rack == r1"},
			func(f *fakeKV) { f.setView("/v1/catalog/nodes", catalogNodesJSON) },
			"GET /v1/catalog/nodes?filter=Meta.rack+%3D%3D+r1", fixed(consulPrint[[]*consulapi.Node](t, catalogNodesJSON))},
		{"service", []string{"-type=service", "-service=web", "-tag=v1", "-tag=x y", "-passingonly=true"},
			func(f *fakeKV) { f.setView("/v1/health/service/web", healthServiceJSON) },
			"GET /v1/health/service/web?passing=1&tag=v1&tag=x+y",
			fixed(consulPrint[[]*consulapi.ServiceEntry](t, healthServiceJSON))},
		{"service, passing false", []string{"-type=service", "-service=web", "-passingonly=false"},
			func(f *fakeKV) { f.setView("/v1/health/service/web", healthServiceJSON) },
			"GET /v1/health/service/web", fixed(consulPrint[[]*consulapi.ServiceEntry](t, healthServiceJSON))},
		{"checks in any state", []string{"-type=checks"},
			func(f *fakeKV) { f.setView("/v1/health/state/any", healthChecksJSON) },
			"GET /v1/health/state/any", fixed(consulPrint[[]*consulapi.HealthCheck](t, healthChecksJSON))},
		{"checks in a state", []string{"-type=checks", "-state=critical"},
			func(f *fakeKV) { f.setView("/v1/health/state/critical", `[]`) }, "GET /v1/health/state/critical", fixed("[]\n")},
		{"events", []string{"-type=event", "-name=deploy"},
			func(f *fakeKV) { f.setView("/v1/event/list", eventListJSON) },
			"GET /v1/event/list?name=deploy", fixed(consulPrint[[]*consulapi.UserEvent](t, eventListJSON))},
		{"checks of a service", []string{"-type=checks", "-service=web"},
			func(f *fakeKV) { f.setView("/v1/health/checks/web", healthChecksJSON) },
			"GET /v1/health/checks/web", fixed(consulPrint[[]*consulapi.HealthCheck](t, healthChecksJSON))},
	} {
		f := newFakeKV(t)
		tc.setup(f)
		want := tc.want(f)
		r := runCLI(append([]string{"watch", "-http-addr=" + f.addr()}, tc.args...)...)
		if r.code != 0 || r.stdout != want || r.stderr != "" {
			t.Errorf("%s: %v\nwant stdout:\n%s", tc.name, r, want)
		}
		var calls []string
		for _, c := range f.calls() {
			calls = append(calls, c.String())
		}
		leader := "GET /v1/status/leader" // in the datacenter watched, as Consul's watch asks
		if strings.Contains(tc.call, "dc=dc2") {
			leader += "?dc=dc2"
		}
		if want := leader + "\n" + tc.call; strings.Join(calls, "\n") != want {
			t.Errorf("%s: calls\n%s\nwant\n%s", tc.name, strings.Join(calls, "\n"), want)
		}
	}
}

// A handler runs once per change, with the data on stdin and the index in
// CONSUL_INDEX: not when the wait passes with the index unchanged, not
// when the index moves and the data does not.
func TestWatchHandler(t *testing.T) {
	f := newFakeKV(t)
	f.defaultWait = 50 * time.Millisecond // the agent's wait passes often
	f.set("cfg", "v1", 0)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	b := startCLI(t, "", testPacing, "watch", "-http-addr="+f.addr(), "-type=key", "-key=cfg",
		fmt.Sprintf(`{ echo "$CONSUL_INDEX"; cat; } >> %s`, log))
	runs := func() []string {
		raw, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		if len(lines) == 1 && lines[0] == "" {
			return nil
		}
		return lines
	}
	// blocksOn reports whether the watch has asked, n times, to block on
	// index i: it has handled the answer that gave it.
	blocksOn := func(i uint64, n int) func() bool {
		return func() bool {
			k := 0
			for _, c := range f.calls() {
				if c.path == "/v1/kv/cfg" && c.query == "index="+strconv.FormatUint(i, 10) {
					k++
				}
			}
			return k >= n
		}
	}
	pairJSON := func() string {
		p := f.get("cfg")
		b, _ := json.Marshal([]*consulapi.KVPair{p})
		return string(b[1 : len(b)-1])
	}

	idx := f.currentIndex()
	first := pairJSON()
	eventually(t, "the first run", func() bool { return len(runs()) == 2 })
	// The wait passes three times with nothing new: no run.
	eventually(t, "three unchanged answers", blocksOn(idx, 3))
	// The index moves, the key does not change: no run.
	moved := f.touch()
	eventually(t, "the moved index", blocksOn(moved, 2))
	if got := runs(); len(got) != 2 {
		t.Fatalf("runs %q: the handler ran without a change", got)
	}
	f.set("cfg", "v2", 0)
	second, idx2 := pairJSON(), f.currentIndex()
	eventually(t, "the second run", func() bool { return len(runs()) == 4 })
	f.deleteKey("cfg")
	idx3 := f.currentIndex()
	eventually(t, "the third run", func() bool { return len(runs()) == 6 })
	b.shutdown()
	if r := b.wait(t); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("%v", r)
	}
	want := []string{
		strconv.FormatUint(idx, 10), consulEncode[*consulapi.KVPair](t, first),
		strconv.FormatUint(idx2, 10), consulEncode[*consulapi.KVPair](t, second),
		strconv.FormatUint(idx3, 10), "null",
	}
	if got := runs(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A handler that fails ends the watch with exit 1.
func TestWatchHandlerFails(t *testing.T) {
	f := newFakeKV(t)
	f.setView("/v1/catalog/services", catalogServicesJSON)
	b := startCLI(t, "", testPacing, "watch", "-http-addr="+f.addr(), "-type=services", "cat >/dev/null; exit 4")
	if r := b.wait(t); r.code != 1 || r.stderr != "Error executing handler: exit status 4\n" {
		t.Errorf("%v", r)
	}
	b = startCLI(t, "", testPacing, "watch", "-http-addr="+f.addr(), "-type=services", "-shell=false", "/nonexistent/h")
	if r := b.wait(t); r.code != 1 ||
		r.stderr != "Error starting handler: fork/exec /nonexistent/h: no such file or directory\n" {
		t.Errorf("no such handler: %v", r)
	}
}

// A stop while the handler runs stops the handler too.
func TestWatchShutdownStopsHandler(t *testing.T) {
	f := newFakeKV(t)
	f.setView("/v1/catalog/services", catalogServicesJSON)
	dir := t.TempDir()
	log, pids := filepath.Join(dir, "log"), filepath.Join(dir, "pids")
	b := startCLI(t, "", testPacing, "watch", "-http-addr="+f.addr(), "-type=services",
		fmt.Sprintf("echo $$ >> %s; sleep 60 & echo $! >> %s; wait; echo finished >> %s", pids, pids, log))
	eventually(t, "the handler", func() bool { return len(readLines(t, pids)) == 2 })
	b.shutdown()
	if r := b.wait(t); r.code != 0 || r.stderr != "" {
		t.Errorf("%v", r)
	}
	for _, s := range readLines(t, pids) {
		pid, _ := strconv.Atoi(s)
		eventually(t, "process "+s+" to be gone", func() bool { return processGone(pid) })
	}
	if lines := readLines(t, log); len(lines) != 0 {
		t.Errorf("the handler went on: %v", lines)
	}
}

// step is one scripted answer.
type step struct {
	status int
	index  uint64
	body   string
}

// scriptedAPI answers the reads of path with the steps in turn, then
// blocks until the client gives up; it records each read's query.
func scriptedAPI(t *testing.T, path string, steps []step) (*fakeAPI, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var queries []string
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status/leader" {
			io.WriteString(w, `"127.0.0.1:8300"`)
			return
		}
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		n := len(queries)
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		if n >= len(steps) {
			<-r.Context().Done()
			return
		}
		s := steps[n]
		w.Header().Set("X-Consul-Index", strconv.FormatUint(s.index, 10))
		if s.status != 0 {
			http.Error(w, s.body, s.status)
			return
		}
		io.WriteString(w, s.body)
	})
	return api, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), queries...)
	}
}

// An error is logged as Consul's watch logs it, backs off (5s, Consul's
// plan) and starts over without an index; the next answer is handed over
// even if unchanged, as Consul's plan does. An index that moves with the
// data unchanged is not handed over.
func TestWatchErrors(t *testing.T) {
	api, queries := scriptedAPI(t, "/v1/catalog/services", []step{
		{index: 10, body: `{"a":[]}`},
		{status: 500, body: "No cluster leader"},
		{index: 10, body: `{"a":[]}`}, // after an error: handed over again
		{index: 12, body: `{"a":[]}`}, // moved, unchanged: not
		{index: 13, body: `{"b":[]}`},
	})
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	b := startCLI(t, "", testPacing, "watch", "-http-addr="+api.addr(), "-type=services", "cat >> "+log)
	eventually(t, "all the answers", func() bool { return len(queries()) == 6 })
	b.shutdown()
	r := b.wait(t)
	if r.code != 0 || !strings.Contains(r.stderr, `[ERROR] watch: Watch errored: type=services error="Unexpected response code: 500 (No cluster leader)" retry=5s`) {
		t.Errorf("%v", r)
	}
	want := []string{"", "index=10", "", "index=10", "index=12", "index=13"}
	if got := queries(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("queries %q, want %q", got, want)
	}
	if got := readLines(t, log); strings.Join(got, " ") != `{"a":[]} {"a":[]} {"b":[]}` {
		t.Errorf("handed over %q", got)
	}
}

func TestWatchArguments(t *testing.T) {
	f := newFakeKV(t)
	for _, tc := range []struct {
		args   []string
		stderr string
		usage  bool
	}{
		{nil, "Watch type must be specified\n\nUsage: beacon watch", true},
		{[]string{"-type=bogus"}, "Unsupported watch type: bogus\n", false},
		{[]string{"-type=key"}, "Must specify a single key to watch\n", false},
		{[]string{"-type=keyprefix"}, "Must specify a single prefix to watch\n", false},
		{[]string{"-type=service"}, "Must specify a single service to watch\n", false},
		{[]string{"-type=checks", "-service=a", "-state=passing"}, "Cannot specify service and state\n", false},
		{[]string{"-type=checks", "-state=sad"}, "Unsupported state: sad\n", false},
		{[]string{"-type=key", "-key=a", "-prefix=b", "-service=c"}, "Invalid parameters: [prefix service]\n", false},
		{[]string{"-type=services", "-tag=a"}, "Invalid parameters: [tag]\n", false},
		{[]string{"-type=key", "-key=a", "-name=deploy"}, "Invalid parameters: [name]\n", false},
		{[]string{"-type=event", "-stale"}, "Invalid parameters: [stale]\n", false}, // events are the agent's own
		{[]string{"-type=key", "-key=a", "-filter=x"}, "Invalid parameters: [filter]\n", false},
		{[]string{"-type=service", "-service=a", "-passingonly=maybe"},
			"Failed to parse passingonly flag: strconv.ParseBool: parsing \"maybe\": invalid syntax\n", false},
		{[]string{"-type=connect_roots"}, "Type connect_roots is not supported in the CLI tool\n", false},
		{[]string{"-type=connect_leaf", "-service=a"}, "Type connect_leaf is not supported in the CLI tool\n", false},
	} {
		r := runCLI(append([]string{"watch", "-http-addr=" + f.addr()}, tc.args...)...)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, tc.stderr) || (!tc.usage && r.stderr != tc.stderr) {
			t.Errorf("%q: %v", tc.args, r)
		}
	}
	if n := len(f.calls()); n != 0 {
		t.Errorf("bad arguments made %d calls", n)
	}
	api := routedAPI(t, map[string]reply{"GET /v1/status/leader": {http.StatusInternalServerError, "boom"}})
	if r := runCLI("watch", "-http-addr="+api.addr(), "-type=services"); r.code != 1 ||
		r.stderr != "Error querying Consul agent: Unexpected response code: 500 (boom)\n" {
		t.Errorf("agent fails: %v", r)
	}
}
