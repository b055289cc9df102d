// Package raftstore owns how beacon's state is replicated: the Raft FSM that
// applies committed commands to the state store, the command encoding of
// the Raft log, the Raft wiring (raft-boltdb log and stable store, file
// snapshots, the multiplexed server port), forwarding writes and read
// indexes to the leader, saving and restoring snapshot archives through
// Raft, and the operator's calls on the Raft configuration; and the client
// agents' side of it: the change feed servers keep, the Replica a client
// follows it with, and the Client that passes a client's writes and read
// indexes to the servers.
//
// Every change to the state goes through Raft: the FSM is the only writer of
// the state store. Readers (DNS, HTTP) take lock-free read transactions.
//
// Of beacon it imports state (what is replicated), snapshot (the archive
// format) and internal/wire (the server port's framing). It must not import
// the CoreDNS plugin, the HTTP API, the agent or the CLI: those build on it,
// never the other way round (imports_test.go holds it to that).
package raftstore
