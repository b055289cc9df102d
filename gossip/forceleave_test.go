package gossip

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestForceLeave(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	key := newKey(t)
	cfgs := []Config{
		encConfig(t, "s1", RoleServer, key), encConfig(t, "s2", RoleServer, key), encConfig(t, "c1", RoleClient, key),
	}
	pools, recs := cluster(t, sink, cfgs...)
	s1, s2, c1 := pools[0], pools[1], pools[2]
	c1Addr := addrOf(c1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Refused while everyone is alive: another member, ourselves, nobody.
	for _, name := range []string{"s1", "s2", "c1"} {
		if err := s2.ForceLeave(ctx, name, false); !errors.Is(err, ErrMemberAlive) {
			t.Errorf("force-leave of alive %s: %v", name, err)
		}
	}
	if err := s2.ForceLeave(ctx, "nobody", false); !errors.Is(err, ErrNoMember) {
		t.Errorf("force-leave of an unknown member: %v", err)
	}

	if err := c1.Shutdown(); err != nil { // a crash
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		p, r, name := pools[i], recs[i], cfgs[i].NodeName
		waitFor(t, 10*time.Second, name+" to see c1 failed", func() bool {
			_, ok := r.find(MemberFailed, "c1")
			m, _ := member(p, "c1")
			return ok && m.Status == StatusFailed
		})
	}

	// Forced out from s2: every pool marks c1 left (each has applied it
	// before answering) and reports its leave.
	forced := time.Now()
	if err := s2.ForceLeave(ctx, "c1", false); err != nil {
		t.Fatalf("force-leave: %v", err)
	}
	for _, i := range []int{0, 1} {
		p, r, name := pools[i], recs[i], cfgs[i].NodeName
		if m, ok := member(p, "c1"); !ok || m.Status != StatusLeft || m.Role != RoleClient {
			t.Errorf("%s: c1 is %+v after force-leave", name, m)
		}
		waitFor(t, 5*time.Second, name+"'s leave event for c1", func() bool {
			e, ok := r.findSince(forced, MemberLeave, "c1")
			return ok && e.Member.Status == StatusLeft
		})
	}

	// Pruned from s1: forgotten everywhere; a left member has no second
	// leave. Then it is unknown.
	if err := s1.ForceLeave(ctx, "c1", true); err != nil {
		t.Fatalf("force-leave -prune: %v", err)
	}
	for _, i := range []int{0, 1} {
		if got := names(pools[i].Members()); got != "s1 s2" {
			t.Errorf("%s lists %q after the prune", cfgs[i].NodeName, got)
		}
	}
	if err := s1.ForceLeave(ctx, "c1", false); !errors.Is(err, ErrNoMember) {
		t.Errorf("force-leave of a pruned member: %v", err)
	}

	// c1 comes back at the same address: joined again, everywhere.
	back := time.Now()
	cfg := cfgs[2]
	cfg.BindAddr = c1Addr
	c1 = startPool(t, sink, cfg)
	if _, err := c1.Join([]string{addrOf(s1)}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		p, r, name := pools[i], recs[i], cfgs[i].NodeName
		waitFor(t, 10*time.Second, name+" to see c1 back", func() bool {
			_, ok := r.findSince(back, MemberJoin, "c1")
			m, _ := member(p, "c1")
			return ok && m.Status == StatusAlive
		})
	}
	waitFor(t, 10*time.Second, "c1 to see everyone", func() bool { return aliveCount(c1) == 3 })
	for i, r := range recs[:2] {
		n := 0
		r.mu.Lock()
		for _, e := range r.events {
			if e.Type == MemberLeave && e.Member.Name == "c1" {
				n++
			}
		}
		r.mu.Unlock()
		if n != 1 {
			t.Errorf("%s reported %d leaves of c1", cfgs[i].NodeName, n)
		}
	}
	if err := s1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := s1.ForceLeave(ctx, "c1", false); !errors.Is(err, ErrShutdown) {
		t.Errorf("force-leave after shutdown: %v", err)
	}
}

// A member that still sees the target alive (it has not detected the
// failure yet) leaves it alone and reports so; the others apply it.
func TestForceLeaveDisagreement(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	pools, _ := cluster(t, sink, testConfig("a", RoleServer), testConfig("b", RoleClient))
	a, b := pools[0], pools[1]
	meta, err := encodeMeta(localTags(&Config{Datacenter: "dc1", Role: RoleClient}))
	if err != nil {
		t.Fatal(err)
	}
	ghost := fakeNode("ghost", meta)
	(&delegate{a}).NotifyJoin(ghost)
	(&delegate{a}).NotifyLeave(ghost) // failed, for a
	(&delegate{b}).NotifyJoin(ghost)  // alive, for b

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.ForceLeave(ctx, "ghost", false)
	if err == nil || errors.Is(err, ErrMemberAlive) {
		t.Fatalf("force-leave: %v", err)
	}
	want := fmt.Sprintf("b: member ghost is %s here", StatusAlive)
	if !containsAll(err.Error(), "1 of 2 members failed", want) {
		t.Errorf("force-leave: %v", err)
	}
	if m, _ := member(a, "ghost"); m.Status != StatusLeft {
		t.Errorf("a: ghost is %v", m.Status)
	}
	if m, _ := member(b, "ghost"); m.Status != StatusAlive {
		t.Errorf("b: ghost is %v", m.Status)
	}
}
