package gossip

import (
	"fmt"

	"github.com/hashicorp/serf/coordinate"
)

// Coordinate is this agent's network coordinate in the pool: serf's
// Vivaldi estimate, refined by the round trip of every probe. It starts at
// the origin and needs a few probes of other members to mean anything.
func (p *Pool) Coordinate() (*coordinate.Coordinate, error) {
	if p.closed.Load() {
		return nil, ErrShutdown
	}
	c, err := p.serf.GetCoordinate()
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	return c, nil
}
