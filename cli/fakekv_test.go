package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// fakeKV is an agent's KV and session API in memory, with Consul's
// semantics as far as lock, semaphore and watch use them: acquire and
// release with sessions, check-and-set, session invalidation (release or
// delete), and blocking reads that wait for the store's index to pass the
// one asked for. Other read endpoints (catalog, health, events) answer
// with views the test sets.
type fakeKV struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	index    uint64
	changed  chan struct{} // closed and replaced on every change
	kv       map[string]*consulapi.KVPair
	sessions map[string]*fakeSession
	nextID   int
	views    map[string]string // path → JSON
	log      []fakeCall
	renews   map[string]int
	// blocked are the blocking reads waiting now, by request.
	blocked map[*http.Request]bool
	// failConsistent fails that many of the next consistent reads with a
	// 500.
	failConsistent int
	// defaultWait is a blocking read's wait when it names none.
	defaultWait time.Duration
}

type fakeSession struct {
	ID, Name, TTL, Behavior string
}

type fakeCall struct {
	method, path string
	query        string
	body         string
}

func (c fakeCall) String() string {
	s := c.method + " " + c.path
	if c.query != "" {
		s += "?" + c.query
	}
	return s
}

func newFakeKV(t *testing.T) *fakeKV {
	f := &fakeKV{t: t, index: 1, changed: make(chan struct{}), kv: map[string]*consulapi.KVPair{},
		sessions: map[string]*fakeSession{}, views: map[string]string{}, renews: map[string]int{},
		blocked: map[*http.Request]bool{}, defaultWait: 5 * time.Minute}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKV) addr() string { return f.srv.Listener.Addr().String() }

// bump moves the index and wakes the blocking reads; f.mu is held.
func (f *fakeKV) bump() uint64 {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
	return f.index
}

func (f *fakeKV) calls() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.log...)
}

// set writes a key as a plain put does.
func (f *fakeKV) set(key, value string, flags uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.put(key, []byte(value), flags)
}

func (f *fakeKV) put(key string, value []byte, flags uint64) *consulapi.KVPair {
	idx := f.bump()
	p := f.kv[key]
	if p == nil {
		p = &consulapi.KVPair{Key: key, CreateIndex: idx}
		f.kv[key] = p
	}
	p.ModifyIndex, p.Flags, p.Value = idx, flags, value
	return p
}

func (f *fakeKV) get(key string) *consulapi.KVPair {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.kv[key]; p != nil {
		c := *p
		return &c
	}
	return nil
}

func (f *fakeKV) deleteKey(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.kv, key)
	f.bump()
}

// setView sets what a read of path answers, and moves the index.
func (f *fakeKV) setView(path, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views[path] = body
	f.bump()
}

// touch moves the index and changes nothing a watch sees.
func (f *fakeKV) touch() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bump()
}

func (f *fakeKV) currentIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

// createSession makes a session as PUT /v1/session/create does.
func (f *fakeKV) createSession(name, behavior string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newSession(name, "15s", behavior)
}

func (f *fakeKV) newSession(name, ttl, behavior string) string {
	f.nextID++
	id := fmt.Sprintf("5e551011-0000-4000-8000-%012d", f.nextID)
	if behavior == "" {
		behavior = "release"
	}
	f.sessions[id] = &fakeSession{ID: id, Name: name, TTL: ttl, Behavior: behavior}
	f.bump()
	return id
}

// invalidate destroys a session as the agent does when its TTL passes: its
// locks are released, or its keys deleted.
func (f *fakeKV) invalidate(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.destroySession(id)
}

func (f *fakeKV) destroySession(id string) {
	s := f.sessions[id]
	if s == nil {
		return
	}
	delete(f.sessions, id)
	idx := f.bump()
	for k, p := range f.kv {
		if p.Session != id {
			continue
		}
		if s.Behavior == "delete" {
			delete(f.kv, k)
		} else {
			p.Session, p.ModifyIndex = "", idx
		}
	}
}

func (f *fakeKV) sessionIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.sessions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (f *fakeKV) renewCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renews[id]
}

// waiting counts the blocking reads waiting now that match.
func (f *fakeKV) waiting(match func(path string, q map[string][]string) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for r := range f.blocked {
		if match(r.URL.Path, r.URL.Query()) {
			n++
		}
	}
	return n
}

func (f *fakeKV) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.log = append(f.log, fakeCall{r.Method, r.URL.Path, r.URL.RawQuery, string(body)})
	f.mu.Unlock()
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/agent/self":
		io.WriteString(w, `{"Config":{"NodeName":"n1","Datacenter":"dc1"},"Member":{}}`)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/status/leader":
		io.WriteString(w, `"127.0.0.1:8300"`)
	case r.Method == http.MethodPut && r.URL.Path == "/v1/session/create":
		var in struct{ Name, TTL, Behavior string }
		if err := json.Unmarshal(body, &in); err != nil {
			http.Error(w, "Request decode failed: "+err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		id := f.newSession(in.Name, in.TTL, in.Behavior)
		f.mu.Unlock()
		fmt.Fprintf(w, `{"ID":%q}`, id)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/session/renew/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/session/renew/")
		f.mu.Lock()
		s := f.sessions[id]
		if s != nil {
			f.renews[id]++
		}
		f.mu.Unlock()
		if s == nil {
			http.Error(w, "Session id '"+id+"' not found", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode([]fakeSession{*s})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/session/destroy/"):
		f.invalidate(strings.TrimPrefix(r.URL.Path, "/v1/session/destroy/"))
		io.WriteString(w, "true")
	case strings.HasPrefix(r.URL.Path, "/v1/kv/"):
		key := strings.TrimPrefix(r.URL.Path, "/v1/kv/")
		switch r.Method {
		case http.MethodGet:
			f.read(w, r, func() (any, bool) { return f.readKV(key, q) })
		case http.MethodPut:
			f.writeKV(w, key, q, body)
		case http.MethodDelete:
			f.deleteKV(w, key, q)
		}
	case r.Method == http.MethodGet:
		f.read(w, r, func() (any, bool) {
			v, ok := f.views[r.URL.Path]
			if !ok {
				return nil, false
			}
			return json.RawMessage(v), true
		})
	default:
		http.NotFound(w, r)
	}
}

// read answers a read, blocking while ?index= is not below the store's.
func (f *fakeKV) read(w http.ResponseWriter, r *http.Request, answer func() (any, bool)) {
	q := r.URL.Query()
	_, consistent := q["consistent"]
	wait := f.defaultWait
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			http.Error(w, "Invalid wait time", http.StatusBadRequest)
			return
		}
		wait = d
	}
	after, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	f.mu.Lock()
	if consistent && f.failConsistent > 0 {
		f.failConsistent--
		f.mu.Unlock()
		http.Error(w, "rpc error: No cluster leader", http.StatusInternalServerError)
		return
	}
	for after > 0 && f.index <= after {
		ch := f.changed
		f.blocked[r] = true
		f.mu.Unlock()
		timedOut := false
		select {
		case <-ch:
		case <-timer.C:
			timedOut = true
		case <-r.Context().Done():
		}
		f.mu.Lock()
		delete(f.blocked, r)
		if r.Context().Err() != nil {
			f.mu.Unlock()
			return
		}
		if timedOut {
			break // the wait is over: answer as things are
		}
	}
	v, found := answer()
	idx := f.index
	f.mu.Unlock()
	w.Header().Set("X-Consul-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("X-Consul-KnownLeader", "true")
	w.Header().Set("X-Consul-LastContact", "0")
	if !found {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// readKV is a KV read's answer; f.mu is held.
func (f *fakeKV) readKV(key string, q map[string][]string) (any, bool) {
	_, recurse := q["recurse"]
	_, keys := q["keys"]
	var matched []*consulapi.KVPair
	for k, p := range f.kv {
		if k == key || ((recurse || keys) && strings.HasPrefix(k, key)) {
			c := *p
			matched = append(matched, &c)
		}
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].Key < matched[j].Key })
	if len(matched) == 0 {
		return nil, false
	}
	if keys {
		var names []string
		for _, p := range matched {
			names = append(names, p.Key)
		}
		return names, true
	}
	return matched, true
}

func (f *fakeKV) writeKV(w http.ResponseWriter, key string, q map[string][]string, body []byte) {
	get := func(name string) (string, bool) {
		v, ok := q[name]
		if !ok || len(v) == 0 {
			return "", ok
		}
		return v[0], true
	}
	var flags uint64
	if s, ok := get("flags"); ok {
		flags, _ = strconv.ParseUint(s, 10, 64)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.kv[key]
	ok := true
	switch {
	case q["cas"] != nil:
		cas, _ := strconv.ParseUint(q["cas"][0], 10, 64)
		if (cas == 0 && p != nil) || (cas != 0 && (p == nil || p.ModifyIndex != cas)) {
			ok = false
			break
		}
		f.put(key, body, flags)
	case q["acquire"] != nil:
		id := q["acquire"][0]
		if f.sessions[id] == nil {
			http.Error(w, fmt.Sprintf("invalid session %q", id), http.StatusInternalServerError)
			return
		}
		if p != nil && p.Session != "" && p.Session != id {
			ok = false
			break
		}
		np := f.put(key, body, flags)
		if np.Session != id {
			np.LockIndex++
		}
		np.Session = id
	case q["release"] != nil:
		id := q["release"][0]
		if p == nil || p.Session != id {
			ok = false
			break
		}
		np := f.put(key, body, flags)
		np.Session = ""
	default:
		f.put(key, body, flags)
	}
	fmt.Fprint(w, ok)
}

func (f *fakeKV) deleteKV(w http.ResponseWriter, key string, q map[string][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case q["recurse"] != nil:
		for k := range f.kv {
			if strings.HasPrefix(k, key) {
				delete(f.kv, k)
			}
		}
	case q["cas"] != nil:
		cas, _ := strconv.ParseUint(q["cas"][0], 10, 64)
		p := f.kv[key]
		if p == nil || p.ModifyIndex != cas {
			fmt.Fprint(w, false)
			return
		}
		delete(f.kv, key)
	default:
		delete(f.kv, key)
	}
	f.bump()
	fmt.Fprint(w, true)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
