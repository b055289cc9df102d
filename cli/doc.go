// Package cli owns the `beacon` subcommands that talk to a running agent
// through its HTTP API, as drop-ins for Consul's commands of the same
// names: `members`, `join`, `leave`, `force-leave`, `maint`, `keyring`,
// `operator raft` (list-peers, remove-peer) and `snapshot` (save, restore,
// inspect), and `keygen`, which needs no agent. It owns their argument
// parsing, the HTTP client with its address (-http-addr, BEACON_HTTP_ADDR,
// default 127.0.0.1:8500) and timeouts, and the output formats and exit
// codes, which follow Consul's.
//
// It speaks to the agent only over HTTP, so it works against any agent,
// local or not. It must not import the agent, the HTTP API's server side
// (adminapi), the DNS plugin or CoreDNS; of raftstore it uses only the
// snapshot archive reader, so `snapshot inspect` and `snapshot save` check
// archives with the same code a restore does.
package cli
