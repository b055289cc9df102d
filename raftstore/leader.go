package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/beacon-dns/beacon/state"
)

// Following leadership. A request that needs the leader (a write, a
// default or consistent read, an operator call) goes to the leader this
// server knows; while none is known it waits for one, up to the hold
// timeout (Consul's rpc_hold_timeout); a request forwarded to a leader
// that is deposed, or cut off, while it waits is given up as soon as this
// server learns of it, and sent to the new leader when that is safe: a read
// always, a write only when it certainly never reached the old one (its
// outcome is otherwise unknown, and it fails with ErrLeadershipLost, as a
// write cut off on the leader itself does).

// DefaultHoldTimeout is Consul's rpc_hold_timeout.
const DefaultHoldTimeout = 7 * time.Second

// errLeaderChanged is the cause of a forwarded call given up because this
// server learned that its target is not the leader any more.
var errLeaderChanged = errors.New("the leader changed while the request waited for it")

// leaderWatch hands out a channel that is closed when raft's view of the
// leader changes, and replaced by a fresh one.
type leaderWatch struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *leaderWatch) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *leaderWatch) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
	}
	w.ch = make(chan struct{})
}

// observeLeader closes the leader watch's channel on every change of the
// leader raft reports, until the server stops.
func (s *Server) observeLeader() {
	defer s.wg.Done()
	obs := make(chan raft.Observation, 16)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(observer)
	defer s.raft.DeregisterObserver(observer)
	for {
		select {
		case <-s.stop:
			return
		case <-obs:
			s.leaderWatch.notify()
		}
	}
}

// leaderCtx is a context for a call to leader: it ends at deadline, or as
// soon as this server's view of the leader is another (cause
// errLeaderChanged).
func (s *Server) leaderCtx(leader string, deadline time.Time) (context.Context, context.CancelFunc) {
	changed := s.leaderWatch.changed()
	ctx, cancelDeadline := context.WithDeadline(context.Background(), deadline)
	ctx, cancel := context.WithCancelCause(ctx)
	if s.Leader() != leader { // changed before the watch was taken
		cancel(errLeaderChanged)
	}
	go func() {
		select {
		case <-changed:
			if s.Leader() != leader {
				cancel(errLeaderChanged)
			}
		case <-ctx.Done():
		case <-s.stop:
			cancel(state.ErrNoLeader)
		}
	}()
	return ctx, func() { cancel(context.Canceled); cancelDeadline() }
}

// untilLeader runs attempt until it returns anything but a want of a
// leader (retry reports which errors are that), waiting for a leader at
// most the hold timeout in all and never past deadline; attempt gets the
// time left. The error after the hold is the last attempt's; when no leader
// is known then, it is ErrNoLeader.
func (s *Server) untilLeader(deadline time.Time, retry func(error) bool, attempt func(remaining time.Duration) error) error {
	hold := time.Now().Add(s.holdTimeout)
	backoff := 10 * time.Millisecond
	for {
		err := attempt(time.Until(deadline))
		if err == nil || !retry(err) {
			return err
		}
		wait := min(backoff, time.Until(deadline), time.Until(hold))
		if wait <= 0 {
			if s.Leader() == "" && !errors.Is(err, state.ErrNoLeader) {
				return fmt.Errorf("%w: %v", state.ErrNoLeader, err)
			}
			return err
		}
		select {
		case <-s.stop:
			return state.ErrNoLeader
		case <-s.leaderWatch.changed(): // a new leader: try it at once
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

// noLeaderYet reports errors that prove a request was not acted on for
// want of a leader: none known, a deposed one, a request that never left.
func noLeaderYet(err error) bool {
	return errors.Is(err, state.ErrNoLeader) || errors.Is(err, state.ErrNotLeader) || errors.Is(err, errNotSent)
}

// anyFailure retries every error: for requests that may be sent twice (a
// read index, a read of the configuration).
func anyFailure(err error) bool { return !errors.Is(err, raft.ErrRaftShutdown) }
