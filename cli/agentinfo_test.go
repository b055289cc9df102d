package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestInfo(t *testing.T) {
	self := `{"Config":{"NodeName":"n1"},"Stats":{
		"raft":{"state":"Leader","term":"2"},
		"agent":{"services":"1","checks":"0"},
		"build":{"version":"0.1.0","prerelease":"dev"}}}`
	get := []string{"GET /v1/agent/self"}
	for _, tc := range []cmdCase{
		{name: "sections by name", args: []string{"info"}, requests: get,
			routes: map[string]reply{"GET /v1/agent/self": {body: self}},
			stdout: "agent:\n\tchecks = 0\n\tservices = 1\nbuild:\n\tprerelease = dev\n\tversion = 0.1.0\n" +
				"raft:\n\tstate = Leader\n\tterm = 2\n"},
		{name: "no stats", args: []string{"info"}, requests: get, code: 1,
			routes: map[string]reply{"GET /v1/agent/self": {body: `{"Config":{}}`}},
			stderr: "Agent response did not contain 'Stats' key"},
		{name: "denied", args: []string{"info"}, requests: get, code: 1,
			routes: map[string]reply{"GET /v1/agent/self": {http.StatusForbidden, "Permission denied"}},
			stderr: "Error querying agent: Unexpected response code: 403 (Permission denied)"},
		{name: "argument", args: []string{"info", "x"}, code: 1, stderr: `unexpected argument "x"`},
	} {
		tc.run(t)
	}
}

func TestReload(t *testing.T) {
	put := []string{"PUT /v1/agent/reload"}
	for _, tc := range []cmdCase{
		{name: "reloaded", args: []string{"reload"}, requests: put, routes: map[string]reply{"PUT /v1/agent/reload": {}},
			stdout: "Configuration reload triggered\n"},
		{name: "refused", args: []string{"reload"}, requests: put, code: 1,
			routes: map[string]reply{"PUT /v1/agent/reload": {http.StatusInternalServerError,
				"reloading the Corefile: agent setting data_dir cannot change while the agent runs"}},
			stderr: "Error reloading: Unexpected response code: 500 (reloading the Corefile: agent setting data_dir"},
		{name: "argument", args: []string{"reload", "now"}, code: 1, stderr: `unexpected argument "now"`},
	} {
		tc.run(t)
	}
}

// streamAPI is an agent's monitor: it sends lines, then ends the stream
// when end is closed, or holds it until the client goes.
func streamAPI(t *testing.T, lines []string, end <-chan struct{}) *fakeAPI {
	t.Helper()
	return newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/agent/monitor" {
			http.NotFound(w, r)
			return
		}
		if lvl := r.URL.Query().Get("loglevel"); lvl == "loud" {
			http.Error(w, "Unknown log level: loud", http.StatusBadRequest)
			return
		}
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		rc.Flush()
		for _, l := range lines {
			io.WriteString(w, l+"\n")
			rc.Flush()
		}
		select {
		case <-end:
		case <-r.Context().Done():
		}
	})
}

// waitOutput polls until the command's stdout holds want.
func waitOutput(t *testing.T, b *bgRun, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.stdout.String(), want) {
		if time.Now().After(deadline) || !b.running() {
			t.Fatalf("stdout never held %q:\n%s\nstderr:\n%s", want, b.stdout.String(), b.stderr.String())
		}
		time.Sleep(5 * time.Millisecond) // a poll interval
	}
}

func TestMonitor(t *testing.T) {
	lines := []string{"2026-01-02T03:04:05.000Z [INFO]  beacon: agent started", "", "2026-01-02T03:04:06.000Z [DEBUG] beacon.http: request"}

	t.Run("until interrupted", func(t *testing.T) {
		api := streamAPI(t, lines, make(chan struct{}))
		b := startEnv(t, &env{timeouts: defaultTimeouts}, "monitor", "-http-addr="+api.addr(), "-log-level=debug")
		waitOutput(t, b, "beacon.http: request")
		b.shutdown()
		r := b.wait(t)
		// An empty line reaches the client as one space, as Consul's client has it.
		if r.code != 0 || r.stdout != lines[0]+"\n \n"+lines[2]+"\n" || r.stderr != "" {
			t.Errorf("interrupted monitor: %v", r)
		}
		if got := api.recorded(); len(got) != 1 || got[0].query != "loglevel=debug" {
			t.Errorf("requests %+v", got)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		api := streamAPI(t, []string{`{"@message":"agent started"}`}, make(chan struct{}))
		b := startEnv(t, &env{timeouts: defaultTimeouts}, "monitor", "-http-addr="+api.addr(), "-log-json")
		waitOutput(t, b, "agent started")
		b.shutdown()
		if r := b.wait(t); r.code != 0 {
			t.Errorf("JSON monitor: %v", r)
		}
		if got := api.recorded(); len(got) != 1 || got[0].query != "logjson=true&loglevel=INFO" {
			t.Errorf("requests %+v", got)
		}
	})

	t.Run("the agent goes", func(t *testing.T) {
		end := make(chan struct{})
		api := streamAPI(t, lines[:1], end)
		b := startEnv(t, &env{timeouts: defaultTimeouts}, "monitor", "-http-addr="+api.addr())
		waitOutput(t, b, "agent started")
		close(end)
		r := b.wait(t)
		if r.code != 1 || !strings.Contains(r.stdout, "Remote side ended the monitor!") {
			t.Errorf("ended stream: %v", r)
		}
	})

	t.Run("bad level", func(t *testing.T) {
		api := streamAPI(t, nil, make(chan struct{}))
		r := runCLI("monitor", "-http-addr="+api.addr(), "-log-level=loud")
		if r.code != 1 || !strings.Contains(r.stderr, "Error starting monitor: Unexpected response code: 400 (Unknown log level: loud)") {
			t.Errorf("bad level: %v", r)
		}
	})

	t.Run("argument", func(t *testing.T) {
		if r := runCLI("monitor", "now"); r.code != 1 || !strings.Contains(r.stderr, `unexpected argument "now"`) {
			t.Errorf("argument: %v", r)
		}
	})
}

// runBinary runs the CLI as main does, with bin.
func runBinary(bin Binary, args ...string) result {
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" },
		timeouts: defaultTimeouts, pace: defaultPacing, binary: bin}
	code := run(e, args)
	return result{code, stdout.String(), stderr.String()}
}

func TestVersion(t *testing.T) {
	bin := Binary{Version: "0.1.0-dev", Revision: "0123456789ab", BuildDate: "2026-01-02T03:04:05Z", CoreDNSVersion: "1.15.0"}
	r := runBinary(bin, "version")
	want := "beacon v0.1.0-dev\nRevision 0123456789ab\nBuild Date 2026-01-02T03:04:05Z\nCoreDNS 1.15.0\n" +
		"Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 when speaking to compatible agents)\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("version: %v", r)
	}
	r = runBinary(Binary{Version: "0.2.0"}, "version")
	if r.code != 0 || !strings.Contains(r.stdout, "Revision unknown\nBuild Date unknown\n") {
		t.Errorf("version without build info: %v", r)
	}
	r = runBinary(bin, "version", "-format=json")
	wantJSON := `{
    "BuildDate": "2026-01-02T03:04:05Z",
    "CoreDNS": "1.15.0",
    "Prerelease": "dev",
    "RPC": {
        "Default": 2,
        "Max": 3,
        "Min": 2
    },
    "Revision": "0123456789ab",
    "Version": "0.1.0"
}
`
	if r.code != 0 || r.stdout != wantJSON {
		t.Errorf("version -format=json: %v", r)
	}
	for _, args := range [][]string{{"version", "-format=yaml"}, {"version", "extra"}, {"version", "-http-addr=x"}} {
		if r := runBinary(bin, args...); r.code != 1 || r.stdout != "" || r.stderr == "" {
			t.Errorf("%q: %v", args, r)
		}
	}
	if r := runBinary(bin, "version", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-format") {
		t.Errorf("version -h: %v", r)
	}
}

func TestValidate(t *testing.T) {
	var checked []string
	bin := Binary{ValidateCorefile: func(path string) error {
		checked = append(checked, path)
		if strings.HasSuffix(path, "bad") {
			return errors.New(path + `:4 - Error during parsing: discovery: property "bogus": unknown property`)
		}
		return nil
	}}
	if r := runBinary(bin, "validate", "Corefile"); r.code != 0 || r.stdout != "Configuration is valid!\n" || r.stderr != "" {
		t.Errorf("valid: %v", r)
	}
	if r := runBinary(bin, "validate", "-quiet", "Corefile"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("valid, quiet: %v", r)
	}
	r := runBinary(bin, "validate", "Corefile.bad")
	if r.code != 1 || r.stdout != "" ||
		r.stderr != "Config validation failed: Corefile.bad:4 - Error during parsing: discovery: property \"bogus\": unknown property\n" {
		t.Errorf("invalid: %v", r)
	}
	if fmt.Sprint(checked) != "[Corefile Corefile Corefile.bad]" {
		t.Errorf("validated %v", checked)
	}
	for _, tc := range []struct {
		bin  Binary
		args []string
		want string
	}{
		{bin, []string{"validate"}, "Must specify a Corefile to validate"},
		{bin, []string{"validate", "a", "b"}, "one Corefile at a time"},
		{bin, []string{"validate", "-strict", "a"}, "flag provided but not defined: -strict"},
		{Binary{}, []string{"validate", "a"}, "cannot validate"},
	} {
		if r := runBinary(tc.bin, tc.args...); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, r, tc.want)
		}
	}
}
