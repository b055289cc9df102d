package cli

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The address and the token come from the flags, else beacon's variables,
// else Consul's.
func TestConnectionSettings(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, peersJSON) })
	down := closedAddr(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		vars  map[string]string
		flags []string
		token string
	}{
		{name: "consul's address", vars: map[string]string{"CONSUL_HTTP_ADDR": api.addr()}},
		{name: "beacon's address first", vars: map[string]string{HTTPAddrEnv: api.addr(), "CONSUL_HTTP_ADDR": down}},
		{name: "consul's token", vars: map[string]string{"CONSUL_HTTP_TOKEN": "c"}, flags: []string{"-http-addr=" + api.addr()},
			token: "c"},
		{name: "beacon's token first", vars: map[string]string{"BEACON_HTTP_TOKEN": "b", "CONSUL_HTTP_TOKEN": "c"},
			flags: []string{"-http-addr=" + api.addr()}, token: "b"},
		{name: "the flag first", vars: map[string]string{"BEACON_HTTP_TOKEN": "b"},
			flags: []string{"-http-addr=" + api.addr(), "-token=f"}, token: "f"},
		{name: "the flag over a token file", vars: map[string]string{"CONSUL_HTTP_TOKEN_FILE": tokenFile},
			flags: []string{"-http-addr=" + api.addr(), "-token=f"}, token: "f"},
		{name: "a token file", vars: map[string]string{"BEACON_HTTP_TOKEN": "b"},
			flags: []string{"-http-addr=" + api.addr(), "-token-file=" + tokenFile}, token: "from-file"},
	} {
		before := len(api.recorded())
		r := runWith(tc.vars, defaultTimeouts, append([]string{"operator", "raft", "list-peers"}, tc.flags...)...)
		got := api.recorded()
		if r.code != 0 || len(got) != before+1 {
			t.Errorf("%s: %v", tc.name, r)
			continue
		}
		if token := got[len(got)-1].token; token != tc.token {
			t.Errorf("%s: token %q, want %q", tc.name, token, tc.token)
		}
	}
	r := runWith(map[string]string{"CONSUL_HTTP_ADDR": "10.9.8.7:1234"}, defaultTimeouts, "members", "-h")
	if !strings.Contains(r.stdout, `(default "10.9.8.7:1234")`) {
		t.Errorf("help with CONSUL_HTTP_ADDR set: %v", r)
	}
	r = runWith(map[string]string{"BEACON_HTTP_TOKEN": "secret"}, defaultTimeouts, "members", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "-token") || strings.Contains(r.stdout, "secret") {
		t.Errorf("help shows the token: %v", r)
	}
}

// An agent serving HTTPS is reached with the CA from -ca-file or the
// environment, and refused without it.
func TestHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, peersJSON) }))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI("operator", "raft", "list-peers", "-http-addr="+srv.URL, "-ca-file="+ca); r.code != 0 {
		t.Errorf("-ca-file: %v", r)
	}
	host := strings.TrimPrefix(srv.URL, "https://")
	vars := map[string]string{"CONSUL_CACERT": ca, "BEACON_HTTP_SSL": "true"}
	if r := runWith(vars, defaultTimeouts, "operator", "raft", "list-peers", "-http-addr="+host); r.code != 0 {
		t.Errorf("CONSUL_CACERT and BEACON_HTTP_SSL: %v", r)
	}
	if r := runCLI("operator", "raft", "list-peers", "-http-addr="+srv.URL); r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("no CA: %v", r)
	}
	if r := runCLI("operator", "raft", "list-peers", "-http-addr="+srv.URL, "-client-cert="+ca); r.code != 1 ||
		!strings.Contains(r.stderr, "both client cert and client key must be provided") {
		t.Errorf("a certificate without its key: %v", r)
	}
}

// A blocking read may take its wait, beyond the request timeout; one that
// hangs past its bound (the longest wait, a 16th, the request timeout)
// fails.
func TestBlockingReadTimeouts(t *testing.T) {
	const held = 300 * time.Millisecond
	var mu sync.Mutex
	var reads []time.Time
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status/leader" {
			io.WriteString(w, `"127.0.0.1:8300"`)
			return
		}
		mu.Lock()
		reads = append(reads, time.Now())
		n := len(reads)
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("X-Consul-Index", "5")
			io.WriteString(w, `{"a":[]}`)
		case 2: // blocks for longer than the request timeout, and answers
			select {
			case <-time.After(held):
			case <-r.Context().Done():
				return
			}
			w.Header().Set("X-Consul-Index", "6")
			io.WriteString(w, `{"b":[]}`)
		default: // hangs
			<-r.Context().Done()
		}
	})
	log := filepath.Join(t.TempDir(), "log")
	b := startEnv(t, &env{timeouts: timeouts{dial: time.Second, request: 100 * time.Millisecond, idle: 100 * time.Millisecond,
		maxWait: 500 * time.Millisecond}}, "watch", "-http-addr="+api.addr(), "-type=services", "cat >> "+log)
	eventually(t, "the second answer", func() bool { return len(readLines(t, log)) == 2 })
	eventually(t, "the hung read to fail", func() bool { return strings.Contains(b.stderr.String(), "did not answer in time") })
	mu.Lock()
	hungFor := time.Since(reads[2])
	mu.Unlock()
	if hungFor < 600*time.Millisecond || hungFor > 5*time.Second {
		t.Errorf("the hung read failed after %v, want 500ms + 31ms + 100ms", hungFor)
	}
	b.shutdown()
	if r := b.wait(t); r.code != 0 || strings.Count(r.stderr, "Watch errored") != 1 {
		t.Errorf("%v", r)
	}
}
