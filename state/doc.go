// Package state owns beacon's data: the catalog types (nodes, services,
// checks, and the nodes' network coordinates), the KV entries, sessions
// and transactions, prepared queries (their validation, templates and the
// selection of their instances), the commands that
// change them (MessageType and the request types), and the go-memdb state
// store that holds them, with its indexes and the watch channels blocking
// queries wait on (service instances in groups by node and by service
// name rather than a row each: services.go says why). It also owns the store's snapshot encoding, which the
// FSM persists, servers stream to client agents, and snapshot archives
// carry; and the errors and Raft configuration the cluster's operations
// answer with, which the HTTP API reports.
//
// The store is written only by an FSM applying committed commands (through
// EnsureRegistration, KVSApply, KVSBatch, …) and read by anyone, without
// locks, from read transactions.
//
// It knows nothing of how commands are replicated: it must not import
// Raft, bolt or any other beacon package, so the DNS plugin, the HTTP API
// and the health checks read the catalog without linking Raft
// (imports_test.go holds every package to the rule its doc.go states).
package state
