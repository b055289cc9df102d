package cli

import (
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A blocking query outlives the request and idle timeouts (on a
// connection an ordinary call used before it), but not its own bound: the
// wait it asked for, or the longest the agent applies, plus a 16th and the
// request timeout.
func TestBlockingQueryTimeouts(t *testing.T) {
	const hold = 300 * time.Millisecond
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Consul-Index", "9")
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(hold):
			case <-r.Context().Done():
				return
			}
		case "/hang":
			<-r.Context().Done()
			return
		}
		io.WriteString(w, `{}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("http-addr", srv.Listener.Addr().String(), "")
	e := &env{timeouts: timeouts{dial: time.Second, request: 100 * time.Millisecond, idle: 100 * time.Millisecond,
		maxWait: 500 * time.Millisecond}}
	c, err := newClient(e, fs, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var out map[string]any

	meta, err := c.query("/fast", nil, readOpts{}, &out)
	if err != nil || meta.index != 9 || !meta.found {
		t.Fatalf("fast: %+v %v", meta, err)
	}
	start := time.Now()
	if _, err := c.query("/slow", nil, readOpts{index: 5}, &out); err != nil {
		t.Errorf("a blocking query held %v failed after %v: %v", hold, time.Since(start), err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections; the test wants the blocking query on the connection the first call used", n)
	}
	if _, err := c.query("/slow", nil, readOpts{}, &out); err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("an ordinary call held %v: %v", hold, err)
	}

	for _, tc := range []struct {
		wait     time.Duration
		min, max time.Duration
	}{
		{200 * time.Millisecond, 300 * time.Millisecond, 5 * time.Second}, // 200ms + 12.5ms + 100ms
		{0, 600 * time.Millisecond, 5 * time.Second},                      // 500ms + 31.25ms + 100ms
		{time.Hour, 600 * time.Millisecond, 5 * time.Second},              // at most the agent's longest
		{10 * time.Millisecond, 100 * time.Millisecond, 5 * time.Second},  // at least the request timeout
		{-time.Second, 600 * time.Millisecond, 5 * time.Second},           // nonsense: the longest
	} {
		start := time.Now()
		_, err := c.query("/hang", nil, readOpts{index: 5, wait: tc.wait}, &out)
		d := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
			t.Errorf("wait %v: a hung blocking query: %v", tc.wait, err)
		}
		if d < tc.min || d > tc.max {
			t.Errorf("wait %v: gave up after %v, want between %v and %v", tc.wait, d, tc.min, tc.max)
		}
	}
}

func TestFormatWait(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Second: "15000ms", time.Microsecond: "1ms", 1500 * time.Microsecond: "1ms", 10 * time.Minute: "600000ms",
	} {
		if got := formatWait(d); got != want {
			t.Errorf("formatWait(%v) = %q, want %q", d, got, want)
		}
	}
}
