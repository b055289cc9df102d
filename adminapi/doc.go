// Package adminapi owns beacon's HTTP API: Consul's /v1 paths, JSON shapes,
// status codes and headers; blocking queries and consistency modes; request
// limits; its listeners, plain HTTP and HTTPS (with the *tls.Config the
// agent hands it, which picks the current certificates per handshake).
//
// It reads the state store directly and writes only through the Agent
// interface it defines (which commits through Raft). Of beacon it imports
// only acl, state, snapshot (for the archive's error) and ui (the web UI's
// files, which it serves under /ui/): it must not import
// raftstore, Raft or bolt, the agent package (the agent imports it), the DNS
// plugin or CoreDNS (imports_test.go holds it to that).
package adminapi
