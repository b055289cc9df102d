package gossip

import (
	"errors"
	"fmt"
)

// ErrNoMember is returned by ForceLeave for a name the pool does not know
// (Consul: "agent: No node found with name '…'").
var ErrNoMember = errors.New("no such member")

// ForceLeave marks a member left on every member, as Consul's `consul
// force-leave` (PUT /v1/agent/force-leave/:node) does through serf: each
// pool then reports a MemberLeave for it (this one included, so a leader
// deregisters it from its own pool's events) and stops trying to reconnect
// to it; with prune it is also forgotten at once (a MemberReap). Forcing
// out an alive member has no lasting effect: it refutes the leave, as in
// Consul. A member forced out that comes back (restarted, partition
// healed) is reported joined again.
func (p *Pool) ForceLeave(node string, prune bool) error {
	if p.closed.Load() {
		return ErrShutdown
	}
	known := false
	for _, m := range p.serf.Members() {
		if m.Name == node {
			known = true
			break
		}
	}
	if !known {
		return fmt.Errorf("gossip: force-leave of %s: %w", node, ErrNoMember)
	}
	var err error
	if prune {
		err = p.serf.RemoveFailedNodePrune(node)
	} else {
		err = p.serf.RemoveFailedNode(node)
	}
	if err != nil {
		return fmt.Errorf("gossip: force-leave of %s: %w", node, err)
	}
	p.logger.Info("forced a member out", "member", node, "prune", prune)
	return nil
}
