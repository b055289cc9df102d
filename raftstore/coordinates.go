package raftstore

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// Network coordinates are batched by the leader, as Consul's servers batch
// them. Every agent sends its coordinate every 15 s or more (more in a
// large cluster) as a CoordinateBatchUpdateType command of one update,
// through the path every write takes (Apply: forwarded by a follower or a
// client agent's server to the leader). The leader does not propose it:
// startApply validates it, keeps it as the latest of its node and segment
// and answers at once, and every coordinateUpdatePeriod the leader commits
// what it holds in entries of up to coordinateUpdateBatchSize updates. So a
// 5,000-agent cluster costs the log a few entries every 5 s, not an entry
// per agent and sync, and an update may take up to coordinateUpdatePeriod
// to show. A leader that loses its leadership drops what it holds; the
// agents' next syncs make up for it.
const (
	coordinateUpdatePeriod     = 5 * time.Second // Consul's coordinate_update_period
	coordinateUpdateBatchSize  = 128             // coordinate_update_batch_size
	coordinateUpdateMaxBatches = 5               // coordinate_update_max_batches
	// coordinateUpdateMaxPending is how many nodes' updates the leader
	// holds at most: what one period commits. An update for another node
	// beyond it is refused (Consul's rate limit); agents' sync intervals
	// grow with the cluster so that it is not reached.
	coordinateUpdateMaxPending = coordinateUpdateBatchSize * coordinateUpdateMaxBatches
	// coordinateApplyTimeout bounds the commit of one batch.
	coordinateApplyTimeout = 10 * time.Second
)

// coordinateBatcher holds the coordinate updates the leader received since
// its last flush, the latest per node and segment.
type coordinateBatcher struct {
	mu      sync.Mutex
	pending map[coordinateKey]*state.Coordinate
}

// coordinateKey names an update's row: node names are case-insensitive.
type coordinateKey struct{ node, segment string }

func keyOf(c *state.Coordinate) coordinateKey {
	return coordinateKey{strings.ToLower(c.Node), c.Segment}
}

// queue validates updates and holds them for the next flush: all of them,
// or none (an invalid update or the rate limit refuses the whole command).
func (b *coordinateBatcher) queue(updates state.Coordinates) error {
	for _, c := range updates {
		if err := state.ValidateCoordinate(c); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[coordinateKey]*state.Coordinate{}
	}
	fresh := map[coordinateKey]bool{}
	for _, c := range updates {
		if _, ok := b.pending[keyOf(c)]; !ok {
			fresh[keyOf(c)] = true
		}
	}
	if len(b.pending)+len(fresh) > coordinateUpdateMaxPending {
		return fmt.Errorf("coordinate update rate limit exceeded: the leader holds the updates of %d nodes, and commits at most %d every %s",
			len(b.pending), coordinateUpdateMaxPending, coordinateUpdatePeriod)
	}
	for _, c := range updates {
		b.pending[keyOf(c)] = c
	}
	return nil
}

// take empties the queue into batches of at most coordinateUpdateBatchSize
// updates, in node order.
func (b *coordinateBatcher) take() []state.Coordinates {
	b.mu.Lock()
	all := make(state.Coordinates, 0, len(b.pending))
	for _, c := range b.pending {
		all = append(all, c)
	}
	b.pending = nil
	b.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		ki, kj := keyOf(all[i]), keyOf(all[j])
		if ki.node != kj.node {
			return ki.node < kj.node
		}
		return ki.segment < kj.segment
	})
	var batches []state.Coordinates
	for len(all) > 0 {
		n := min(len(all), coordinateUpdateBatchSize)
		batches = append(batches, all[:n:n])
		all = all[n:]
	}
	return batches
}

// queueCoordinates is the leader's answer to a coordinate update command:
// decoded, validated and queued, not proposed.
func (s *Server) queueCoordinates(buf []byte) error {
	t, decode, err := decodeHeader(buf)
	if err != nil {
		return fmt.Errorf("%w: %v", state.ErrInvalidCoordinate, err)
	}
	var updates state.Coordinates
	if err := decode(&updates); err != nil {
		return fmt.Errorf("%w: decoding %s: %v", state.ErrInvalidCoordinate, t, err)
	}
	return s.coordinates.queue(updates)
}

// coordinateLoop commits the queued coordinate updates every
// coordinateUpdatePeriod.
func (s *Server) coordinateLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(coordinateUpdatePeriod)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.flushCoordinates()
		}
	}
}

// flushCoordinates commits the queued coordinate updates, at most
// coordinateUpdateMaxBatches entries of them, and returns how many updates
// it committed. A server that no longer leads drops them.
func (s *Server) flushCoordinates() int {
	batches := s.coordinates.take()
	if len(batches) == 0 || !s.IsLeader() {
		return 0
	}
	committed := 0
	for _, batch := range batches {
		buf, err := Encode(state.CoordinateBatchUpdateType, batch)
		if err != nil {
			s.logger.Error("encoding a coordinate batch", "error", err)
			continue
		}
		f := s.raft.Apply(buf, coordinateApplyTimeout)
		if err := s.waitQueued(f); err != nil {
			s.logger.Warn("committing coordinate updates; they are dropped", "updates", len(batch), "error", err)
			return committed
		}
		if err, ok := f.Response().(error); ok && err != nil {
			s.logger.Warn("applying coordinate updates", "updates", len(batch), "error", err)
			continue
		}
		committed += len(batch)
	}
	return committed
}
