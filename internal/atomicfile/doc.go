// Package atomicfile replaces files atomically and durably: whoever reads
// the file, before or after a crash, finds the old contents or the new,
// never half of either. It is the one way beacon writes the small files it
// keeps beside Raft's (the node ID, the agent's local services and checks,
// the gossip keyring) and the snapshots the CLI saves.
//
// It must not import any beacon package.
package atomicfile
