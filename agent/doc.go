// Package agent is beacon's composition root: the one agent of the process,
// started by the first `discovery` block and shared by every later one and by
// every reload. It wires the configuration to the Raft server (or, on a
// client agent, to the servers' state through raftstore.Client), the LAN
// gossip pool, the local services and checks with their anti-entropy, the
// HTTP API and, for the DNS plugin, the state store.
//
// Nothing imports it but main, which hands it to the plugin through
// discovery.Register (imports_test.go holds every package to its rule).
package agent
