// Package gossip owns beacon's serf pool: the LAN pool every agent takes
// part in, on github.com/hashicorp/serf over memberlist (SWIM with
// Lifeguard). It configures serf and owns what beacon adds to it: the tags
// each member advertises (role, datacenter, node ID, RPC address,
// bootstrap_expect, protocol version) and their parsing, the refusal of
// members of another datacenter, a member event stream that never blocks
// serf and coalesces per member, join and retry-join, graceful leave,
// force-leave, the keyring: gossip encryption from the `encrypt`
// property, the keyring file in data_dir (Consul's serf/local.keyring) and
// the cluster-wide keyring operations (serf's KeyManager), Consul's user
// events (fired as serf user events, filtered by each agent against its
// node name and local services, the last 256 kept for the HTTP API), and
// this agent's Vivaldi network coordinate, which serf computes from the
// probes' round trips (Coordinate; the agent sends it to the servers),
// and serf's figures about the pool (Stats, for `beacon info`).
//
// Serf does the rest, as it does for Consul: leave intents versus failures,
// reconnecting to failed members (which heals partitions), reaping members
// failed for longer than reconnect_timeout, and the snapshot of known
// members in data_dir (serf/local.snapshot) from which a restarted agent
// rejoins without a join address.
//
// Of beacon it imports only internal/atomicfile (the keyring file): it must
// not import state, raftstore, adminapi, agent or the CoreDNS plugin; the
// agent wires member events to the Raft leader, never the other way round
// (imports_test.go holds it to that).
package gossip
