// Package healthcheck owns an agent's view of its own node: the health
// check runners (Monitor: the HTTP, TCP, TTL, gRPC and script — only when
// enable_script_checks is on — checks of the services and the node the
// agent registered, their timing: interval, first-run stagger, timeouts; and
// the status transitions Consul's agent applies: SuccessBeforePassing,
// FailuresBeforeCritical, TTL expiry), the local state those services and
// checks live in (Local, persisted in data_dir so they survive restarts),
// and anti-entropy (Syncer), which keeps the catalog's view of the node
// equal to the local state.
//
// The runners follow Consul's agent/checks package so that a check behaves,
// and reads (its output), as it does under Consul.
//
// It must not import the agent, adminapi, gossip, raftstore, the CoreDNS
// plugin or CoreDNS: those build on it. Of state it uses the catalog types
// and the store's reads; it writes only through the Catalog interface it
// defines (which commits through Raft). imports_test.go holds it to that.
package healthcheck
