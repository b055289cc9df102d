// Package wire owns the framing of the protocols on beacon's server port:
// length-prefixed JSON messages (agent-to-server calls), typed frames that
// carry an index (the state stream and snapshot transfers), a byte stream
// cut into chunk frames and read back, and connections whose deadlines move
// with every read and write.
//
// It knows bytes and frames, not what they mean: it must not import any
// beacon package, raft or bolt. Frame kinds and message types are the
// protocols' own (raftstore); only the two kinds that end and carry a
// chunked stream are fixed here.
package wire
