// Package cli owns the `beacon` subcommands that talk to a running agent
// through its HTTP API, as drop-ins for Consul's commands of the same
// names (flags, output and exit codes): `members`, `join`, `leave`,
// `force-leave`, `maint`, `keyring`, `operator raft` (list-peers,
// remove-peer), `snapshot` (save, restore, inspect), `kv` (get, put,
// delete, export, import), `lock`, `watch`, `event`, `rtt` (network
// coordinates), `catalog` (datacenters, nodes, services), `services`
// (register, deregister, from flags or JSON/HCL definition files read as
// Consul reads them), `info`, `reload`, `monitor` (the agent's log
// stream), and `keygen` and `tls` (ca create, cert create: a CA and agent
// certificates under Consul's file names, made by internal/tlsutil).
// `version` and `validate` (a Corefile, checked as start-up would) need
// the binary's build and its Corefile parser: main hands them in (Binary),
// as this package links neither the agent nor CoreDNS.
//
// It is built on Consul's Go client, github.com/hashicorp/consul/api:
// api.Client for the calls, api.Lock and api.Semaphore for `lock` (so that
// it contends correctly with Consul's own clients on the same keys), the
// api/watch plans for `watch`. Its own is what the client lacks: where the
// agent is found (flags, then BEACON_* variables, then Consul's CONSUL_*;
// -http-addr defaults to 127.0.0.1:8500), the timeouts (blocking queries
// bounded by their wait, snapshot transfers by idleness), the wording of
// errors, and the supervision of the child that `lock` and `watch` run,
// stopped (SIGTERM, then SIGKILL, with what it started) when the lock is
// lost or the command interrupted.
//
// It speaks to the agent only over HTTP. Of beacon it imports only the
// snapshot archive reader (package snapshot), so that `snapshot inspect`
// and `save` check archives with the code a restore uses;
// internal/atomicfile, with which `snapshot save` puts a verified archive
// in place; and internal/tlsutil, which makes certificates as the agents
// load them. It must not import raft, bbolt, raftstore, the agent, the HTTP
// API's server side (adminapi), the DNS plugin or CoreDNS (imports_test.go
// holds it to that).
package cli
