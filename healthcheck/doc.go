// Package healthcheck owns the health check runners of one agent: the HTTP,
// TCP, TTL, gRPC and script (only when enable_script_checks is on) checks of
// the services and the node the agent registered, their timing (interval,
// first-run stagger, timeouts), and the status transitions Consul's agent
// applies (SuccessBeforePassing, FailuresBeforeCritical, TTL expiry). It
// reports each change of a check's status or output through a callback; the
// agent owns the local state, its persistence and its sync to the catalog.
//
// The runners follow Consul's agent/checks package so that a check behaves,
// and reads (its output), as it does under Consul.
//
// It must not import the agent, adminapi, gossip, the CoreDNS plugin or
// CoreDNS: those build on it. Of raftstore it uses only the catalog types of
// structs.go (CheckDefinition and the status constants).
package healthcheck
