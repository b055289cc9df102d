// Package adminapi owns beacon's HTTP API: Consul's /v1 paths, JSON shapes,
// status codes and headers; blocking queries and consistency modes; request
// limits; its listeners, plain HTTP and HTTPS (with the *tls.Config the
// agent hands it, which picks the current certificates per handshake); the
// HTTP metrics of every request and /v1/agent/metrics, served from the
// process's sinks (internal/telemetry). It also executes prepared queries,
// for its own endpoints and for DNS (ExecutePreparedQuery, which the agent
// hands the plugin), asking other datacenters' servers through
// ServerForwarder when a query fails over.
//
// It reads the state store directly and writes only through the Agent
// interface it defines (which commits through Raft). Of beacon it imports
// only acl, state, snapshot (for the archive's error, and to turn a Consul
// snapshot into beacon's archive before a restore), internal/telemetry and
// ui (the web UI's files, which it serves under /ui/): it must not import
// raftstore, Raft or bolt, the agent package (the agent imports it), the DNS
// plugin or CoreDNS (imports_test.go holds it to that).
package adminapi
