package gossip

import (
	"errors"
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

	if err := s2.ForceLeave("nobody", false); !errors.Is(err, ErrNoMember) {
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

	// Forced out from s2: every pool marks c1 left and reports its leave.
	forced := time.Now()
	if err := s2.ForceLeave("c1", false); err != nil {
		t.Fatalf("force-leave: %v", err)
	}
	for _, i := range []int{0, 1} {
		p, r, name := pools[i], recs[i], cfgs[i].NodeName
		waitFor(t, 5*time.Second, name+"'s leave event for c1", func() bool {
			e, ok := r.findSince(forced, MemberLeave, "c1")
			m, _ := member(p, "c1")
			return ok && e.Member.Status == StatusLeft && m.Status == StatusLeft && m.Role == RoleClient
		})
	}

	// Pruned from s1: forgotten everywhere; a left member has no second
	// leave. Then it is unknown.
	if err := s1.ForceLeave("c1", true); err != nil {
		t.Fatalf("force-leave -prune: %v", err)
	}
	for _, i := range []int{0, 1} {
		waitFor(t, 5*time.Second, cfgs[i].NodeName+" to forget c1", func() bool {
			return names(pools[i].Members()) == "s1 s2"
		})
	}
	if err := s1.ForceLeave("c1", false); !errors.Is(err, ErrNoMember) {
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
			if e.Type == MemberLeave && e.Member.Name == "c1" && !e.at.Before(forced) {
				n++
			}
		}
		r.mu.Unlock()
		if n != 1 {
			t.Errorf("%s reported %d leaves of c1 since it was forced out", cfgs[i].NodeName, n)
		}
	}
	if err := s1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := s1.ForceLeave("c1", false); !errors.Is(err, ErrShutdown) {
		t.Errorf("force-leave after shutdown: %v", err)
	}
}

// Forcing out an alive member does not remove it, as in Consul: it stays
// listed everywhere, alive or, until its refutation is heard, leaving
// (which the catalog counts as alive), and is never reported left or
// failed.
func TestForceLeaveOfAnAliveMember(t *testing.T) {
	t.Parallel()
	sink := newLogSink(t)
	cfgs := []Config{testConfig("s1", RoleServer), testConfig("s2", RoleServer), testConfig("c1", RoleClient)}
	pools, recs := cluster(t, sink, cfgs...)
	forced := time.Now()
	if err := pools[1].ForceLeave("c1", false); err != nil {
		t.Fatalf("force-leave of alive c1: %v", err)
	}
	// Watched over a few gossip rounds (the invariant must hold
	// throughout, so this polls for a while rather than until a change).
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for i, p := range pools {
			m, ok := member(p, "c1")
			if !ok || (m.Status != StatusAlive && m.Status != StatusLeaving) {
				t.Fatalf("%s sees c1 %v (listed %v) after a force-leave of it alive", cfgs[i].NodeName, m.Status, ok)
			}
		}
	}
	for i, r := range recs {
		for _, typ := range []EventType{MemberLeave, MemberFailed, MemberReap} {
			if _, ok := r.findSince(forced, typ, "c1"); ok {
				t.Errorf("%s reported %v for c1, which is alive", cfgs[i].NodeName, typ)
			}
		}
	}
}
