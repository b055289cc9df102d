package gossip

import (
	"context"
	"errors"
	"fmt"
)

// Errors of ForceLeave, to be told apart with errors.Is.
var (
	// ErrNoMember: the pool knows no member of that name (Consul: "agent:
	// No node found with name '…'").
	ErrNoMember = errors.New("no such member")
	// ErrMemberAlive: the member is alive (or leaving on its own); only
	// failed and left members can be forced out.
	ErrMemberAlive = errors.New("member is alive; only failed or left members can be forced out")
)

// ForceLeave marks a failed member left on every alive member, as Consul's
// `consul force-leave` (PUT /v1/agent/force-leave/:node) does through serf:
// each pool then reports a MemberLeave for it (this one included, so a leader
// deregisters it from its own pool's events), and with prune also forgets it
// (Forget). A member already left is only pruned.
//
// An alive member is refused with ErrMemberAlive, and ourselves too. Consul
// accepts the call, but the alive agent refutes it at once, so it has no
// lasting effect ("if the agent is alive and reachable then it will not be
// removed"); an error says so instead of a success that did nothing. A
// member that is alive for some other members (they have not detected its
// failure yet) is left alone by them, and they are reported as failures.
//
// A member forced out that comes back (restarted, partition healed) is
// reported joined again, as after any leave.
//
// The error is non-nil when the member is unknown (ErrNoMember) or alive
// here, or when a member failed to apply it or did not answer before ctx
// ended; those are named in the error, and the local pool has applied it.
func (p *Pool) ForceLeave(ctx context.Context, node string, prune bool) error {
	if p.closed.Load() {
		return ErrShutdown
	}
	if node == p.cfg.NodeName {
		return fmt.Errorf("gossip: force-leave of %s: cannot force the local member out: %w", node, ErrMemberAlive)
	}
	p.mu.RLock()
	m, ok := p.members[node]
	p.mu.RUnlock()
	if !ok {
		return fmt.Errorf("gossip: force-leave of %s: %w", node, ErrNoMember)
	}
	if m.Status != StatusFailed && m.Status != StatusLeft {
		return fmt.Errorf("gossip: force-leave of %s: it is %s: %w", node, m.Status, ErrMemberAlive)
	}
	p.logger.Info("forcing a member out", "member", node, "status", m.Status, "prune", prune)
	answers, err := p.call(ctx, wireRequest{Op: opForceLeave, Node: node, Prune: prune},
		func() wireResponse { return p.serveForceLeave(node, prune) })
	if err != nil {
		return fmt.Errorf("gossip: force-leave of %s: %w", node, err)
	}
	return membersFailed("force-leave of "+node, answers)
}

// serveForceLeave applies a force-leave to this member's table: a failed
// member becomes left, with its MemberLeave event; with prune a failed or
// left one is then forgotten. A member we do not know is nothing to do.
func (p *Pool) serveForceLeave(node string, prune bool) wireResponse {
	resp := wireResponse{From: p.cfg.NodeName}
	if node == p.cfg.NodeName {
		// serf refutes a leave intent about itself while alive.
		resp.Message = "cannot force the local member out: it is alive"
		p.logger.Warn("refusing a force-leave of this member", "member", node)
		return resp
	}
	p.mu.Lock()
	m, ok := p.members[node]
	if !ok {
		p.mu.Unlock()
		resp.OK = true
		return resp
	}
	left := false
	switch m.Status {
	case StatusFailed:
		m.Status = StatusLeft
		p.members[node] = m
		left = true
	case StatusLeft:
	default:
		p.mu.Unlock()
		resp.Message = fmt.Sprintf("member %s is %s here: only failed or left members can be forced out", node, m.Status)
		p.logger.Warn("refusing to force out a member that is not failed", "member", node, "status", m.Status)
		return resp
	}
	if prune {
		delete(p.members, node)
	}
	p.mu.Unlock()
	if left {
		p.emit(MemberLeave, m, " (forced)")
	}
	if prune {
		p.logger.Info("forgot member (force-leave with prune)", "member", node)
	}
	resp.OK = true
	return resp
}

// serveLeaveIntent records that origin announced its leave: it is leaving
// (no event until the leave itself, which then reads as left, not failed).
func (p *Pool) serveLeaveIntent(origin string) wireResponse {
	p.mu.Lock()
	m, ok := p.members[origin]
	if ok && m.Status == StatusAlive {
		m.Status = StatusLeaving
		p.members[origin] = m
	}
	p.mu.Unlock()
	if ok && m.Status == StatusLeaving {
		p.logger.Info("member is leaving", "member", origin)
	}
	return wireResponse{From: p.cfg.NodeName, OK: true}
}
