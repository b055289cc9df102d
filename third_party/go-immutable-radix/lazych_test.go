package iradix

import (
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
)

// countMade counts the nodes and leaves under n whose channel was made
// (or recorded closed).
func countMade(n *Node) (made int) {
	if n.mutateCh.p.Load() != nil {
		made++
	}
	if n.leaf != nil && n.leaf.mutateCh.p.Load() != nil {
		made++
	}
	for _, e := range n.edges {
		made += countMade(e.node)
	}
	return made
}

func TestLazyCh_NoChannelsUntilWatched(t *testing.T) {
	txn := New().Txn()
	txn.TrackMutate(true)
	for i := 0; i < 10000; i++ {
		txn.Insert([]byte(fmt.Sprintf("svc%04d\x00node-%d\x00", i/5, i%5)), i)
	}
	tree := txn.Commit()
	if made := countMade(tree.Root()); made != 0 {
		t.Fatalf("%d channels made in a tree nobody watched", made)
	}
	// Reads without a watch make none; a watch makes one.
	tree.Get([]byte("svc0001\x00node-1\x00"))
	it := tree.Root().Iterator()
	it.SeekPrefix([]byte("svc0002\x00"))
	if made := countMade(tree.Root()); made != 0 {
		t.Fatalf("%d channels made by reads without a watch", made)
	}
	tree.Root().GetWatch([]byte("svc0001\x00node-1\x00"))
	tree.Root().Iterator().SeekPrefixWatch([]byte("svc0002\x00"))
	if made := countMade(tree.Root()); made != 2 {
		t.Fatalf("%d channels made by two watches, want 2", made)
	}
}

func TestLazyCh_ClosedBeforeAsked(t *testing.T) {
	old, _, _ := New().Insert([]byte("a"), 1)
	old, _, _ = old.Insert([]byte("ab"), 2)
	txn := old.Txn()
	txn.TrackMutate(true)
	txn.Insert([]byte("a"), 3)
	txn.Commit()
	// Nobody watched the old tree before the change: asking now must tell
	// at once that "a" changed, and that "ab" did not.
	ch, v, _ := old.Root().GetWatch([]byte("a"))
	if v != 1 || !isClosed(ch) {
		t.Fatalf("watch of a changed key in the old tree: value %v, closed %v; want 1, true", v, isClosed(ch))
	}
	ch, _, _ = old.Root().GetWatch([]byte("ab"))
	if isClosed(ch) {
		t.Fatal("the watch of an unchanged leaf is closed")
	}
	// Closing twice is harmless.
	var l lazyCh
	c := l.get()
	l.close()
	l.close()
	if !isClosed(c) || !isClosed(l.get()) {
		t.Fatal("a closed lazyCh is not closed")
	}
}

// Readers watch keys of whatever tree is current while a writer changes
// them: every watch of a key the writer changed after the reader's tree
// must be closed, whoever made the channel first.
func TestLazyCh_ConcurrentWatchers(t *testing.T) {
	const keys, writes, readers = 200, 3000, 4
	key := func(i int) []byte { return []byte(fmt.Sprintf("k%03d/%d", i, i%7)) }
	txn := New().Txn()
	for i := 0; i < keys; i++ {
		txn.Insert(key(i), -1)
	}
	var current atomic.Pointer[Tree]
	current.Store(txn.Commit())

	type seen struct {
		tree *Tree
		key  []byte
		ch   <-chan struct{}
	}
	var wg sync.WaitGroup
	var stop atomic.Bool
	watches := make([][]seen, readers)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(r)))
			for !stop.Load() {
				tree := current.Load()
				k := key(rnd.Intn(keys))
				var ch <-chan struct{}
				if rnd.Intn(2) == 0 {
					ch, _, _ = tree.Root().GetWatch(k)
				} else {
					ch = tree.Root().Iterator().SeekPrefixWatch(k[:4])
				}
				watches[r] = append(watches[r], seen{tree, k, ch})
			}
		}(r)
	}
	rnd := rand.New(rand.NewSource(99))
	for w := 0; w < writes; w++ {
		txn := current.Load().Txn()
		txn.TrackMutate(true)
		i := rnd.Intn(keys)
		if w%10 == 9 {
			txn.Delete(key(i))
		} else {
			txn.Insert(key(i), w)
		}
		current.Store(txn.Commit())
	}
	stop.Store(true)
	wg.Wait()

	final := current.Load()
	checked := 0
	for _, ws := range watches {
		for _, s := range ws {
			was, wasOK := s.tree.Get(s.key)
			now, nowOK := final.Get(s.key)
			if was == now && wasOK == nowOK {
				continue // maybe unchanged: nothing to demand
			}
			checked++
			if !isClosed(s.ch) {
				t.Fatalf("key %q changed from %v to %v after it was watched, but its watch is open", s.key, was, now)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no watch saw a change: the test checked nothing")
	}
}
