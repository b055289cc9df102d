package adminapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/raft"

	"github.com/beacon-dns/beacon/raftstore"
	"github.com/beacon-dns/beacon/state"
)

// startBlocking sends GET path in the background and waits until the
// request is inside the handler. The response arrives on the returned
// channel.
func (ta *testAPI) startBlocking(path string) (<-chan response, context.CancelFunc) {
	ta.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ta.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ta.ts.URL+path, nil)
	if err != nil {
		ta.t.Fatal(err)
	}
	out := make(chan response, 1)
	errc := make(chan error, 1)
	before := ta.waitCount()
	go func() {
		resp, err := ta.ts.Client().Do(req)
		if err != nil {
			errc <- err
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- response{code: resp.StatusCode, header: resp.Header, body: b}
	}()
	deadline := time.Now().Add(5 * time.Second)
	// Until the handler has read and started to wait: a write before its
	// read would be in what it reads, and answer at once.
	for ta.waitCount() <= before {
		select {
		case r := <-out:
			ta.t.Fatalf("GET %s returned at once: %d %q", path, r.code, r.body)
		case err := <-errc:
			ta.t.Fatalf("GET %s: %v", path, err)
		default:
		}
		if time.Now().After(deadline) {
			ta.t.Fatalf("GET %s never started to wait", path)
		}
		time.Sleep(time.Millisecond)
	}
	return out, cancel
}

func awaitResponse(t *testing.T, ch <-chan response, within time.Duration) response {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("no response within %v", within)
		return response{}
	}
}

func blockingSeed(t *testing.T, ta *testAPI) uint64 {
	t.Helper()
	ta.agent.registerSelf(t)
	ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Service: &state.Service{ID: "web-1", Service: "web", Port: 80},
		Check:   &state.HealthCheck{CheckID: "web-1", Name: "web", ServiceID: "web-1", Status: state.HealthPassing}})
	// An unrelated service on another node, written last so that every
	// table's index is at most the current one.
	return ta.register(&state.RegisterRequest{Node: "n2", Address: "10.0.0.2",
		Service: &state.Service{ID: "db", Service: "db", Port: 5432}})
}

func TestBlockingReturnsAtOnceWhenIndexIsOlder(t *testing.T) {
	ta := newTestAPI(t)
	cur := blockingSeed(t, ta)
	for _, path := range readEndpoints {
		start := time.Now()
		r := ta.get(path + sep(path) + "index=1&wait=1m")
		if r.code != http.StatusOK {
			t.Errorf("%s: %d %q", path, r.code, r.body)
			continue
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v with an older index", path, d)
		}
		if idx := indexOf(t, r); idx <= 1 || idx > cur {
			t.Errorf("%s: index %d", path, idx)
		}
	}
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

func TestBlockingWakesOnRelevantWrite(t *testing.T) {
	updateWeb := func(ta *testAPI) {
		ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
			Service: &state.Service{ID: "web-1", Service: "web", Port: 81}})
	}
	failWebCheck := func(ta *testAPI) {
		ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
			Check: &state.HealthCheck{CheckID: "web-1", Name: "web", ServiceID: "web-1", Status: state.HealthCritical}})
	}
	tests := []struct {
		path  string
		write func(ta *testAPI)
		want  string // substring of the new body
	}{
		{"/v1/catalog/service/web", updateWeb, `"ServicePort":81`},
		{"/v1/health/service/web", failWebCheck, `"Status":"critical"`},
		{"/v1/health/service/web?passing", failWebCheck, `[]`},
		{"/v1/health/checks/web", failWebCheck, `"Status":"critical"`},
		{"/v1/health/state/critical", failWebCheck, `"CheckID":"web-1"`},
		{"/v1/health/node/n1", failWebCheck, `"Status":"critical"`},
		{"/v1/catalog/nodes", func(ta *testAPI) {
			ta.register(&state.RegisterRequest{Node: "n3", Address: "10.0.0.3"})
		}, `"Node":"n3"`},
		{"/v1/catalog/services", func(ta *testAPI) {
			ta.register(&state.RegisterRequest{Node: "n3", Address: "10.0.0.3",
				Service: &state.Service{ID: "cache", Service: "cache"}})
		}, `"cache"`},
		{"/v1/catalog/node/n1", updateWeb, `"Port":81`},
		{"/v1/catalog/service/web?tag=new", func(ta *testAPI) {
			ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
				Service: &state.Service{ID: "web-1", Service: "web", Port: 80, Tags: []string{"new"}}})
		}, `"ServiceTags":["new"]`},
		{"/v1/agent/services", func(ta *testAPI) {
			if err := ta.agent.AddService(&state.Service{ID: "api", Service: "api", Port: 9000}, nil); err != nil {
				t.Fatal(err)
			}
		}, `"api"`},
		{"/v1/catalog/service/web", func(ta *testAPI) {
			ta.agent.Apply(state.DeregisterRequestType, &state.DeregisterRequest{Node: "n1"})
		}, `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			ta := newTestAPI(t)
			blockingSeed(t, ta)
			cur := indexOf(t, ta.get(tc.path))
			ch, _ := ta.startBlocking(tc.path + sep(tc.path) + fmt.Sprintf("index=%d&wait=1m", cur))
			select {
			case r := <-ch:
				t.Fatalf("returned before any write: %d %q", r.code, r.body)
			default:
			}
			start := time.Now()
			tc.write(ta)
			r := awaitResponse(t, ch, 5*time.Second)
			if r.code != http.StatusOK {
				t.Fatalf("%d %q", r.code, r.body)
			}
			if idx := indexOf(t, r); idx <= cur {
				t.Errorf("index %d after a write, want > %d", idx, cur)
			}
			if !strings.Contains(r.String(), tc.want) {
				t.Errorf("body %q lacks %s", r.body, tc.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("woke %v after the write", d)
			}
		})
	}
}

func TestBlockingWithOfficialClient(t *testing.T) {
	ta := newTestAPI(t)
	blockingSeed(t, ta)
	_, meta, err := ta.client.Health().Service("web", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		entries []*api.ServiceEntry
		meta    *api.QueryMeta
		err     error
	}
	done := make(chan result, 1)
	before := ta.inFlight()
	go func() {
		e, m, err := ta.client.Health().Service("web", "", true,
			&api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- result{e, m, err}
	}()
	waitInFlight(t, ta, before+1)
	ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Check: &state.HealthCheck{CheckID: "web-1", Name: "web", ServiceID: "web-1", Status: state.HealthCritical}})
	select {
	case r := <-done:
		if r.err != nil || len(r.entries) != 0 || r.meta.LastIndex <= meta.LastIndex {
			t.Errorf("blocking Health().Service = %+v, %+v, %v", r.entries, r.meta, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query did not wake")
	}
}

// waitInFlight waits until n requests are inside the handler.
func waitInFlight(t *testing.T, ta *testAPI, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ta.inFlight() < n {
		if time.Now().After(deadline) {
			t.Fatal("request never reached the handler")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBlockingTimesOut(t *testing.T) {
	ta := newTestAPI(t)
	cur := blockingSeed(t, ta)
	const wait = 300 * time.Millisecond
	for _, path := range []string{"/v1/catalog/service/web", "/v1/health/service/web", "/v1/catalog/nodes"} {
		t.Run(path, func(t *testing.T) {
			start := time.Now()
			r := ta.get(path + fmt.Sprintf("?index=%d&wait=%s", cur, wait))
			d := time.Since(start)
			if r.code != http.StatusOK {
				t.Fatalf("%d %q", r.code, r.body)
			}
			if idx := indexOf(t, r); idx != cur {
				t.Errorf("index after timeout = %d, want %d", idx, cur)
			}
			if d < wait {
				t.Errorf("returned after %v, before the wait of %v", d, wait)
			}
			if d > wait+wait/16+2*time.Second {
				t.Errorf("returned after %v, long after the wait of %v (+1/16 jitter)", d, wait)
			}
			if !strings.Contains(r.String(), "web") && path != "/v1/catalog/nodes" {
				t.Errorf("timed-out answer lacks the current result: %q", r.body)
			}
		})
	}
}

// Blocking queries on one service, and writes to others. The store wakes a
// blocking query through memdb watch channels, not through the per-table
// indexes (maxIndex adds nothing to the watch set): ServiceNodes
// (state/store.go) watches the radix-tree nodes it read, which are the
// service's group row (state/services.go), each instance's node row, and
// each instance's node and service checks. What that guarantees:
//
//   - A write that changes other rows in place (another service's
//     registration, another node's address, the status of another node's
//     check, a KV write) closes none of those channels: the query stays
//     blocked, and the next relevant write wakes it
//     (TestBlockingUnrelatedWrite).
//   - A write that adds or removes a key next to a watched one (a service
//     whose name shares web's first bytes, like "webhook"; the first check
//     of a node next to web's in the index; a deregistration that merges
//     radix nodes) rewrites the tree node the query watches, and may wake
//     it though nothing of web changed: a memdb watch channel means "may
//     have changed", at the tree's granularity. That is not promised
//     either way; what is promised is that a woken query reads again and
//     answers the current state at its current index, from which the
//     client's next query blocks (TestBlockingAdjacentWrite).

func TestBlockingUnrelatedWrite(t *testing.T) {
	tests := []struct {
		path    string
		related func(ta *testAPI) uint64
		want    string // in the body after the related write
	}{
		{"/v1/health/service/web", func(ta *testAPI) uint64 {
			return ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
				Check: &state.HealthCheck{CheckID: "web-1", Name: "web", ServiceID: "web-1", Status: state.HealthCritical}})
		}, `"Status":"critical"`},
		{"/v1/catalog/service/web", func(ta *testAPI) uint64 {
			return ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
				Service: &state.Service{ID: "web-1", Service: "web", Port: 81}})
		}, `"ServicePort":81`},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			ta := newTestAPI(t)
			blockingSeed(t, ta)
			// db on n2 gets a check, so that its status can change in place.
			cur := ta.register(&state.RegisterRequest{Node: "n2", Address: "10.0.0.2",
				Check: &state.HealthCheck{CheckID: "db", Name: "db", ServiceID: "db", Status: state.HealthPassing}})
			ch, _ := ta.startBlocking(tc.path + fmt.Sprintf("?index=%d&wait=1m", cur))

			unrelated := []struct {
				what  string
				write func() uint64
			}{
				{"db's port", func() uint64 {
					return ta.register(&state.RegisterRequest{Node: "n2", Address: "10.0.0.2",
						Service: &state.Service{ID: "db", Service: "db", Port: 5433}})
				}},
				{"db's check turning critical", func() uint64 {
					return ta.register(&state.RegisterRequest{Node: "n2", Address: "10.0.0.2",
						Check: &state.HealthCheck{CheckID: "db", Name: "db", ServiceID: "db", Status: state.HealthCritical}})
				}},
				{"n2's address", func() uint64 {
					return ta.register(&state.RegisterRequest{Node: "n2", Address: "10.0.0.22"})
				}},
				{"a KV write", func() uint64 {
					idx, err := ta.agent.Apply(state.KVSRequestType, &state.KVSRequest{Datacenter: testDC,
						Op: state.KVSet, DirEnt: state.DirEntry{Key: "k", Value: []byte("v")}})
					if err != nil {
						t.Fatal(err)
					}
					return idx
				}},
			}
			wrote := map[uint64]string{}
			for _, u := range unrelated {
				wrote[u.write()] = u.what
			}
			// A wake would answer within milliseconds: the handler reads
			// again and finds a higher index. Half a second is ample.
			select {
			case r := <-ch:
				idx := indexOf(t, r)
				t.Fatalf("woke for writes that do not touch web (answered at index %d, the write to %s): %d %s", idx, wrote[idx], r.code, r.body)
			case <-time.After(500 * time.Millisecond):
			}

			start := time.Now()
			rel := tc.related(ta)
			r := awaitResponse(t, ch, 5*time.Second)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("woke %v after the relevant write", d)
			}
			if r.code != http.StatusOK {
				t.Fatalf("%d %q", r.code, r.body)
			}
			// Had an unrelated write woken it, it would have answered at
			// that write's index, before the relevant write.
			if idx := indexOf(t, r); idx != rel {
				t.Errorf("answered at index %d (%s), want the relevant write's %d", idx, wrote[idx], rel)
			}
			if !strings.Contains(r.String(), tc.want) {
				t.Errorf("body %q lacks %s", r.body, tc.want)
			}
		})
	}
}

func TestBlockingAdjacentWrite(t *testing.T) {
	for _, path := range []string{"/v1/health/service/web", "/v1/catalog/service/web"} {
		t.Run(path, func(t *testing.T) {
			ta := newTestAPI(t)
			cur := blockingSeed(t, ta)
			before := ta.get(path).String()
			const wait = 2 * time.Second
			begin := time.Now()
			ch, _ := ta.startBlocking(path + fmt.Sprintf("?index=%d&wait=%s", cur, wait))
			// webhook's group row is web's neighbour in the radix tree:
			// the write may wake the query or not.
			w := ta.register(&state.RegisterRequest{Node: "n3", Address: "10.0.0.3",
				Service: &state.Service{ID: "webhook-1", Service: "webhook", Port: 9000}})
			r := awaitResponse(t, ch, wait+wait/16+5*time.Second)
			woken := time.Since(begin) < wait
			if r.code != http.StatusOK {
				t.Fatalf("%d %q", r.code, r.body)
			}
			if r.String() != before {
				t.Errorf("answer after a write to webhook:\n%s\nwant web's instances unchanged:\n%s", r.body, before)
			}
			idx := indexOf(t, r)
			if !woken {
				if idx < cur {
					t.Errorf("timed out at index %d, below the index it blocked at, %d", idx, cur)
				}
				return // not woken: nothing more to see
			}
			// Woken: it read again, so it answers at the write's index...
			if idx < w {
				t.Fatalf("woken before its wait, at index %d: below the write that woke it (%d), so it did not read again", idx, w)
			}
			// ...from which the client's next query blocks until web
			// changes.
			next, _ := ta.startBlocking(path + fmt.Sprintf("?index=%d&wait=1m", idx))
			rel := ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
				Service: &state.Service{ID: "web-1", Service: "web", Port: 82}})
			r = awaitResponse(t, next, 5*time.Second)
			if got := indexOf(t, r); got != rel || !strings.Contains(r.String(), "82") {
				t.Errorf("next query: index %d (want %d), body %q", got, rel, r.body)
			}
		})
	}
}

func TestBlockingWakesOnRestore(t *testing.T) {
	ta := newTestAPI(t)
	cur := blockingSeed(t, ta)

	// A snapshot of a different state: web on another port.
	other := state.NewStore()
	fsm := raftstore.NewFSM(other, nil)
	buf, _ := raftstore.Encode(state.RegisterRequestType, &state.RegisterRequest{Node: "n9", Address: "10.0.0.9",
		Service: &state.Service{ID: "web-9", Service: "web", Port: 99}})
	if resp := fsm.Apply(&raft.Log{Index: cur + 10, Data: buf}); resp != nil {
		t.Fatal(resp)
	}
	snap, _ := fsm.Snapshot()
	sink := &bufSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}

	ch, _ := ta.startBlocking(fmt.Sprintf("/v1/catalog/service/web?index=%d&wait=1m", cur))
	if err := ta.agent.fsm.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	r := awaitResponse(t, ch, 5*time.Second)
	if !strings.Contains(r.String(), `"ServicePort":99`) || indexOf(t, r) != cur+10 {
		t.Errorf("after restore: index %s, body %q", r.header.Get("X-Consul-Index"), r.body)
	}
}

type bufSink struct{ bytes.Buffer }

func (s *bufSink) ID() string    { return "buf" }
func (s *bufSink) Close() error  { return nil }
func (s *bufSink) Cancel() error { return nil }

func TestBlockingClientGoesAway(t *testing.T) {
	ta := newTestAPI(t)
	cur := blockingSeed(t, ta)
	_, cancel := ta.startBlocking(fmt.Sprintf("/v1/health/service/web?index=%d&wait=5m", cur))
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for ta.inFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the handler kept blocking after its client went away")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQueryOptionErrors(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		setup    func(a *fakeAgent)
		wantCode int
		wantMsg  string
	}{
		{"bad index", "index=abc", nil, 400, "Invalid index"},
		{"negative index", "index=-1", nil, 400, "Invalid index"},
		{"bad wait", "index=1&wait=soon", nil, 400, "Invalid wait"},
		{"negative wait", "index=1&wait=-1s", nil, 400, "Invalid wait"},
		{"stale and consistent", "stale&consistent", nil, 400, "Cannot specify ?stale with ?consistent"},
		{"filter", "filter=Service+%3D%3D", nil, 400, "Failed to create boolexpr evaluator"},
		{"other dc", "dc=dc2", nil, 500, "No path to datacenter"},
		{"no leader", "", func(a *fakeAgent) { a.setLeader("") }, 500, "No cluster leader"},
		{"no leader, blocking", "index=1", func(a *fakeAgent) { a.setLeader("") }, 500, "No cluster leader"},
		{"consistent, not leader", "consistent", func(a *fakeAgent) {
			a.mu.Lock()
			a.verifyErr = state.ErrNotLeader
			a.mu.Unlock()
		}, 500, "Not the cluster leader"},
		// These succeed.
		{"own dc", "dc=dc1", nil, 200, ""},
		{"stale", "stale", nil, 200, ""},
		{"consistent", "consistent", nil, 200, ""},
		{"stale without leader", "stale", func(a *fakeAgent) { a.setLeader("") }, 200, ""},
		{"wait in seconds", "index=1&wait=5", nil, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			blockingSeed(t, ta)
			if tc.setup != nil {
				tc.setup(ta.agent)
			}
			for _, path := range readEndpoints {
				r := ta.get(path + "?" + tc.query)
				if r.code != tc.wantCode || !strings.Contains(r.String(), tc.wantMsg) {
					t.Errorf("%s?%s = %d %q, want %d with %q", path, tc.query, r.code, r.body, tc.wantCode, tc.wantMsg)
				}
			}
		})
	}
}

func TestParseQueryOptions(t *testing.T) {
	tests := []struct {
		query   string
		want    queryOptions
		wantErr bool
	}{
		{"", queryOptions{wait: defaultWait}, false},
		{"index=7", queryOptions{minIndex: 7, wait: defaultWait}, false},
		{"index=7&wait=10s", queryOptions{minIndex: 7, wait: 10 * time.Second}, false},
		{"wait=5", queryOptions{wait: 5 * time.Second}, false},
		{"wait=1m30s", queryOptions{wait: 90 * time.Second}, false},
		{"wait=1h", queryOptions{wait: maxWait}, false},
		{"wait=11m", queryOptions{wait: maxWait}, false},
		{"stale", queryOptions{wait: defaultWait, stale: true}, false},
		{"stale=", queryOptions{wait: defaultWait, stale: true}, false},
		{"consistent", queryOptions{wait: defaultWait, consistent: true}, false},
		{"index=18446744073709551615", queryOptions{minIndex: 1<<64 - 1, wait: defaultWait}, false},
		{"index=18446744073709551616", queryOptions{}, true},
		{"index=1.5", queryOptions{}, true},
		{"wait=-1s", queryOptions{}, true},
		{"wait=1x", queryOptions{}, true},
		{"stale&consistent", queryOptions{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			u, _ := url.Parse("/v1/catalog/nodes?" + tc.query)
			got, err := parseQueryOptions(&http.Request{URL: u})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
