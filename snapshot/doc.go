// Package snapshot owns the snapshot archive: what `beacon snapshot save`
// writes and a restore reads. It writes an archive from a Raft snapshot's
// metadata and state, and reads one back with every check a restore needs
// (checksums, sizes, metadata, and that the state decodes into a store
// consistent with it), and describes one for `beacon snapshot inspect`.
// It also reads Consul's snapshots (consul.go): their state is decoded
// into beacon's, with a report of what was skipped, so that a restore
// installs it as it would a beacon archive (PrepareRestore).
//
// Of beacon it imports only state (whose decoder checks the state inside);
// it must not import Raft, so the CLI can read archives without linking it.
// raftstore converts raft's snapshot metadata to and from Meta.
package snapshot
