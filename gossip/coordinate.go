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

// MemberCoordinate is a member's coordinate as this agent last heard it
// (its own for the local member); false when none was heard yet.
func (p *Pool) MemberCoordinate(name string) (*coordinate.Coordinate, bool) {
	if name == p.cfg.NodeName {
		c, err := p.Coordinate()
		return c, err == nil
	}
	c, ok := p.serf.GetCachedCoordinate(name)
	return c, ok && c != nil
}
