package healthcheck

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/beacon-dns/beacon/state"
)

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHTTPCheck(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 1000) + strings.Repeat("b", outputMaxSize)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	mux.HandleFunc("/created", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("/busy", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, long) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	// /echo passes only when the request is the one the definition asks for.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got := fmt.Sprintf("%s host=%s token=%s ua=%s accept=%s body=%s", r.Method, r.Host,
			r.Header.Get("X-Token"), r.Header.Get("User-Agent"), r.Header.Get("Accept"), body)
		if r.Header.Get("X-Want") != got {
			http.Error(w, got, http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "echo ok")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	refused := "http://" + closedPort(t) + "/"

	tests := []struct {
		name       string
		def        state.CheckDefinition
		wantStatus string
		wantOutput string // exact, unless wantPrefix
		wantPrefix bool
	}{
		{"200 is passing", state.CheckDefinition{HTTP: srv.URL + "/ok"},
			pass, "HTTP GET " + srv.URL + "/ok: 200 OK Output: hello", false},
		{"any 2xx is passing", state.CheckDefinition{HTTP: srv.URL + "/created"},
			pass, "HTTP GET " + srv.URL + "/created: 201 Created Output: ", false},
		{"429 is warning", state.CheckDefinition{HTTP: srv.URL + "/busy"},
			warn, "HTTP GET " + srv.URL + "/busy: 429 Too Many Requests Output: slow down\n", false},
		{"500 is critical", state.CheckDefinition{HTTP: srv.URL + "/fail"},
			crit, "HTTP GET " + srv.URL + "/fail: 500 Internal Server Error Output: boom\n", false},
		{"404 is critical", state.CheckDefinition{HTTP: srv.URL + "/missing"},
			crit, "HTTP GET " + srv.URL + "/missing: 404 Not Found Output: 404 page not found\n", false},
		{"redirects are followed", state.CheckDefinition{HTTP: srv.URL + "/old"},
			pass, "HTTP GET " + srv.URL + "/old: 200 OK Output: hello", false},
		{"body output keeps the last 4 KiB", state.CheckDefinition{HTTP: srv.URL + "/long"},
			pass, "HTTP GET " + srv.URL + "/long: 200 OK Output: " + strings.Repeat("b", outputMaxSize), false},
		{"method, headers, Host and body are sent", state.CheckDefinition{
			HTTP: srv.URL + "/echo", Method: "PUT", Body: "ping",
			Header: map[string][]string{
				"X-Token": {"abc"},
				"Host":    {"svc.example"},
				"X-Want":  {"PUT host=svc.example token=abc ua=Consul Health Check accept=text/plain, text/*, */* body=ping"},
			}},
			pass, "HTTP PUT " + srv.URL + "/echo: 200 OK Output: echo ok", false},
		{"own User-Agent and Accept are kept", state.CheckDefinition{
			HTTP: srv.URL + "/echo",
			Header: map[string][]string{
				"User-Agent": {"probe/1"},
				"Accept":     {"application/json"},
				"X-Want":     {"GET host=" + strings.TrimPrefix(srv.URL, "http://") + " token= ua=probe/1 accept=application/json body="},
			}},
			pass, "HTTP GET " + srv.URL + "/echo: 200 OK Output: echo ok", false},
		{"a target slower than the timeout is critical", state.CheckDefinition{HTTP: srv.URL + "/slow", Timeout: "100ms"},
			crit, `Get "` + srv.URL + `/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, false},
		{"connection refused is critical", state.CheckDefinition{HTTP: refused},
			crit, `Get "` + refused + `": dial tcp `, true},
	}
	m, rec := newTestMonitor(t, false)
	for i, tt := range tests {
		id := fmt.Sprintf("check-%d", i)
		mustAdd(t, m, id, TypeHTTP, tt.def)
		t.Run(tt.name, func(t *testing.T) {
			events := rec.waitCount(t, id, 1)
			e := events[0]
			if e.status != tt.wantStatus {
				t.Errorf("status %s, want %s (output %q)", e.status, tt.wantStatus, e.output)
			}
			if tt.wantPrefix && !strings.HasPrefix(e.output, tt.wantOutput) || !tt.wantPrefix && e.output != tt.wantOutput {
				t.Errorf("output\n%q, want\n%q", e.output, tt.wantOutput)
			}
		})
	}
}

func TestHTTPCheckTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secure") }))
	t.Cleanup(srv.Close)
	srv.Config.ErrorLog = quietLog() // the refused handshake would log
	tests := []struct {
		name       string
		skipVerify bool
		wantStatus string
		wantOutput string
	}{
		{"TLSSkipVerify accepts a self-signed certificate", true, pass, "HTTP GET " + srv.URL + ": 200 OK Output: secure"},
		{"an unverified certificate is critical", false, crit, "certificate"},
	}
	m, rec := newTestMonitor(t, false)
	for i, tt := range tests {
		id := fmt.Sprintf("tls-%d", i)
		mustAdd(t, m, id, TypeHTTP, state.CheckDefinition{HTTP: srv.URL, TLSSkipVerify: tt.skipVerify})
		t.Run(tt.name, func(t *testing.T) {
			e := rec.waitCount(t, id, 1)[0]
			if e.status != tt.wantStatus || !strings.Contains(e.output, tt.wantOutput) {
				t.Errorf("got %s %q, want %s with %q", e.status, e.output, tt.wantStatus, tt.wantOutput)
			}
		})
	}
}

// sequenceServer answers the n-th request with codes[n-1] (200 once they run
// out) and the body n.
func sequenceServer(t *testing.T, codes ...int) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		code := http.StatusOK
		if int(i) <= len(codes) {
			code = codes[i-1]
		}
		w.WriteHeader(code)
		fmt.Fprint(w, i)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type wantEvent struct{ status, output string }

func TestHTTPCheckTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                   string
		codes                  []int
		successBeforePassing   int
		failuresBeforeCritical int
		want                   []wantEvent // the first notifications, in order
	}{
		{"500 then 200", []int{500, 500, 200}, 0, 0, []wantEvent{
			{crit, "500 Internal Server Error Output: 1"},
			{crit, "500 Internal Server Error Output: 2"}, // output changed: notified
			{pass, "200 OK Output: 3"},
		}},
		{"thresholds hold the status until reached", []int{200, 500, 500, 500, 200, 429, 200}, 2, 3, []wantEvent{
			{pass, "200 OK Output: 1"},                    // first result: at once
			{crit, "500 Internal Server Error Output: 4"}, // third failure in a row
			{warn, "429 Too Many Requests Output: 6"},     // second success (warning counts) in a row
			{pass, "200 OK Output: 7"},
		}},
		{"a success breaks a run of failures", []int{200, 500, 200, 500, 500}, 0, 2, []wantEvent{
			{pass, "200 OK Output: 1"},
			{pass, "200 OK Output: 3"},
			{crit, "500 Internal Server Error Output: 5"},
		}},
	}
	m, rec := newTestMonitor(t, false)
	for i, tt := range tests {
		id := fmt.Sprintf("seq-%d", i)
		srv := sequenceServer(t, tt.codes...)
		mustAdd(t, m, id, TypeHTTP, state.CheckDefinition{
			HTTP: srv.URL, SuccessBeforePassing: tt.successBeforePassing, FailuresBeforeCritical: tt.failuresBeforeCritical,
		})
		t.Run(tt.name, func(t *testing.T) {
			events := rec.waitCount(t, id, len(tt.want))
			for j, w := range tt.want {
				wantOutput := "HTTP GET " + srv.URL + ": " + w.output
				if events[j].status != w.status || events[j].output != wantOutput {
					t.Fatalf("notification %d: %s %q, want %s %q; all: %s",
						j+1, events[j].status, events[j].output, w.status, wantOutput, formatEvents(events))
				}
			}
		})
	}
}
