// Package raftstore owns how beacon's state is replicated: the Raft FSM that
// applies committed commands to the state store, the command encoding of
// the Raft log, the Raft wiring (raft-boltdb log and stable store, file
// snapshots, the multiplexed server port), forwarding writes and read
// indexes to the leader, saving and restoring snapshot archives through
// Raft, and the operator's calls on the Raft configuration; and the client
// agents' side of it: the change feed servers keep, the Replica a client
// follows it with (from a server, or from a relay: a client agent's
// Replica that keeps a feed and serves the stream on, relay.go), and the
// Client that passes a client's writes and read indexes to the servers.
//
// Every change to the state goes through Raft: the FSM is the only writer of
// the state store. Readers (DNS, HTTP) take lock-free read transactions.
//
// Its metrics go, as Raft's own, to go-metrics' global (through its compat
// package, where the agent's sinks are): the FSM's apply times
// (consul.fsm.*), the full states servers send and replicas install; the
// agent reads the feed's size and a replica's lag for its gauges.
//
// One kind of write is not proposed as it comes: network coordinate
// updates (state.CoordinateBatchUpdateType). Every agent sends its own
// every 15 s or more through the ordinary write path, forwarded to the
// leader like any other; the leader keeps the latest per node and segment
// in memory, answers at once, and every 5 s commits what it holds in
// entries of up to 128 updates (at most 640 nodes' a period; a new node's
// update beyond that is refused, as Consul's rate limit refuses it). This
// is Consul's shape (coordinate_update_period, _batch_size, _max_batches)
// with the batching on the leader only, where the log is written: the
// agents do not each cost the log an entry per sync, an update takes up to
// 5 s to show, and a deposed leader drops what it held (the agents' next
// syncs replace it).
//
// The server port may speak TLS: a connection's first byte asks for it, the
// protocol's byte follows inside; with verify_incoming nothing else is
// taken, and with verify_server_hostname only servers' certificates may
// speak Raft. The agent's TLS material (internal/tlsutil) is read afresh
// for every connection, in and out, so a reload applies to the next one.
//
// Of beacon it imports state (what is replicated), snapshot (the archive
// format), internal/wire (the server port's framing) and internal/tlsutil
// (its TLS). It must not import
// the CoreDNS plugin, the HTTP API, the agent or the CLI: those build on it,
// never the other way round (imports_test.go holds it to that).
package raftstore
