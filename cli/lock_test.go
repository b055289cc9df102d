package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// syncBuffer is a buffer a running command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testPacing is fast where Consul waits seconds; the lock's own waits
// (15s reads, 15s TTL) stay Consul's unless a test sets them.
var testPacing = pacing{monitorRetry: 20 * time.Millisecond, killGrace: 300 * time.Millisecond, sessionTTL: "15s"}

// bgRun is a command running in the background, stopped (as by SIGTERM)
// by shutdown.
type bgRun struct {
	stdout, stderr syncBuffer
	shutdown       context.CancelFunc
	done           chan struct{}
	code           int
}

// wait waits for the command to end and returns its result.
func (b *bgRun) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the command did not end; stdout:\n%s\nstderr:\n%s", b.stdout.String(), b.stderr.String())
	}
	return result{b.code, b.stdout.String(), b.stderr.String()}
}

func (b *bgRun) running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// startCLI runs the CLI in the background with stdin and the pacing; the
// test's end stops it and waits for it.
func startCLI(t *testing.T, stdin string, p pacing, args ...string) *bgRun {
	t.Helper()
	return startEnv(t, &env{stdin: strings.NewReader(stdin), timeouts: defaultTimeouts, pace: p}, args...)
}

// startEnv runs the CLI in the background with e, whose outputs and
// shutdown it sets (and testPacing and an empty environment, unless e has
// its own).
func startEnv(t *testing.T, e *env, args ...string) *bgRun {
	t.Helper()
	shutdown, cancel := context.WithCancel(context.Background())
	b := &bgRun{shutdown: cancel, done: make(chan struct{})}
	e.stdout, e.stderr, e.shutdown = &b.stdout, &b.stderr, shutdown
	if e.pace == (pacing{}) {
		e.pace = testPacing
	}
	if e.getenv == nil {
		e.getenv = func(string) string { return "" }
	}
	go func() {
		defer close(b.done)
		b.code = run(e, args)
	}()
	t.Cleanup(func() {
		b.shutdown()
		<-b.done
	})
	return b
}

func readLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func touch(t *testing.T, file string) {
	t.Helper()
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// gatedChild is a child that logs its entry, waits for the gate file, and
// logs its exit.
func gatedChild(log, gate string) string {
	return fmt.Sprintf("echo enter >> %s; while [ ! -e %s ]; do sleep 0.01; done; echo exit >> %s", log, gate, log)
}

// acquireWaits matches a contender's blocking read while it waits for the
// lock (not a holder's monitor, which reads consistently).
func acquireWaits(path string) func(string, map[string][]string) bool {
	return func(p string, q map[string][]string) bool {
		_, consistent := q["consistent"]
		return p == path && q["index"] != nil && q["wait"] != nil && !consistent
	}
}

// maxConcurrent is the most children inside at once, from an enter/exit
// log.
func maxConcurrent(lines []string) int {
	n, most := 0, 0
	for _, l := range lines {
		if l == "enter" {
			n++
		} else {
			n--
		}
		most = max(most, n)
	}
	return most
}

// The exact calls of one uncontended run, and what it leaves: nothing.
// The fake's index starts at 1 and every write moves it by one, so the
// check-and-set indexes are known.
func TestLockRequests(t *testing.T) {
	const (
		id        = "5e551011-0000-4000-8000-000000000001"
		lockFlags = "3304740253564472344"
		semFlags  = "16210313421097356768"
	)
	for _, tc := range []struct {
		name   string
		args   []string
		calls  []string
		bodies map[int]string
	}{
		{
			name: "lock",
			args: []string{"/svc/web", "true"},
			calls: []string{
				"GET /v1/agent/self",
				"PUT /v1/session/create",
				"GET /v1/kv/svc/web/.lock?wait=15000ms",
				"PUT /v1/kv/svc/web/.lock?acquire=" + id + "&flags=" + lockFlags,
				"PUT /v1/kv/svc/web/.lock?flags=" + lockFlags + "&release=" + id,
				"GET /v1/kv/svc/web/.lock",
				"DELETE /v1/kv/svc/web/.lock?cas=4",
				"PUT /v1/session/destroy/" + id,
			},
			bodies: map[int]string{1: `{"Name":"Consul lock for 'true' at 'svc/web'","TTL":"15s"}`, 3: "", 4: ""},
		},
		{
			name: "semaphore",
			args: []string{"-n=2", "-name=deploy", "-datacenter=dc1", "svc/web", "true"},
			calls: []string{
				"GET /v1/agent/self?dc=dc1",
				"PUT /v1/session/create?dc=dc1",
				"PUT /v1/kv/svc/web/" + id + "?acquire=" + id + "&dc=dc1&flags=" + semFlags,
				"GET /v1/kv/svc/web?dc=dc1&recurse=&wait=15000ms",
				"PUT /v1/kv/svc/web/.lock?cas=0&dc=dc1&flags=" + semFlags,
				"GET /v1/kv/svc/web/.lock?dc=dc1",
				"PUT /v1/kv/svc/web/.lock?cas=4&dc=dc1&flags=" + semFlags,
				"DELETE /v1/kv/svc/web/" + id + "?dc=dc1",
				"GET /v1/kv/svc/web?dc=dc1&recurse=",
				"DELETE /v1/kv/svc/web/.lock?cas=5&dc=dc1",
				"PUT /v1/session/destroy/" + id + "?dc=dc1",
			},
			bodies: map[int]string{
				1: `{"Behavior":"delete","Name":"deploy","TTL":"15s"}`,
				2: "",
				4: `{"Limit":2,"Holders":{"` + id + `":true}}`,
				6: `{"Limit":2,"Holders":{}}`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKV(t)
			b := startCLI(t, "", testPacing, append([]string{"lock", "-http-addr=" + f.addr()}, tc.args...)...)
			if r := b.wait(t); r.code != 0 || r.stdout != "" || r.stderr != "" {
				t.Fatalf("%v", r)
			}
			var calls []fakeCall
			var got []string
			for _, c := range f.calls() {
				// The monitor reads when it gets to, concurrently.
				if strings.Contains(c.query, "consistent=") {
					if !strings.HasPrefix(c.path, "/v1/kv/svc/web") || c.method != "GET" {
						t.Errorf("monitor call %s", c)
					}
					continue
				}
				calls = append(calls, c)
				got = append(got, c.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.calls, "\n") {
				t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.calls, "\n"))
			}
			for i, want := range tc.bodies {
				if strings.TrimSuffix(calls[i].body, "\n") != want { // Consul's client ends JSON with a newline
					t.Errorf("body of %s is %q, want %q", calls[i], calls[i].body, want)
				}
			}
			if ids := f.sessionIDs(); len(ids) != 0 {
				t.Errorf("sessions left: %v", ids)
			}
			if p := f.get("svc/web/.lock"); p != nil {
				t.Errorf("the lock key is left: %+v", p)
			}
		})
	}
}

// Two runs on one prefix never hold it together; the second gets it once
// the first child exits.
func TestLockMutualExclusion(t *testing.T) {
	f := newFakeKV(t)
	dir := t.TempDir()
	log, gate := filepath.Join(dir, "log"), filepath.Join(dir, "gate")
	child := gatedChild(log, gate)
	a := startCLI(t, "", testPacing, "lock", "-http-addr="+f.addr(), "svc", child)
	b := startCLI(t, "", testPacing, "lock", "-http-addr="+f.addr(), "svc", child)

	// One child is in, and the other contender has seen the lock held and
	// is waiting for it to change.
	eventually(t, "one holder and one waiting contender", func() bool {
		return len(readLines(t, log)) == 1 && f.waiting(acquireWaits("/v1/kv/svc/.lock")) == 1
	})
	if lines := readLines(t, log); len(lines) != 1 {
		t.Fatalf("log %v: both hold the lock", lines)
	}
	touch(t, gate)
	for _, r := range []result{a.wait(t), b.wait(t)} {
		if r.code != 0 || r.stderr != "" {
			t.Errorf("run: %v", r)
		}
	}
	if lines := readLines(t, log); strings.Join(lines, " ") != "enter exit enter exit" {
		t.Errorf("log %v, want the children one after the other", lines)
	}
	if ids := f.sessionIDs(); len(ids) != 0 {
		t.Errorf("sessions left: %v", ids)
	}
	if p := f.get("svc/.lock"); p != nil {
		t.Errorf("the lock key is left: %+v", p)
	}
}

// With -n 2 and three contenders, two children run and the third waits
// until a slot is free.
func TestSemaphoreLimit(t *testing.T) {
	f := newFakeKV(t)
	dir := t.TempDir()
	log, gate := filepath.Join(dir, "log"), filepath.Join(dir, "gate")
	child := gatedChild(log, gate)
	var runs []*bgRun
	for range 3 {
		runs = append(runs, startCLI(t, "", testPacing, "lock", "-http-addr="+f.addr(), "-n=2", "svc", child))
	}
	eventually(t, "two holders and one waiting contender", func() bool {
		return len(readLines(t, log)) == 2 && f.waiting(acquireWaits("/v1/kv/svc")) == 1
	})
	if lines := readLines(t, log); len(lines) != 2 {
		t.Fatalf("log %v: more than two hold the semaphore", lines)
	}
	var holders struct {
		Limit   int
		Holders map[string]bool
	}
	if p := f.get("svc/.lock"); p == nil || p.Flags != consulapi.SemaphoreFlagValue || json.Unmarshal(p.Value, &holders) != nil ||
		holders.Limit != 2 || len(holders.Holders) != 2 {
		t.Errorf("the semaphore's lock key: %+v", p)
	}
	touch(t, gate)
	for _, r := range runs {
		if r := r.wait(t); r.code != 0 || r.stderr != "" {
			t.Errorf("run: %v", r)
		}
	}
	lines := readLines(t, log)
	if len(lines) != 6 || maxConcurrent(lines) != 2 {
		t.Errorf("log %v: want three children, at most two at once", lines)
	}
	if ids := f.sessionIDs(); len(ids) != 0 {
		t.Errorf("sessions left: %v", ids)
	}
	f.mu.Lock()
	left := len(f.kv)
	f.mu.Unlock()
	if left != 0 {
		t.Errorf("%d keys left under the prefix", left)
	}
}

// processGone reports whether pid has exited (a zombie no one reaped
// counts as gone).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// A lost lock stops the child and everything it started: SIGTERM, then
// SIGKILL for a child that ignores it.
func TestLockLost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		trap   string
		lose   func(f *fakeKV)
		signal string
	}{
		{name: "key deleted, child ignores SIGTERM", trap: "trap '' TERM; ", signal: "signal: killed",
			lose: func(f *fakeKV) { f.deleteKey("svc/.lock") }},
		{name: "session invalidated", signal: "signal: terminated",
			lose: func(f *fakeKV) { f.invalidate(f.sessionIDs()[0]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKV(t)
			dir := t.TempDir()
			log, pids := filepath.Join(dir, "log"), filepath.Join(dir, "pids")
			child := fmt.Sprintf("%secho $$ >> %s; sleep 60 & echo $! >> %s; echo started >> %s; wait; echo finished >> %s",
				tc.trap, pids, pids, log, log)
			b := startCLI(t, "", testPacing, "lock", "-verbose", "-http-addr="+f.addr(), "svc", child)
			eventually(t, "the child and its monitor", func() bool {
				return len(readLines(t, log)) == 1 && len(readLines(t, pids)) == 2 &&
					f.waiting(func(p string, q map[string][]string) bool { return q["consistent"] != nil }) == 1
			})
			tc.lose(f)
			r := b.wait(t)
			if r.code != 0 || !strings.Contains(r.stdout, "Lock lost, killing child") ||
				!strings.Contains(r.stderr, "Error running handler: "+tc.signal) {
				t.Errorf("%v", r)
			}
			if tc.trap != "" && !strings.Contains(r.stdout, "Child did not exit after grace period of 300ms\nKilling child pid") {
				t.Errorf("no SIGKILL after the grace period: %v", r)
			}
			if lines := readLines(t, log); len(lines) != 1 {
				t.Errorf("log %v: the child went on", lines)
			}
			for _, s := range readLines(t, pids) {
				pid, _ := strconv.Atoi(s)
				eventually(t, "process "+s+" to be gone", func() bool { return processGone(pid) })
			}
			if ids := f.sessionIDs(); len(ids) != 0 {
				t.Errorf("sessions left: %v", ids)
			}
		})
	}
}

// SIGINT or SIGTERM to lock stops the child and releases the lock.
func TestLockShutdown(t *testing.T) {
	f := newFakeKV(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	b := startCLI(t, "", testPacing, "lock", "-http-addr="+f.addr(), "svc",
		fmt.Sprintf("echo started >> %s; sleep 60; echo finished >> %s", log, log))
	eventually(t, "the child", func() bool { return len(readLines(t, log)) == 1 })
	b.shutdown()
	r := b.wait(t)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "Error running handler: signal: terminated") {
		t.Errorf("%v", r)
	}
	if lines := readLines(t, log); len(lines) != 1 {
		t.Errorf("log %v", lines)
	}
	if ids := f.sessionIDs(); len(ids) != 0 || f.get("svc/.lock") != nil {
		t.Errorf("left: sessions %v, key %+v", ids, f.get("svc/.lock"))
	}

	// Stopped while waiting for the lock: nothing runs, exit 1.
	holder := f.createSession("other", "")
	f.mu.Lock()
	f.kv["svc/.lock"] = &consulapi.KVPair{Key: "svc/.lock", Flags: consulapi.LockFlagValue, Session: holder, ModifyIndex: f.bump()}
	f.mu.Unlock()
	b = startCLI(t, "", testPacing, "lock", "-http-addr="+f.addr(), "svc", "echo ran >> "+log)
	eventually(t, "the contender to wait", func() bool { return f.waiting(acquireWaits("/v1/kv/svc/.lock")) == 1 })
	b.shutdown()
	r = b.wait(t)
	if r.code != 1 || r.stderr != "Shutdown triggered or timeout during lock acquisition\n" {
		t.Errorf("stopped while waiting: %v", r)
	}
	if ids := f.sessionIDs(); len(ids) != 1 || ids[0] != holder {
		t.Errorf("sessions %v, want only the holder's", ids)
	}
}

// The child's exit code: Consul's lock exits 0 whatever the child did, or
// with -child-exit-code 2 if the child failed.
func TestLockChild(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  []string
		args   []string
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{name: "fails", args: []string{"exit 3"}, code: 0, stderr: "Error running handler: exit status 3\n"},
		{name: "fails, -child-exit-code", flags: []string{"-child-exit-code"}, args: []string{"exit 3"}, code: 2,
			stderr: "Error running handler: exit status 3\n"},
		{name: "succeeds, -child-exit-code", flags: []string{"-child-exit-code"}, args: []string{"true"}},
		{name: "arguments joined for the shell", args: []string{"echo", "a", "b;", "echo", "$CONSUL_LOCK_HELD"},
			stdout: "a b\ntrue\n"},
		{name: "no shell", flags: []string{"-shell=false"}, args: []string{"echo", "a", "b;", "$x"}, stdout: "a b; $x\n"},
		{name: "no shell, no such program", flags: []string{"-shell=false", "-child-exit-code"}, args: []string{"/nonexistent/x"}, code: 2,
			stderr: "Error starting handler: fork/exec /nonexistent/x: no such file or directory\n"},
		{name: "stdin not passed", args: []string{"cat"}, stdin: "hello\n"},
		{name: "stdin passed", flags: []string{"-pass-stdin"}, args: []string{"cat"}, stdin: "hello\n", stdout: "hello\n"},
		{name: "verbose", flags: []string{"-verbose"}, args: []string{"true"}, stdout: "" +
			"Setting up lock at path: svc/.lock\n" +
			"Attempting lock acquisition\n" +
			"Starting handler\n" +
			"Child terminated, releasing lock\n" +
			"Cleanup succeeded\n"},
	} {
		f := newFakeKV(t)
		args := append(append([]string{"lock", "-http-addr=" + f.addr()}, tc.flags...), "svc")
		b := startCLI(t, tc.stdin, testPacing, append(args, tc.args...)...)
		if r := b.wait(t); r.code != tc.code || r.stdout != tc.stdout || r.stderr != tc.stderr {
			t.Errorf("%s: %v\nwant exit %d, stdout %q, stderr %q", tc.name, r, tc.code, tc.stdout, tc.stderr)
		}
		if ids := f.sessionIDs(); len(ids) != 0 {
			t.Errorf("%s: sessions left: %v", tc.name, ids)
		}
	}
}

// -timeout gives up waiting; a key of the other kind, or a semaphore of
// another limit, is an error.
func TestLockAcquisitionFails(t *testing.T) {
	f := newFakeKV(t)
	holder := f.createSession("other", "")
	f.mu.Lock()
	f.kv["held/.lock"] = &consulapi.KVPair{Key: "held/.lock", Flags: consulapi.LockFlagValue, Session: holder, ModifyIndex: f.bump()}
	f.kv["sem/.lock"] = &consulapi.KVPair{Key: "sem/.lock", Flags: consulapi.SemaphoreFlagValue, Value: []byte(`{"Limit":3,"Holders":{}}`),
		ModifyIndex: f.bump()}
	f.mu.Unlock()
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"timeout", []string{"-timeout=300ms", "held"}, "Shutdown triggered or timeout during lock acquisition\n"},
		{"try", []string{"-try=300ms", "held"}, "Shutdown triggered or timeout during lock acquisition\n"},
		{"semaphore timeout", []string{"-n=1", "-timeout=300ms", "held"}, "Shutdown triggered or timeout during lock acquisition\n"},
		{"lock on a semaphore", []string{"sem"}, "Lock acquisition failed: Existing key does not match lock use\n"},
		{"semaphore on a lock", []string{"-n=2", "held"}, "Lock acquisition failed: Existing key does not match semaphore use\n"},
		{"limits differ", []string{"-n=2", "sem"}, "Lock acquisition failed: semaphore limit conflict (lock: 3, local: 2)\n"},
	} {
		start := time.Now()
		b := startCLI(t, "", testPacing, append([]string{"lock", "-http-addr=" + f.addr()}, append(tc.args, "echo ran")...)...)
		r := b.wait(t)
		if r.code != 1 || r.stderr != tc.stderr || r.stdout != "" {
			t.Errorf("%s: %v", tc.name, r)
		}
		if strings.Contains(tc.args[0], "300ms") && time.Since(start) < 300*time.Millisecond {
			t.Errorf("%s: gave up after %v", tc.name, time.Since(start))
		}
		if ids := f.sessionIDs(); len(ids) != 1 {
			t.Errorf("%s: sessions %v, want only the holder's", tc.name, ids)
		}
	}
	if f.get("held/.lock").Session != holder {
		t.Error("the holder lost its lock")
	}
}

func TestLockArguments(t *testing.T) {
	f := newFakeKV(t)
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"-n=0", "svc", "true"}, "Lock holder limit must be positive\n"},
		{[]string{"svc"}, "Key prefix and child command must be specified\n"},
		{nil, "Key prefix and child command must be specified\n"},
		{[]string{"-timeout=-1s", "svc", "true"}, "Timeout must be positive\n"},
		{[]string{"-monitor-retry=-1", "svc", "true"}, "Number for 'monitor-retry' must be >= 0\n"},
	} {
		r := runCLI(append([]string{"lock", "-http-addr=" + f.addr()}, tc.args...)...)
		if r.code != 1 || r.stderr != tc.stderr {
			t.Errorf("%q: %v", tc.args, r)
		}
	}
	if n := len(f.calls()); n != 0 {
		t.Errorf("bad arguments made %d calls", n)
	}
	if r := runCLI("lock", "-http-addr="+f.addr(), "-n=2", "/", "true"); r.code != 1 || r.stderr != "Lock setup failed: missing prefix\n" {
		t.Errorf("semaphore without a prefix: %v", r)
	}
	api := routedAPI(t, map[string]reply{"GET /v1/agent/self": {http.StatusForbidden, "Permission denied"}})
	if r := runCLI("lock", "-http-addr="+api.addr(), "svc", "true"); r.code != 1 ||
		r.stderr != "Error querying Consul agent: Unexpected response code: 403 (Permission denied)\n" {
		t.Errorf("agent refuses: %v", r)
	}
	if r := runCLI("lock", "-http-addr="+closedAddr(t), "svc", "true"); r.code != 1 ||
		!strings.Contains(r.stderr, "connection refused") {
		t.Errorf("no agent: %v", r)
	}
}

// The session is renewed every half TTL while the child runs.
func TestLockSessionRenewed(t *testing.T) {
	f := newFakeKV(t)
	dir := t.TempDir()
	log, gate := filepath.Join(dir, "log"), filepath.Join(dir, "gate")
	p := testPacing
	p.sessionTTL = "300ms"
	b := startCLI(t, "", p, "lock", "-http-addr="+f.addr(), "svc", gatedChild(log, gate))
	eventually(t, "the child", func() bool { return len(readLines(t, log)) == 1 })
	id := f.sessionIDs()[0]
	eventually(t, "two renewals", func() bool { return f.renewCount(id) >= 2 })
	touch(t, gate)
	if r := b.wait(t); r.code != 0 || r.stderr != "" {
		t.Errorf("%v", r)
	}
	if c := f.calls()[1]; !strings.Contains(c.body, `"TTL":"300ms"`) {
		t.Errorf("create body %s", c.body)
	}
	n := f.renewCount(id)
	for _, c := range f.calls() {
		if c.method == "PUT" && c.path == "/v1/session/renew/"+id {
			n--
		}
	}
	if n != 0 {
		t.Errorf("renewals are not PUT /v1/session/renew/%s", id)
	}
}

// The monitor rides out -monitor-retry failed reads in a row; one more and
// the lock is taken for lost.
func TestLockMonitorRetries(t *testing.T) {
	f := newFakeKV(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	b := startCLI(t, "", testPacing, "lock", "-verbose", "-monitor-retry=2", "-http-addr="+f.addr(), "svc",
		fmt.Sprintf("echo started >> %s; sleep 60", log))
	monitors := func(p string, q map[string][]string) bool { return q["consistent"] != nil && q["index"] != nil }
	consistentReads := func() int {
		n := 0
		for _, c := range f.calls() {
			if strings.Contains(c.query, "consistent=") {
				n++
			}
		}
		return n
	}
	eventually(t, "the monitor", func() bool { return len(readLines(t, log)) == 1 && f.waiting(monitors) == 1 })
	before := consistentReads()
	f.mu.Lock()
	f.failConsistent = 2
	f.bump()
	f.mu.Unlock()
	// The wake-up read, two failures, and the read that succeeds and
	// blocks again.
	eventually(t, "the monitor to recover", func() bool {
		return consistentReads() >= before+4 && f.waiting(monitors) == 1
	})
	if !b.running() || strings.Contains(b.stdout.String(), "Lock lost") {
		t.Fatalf("the lock was given up after 2 failures: %s", b.stdout.String())
	}
	f.mu.Lock()
	f.failConsistent = 3
	f.bump()
	f.mu.Unlock()
	r := b.wait(t)
	if r.code != 0 || !strings.Contains(r.stdout, "Lock lost, killing child") {
		t.Errorf("%v", r)
	}
}

// beacon's lock and Consul's own api.Lock and api.Semaphore exclude each
// other on one prefix: same keys, flags and holder records.
func TestLockInteroperatesWithConsul(t *testing.T) {
	f := newFakeKV(t)
	client, err := consulapi.NewClient(&consulapi.Config{Address: f.addr()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	t.Run("lock", func(t *testing.T) {
		log, gate := filepath.Join(dir, "lock.log"), filepath.Join(dir, "lock.gate")
		theirs, err := client.LockOpts(&consulapi.LockOptions{Key: "svc/.lock"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := theirs.Lock(nil); err != nil {
			t.Fatal(err)
		}
		b := startCLI(t, "", testPacing, "lock", "-http-addr="+f.addr(), "svc", gatedChild(log, gate))
		eventually(t, "ours to wait", func() bool { return f.waiting(acquireWaits("/v1/kv/svc/.lock")) == 1 })
		if len(readLines(t, log)) != 0 {
			t.Fatal("ours runs while Consul's holds the lock")
		}
		if err := theirs.Unlock(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "ours to hold it", func() bool { return len(readLines(t, log)) == 1 })

		got := make(chan error, 1)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			_, err := theirs.Lock(stop)
			got <- err
		}()
		eventually(t, "theirs to wait", func() bool { return f.waiting(acquireWaits("/v1/kv/svc/.lock")) == 1 })
		select {
		case err := <-got:
			t.Fatalf("Consul's lock acquired while ours holds it (%v)", err)
		default:
		}
		touch(t, gate)
		if r := b.wait(t); r.code != 0 || r.stderr != "" {
			t.Errorf("%v", r)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Consul's lock was not acquired after ours was released")
		}
		if err := theirs.Unlock(); err != nil {
			t.Error(err)
		}
		if err := theirs.Destroy(); err != nil {
			t.Error(err)
		}
	})

	t.Run("semaphore", func(t *testing.T) {
		log, gate := filepath.Join(dir, "sem.log"), filepath.Join(dir, "sem.gate")
		theirs, err := client.SemaphorePrefix("sem", 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := theirs.Acquire(nil); err != nil {
			t.Fatal(err)
		}
		a := startCLI(t, "", testPacing, "lock", "-n=2", "-http-addr="+f.addr(), "sem", gatedChild(log, gate))
		b := startCLI(t, "", testPacing, "lock", "-n=2", "-http-addr="+f.addr(), "sem", gatedChild(log, gate))
		eventually(t, "one of ours in, one waiting", func() bool {
			return len(readLines(t, log)) == 1 && f.waiting(acquireWaits("/v1/kv/sem")) == 1
		})
		if err := theirs.Release(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "both of ours in", func() bool { return len(readLines(t, log)) == 2 })
		touch(t, gate)
		for _, r := range []result{a.wait(t), b.wait(t)} {
			if r.code != 0 || r.stderr != "" {
				t.Errorf("%v", r)
			}
		}
		if err := theirs.Destroy(); err != nil {
			t.Error(err)
		}
	})
	eventually(t, "every session to end", func() bool { return len(f.sessionIDs()) == 0 })
}

// lock and watch leave no goroutine behind: the monitor, the renewal, the
// signal listener, the child's waiter, the HTTP client's connections.
func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newFakeKV(t)
	for _, args := range [][]string{{"lock", "svc", "true"}, {"lock", "-n=3", "svc2", "true"}} {
		b := startCLI(t, "", testPacing, append([]string{args[0], "-http-addr=" + f.addr()}, args[1:]...)...)
		if r := b.wait(t); r.code != 0 {
			t.Fatalf("%q: %v", args, r)
		}
	}
	f.setView("/v1/catalog/services", catalogServicesJSON)
	b := startCLI(t, "", testPacing, "watch", "-http-addr="+f.addr(), "-type=services", "cat")
	eventually(t, "the watch to block", func() bool {
		return f.waiting(func(string, map[string][]string) bool { return true }) == 1
	})
	b.shutdown()
	b.wait(t)
	f.srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
