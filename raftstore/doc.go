// Package raftstore owns beacon's replicated state: the catalog types, the
// go-memdb state store with its indexes and watch channels, the versioned
// command encoding, the Raft FSM with snapshot and restore, and the Raft wiring
// (raft-boltdb log and stable store, file snapshots, the multiplexed server
// port); and the client agents' side of it: the change feed servers keep,
// the Replica a client follows it with, and the Client that passes a client's
// writes and read indexes to the servers.
//
// Every change to the state goes through Raft: the FSM is the only writer of the
// state store. Readers (DNS, HTTP) take lock-free read transactions.
//
// It must not import the CoreDNS plugin, the HTTP API, the agent or the CLI:
// those build on it, never the other way round.
package raftstore
