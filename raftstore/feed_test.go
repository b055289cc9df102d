package raftstore

import (
	"fmt"
	"testing"
)

func feedIndexes(entries []feedEntry) []uint64 {
	out := []uint64{}
	for _, e := range entries {
		out = append(out, e.index)
	}
	return out
}

func TestChangeFeed(t *testing.T) {
	f := newChangeFeed(4, 1<<20)
	add := func(idx ...uint64) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, i := range idx {
			f.appendLocked(i, []byte(fmt.Sprint(i)))
		}
	}
	// Indexes have gaps (configuration entries, barriers never reach the FSM).
	add(1, 2, 5)
	for _, tc := range []struct {
		after, gen uint64
		max        int
		want       string
		ok         bool
	}{
		{0, 0, 10, "[1 2 5]", true},
		{1, 0, 10, "[2 5]", true},
		{2, 0, 10, "[5]", true},
		{3, 0, 10, "[5]", true},
		{5, 0, 10, "[]", true},
		{9, 0, 10, "[]", true}, // a replica ahead of this server waits
		{0, 0, 2, "[1 2]", true},
		{0, 1, 10, "[]", false}, // another generation
	} {
		got, ok, _ := f.since(nil, tc.after, tc.gen, false, tc.max)
		if s := fmt.Sprint(feedIndexes(got)); s != tc.want || ok != tc.ok {
			t.Errorf("since(%d, gen %d, %d) = %s, %v; want %s, %v", tc.after, tc.gen, tc.max, s, ok, tc.want, tc.ok)
		}
	}

	// Past maxEntries the oldest go, and the floor with them.
	_, _, changed := f.since(nil, 5, 0, false, 10)
	add(6, 7, 8)
	select {
	case <-changed:
	default:
		t.Error("appending did not wake the watcher")
	}
	if got, ok, _ := f.since(nil, 4, 0, false, 10); !ok || fmt.Sprint(feedIndexes(got)) != "[5 6 7 8]" {
		t.Errorf("after eviction since(4) = %v, %v; want [5 6 7 8], true", feedIndexes(got), ok)
	}
	if _, ok, _ := f.since(nil, 1, 0, false, 10); ok {
		t.Error("since(1) served after 2 was evicted")
	}

	// A restore: nothing is served, not even to a replica at the latest
	// index, until the next command fixes the floor.
	f.mu.Lock()
	f.resetLocked()
	f.mu.Unlock()
	gen := f.generation()
	if gen != 1 {
		t.Fatalf("generation after a restore = %d, want 1", gen)
	}
	if _, ok, _ := f.since(nil, 8, gen, false, 10); ok {
		t.Error("served a resumption right after a restore")
	}
	// A stream that took its snapshot in this generation is served: every
	// later command comes through the feed.
	if got, ok, _ := f.since(nil, 8, gen, true, 10); !ok || len(got) != 0 {
		t.Errorf("since(8, from a snapshot) right after the restore = %v, %v; want [], true", feedIndexes(got), ok)
	}
	add(20)
	if got, ok, _ := f.since(nil, 8, gen, true, 10); !ok || fmt.Sprint(feedIndexes(got)) != "[20]" {
		t.Errorf("since(8, from a snapshot) = %v, %v; want [20], true", feedIndexes(got), ok)
	}
	if got, ok, _ := f.since(nil, 19, gen, false, 10); !ok || fmt.Sprint(feedIndexes(got)) != "[20]" {
		t.Errorf("since(19) after the restore = %v, %v; want [20], true", feedIndexes(got), ok)
	}
	if _, ok, _ := f.since(nil, 8, gen, false, 10); ok {
		t.Error("since(8) served across a restore")
	}
}

func TestChangeFeedByteBound(t *testing.T) {
	f := newChangeFeed(100, 10)
	f.mu.Lock()
	f.appendLocked(1, make([]byte, 6))
	f.appendLocked(2, make([]byte, 6))  // 12 bytes: 1 goes
	f.appendLocked(3, make([]byte, 50)) // alone over the bound: kept, 2 goes
	f.mu.Unlock()
	if got, ok, _ := f.since(nil, 2, 0, false, 10); !ok || fmt.Sprint(feedIndexes(got)) != "[3]" {
		t.Errorf("since(2) = %v, %v; want [3], true", feedIndexes(got), ok)
	}
	if _, ok, _ := f.since(nil, 1, 0, false, 10); ok {
		t.Error("since(1) served after 2 was evicted")
	}
	if f.bytes != 50 {
		t.Errorf("bytes = %d, want 50", f.bytes)
	}
}

func TestChangeFeedCompacts(t *testing.T) {
	f := newChangeFeed(8, 1<<20)
	f.mu.Lock()
	for i := uint64(1); i <= 10000; i++ {
		f.appendLocked(i, []byte{1})
	}
	f.mu.Unlock()
	if cap(f.entries) > 1024 {
		t.Errorf("the ring grew to %d entries for a bound of 8", cap(f.entries))
	}
	if got, ok, _ := f.since(nil, 9992, 0, false, 100); !ok || fmt.Sprint(feedIndexes(got)) != "[9993 9994 9995 9996 9997 9998 9999 10000]" {
		t.Errorf("since(9992) = %v, %v", feedIndexes(got), ok)
	}
}
