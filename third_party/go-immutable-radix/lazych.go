package iradix

import "sync/atomic"

// lazyCh is a node's or a leaf's mutation channel, made only when a reader
// first asks for it (beacon's change to go-immutable-radix v1.3.1). Most
// nodes are never watched, and an unbuffered channel costs 96 bytes, two
// per leaf: upstream made one for every node and leaf, which was over half
// the memory of a large tree.
//
// A node is immutable once its transaction commits, so only two things
// ever happen to its lazyCh: readers ask for the channel (the first one
// makes it) and, once, the transaction that replaces the node closes it.
// Closing a channel nobody made stores closedCh, so a reader that asks
// afterwards (it reads an old tree) is told at once that the node changed.
type lazyCh struct {
	p atomic.Pointer[chan struct{}]
}

// closedCh is the channel of every node closed before anyone watched it.
var closedCh = func() *chan struct{} {
	c := make(chan struct{})
	close(c)
	return &c
}()

// get returns the channel, making it if nobody has.
func (l *lazyCh) get() chan struct{} {
	for {
		if p := l.p.Load(); p != nil {
			return *p
		}
		c := make(chan struct{})
		if l.p.CompareAndSwap(nil, &c) {
			return c
		}
	}
}

// close closes the channel (or records it closed if it was never made);
// closing twice is harmless.
func (l *lazyCh) close() {
	for {
		p := l.p.Load()
		switch {
		case p == closedCh:
			return
		case p == nil:
			if l.p.CompareAndSwap(nil, closedCh) {
				return
			}
		case l.p.CompareAndSwap(p, closedCh):
			close(*p)
			return
		}
	}
}
