// Package agent is beacon's composition root: the one agent of the process,
// started by the first `discovery` block and shared by every later one and by
// every reload. It wires the configuration to the Raft server (or, on a
// client agent, to the servers' state through raftstore.Client), the LAN
// gossip pool, the local services and checks with their anti-entropy, the
// sending of the agent's network coordinate to the servers, the
// HTTP and HTTPS API and, for the DNS plugin, the state store and the
// execution of prepared queries. It owns the
// agent's TLS material at run time: loaded at start, handed to the server
// port, the connections to servers and HTTPS, and reloaded live by a
// Corefile reload (ApplyLive) or SIGHUP, the settings that cannot change
// live being refused. It sets up the process's metrics
// (internal/telemetry) before Raft and gossip start, and emits what
// nothing else does (runtime, members, checks, the change feed, the
// client replica, the catalog's size, the time of its writes) until it
// stops. It describes itself for the API's endpoints about the agent:
// /v1/agent/self (its configuration without secrets, its coordinate,
// Consul's Stats sections), host (gopsutil), version (the build, from the
// Go toolchain's build information), reload (through the Corefile
// reloader main sets, the plugin's) and monitor (its logger is an hclog
// InterceptLogger the API taps).
//
// Nothing imports it but main, which hands it to the plugin through
// discovery.Register (imports_test.go holds every package to its rule).
package agent
