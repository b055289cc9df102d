package raftstore

import (
	"sync"
)

// The change feed lets client agents hold a replica of the state without
// taking part in Raft: every server keeps its most recently applied
// commands, and a client streams them from any server (the stream,
// stream.go) and applies them with the same FSM code, so its replica is the
// servers' state at some index. Raft indexes are the cluster's, not the
// server's, so a client that loses its server resumes from its index on
// another one.
//
// A client whose index the feed no longer covers (it was away too long, or
// a snapshot restore replaced the state) is sent a full snapshot instead.

// Bounds of the feed: a client further behind than this gets a snapshot.
const (
	feedMaxEntries = 8192
	feedMaxBytes   = 32 << 20
)

type feedEntry struct {
	index uint64
	data  []byte
}

// changeFeed is the ring of recent commands. Its mutex also serializes the
// FSM's writes (the FSM holds it while it applies), so that what the feed
// holds, the store and the applied index always agree.
type changeFeed struct {
	mu      sync.Mutex
	entries []feedEntry // oldest first, from entries[start]
	start   int
	bytes   int
	// base: in this generation the feed was given every command after
	// base. baseKnown is false after a restore until the next command:
	// until then no replica can resume from an index of its own.
	base      uint64
	baseKnown bool
	// evicted is the newest command of this generation dropped from the
	// ring (0 if none): a stream behind it needs a snapshot.
	evicted uint64
	// gen counts restores: a stream that sees it change starts over.
	gen uint64
	// changed is closed (and replaced) whenever the feed changes.
	changed chan struct{}

	maxEntries, maxBytes int
}

func newChangeFeed(maxEntries, maxBytes int) *changeFeed {
	return &changeFeed{baseKnown: true, changed: make(chan struct{}), maxEntries: maxEntries, maxBytes: maxBytes}
}

// appendLocked records a command just applied at index.
func (f *changeFeed) appendLocked(index uint64, data []byte) {
	if !f.baseKnown {
		f.base, f.baseKnown = index-1, true
	}
	f.entries = append(f.entries, feedEntry{index: index, data: data})
	f.bytes += len(data)
	for len(f.entries)-f.start > f.maxEntries || (f.bytes > f.maxBytes && len(f.entries)-f.start > 1) {
		old := f.entries[f.start]
		f.entries[f.start] = feedEntry{}
		f.start++
		f.bytes -= len(old.data)
		f.evicted = old.index
	}
	if f.start > len(f.entries)/2 && f.start > 64 {
		n := copy(f.entries, f.entries[f.start:])
		clear(f.entries[n:])
		f.entries = f.entries[:n]
		f.start = 0
	}
	f.wakeLocked()
}

// resetLocked forgets everything: the state was replaced by a restore.
func (f *changeFeed) resetLocked() {
	clear(f.entries)
	f.entries, f.start, f.bytes = f.entries[:0], 0, 0
	f.baseKnown, f.evicted = false, 0
	f.gen++
	f.wakeLocked()
}

func (f *changeFeed) wakeLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// since appends to dst up to max commands after index after, for a stream
// of generation gen. fromSnapshot says the stream's position is a snapshot
// this feed gave in gen, so every later command of gen came through the
// feed; otherwise after is a replica's own index, which the feed must be
// known to cover. ok is false when the feed cannot serve the stream (a
// restore happened, or what it needs was dropped): it needs a snapshot.
// changed fires when there is more to read.
func (f *changeFeed) since(dst []feedEntry, after, gen uint64, fromSnapshot bool, max int) (out []feedEntry, ok bool, changed <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	covered := after >= f.evicted && (fromSnapshot || (f.baseKnown && after >= f.base))
	if gen != f.gen || !covered {
		return dst, false, f.changed
	}
	live := f.entries[f.start:]
	// The first entry after `after`: entries are in index order.
	lo, hi := 0, len(live)
	for lo < hi {
		mid := (lo + hi) / 2
		if live[mid].index <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	end := min(len(live), lo+max)
	return append(dst, live[lo:end]...), true, f.changed
}

// size is how many commands the feed holds and their bytes.
func (f *changeFeed) size() (entries, bytes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries) - f.start, f.bytes
}

// generation returns the feed's current generation.
func (f *changeFeed) generation() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}
