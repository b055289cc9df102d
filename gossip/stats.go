package gossip

// Stats are serf's figures about the pool, by Consul's names for its
// serf_lan and serf_wan sections of /v1/agent/self (members, failed,
// left, health_score, the Lamport clocks, the queues, encrypted,
// coordinate_resets), for `beacon info`.
func (p *Pool) Stats() map[string]string { return p.serf.Stats() }
