package gossip

import (
	"strings"
	"testing"
	"time"
)

func ev(typ EventType, name string, status MemberStatus) Event {
	return Event{Type: typ, Member: Member{Name: name, Status: status}}
}

func TestEventQueueCoalescesPerMember(t *testing.T) {
	q := newEventQueue(1)
	// Nobody runs the queue: pushes must not block however many there are.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10000 {
			q.push(ev(MemberUpdate, "a", StatusAlive))
			q.push(ev(MemberUpdate, "b", StatusAlive))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("push blocked without a consumer")
	}
	if n := q.len(); n != 2 {
		t.Fatalf("%d pending events for 2 members", n)
	}

	q = newEventQueue(1)
	q.push(ev(MemberJoin, "a", StatusAlive))
	q.push(ev(MemberJoin, "b", StatusAlive))
	q.push(ev(MemberUpdate, "a", StatusAlive)) // stays a join
	q.push(ev(MemberJoin, "c", StatusAlive))
	q.push(ev(MemberFailed, "b", StatusFailed)) // join+failed reads as failed
	q.push(ev(MemberLeave, "c", StatusLeft))
	q.push(ev(MemberJoin, "c", StatusAlive)) // and back
	want := []Event{
		ev(MemberJoin, "a", StatusAlive),
		ev(MemberFailed, "b", StatusFailed),
		ev(MemberJoin, "c", StatusAlive),
	}
	for i, w := range want {
		got, ok := q.pop()
		if !ok || got.Type != w.Type || got.Member.Name != w.Member.Name || got.Member.Status != w.Member.Status {
			t.Errorf("event %d: got %v %+v (%v), want %v %+v", i, got.Type, got.Member, ok, w.Type, w.Member)
		}
	}
	if _, ok := q.pop(); ok {
		t.Error("more events than members")
	}
}

func TestEventQueueDeliversInOrderAndCloses(t *testing.T) {
	q := newEventQueue(2)
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() { q.run(stop); close(finished) }()
	names := []string{"a", "b", "c", "d", "e", "f"}
	for _, n := range names {
		q.push(ev(MemberJoin, n, StatusAlive))
	}
	for _, n := range names {
		select {
		case e := <-q.out:
			if e.Member.Name != n || e.Type != MemberJoin {
				t.Fatalf("got %v %s, want join of %s", e.Type, e.Member.Name, n)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event for %s", n)
		}
	}
	// An event handed to run is delivered as it was: a newer one of the
	// same member queues behind it.
	q.push(ev(MemberJoin, "g", StatusAlive))
	q.push(ev(MemberJoin, "h", StatusAlive))
	q.push(ev(MemberJoin, "i", StatusAlive)) // channel holds 2; run holds one of these
	waitFor(t, 5*time.Second, "run to take the third event", func() bool { return q.len() == 0 })
	q.push(ev(MemberFailed, "i", StatusFailed))
	var got []string
	for range 4 {
		e := <-q.out
		got = append(got, e.Member.Name+":"+e.Type.String())
	}
	want := "g:member-join h:member-join i:member-join i:member-failed"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("got %s, want %s", s, want)
	}
	close(stop)
	<-finished
	if _, ok := <-q.out; ok {
		t.Error("events channel not closed after stop")
	}
}
