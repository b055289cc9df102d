// Package agent is beacon's composition root: the one agent of the process,
// started by the first `discovery` block and shared by every later one and by
// every reload. It wires the configuration to the Raft server (or, on a
// client agent, to the servers' state through raftstore.Client), the local
// service state, the HTTP API and, for the DNS plugin, the state store.
//
// Nothing imports it but the plugin's setup and main; it must not be imported
// by raftstore, adminapi or corefile.
package agent
