// Package adminapi owns beacon's HTTP API: Consul's /v1 paths, JSON shapes,
// status codes and headers; blocking queries and consistency modes; request
// limits.
//
// It reads the state store directly and writes only through the Agent
// interface it defines (which commits through Raft). It must not import the
// agent package (the agent imports it), the DNS plugin or CoreDNS.
package adminapi
