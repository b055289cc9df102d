package cli

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const fixture = "testdata/snapshot.tgz" // a real archive: 3 nodes, 2 services, 1 check, at index 7

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runWith runs the CLI with an environment of vars and the given timeouts.
func runWith(vars map[string]string, to timeouts, args ...string) result {
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return vars[k] },
		timeouts: to, pace: defaultPacing}
	code := run(e, args)
	return result{code, stdout.String(), stderr.String()}
}

func runCLI(args ...string) result { return runWith(nil, defaultTimeouts, args...) }

// fakeAPI is an agent's HTTP API as the commands see it.
type fakeAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	method, path, query, contentType string
	length                           int64
	body                             []byte
	// token is the request's ACL token.
	token string
}

func newFakeAPI(t *testing.T, handler http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"),
			r.ContentLength, body, r.Header.Get("X-Consul-Token")})
		f.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// addr is the API's host:port, as -http-addr takes it.
func (f *fakeAPI) addr() string { return f.Listener.Addr().String() }

// closedAddr is an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const peersJSON = `{"Servers":[
 {"ID":"5b8b0f0c-6a4e-4b1e-9c7f-0a1b2c3d4e5f","Node":"alice","Address":"10.0.1.8:8300","Leader":true,"ProtocolVersion":"3","Voter":true,"LastIndex":120},
 {"ID":"e35bde83-4e9c-434f-a6ef-453f44ee21ea","Node":"(unknown)","Address":"10.0.1.6:8300","Leader":false,"ProtocolVersion":"3","Voter":false,"LastIndex":117}
],"Index":12}`

func TestListPeers(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/operator/raft/configuration" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, peersJSON)
	})
	want := "" +
		"Node       ID                                    Address        State     Voter  RaftProtocol  Commit Index  Trails Leader By\n" +
		"alice      5b8b0f0c-6a4e-4b1e-9c7f-0a1b2c3d4e5f  10.0.1.8:8300  leader    true   3             120           -\n" +
		"(unknown)  e35bde83-4e9c-434f-a6ef-453f44ee21ea  10.0.1.6:8300  follower  false  3             117           3 commits\n"

	for name, r := range map[string]result{
		"flag":                runCLI("operator", "raft", "list-peers", "-http-addr="+api.addr()),
		"flag with a URL":     runCLI("operator", "raft", "list-peers", "-http-addr", api.URL),
		"environment":         runWith(map[string]string{HTTPAddrEnv: api.addr()}, defaultTimeouts, "operator", "raft", "list-peers"),
		"flag over env":       runWith(map[string]string{HTTPAddrEnv: closedAddr(t)}, defaultTimeouts, "operator", "raft", "list-peers", "-http-addr="+api.addr()),
		"environment, scheme": runWith(map[string]string{HTTPAddrEnv: "http://" + api.addr() + "/"}, defaultTimeouts, "operator", "raft", "list-peers"),
	} {
		if r.code != 0 || r.stdout != want || r.stderr != "" {
			t.Errorf("%s: %v\nwant stdout:\n%s", name, r, want)
		}
	}
}

func TestHTTPAddrDefault(t *testing.T) {
	r := runCLI("operator", "raft", "list-peers", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, `(default "127.0.0.1:8500")`) {
		t.Errorf("help without %s: %v", HTTPAddrEnv, r)
	}
	r = runWith(map[string]string{HTTPAddrEnv: "10.9.8.7:1234"}, defaultTimeouts, "operator", "raft", "list-peers", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, `(default "10.9.8.7:1234")`) {
		t.Errorf("help with %s set: %v", HTTPAddrEnv, r)
	}
}

func TestAPIErrors(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
	})
	r := runCLI("operator", "raft", "list-peers", "-http-addr="+api.addr())
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "Error getting peers: Unexpected response code: 500 (No cluster leader)") {
		t.Errorf("500: %v", r)
	}

	down := closedAddr(t)
	r = runCLI("operator", "raft", "list-peers", "-http-addr="+down)
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, HTTPAddrEnv) {
		t.Errorf("nothing listening: %v", r)
	}

	garbage := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") })
	r = runCLI("operator", "raft", "list-peers", "-http-addr="+garbage.addr())
	if r.code != 1 || !strings.Contains(r.stderr, "decoding the agent's answer") {
		t.Errorf("not JSON: %v", r)
	}

	for _, addr := range []string{"ftp://127.0.0.1:8500", "http://", "127.0.0.1:8500/v1", "http://[::1"} {
		r = runCLI("operator", "raft", "list-peers", "-http-addr="+addr)
		if r.code != 1 || !strings.Contains(r.stderr, "invalid -http-addr") || !strings.Contains(r.stderr, "Usage:") {
			t.Errorf("-http-addr=%s: %v", addr, r)
		}
	}
	if got := len(api.recorded()); got != 1 {
		t.Errorf("the API saw %d requests, want 1", got)
	}
}

func TestRemovePeer(t *testing.T) {
	var fail bool
	var mu sync.Mutex
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, `id "nope" was not found in the Raft configuration`, http.StatusInternalServerError)
		}
	})
	r := runCLI("operator", "raft", "remove-peer", "-http-addr="+api.addr(), "-id=e35bde83")
	if r.code != 0 || r.stdout != "Removed peer with id \"e35bde83\"\n" {
		t.Errorf("-id: %v", r)
	}
	r = runCLI("operator", "raft", "remove-peer", "-http-addr="+api.addr(), "-address=10.0.1.6:8300")
	if r.code != 0 || r.stdout != "Removed peer with address \"10.0.1.6:8300\"\n" {
		t.Errorf("-address: %v", r)
	}
	got := api.recorded()
	if len(got) != 2 || got[0].method != http.MethodDelete || got[0].path != "/v1/operator/raft/peer" ||
		got[0].query != "id=e35bde83" || got[1].query != "address=10.0.1.6%3A8300" {
		t.Errorf("requests %+v", got)
	}

	for _, args := range [][]string{{}, {"-id=a", "-address=b"}, {"-id=a", "extra"}, {"-nope"}} {
		r := runCLI(append([]string{"operator", "raft", "remove-peer", "-http-addr=" + api.addr()}, args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "Error") || !strings.Contains(r.stderr, "Usage: beacon operator raft remove-peer") {
			t.Errorf("%v: %v", args, r)
		}
	}
	if n := len(api.recorded()); n != 2 {
		t.Errorf("bad arguments reached the API: %d requests", n)
	}

	mu.Lock()
	fail = true
	mu.Unlock()
	r = runCLI("operator", "raft", "remove-peer", "-http-addr="+api.addr(), "-id=nope")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `Error removing peer: Unexpected response code: 500 (id "nope" was not found`) {
		t.Errorf("not found: %v", r)
	}
}

func readFixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dirEntries lists dir, to catch temporary files left behind.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestSnapshotSave(t *testing.T) {
	archive := readFixture(t)
	var mu sync.Mutex
	serve := archive
	status := http.StatusOK
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/v1/snapshot" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		if status != http.StatusOK {
			http.Error(w, "Not the cluster leader; retry", status)
			return
		}
		w.Header().Set("X-Consul-Index", "7")
		w.Write(serve)
	})
	set := func(b []byte, code int) {
		mu.Lock()
		defer mu.Unlock()
		serve, status = b, code
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	r := runCLI("snapshot", "save", "-http-addr="+api.addr(), file)
	if r.code != 0 || r.stdout != "Saved and verified snapshot to index 7\n" {
		t.Fatalf("save: %v", r)
	}
	if got, _ := os.ReadFile(file); !bytes.Equal(got, archive) {
		t.Error("the saved file is not the archive the agent sent")
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("saved file mode %v, %v; want 0600 (it holds the whole catalog)", st.Mode(), err)
	}

	// Failures leave the previous file alone and no temporary files.
	corrupt := append([]byte(nil), archive...)
	corrupt[len(corrupt)/2] ^= 0xff
	for _, tc := range []struct {
		name  string
		body  []byte
		code  int
		error string
	}{
		{"corrupt", corrupt, http.StatusOK, "verifying the snapshot: invalid snapshot archive"},
		{"truncated", archive[:len(archive)-10], http.StatusOK, "verifying the snapshot: invalid snapshot archive"},
		{"not an archive", []byte("hello"), http.StatusOK, "verifying the snapshot: invalid snapshot archive: not a gzip stream"},
		{"agent error", nil, http.StatusInternalServerError, "Unexpected response code: 500 (Not the cluster leader; retry)"},
	} {
		set(tc.body, tc.code)
		r := runCLI("snapshot", "save", "-http-addr="+api.addr(), file)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "Error saving snapshot: "+tc.error) {
			t.Errorf("%s: %v", tc.name, r)
		}
		if got, _ := os.ReadFile(file); !bytes.Equal(got, archive) {
			t.Errorf("%s: a failed save changed the existing file", tc.name)
		}
		if names := dirEntries(t, dir); len(names) != 1 {
			t.Errorf("%s: the directory holds %v", tc.name, names)
		}
	}

	if r := runCLI("snapshot", "save", "-http-addr="+api.addr()); r.code != 1 || !strings.Contains(r.stderr, "file is missing") {
		t.Errorf("no file: %v", r)
	}
	if r := runCLI("snapshot", "save", "-http-addr="+api.addr(), "a", "b"); r.code != 1 || !strings.Contains(r.stderr, "not 2 arguments") {
		t.Errorf("two files: %v", r)
	}
	set(archive, http.StatusOK)
	if r := runCLI("snapshot", "save", "-http-addr="+api.addr(), filepath.Join(dir, "no-such-dir", "x.snap")); r.code != 1 ||
		!strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("unwritable path: %v", r)
	}
}

// An agent that cuts the archive short against its Content-Length.
func TestSnapshotSaveShortBody(t *testing.T) {
	archive := readFixture(t)
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(archive)))
		w.Write(archive[:len(archive)/2])
	})
	dir := t.TempDir()
	r := runCLI("snapshot", "save", "-http-addr="+api.addr(), filepath.Join(dir, "x.snap"))
	if r.code != 1 || !strings.Contains(r.stderr, "receiving the snapshot") {
		t.Errorf("short body: %v", r)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("the directory holds %v", names)
	}
}

func TestSnapshotRestore(t *testing.T) {
	archive := readFixture(t)
	var mu sync.Mutex
	status, msg := http.StatusOK, ""
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, msg, status)
		}
	})
	r := runCLI("snapshot", "restore", "-http-addr="+api.addr(), fixture)
	if r.code != 0 || r.stdout != "Restored snapshot\n" {
		t.Fatalf("restore: %v", r)
	}
	got := api.recorded()
	if len(got) != 1 || got[0].method != http.MethodPut || got[0].path != "/v1/snapshot" ||
		!bytes.Equal(got[0].body, archive) || got[0].length != int64(len(archive)) ||
		got[0].contentType != "application/octet-stream" {
		t.Errorf("request %+v", got)
	}

	mu.Lock()
	status, msg = http.StatusBadRequest, "invalid snapshot archive: checksum mismatch for state.bin: the archive is corrupt"
	mu.Unlock()
	r = runCLI("snapshot", "restore", "-http-addr="+api.addr(), fixture)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "Error restoring snapshot: Unexpected response code: 400 (invalid snapshot archive: checksum mismatch") {
		t.Errorf("rejected: %v", r)
	}

	dir := t.TempDir()
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.snap"), "no such file"},
		{dir, "not a regular file"},
	} {
		r := runCLI("snapshot", "restore", "-http-addr="+api.addr(), tc.file)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: %v", tc.file, r)
		}
	}
	if n := len(api.recorded()); n != 2 {
		t.Errorf("the API saw %d requests, want 2", n)
	}
}

func TestSnapshotInspect(t *testing.T) {
	r := runCLI("snapshot", "inspect", fixture)
	want := "" +
		"ID       2-7-1795606357639\n" +
		"Size     1262\n" +
		"Index    7\n" +
		"Term     2\n" +
		"Version  1\n" +
		"\n" +
		"Table             Rows\n" +
		"nodes             3\n" +
		"services          2\n" +
		"checks            1\n" +
		"sessions          0\n" + // tables the archive predates are listed empty
		"kvs               0\n" +
		"acl-policies      0\n" +
		"acl-tokens        0\n" +
		"coordinates       0\n" +
		"prepared-queries  0\n" +
		"autopilot-config  0\n" +
		"index             3\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("inspect: %v\nwant:\n%s", r, want)
	}

	archive := readFixture(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.snap")
	b := append([]byte(nil), archive...)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI("snapshot", "inspect", corrupt); r.code != 1 || r.stdout != "" ||
		!strings.Contains(r.stderr, "Error inspecting snapshot: invalid snapshot archive") {
		t.Errorf("corrupt: %v", r)
	}
	if r := runCLI("snapshot", "inspect", filepath.Join(dir, "missing")); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing: %v", r)
	}
	// inspect reads locally: it takes no -http-addr.
	if r := runCLI("snapshot", "inspect", "-http-addr=x", fixture); r.code != 1 || !strings.Contains(r.stderr, "flag provided but not defined") {
		t.Errorf("inspect -http-addr: %v", r)
	}
}

// hangingAPI accepts requests and answers none until the test ends.
func hangingAPI(t *testing.T, sendHeaders bool) *fakeAPI {
	t.Helper()
	release := make(chan struct{})
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if sendHeaders {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
		}
		<-release
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	return api
}

func TestTimeouts(t *testing.T) {
	short := timeouts{dial: time.Second, request: 300 * time.Millisecond, idle: 300 * time.Millisecond}

	api := hangingAPI(t, false)
	start := time.Now()
	r := runWith(nil, short, "operator", "raft", "list-peers", "-http-addr="+api.addr())
	if r.code != 1 || !strings.Contains(r.stderr, "did not answer in time") {
		t.Errorf("hanging list-peers: %v", r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("list-peers took %v to give up", d)
	}

	// A snapshot transfer has no overall bound, but a stalled one fails.
	stalled := hangingAPI(t, true)
	dir := t.TempDir()
	start = time.Now()
	r = runWith(nil, short, "snapshot", "save", "-http-addr="+stalled.addr(), filepath.Join(dir, "x.snap"))
	if r.code != 1 || !strings.Contains(r.stderr, "timeout") {
		t.Errorf("stalled save: %v", r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("save took %v to give up", d)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("the directory holds %v", names)
	}
}

// A slow but steady transfer outlives the idle timeout many times over.
func TestSlowTransferIsNotIdle(t *testing.T) {
	archive := readFixture(t)
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(archive)))
		// About 1.6 s in all, a chunk every 25 ms: three times the idle
		// timeout, with a gap of 20 times the pace before a chunk is late.
		for i := 0; i < len(archive); i += 20 {
			w.Write(archive[i:min(i+20, len(archive))])
			w.(http.Flusher).Flush()
			time.Sleep(25 * time.Millisecond)
		}
	})
	to := timeouts{dial: time.Second, request: 100 * time.Millisecond, idle: 500 * time.Millisecond}
	r := runWith(nil, to, "snapshot", "save", "-http-addr="+api.addr(), filepath.Join(t.TempDir(), "x.snap"))
	if r.code != 0 {
		t.Errorf("slow save: %v", r)
	}
}

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 1, "", "Commands:"},
		{[]string{"nope"}, 1, "", `unknown command "nope"`},
		{[]string{"operator"}, 1, "", "Usage: beacon operator <subcommand>"},
		{[]string{"operator", "-h"}, 0, "raft", ""},
		{[]string{"operator", "raft"}, 1, "", "list-peers"},
		{[]string{"operator", "raft", "help"}, 0, "remove-peer", ""},
		{[]string{"operator", "raft", "nope"}, 1, "", `unknown subcommand "nope"`},
		{[]string{"snapshot"}, 1, "", "inspect"},
		{[]string{"snapshot", "--help"}, 0, "restore", ""},
		{[]string{"snapshot", "save", "-help"}, 0, "Usage: beacon snapshot save [options] FILE", ""},
		{[]string{"snapshot", "inspect", "-h"}, 0, "Usage: beacon snapshot inspect FILE", ""},
		{[]string{"operator", "raft", "list-peers", "extra"}, 1, "", `unexpected argument "extra"`},
	} {
		r := runCLI(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) ||
			(tc.stdout == "" && r.stdout != "") {
			t.Errorf("%q: %v", tc.args, r)
		}
	}
	if !Has("operator") || !Has("snapshot") || Has("agent") || !Has("version") || !Has("validate") {
		t.Error("Has answers wrongly")
	}
	if s := Summary(); !strings.Contains(s, "operator") || !strings.Contains(s, "snapshot") {
		t.Errorf("Summary() = %q", s)
	}
}

func TestRunWritesToGivenWriters(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"snapshot", "inspect", fixture}, &stdout, &stderr, Binary{}); code != 0 || !strings.Contains(stdout.String(), "Index    7") {
		t.Errorf("Run: %d %q %q", code, stdout.String(), stderr.String())
	}
}
