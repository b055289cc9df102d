package agent

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// Network coordinates: every agent sends its LAN coordinate (serf's
// Vivaldi estimate) to the servers, as Consul's agents do, every
// sync_coordinate_interval_min or longer: the interval grows with the
// pool so that the servers receive about sync_coordinate_rate_target
// updates a second whatever its size, with a random stagger of up to as
// much again. The leader batches what it receives (raftstore's
// coordinates.go). The first send does not wait an interval: it goes as
// soon as the catalog has this agent's node (an update for a node the
// catalog lacks is dropped) and is retried every second until one is
// accepted, so a new agent's coordinate shows within seconds of its
// joining.
const (
	syncCoordinateRateTarget  = 64.0             // updates per second, cluster-wide
	syncCoordinateIntervalMin = 15 * time.Second // per agent
	coordinateFirstSyncRetry  = time.Second
)

// coordinateSyncInterval is the wait before an agent's next send in a pool
// of members agents (Consul's lib.RateScaledInterval plus its stagger).
func coordinateSyncInterval(members int) time.Duration {
	interval := time.Duration(float64(time.Second) * float64(members) / syncCoordinateRateTarget)
	interval = max(interval, syncCoordinateIntervalMin)
	return interval + rand.N(interval)
}

// coordinateLoop sends this agent's coordinate to the servers until the
// agent stops.
func (a *Agent) coordinateLoop() {
	defer a.wg.Done()
	timer := time.NewTimer(coordinateFirstSyncRetry)
	defer timer.Stop()
	sent := false
	for {
		select {
		case <-a.stop:
			return
		case <-timer.C:
		}
		if err := a.sendCoordinate(!sent); err != nil {
			a.logger.Debug("coordinate update not sent", "error", err)
		} else {
			sent = true
		}
		next := coordinateFirstSyncRetry
		if sent {
			next = coordinateSyncInterval(len(a.lan.Members()))
		}
		timer.Reset(next)
	}
}

// errNotInCatalog defers an agent's first coordinate update until the
// catalog has its node.
var errNotInCatalog = errors.New("this agent's node is not in the catalog yet")

// sendCoordinate sends the agent's current coordinate; first waits for the
// agent's node to be in its replica of the catalog.
func (a *Agent) sendCoordinate(first bool) error {
	if a.backend.Leader() == "" {
		return state.ErrNoLeader
	}
	if first {
		if _, node, err := a.store.GetNode(nil, a.cfg.Node); err != nil {
			return err
		} else if node == nil {
			return errNotInCatalog
		}
	}
	coord, err := a.lan.Coordinate()
	if err != nil {
		return err
	}
	update := &state.Coordinate{Node: a.cfg.Node, Coord: coord}
	if err := state.ValidateCoordinate(update); err != nil {
		return err // serf guards against this; the servers would refuse it
	}
	_, err = a.Apply(state.CoordinateBatchUpdateType, state.Coordinates{update})
	return err
}
