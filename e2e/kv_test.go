package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestKVCASAndTransactions(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{Node: "n1"})
	kv := a.Client.KV()

	// CAS 0 creates only.
	ok, _, err := kv.CAS(&api.KVPair{Key: "cfg/db", Value: []byte("v1")}, nil)
	if err != nil || !ok {
		t.Fatalf("create-only CAS = %v, %v; want true", ok, err)
	}
	if ok, _, _ := kv.CAS(&api.KVPair{Key: "cfg/db", Value: []byte("v0")}, nil); ok {
		t.Error("a second create-only CAS succeeded")
	}
	p, _, err := kv.Get("cfg/db", nil)
	if err != nil || p == nil || string(p.Value) != "v1" {
		t.Fatalf("get = %+v, %v", p, err)
	}
	// An index-checked update: the current index wins, a stale one loses.
	if ok, _, _ := kv.CAS(&api.KVPair{Key: "cfg/db", Value: []byte("v2"), ModifyIndex: p.ModifyIndex}, nil); !ok {
		t.Error("CAS with the current index failed")
	}
	if ok, _, _ := kv.CAS(&api.KVPair{Key: "cfg/db", Value: []byte("v3"), ModifyIndex: p.ModifyIndex}, nil); ok {
		t.Error("CAS with a stale index succeeded")
	}
	p2, _, _ := kv.Get("cfg/db", nil)
	if string(p2.Value) != "v2" || p2.CreateIndex != p.CreateIndex || p2.ModifyIndex <= p.ModifyIndex {
		t.Errorf("after the updates = %+v; want v2 with the same CreateIndex and a newer ModifyIndex", p2)
	}
	if ok, _, _ := kv.DeleteCAS(&api.KVPair{Key: "cfg/db", ModifyIndex: p.ModifyIndex}, nil); ok {
		t.Error("delete with a stale index succeeded")
	}
	if ok, _, _ := kv.DeleteCAS(&api.KVPair{Key: "cfg/db", ModifyIndex: p2.ModifyIndex}, nil); !ok {
		t.Error("delete with the current index failed")
	}

	// Flags, listing, keys with a separator.
	for _, k := range []string{"app/a", "app/b/x", "app/b/y", "other"} {
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte(k), Flags: 42}, nil); err != nil {
			t.Fatal(err)
		}
	}
	pairs, _, err := kv.List("app/", nil)
	if err != nil || len(pairs) != 3 || pairs[0].Key != "app/a" || pairs[0].Flags != 42 {
		t.Errorf("list app/ = %v, %v", pairs, err)
	}
	keys, _, err := kv.Keys("app/", "/", nil)
	if err != nil || strings.Join(keys, ",") != "app/a,app/b/" {
		t.Errorf("keys app/ with separator = %v, %v; want [app/a app/b/]", keys, err)
	}
	if missing, _, err := kv.Get("nope", nil); err != nil || missing != nil {
		t.Errorf("get of a missing key = %+v, %v; want nil", missing, err)
	}

	// A transaction is all or nothing.
	ok, resp, _, err := kv.Txn(api.KVTxnOps{
		{Verb: api.KVSet, Key: "txn/a", Value: []byte("1")},
		{Verb: api.KVCheckIndex, Key: "app/a", Index: 1},
	}, nil)
	if err != nil || ok || len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 {
		t.Errorf("failing txn = %v, %+v, %v; want one error at op 1", ok, resp, err)
	}
	if got, _, _ := kv.Get("txn/a", nil); got != nil {
		t.Error("a failed transaction left its first write behind")
	}
	ok, resp, _, err = kv.Txn(api.KVTxnOps{
		{Verb: api.KVSet, Key: "txn/a", Value: []byte("1")},
		{Verb: api.KVSet, Key: "txn/b", Value: []byte("2")},
		{Verb: api.KVGet, Key: "txn/a"},
	}, nil)
	if err != nil || !ok || len(resp.Results) != 3 || string(resp.Results[2].Value) != "1" {
		t.Errorf("txn = %v, %+v, %v", ok, resp, err)
	}

	// Bad input changes nothing: an oversized value, too many operations,
	// a malformed body, a bad index, an unknown session.
	before, _, _ := kv.List("", nil)
	do := func(method, path string, body []byte) int {
		req, _ := http.NewRequest(method, "http://"+a.HTTPAddr+path, bytes.NewReader(body))
		resp, err := a.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ops := strings.Repeat(`{"KV":{"Verb":"set","Key":"x","Value":"eA=="}},`, 65)
	for _, tc := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{"PUT", "/v1/kv/big", make([]byte, 512<<10+1), http.StatusRequestEntityTooLarge},
		{"PUT", "/v1/txn", []byte("[" + strings.TrimSuffix(ops, ",") + "]"), http.StatusRequestEntityTooLarge},
		{"PUT", "/v1/txn", []byte(`[{"KV":{"Verb":"set","Key":`), http.StatusBadRequest},
		{"PUT", "/v1/kv/x?cas=abc", []byte("v"), http.StatusBadRequest},
		{"PUT", "/v1/kv/x?acquire=no-such-session", []byte("v"), http.StatusInternalServerError},
		{"PUT", "/v1/kv/", []byte("v"), http.StatusBadRequest},
	} {
		if got := do(tc.method, tc.path, tc.body); got != tc.want {
			t.Errorf("%s %s: HTTP %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	if ok, _, _ := kv.CAS(&api.KVPair{Key: "exact", Value: make([]byte, 512<<10)}, nil); !ok {
		t.Error("a value of exactly 512 KiB was refused")
	}
	after, _, _ := kv.List("", nil)
	if len(after) != len(before)+1 {
		t.Errorf("bad requests changed the KV store: %d keys before, %d after (one good write)", len(before), len(after))
	}
}

func TestKVBlockingQueries(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{Node: "n1"})
	kv := a.Client.KV()
	if _, err := kv.Put(&api.KVPair{Key: "watched", Value: []byte("0")}, nil); err != nil {
		t.Fatal(err)
	}
	_, meta, err := kv.Get("watched", nil)
	if err != nil {
		t.Fatal(err)
	}

	// Unchanged: the query waits for its wait time and answers the same index.
	start := time.Now()
	_, m2, err := kv.Get("watched", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Second})
	waited := time.Since(start)
	if err != nil || m2.LastIndex != meta.LastIndex {
		t.Errorf("timed-out blocking get = index %d, %v; want %d", m2.LastIndex, err, meta.LastIndex)
	}
	if waited < time.Second || waited > 3*time.Second {
		t.Errorf("blocking get with wait=1s returned after %v", waited)
	}
	// A write to another key does not wake it.
	// A write to the key does, at once.
	type result struct {
		value string
		at    time.Time
		err   error
	}
	done := make(chan result, 1)
	go func() {
		p, _, err := kv.Get("watched", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		r := result{at: time.Now(), err: err}
		if p != nil {
			r.value = string(p.Value)
		}
		done <- r
	}()
	if _, err := kv.Put(&api.KVPair{Key: "elsewhere", Value: []byte("x")}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		// The other write may have landed before the query was read: it
		// then answers at once with the unchanged value, which is allowed.
		if r.value != "0" {
			t.Fatalf("woken by another key with value %q, err %v", r.value, r.err)
		}
		go func() {
			p, _, err := kv.Get("watched", &api.QueryOptions{WaitIndex: meta.LastIndex + 1, WaitTime: 30 * time.Second})
			r := result{at: time.Now(), err: err}
			if p != nil {
				r.value = string(p.Value)
			}
			done <- r
		}()
	case <-time.After(300 * time.Millisecond):
	}
	written := time.Now()
	if _, err := kv.Put(&api.KVPair{Key: "watched", Value: []byte("1")}, nil); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	select {
	case r := <-done:
		if r.err != nil || r.value != "1" {
			t.Fatalf("blocking get = %q, %v; want the new value", r.value, r.err)
		}
		t.Logf("blocking get woken %v after the write was sent (%v after it was acknowledged)",
			r.at.Sub(written).Round(time.Millisecond), max(r.at.Sub(acked), 0).Round(time.Millisecond))
		if r.at.Sub(acked) > time.Second {
			t.Errorf("the blocking get was woken %v after the write", r.at.Sub(acked))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the blocking get was not woken by the write")
	}
}

func TestLockAndSemaphore(t *testing.T) {
	t.Parallel()
	server := StartAgent(t, Options{Node: "s1"})
	client := StartClient(t, "c1", []*Agent{server})

	// Mutual exclusion: two holders of api.Lock on one key, through two
	// agents, never overlap.
	var inside, overlaps, entries atomic.Int32
	var wg sync.WaitGroup
	for _, a := range []*Agent{server, client} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				lock, err := a.Client.LockOpts(&api.LockOptions{Key: "service/leader", SessionTTL: "10s"})
				if err != nil {
					t.Error(err)
					return
				}
				lost, err := lock.Lock(nil)
				if err != nil {
					t.Errorf("lock on %s: %v", a.Opts.Node, err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				entries.Add(1)
				select {
				case <-lost:
					t.Errorf("lock on %s lost while held", a.Opts.Node)
				case <-time.After(50 * time.Millisecond): // hold it a little
				}
				inside.Add(-1)
				if err := lock.Unlock(); err != nil {
					t.Errorf("unlock on %s: %v", a.Opts.Node, err)
				}
				lock.Destroy()
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 || entries.Load() != 6 {
		t.Errorf("locks: %d entries, %d overlaps; want 6 and 0", entries.Load(), overlaps.Load())
	}

	// Lock delay: once a holder's session is invalidated, nobody gets the
	// lock before its LockDelay has passed.
	sess := server.Client.Session()
	id, _, err := sess.Create(&api.SessionEntry{Name: "holder", LockDelay: 3 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := server.Client.KV().Acquire(&api.KVPair{Key: "delayed", Session: id}, nil)
	if err != nil || !ok {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	other, _, err := sess.Create(&api.SessionEntry{Name: "waiter"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Destroy(id, nil); err != nil {
		t.Fatal(err)
	}
	destroyed := time.Now()
	if ok, _, _ := client.Client.KV().Acquire(&api.KVPair{Key: "delayed", Session: other}, nil); ok {
		t.Error("the lock was acquired right after its holder's session was invalidated, inside the lock delay")
	}
	eventually(t, 10*time.Second, func() error {
		if ok, _, err := client.Client.KV().Acquire(&api.KVPair{Key: "delayed", Session: other}, nil); err != nil || !ok {
			return fmt.Errorf("not acquired yet (%v)", err)
		}
		return nil
	})
	if d := time.Since(destroyed); d < 3*time.Second-100*time.Millisecond {
		t.Errorf("the lock was acquired %v after the invalidation, inside the 3s lock delay", d)
	}

	// Semaphore with limit 2: of three contenders, two hold it at once.
	var holders []*api.Semaphore
	for i := 0; i < 3; i++ {
		a := []*Agent{server, client}[i%2]
		sem, err := a.Client.SemaphoreOpts(&api.SemaphoreOptions{Prefix: "service/workers", Limit: 2,
			SemaphoreTryOnce: true, SemaphoreWaitTime: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		lost, err := sem.Acquire(nil)
		if err != nil {
			t.Fatalf("semaphore acquire %d: %v", i, err)
		}
		switch {
		case i < 2 && lost == nil:
			t.Fatalf("contender %d did not get one of the 2 slots", i)
		case i == 2 && lost != nil:
			t.Fatal("a third contender got a slot of a semaphore of 2")
		}
		holders = append(holders, sem)
	}
	if err := holders[0].Release(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		lost, err := holders[2].Acquire(nil)
		if err != nil || lost == nil {
			return fmt.Errorf("third contender has no slot yet (%v)", err)
		}
		return nil
	})
	holders[1].Release()
	holders[2].Release()
}

func TestSessionInvalidation(t *testing.T) {
	t.Parallel()
	server := StartAgent(t, Options{Node: "s1"})
	client := StartClient(t, "c1", []*Agent{server})
	kv := server.Client.KV()

	// TTL expiry under the delete behaviour: the key goes, not before the TTL.
	id, _, err := server.Client.Session().Create(&api.SessionEntry{TTL: "10s", Behavior: api.SessionBehaviorDelete}, nil)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if ok, _, err := kv.Acquire(&api.KVPair{Key: "ephemeral", Value: []byte("x"), Session: id}, nil); err != nil || !ok {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	p, meta, err := kv.Get("ephemeral", nil)
	if err != nil || p == nil || p.Session != id {
		t.Fatalf("get = %+v, %v", p, err)
	}
	var gone bool
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); {
		p, m, err := kv.Get("ephemeral", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		meta = m
		if p == nil {
			gone = true
			break
		}
	}
	if !gone {
		t.Fatal("the key of an expired delete-behaviour session is still there")
	}
	if d := time.Since(created); d < 10*time.Second {
		t.Errorf("the session's key was deleted %v after creation, before its 10s TTL", d)
	} else {
		t.Logf("TTL 10s session invalidated, key deleted, %v after creation", d.Round(time.Millisecond))
	}
	if s, _, err := server.Client.Session().Info(id, nil); err != nil || s != nil {
		t.Errorf("session after expiry = %+v, %v; want none", s, err)
	}

	// A session bound to a node (its serfHealth, by default) that is
	// killed: its lock is released.
	cid, _, err := client.Client.Session().Create(&api.SessionEntry{Name: "on-c1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := client.Client.KV().Acquire(&api.KVPair{Key: "leader", Session: cid}, nil); err != nil || !ok {
		t.Fatalf("acquire on c1 = %v, %v", ok, err)
	}
	client.Kill(t)
	killed := time.Now()
	eventually(t, 30*time.Second, func() error {
		p, _, err := kv.Get("leader", nil)
		if err != nil || p == nil {
			return fmt.Errorf("get = %+v, %v", p, err)
		}
		if p.Session != "" {
			return fmt.Errorf("still held by %s", p.Session)
		}
		return nil
	})
	t.Logf("lock of the killed node's session released %v after SIGKILL", time.Since(killed).Round(time.Millisecond))

	// Renewing an unknown session is a 404, as Consul answers (the
	// official client turns it into no entry); a live one returns itself.
	if s, _, err := server.Client.Session().Renew("00000000-0000-0000-0000-000000000000", nil); err != nil || s != nil {
		t.Errorf("renewing an unknown session = %+v, %v; want no entry", s, err)
	}
	live, _, err := server.Client.Session().Create(&api.SessionEntry{TTL: "30s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, _, err := server.Client.Session().Renew(live, nil); err != nil || s == nil || s.ID != live {
		t.Errorf("renewing a live session = %+v, %v", s, err)
	}
}
