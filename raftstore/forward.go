package raftstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// Forwarded writes are coalesced: a follower under load sends the writes it
// forwards to the leader a batch per call instead of one, which saves the
// leader and itself most of a round trip's system calls per write. A lone
// write goes at once, alone; writes that arrive while forwardInflight calls
// are out wait for the next free one and go together.
const (
	forwardInflight = 4
	forwardMaxBatch = 64
	// forwardMaxBytes keeps a batch well inside maxRPCFrame, as JSON
	// (base64 grows the entries by a third).
	forwardMaxBytes = maxRPCFrame / 2
)

// applyForwarder batches the writes this server forwards, per leader.
type applyForwarder struct {
	// leaderCtx bounds a call to leader: until deadline, or until the
	// leader changes (Server.leaderCtx).
	leaderCtx func(leader string, deadline time.Time) (context.Context, context.CancelFunc)
	mu        sync.Mutex
	dests     map[string]*forwardQueue
	// batched counts the writes that went in a batch of more than one.
	batched atomic.Uint64
}

type forwardQueue struct {
	queue    []*forwardedApply
	inflight int
}

type forwardedApply struct {
	entry    []byte
	deadline time.Time
	done     chan *rpcResponse // nil response: the call failed with err
	err      error
}

// apply forwards one encoded command to leader and waits for its answer
// until deadline, or until the leader changes. Errors mean what
// rpcConns.call's mean: errNotSent only when the leader cannot have seen
// the write.
func (f *applyForwarder) apply(conns *rpcConns, leader string, entry []byte, deadline time.Time) (*rpcResponse, error) {
	w := &forwardedApply{entry: entry, deadline: deadline, done: make(chan *rpcResponse, 1)}
	f.mu.Lock()
	if f.dests == nil {
		f.dests = map[string]*forwardQueue{}
	}
	q := f.dests[leader]
	if q == nil {
		q = &forwardQueue{}
		f.dests[leader] = q
	}
	q.queue = append(q.queue, w)
	var batch []*forwardedApply
	if q.inflight < forwardInflight {
		batch = q.take()
		q.inflight++
	}
	f.mu.Unlock()
	if batch != nil {
		go f.send(conns, leader, batch)
	}
	// The call is bounded by the batch's deadline and the leader's
	// tenure; this is a backstop.
	timer := time.NewTimer(time.Until(deadline) + rpcAnswerMargin)
	defer timer.Stop()
	select {
	case resp := <-w.done:
		return resp, w.err
	case <-timer.C:
		return nil, fmt.Errorf("rpc %s to %s: no answer by the write's deadline", rpcMethodApplyBatch, leader)
	}
}

// take removes the next batch from the queue; the caller holds f.mu.
func (q *forwardQueue) take() []*forwardedApply {
	n, size := 0, 0
	for n < len(q.queue) && n < forwardMaxBatch {
		size += len(q.queue[n].entry)
		if n > 0 && size > forwardMaxBytes {
			break
		}
		n++
	}
	batch := make([]*forwardedApply, n)
	copy(batch, q.queue)
	q.queue = append(q.queue[:0], q.queue[n:]...)
	return batch
}

// send makes calls until the queue of leader is empty, then frees its slot.
func (f *applyForwarder) send(conns *rpcConns, leader string, batch []*forwardedApply) {
	for batch != nil {
		f.call(conns, leader, batch)
		f.mu.Lock()
		q := f.dests[leader]
		batch = nil
		if len(q.queue) > 0 {
			batch = q.take()
		} else {
			q.inflight--
			if q.inflight == 0 {
				delete(f.dests, leader)
			}
		}
		f.mu.Unlock()
	}
}

func (f *applyForwarder) call(conns *rpcConns, leader string, batch []*forwardedApply) {
	fail := func(err error) {
		for _, w := range batch {
			w.err = err
			w.done <- nil
		}
	}
	var deadline time.Time
	live := batch[:0]
	for _, w := range batch {
		if time.Until(w.deadline) > 0 {
			deadline = maxTime(deadline, w.deadline)
			live = append(live, w)
		} else {
			w.err = fmt.Errorf("%w: the write's timeout passed while it waited to be forwarded", errNotSent)
			w.done <- nil
		}
	}
	batch = live
	if len(batch) == 0 {
		return
	}
	ctx, cancel := f.leaderCtx(leader, deadline)
	defer cancel()
	if len(batch) == 1 {
		resp, err := conns.call(ctx, leader, &rpcRequest{Method: rpcMethodApply, Entry: batch[0].entry})
		batch[0].err = err
		batch[0].done <- resp
		return
	}
	f.batched.Add(uint64(len(batch)))
	req := &rpcRequest{Method: rpcMethodApplyBatch, Entries: make([][]byte, len(batch))}
	for i, w := range batch {
		req.Entries[i] = w.entry
	}
	resp, err := conns.call(ctx, leader, req)
	switch {
	case err != nil:
		fail(err)
	case resp.Error != "":
		fail(remoteError(resp))
	case len(resp.Batch) != len(batch):
		fail(fmt.Errorf("rpc %s: %d answers for %d writes", rpcMethodApplyBatch, len(resp.Batch), len(batch)))
	default:
		for i, w := range batch {
			w.done <- &resp.Batch[i]
		}
	}
}

// applyBatchLocal applies forwarded writes on the leader: all are proposed
// before any is waited for, so they share Raft's batches.
func (s *Server) applyBatchLocal(entries [][]byte, timeout time.Duration) []rpcResponse {
	out := make([]rpcResponse, len(entries))
	waits := make([]func() (uint64, *state.CommandResult, error), len(entries))
	for i, e := range entries {
		waits[i] = s.startApply(e, timeout)
	}
	for i, wait := range waits {
		idx, res, err := wait()
		out[i] = rpcResponse{Index: idx, Result: res}
		if err != nil {
			out[i].Error, out[i].Code = err.Error(), errorCode(err)
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
