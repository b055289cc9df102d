// Package cli owns the `beacon` subcommands that talk to a running agent
// through its HTTP API, as drop-ins for Consul's commands of the same
// names: `members`, `join`, `leave`, `force-leave`, `maint`, `keyring`,
// `operator raft` (list-peers, remove-peer), `snapshot` (save, restore,
// inspect), `kv` (get, put, delete, export, import), `lock` and `watch`,
// and `keygen`, which needs no agent. It owns their argument parsing, the
// HTTP client with its address (-http-addr, BEACON_HTTP_ADDR, default
// 127.0.0.1:8500) and timeouts (blocking queries are bounded by their wait,
// not by the request or idle timeout), and the output formats and exit
// codes, which follow Consul's.
//
// `lock` implements Consul's api.Lock and api.Semaphore algorithms on the
// KV and session endpoints (same keys, flags and session settings, so it
// contends correctly with Consul's own clients), and supervises the child
// it runs: stopped (SIGTERM, then SIGKILL, with what it started) when the
// lock is lost or the command is interrupted. `watch` is the blocking-query
// loop of Consul's api/watch, and prints the data in the JSON shapes of
// Consul's Go client (apitypes.go mirrors them).
//
// It speaks to the agent only over HTTP, so it works against any agent,
// local or not. It must not import the agent, the HTTP API's server side
// (adminapi), the DNS plugin or CoreDNS, nor Consul's api package (a test
// dependency: the tests compare against it); of raftstore it uses only the
// snapshot archive reader, so `snapshot inspect` and `snapshot save` check
// archives with the same code a restore does.
package cli
