package raftstore

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/beacon-dns/beacon/internal/wire"
	"github.com/beacon-dns/beacon/state"
	"github.com/hashicorp/go-hclog"
	metrics "github.com/hashicorp/go-metrics/compat"
)

// The state stream (first byte protoStream on the server port, or on a
// relay's: relay.go): how a client agent follows a server's (or relay's)
// change feed. The client sends one streamRequest; the source answers with
// frames until either side closes:
//
//	[kind u8][index u64][length u32][payload]
//
// frameEntry carries a command applied at index (empty for a command the
// replica is not sent: see forReplica); a snapshot is
// frameSnapBegin (index: the state's index), frameSnapChunk frames holding
// the state in the FSM's snapshot format, then frameSnapEnd; frameHeartbeat
// (index: the source's applied index) carries a streamHeartbeat in JSON and
// goes out every streamHeartbeatInterval, so the client knows the leader,
// how stale the source is, and that the connection still works.

const (
	frameEntry     byte = 1
	frameSnapBegin byte = 2
	frameSnapChunk      = wire.FrameChunk
	frameSnapEnd        = wire.FrameEnd
	frameHeartbeat byte = 5

	// maxStreamFrame bounds one frame: a command is at most an HTTP body
	// (1 MiB) encoded, a chunk wire.ChunkSize.
	maxStreamFrame = 16 << 20
	// streamBatch is how many commands the server sends between flushes.
	streamBatch = 256

	streamHeartbeatInterval = 500 * time.Millisecond
	// streamReadTimeout: a client that hears nothing (not even a
	// heartbeat) for this long takes the server for gone.
	streamReadTimeout  = 5 * time.Second
	streamWriteTimeout = 10 * time.Second
)

// streamRequest opens a stream.
type streamRequest struct {
	// Resume: the client holds the state at After and wants the commands
	// that follow. Otherwise it has nothing and gets a snapshot first.
	Resume bool
	After  uint64
}

// streamHeartbeat is the server's view of the cluster.
type streamHeartbeat struct {
	// Leader is the leader's RPC address, "" when the server knows none.
	Leader string
	// StalenessMs is how long ago the server last heard from the leader
	// (0 on the leader).
	StalenessMs int64
}

// streamSource is what a state stream is served from: a server's FSM,
// feed and view of the cluster, or a relay's (a client agent's replica,
// relay.go).
type streamSource struct {
	fsm *FSM
	// view is the source's leader (its RPC address, "" when it knows none)
	// and how stale its state may be, for the heartbeats.
	view func() (leader string, staleness time.Duration)
	// ready, when set, says whether the source has a state worth
	// serving: a relay before its first state, or whose state stood still
	// (cut off from the servers, or stuck on a command), refuses new
	// streams and ends the ones it serves, so that their clients move to a
	// source that is not.
	ready   func() bool
	streams atomic.Int64
	refused atomic.Int64
	stop    <-chan struct{}
	logger  hclog.Logger
}

// stats reads the source's feed size and followers.
func (src *streamSource) stats() FeedStats {
	entries, bytes := src.fsm.feed.size()
	return FeedStats{Entries: entries, Bytes: bytes, Streams: src.streams.Load(), Refused: src.refused.Load()}
}

// serve streams the source's state to a client agent until the connection
// fails or the source stops.
func (src *streamSource) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(muxHandshakeTimeout))
	var req streamRequest
	if err := wire.ReadMsg(conn, &req, maxRPCFrame); err != nil {
		src.logger.Debug("state stream: bad request", "remote", conn.RemoteAddr(), "error", err)
		return
	}
	if src.ready != nil && !src.ready() {
		src.refused.Add(1)
		src.logger.Debug("state stream: refused, no current state to serve", "remote", conn.RemoteAddr())
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	src.streams.Add(1)
	defer src.streams.Add(-1)
	// The client sends nothing more: a read that ends means it hung up,
	// which stops the stream without waiting for a write to fail.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, conn)
	}()
	err := src.stream(conn, req, gone)
	conn.Close()
	<-gone
	if err != nil && !errors.Is(err, net.ErrClosed) {
		src.logger.Debug("state stream ended", "remote", conn.RemoteAddr(), "error", err)
	}
}

func (src *streamSource) stream(conn net.Conn, req streamRequest, gone <-chan struct{}) error {
	feed := src.fsm.feed
	w := bufio.NewWriterSize(conn, 64<<10)
	flush := func() error {
		_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return w.Flush()
	}
	gen, after := feed.generation(), req.After
	needSnapshot, fromSnapshot := !req.Resume, false
	heartbeat := time.NewTicker(streamHeartbeatInterval)
	defer heartbeat.Stop()
	if err := src.sendHeartbeat(w); err != nil {
		return err
	}
	batch := make([]feedEntry, 0, streamBatch)
	for {
		if needSnapshot {
			idx, g, err := src.sendSnapshot(conn, w)
			if err != nil {
				return err
			}
			gen, after, needSnapshot, fromSnapshot = g, idx, false, true
		}
		var ok bool
		var changed <-chan struct{}
		batch, ok, changed = feed.since(batch[:0], after, gen, fromSnapshot, streamBatch)
		if !ok {
			needSnapshot = true
			continue
		}
		for _, e := range batch {
			if err := wire.WriteFrame(w, frameEntry, e.index, forReplica(e.data)); err != nil {
				return err
			}
			after = e.index
		}
		clear(batch) // do not pin evicted commands
		if len(batch) == streamBatch {
			continue // more to send at once
		}
		if err := flush(); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			if src.ready != nil && !src.ready() {
				return errors.New("no current state to serve: the relay's state stood still")
			}
			if err := src.sendHeartbeat(w); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
		case <-gone:
			return nil
		case <-src.stop:
			return nil
		}
	}
}

// forReplica is what a client agent is sent of a command, since client
// replicas hold no secrets: nothing of an ACL command (an empty entry moves
// its index on); a prepared query with the token it captured replaced by
// state.RedactedToken (as the replica's snapshot has it); the command
// itself otherwise.
func forReplica(entry []byte) []byte {
	if len(entry) == 0 {
		return entry
	}
	switch state.MessageType(entry[0]) {
	case state.ACLRequestType:
		return nil
	case state.PreparedQueryRequestType:
		return redactQueryToken(entry)
	}
	return entry
}

// redactQueryToken is a prepared query command without its token. The FSM
// applied the entry, so it decodes; if it somehow does not, the replica is
// sent nothing of it rather than the secret (its index moves on).
func redactQueryToken(entry []byte) []byte {
	_, decode, err := decodeHeader(entry)
	if err != nil {
		return nil
	}
	var req state.PreparedQueryRequest
	if err := decode(&req); err != nil {
		return nil
	}
	if req.Query == nil || req.Query.Token == "" || req.Query.Token == state.RedactedToken {
		return entry
	}
	q := *req.Query
	q.Token = state.RedactedToken
	req.Query = &q
	redacted, err := Encode(state.PreparedQueryRequestType, &req)
	if err != nil {
		return nil
	}
	return redacted
}

func (src *streamSource) sendHeartbeat(w *bufio.Writer) error {
	leader, staleness := src.view()
	hb := streamHeartbeat{Leader: leader, StalenessMs: staleness.Milliseconds()}
	body, err := json.Marshal(hb)
	if err != nil {
		return err
	}
	return wire.WriteFrame(w, frameHeartbeat, src.fsm.AppliedIndex(), body)
}

// sendSnapshot sends the whole state and returns the index and feed
// generation it reflects.
func (src *streamSource) sendSnapshot(conn net.Conn, w *bufio.Writer) (uint64, uint64, error) {
	snap, idx, gen := src.fsm.feedSnapshot()
	metrics.IncrCounter([]string{"feed", "snapshots_sent"}, 1)
	if err := wire.WriteFrame(w, frameSnapBegin, idx, nil); err != nil {
		return 0, 0, err
	}
	cw := wire.NewChunkWriter(w, func() { _ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) })
	if err := snap.WriteForReplica(cw); err != nil {
		return 0, 0, fmt.Errorf("streaming a snapshot: %w", err)
	}
	if err := cw.Flush(); err != nil {
		return 0, 0, err
	}
	if err := wire.WriteFrame(w, frameSnapEnd, idx, nil); err != nil {
		return 0, 0, err
	}
	return idx, gen, nil
}
