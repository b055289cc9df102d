// Package gossip owns beacon's memberlist pool: the LAN pool every agent
// takes part in, the node metadata each
// member advertises (role, datacenter, node ID, RPC address, bootstrap_expect,
// protocol version), the member table with its status (alive, leaving, left,
// failed) and the member events the leader reconciles the catalog from, and
// join, retry-join, graceful leave and shutdown. Failure detection is
// memberlist's SWIM with Lifeguard; this package only configures it.
//
// It also owns gossip encryption and its keyring (the `encrypt` property;
// the keyring file in data_dir, as Consul's serf/local.keyring), the
// cluster-wide keyring operations (list, install, use, remove, as `consul
// keyring`) and force-leave. Those run as requests that the origin sends to
// every alive member over memberlist's reliable user messages, each member
// answering the origin (messages.go), in place of serf's internal queries.
//
// Reaping members failed for longer than reconnect_timeout is the agent's
// (the leader's cluster loop); Forget drops such a member here.
//
// Of beacon it imports only internal/atomicfile (the keyring file): it must
// not import state, raftstore, adminapi, agent or the CoreDNS plugin; the
// agent wires member events to the Raft leader, never the other way round
// (imports_test.go holds it to that).
package gossip
