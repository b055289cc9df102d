package raftstore

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The state stream (first byte protoStream on the server port): how a
// client agent follows a server's change feed. The client sends one
// streamRequest; the server answers with frames until either side closes:
//
//	[kind u8][index u64][length u32][payload]
//
// frameEntry carries a command applied at index; a snapshot is
// frameSnapBegin (index: the state's index), frameSnapChunk frames holding
// the state in the FSM's snapshot format, then frameSnapEnd; frameHeartbeat
// (index: the server's applied index) carries a streamHeartbeat in JSON and
// goes out every streamHeartbeatInterval, so the client knows the leader,
// how stale the server is, and that the connection still works.

const (
	frameEntry     byte = 1
	frameSnapBegin byte = 2
	frameSnapChunk byte = 3
	frameSnapEnd   byte = 4
	frameHeartbeat byte = 5

	streamFrameHeader = 13
	// maxStreamFrame bounds one frame: a command is at most an HTTP body
	// (1 MiB) encoded, a chunk streamChunkSize.
	maxStreamFrame  = 16 << 20
	streamChunkSize = 64 << 10
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

func writeStreamFrame(w io.Writer, kind byte, index uint64, payload []byte) error {
	var hdr [streamFrameHeader]byte
	hdr[0] = kind
	binary.BigEndian.PutUint64(hdr[1:9], index)
	binary.BigEndian.PutUint32(hdr[9:13], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readStreamFrame reads one frame; the payload is read into buf when it
// fits (so callers must not keep it past the next read).
func readStreamFrame(r io.Reader, buf []byte) (kind byte, index uint64, payload []byte, err error) {
	var hdr [streamFrameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[9:13])
	if n > maxStreamFrame {
		return 0, 0, nil, fmt.Errorf("stream frame of %d bytes exceeds the %d limit", n, maxStreamFrame)
	}
	if int(n) <= cap(buf) {
		payload = buf[:n]
	} else {
		payload = make([]byte, n)
	}
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	return hdr[0], binary.BigEndian.Uint64(hdr[1:9]), payload, nil
}

// chunkWriter cuts what is written to it into frameSnapChunk frames.
type chunkWriter struct {
	w    *bufio.Writer
	conn net.Conn
	buf  []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), streamChunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == streamChunkSize {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	err := writeStreamFrame(c.w, frameSnapChunk, 0, c.buf)
	c.buf = c.buf[:0]
	return err
}

// serveStream streams this server's state to a client agent until the
// connection fails or the server stops.
func (s *Server) serveStream(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(muxHandshakeTimeout))
	var req streamRequest
	if err := readFrame(conn, &req); err != nil {
		s.logger.Debug("state stream: bad request", "remote", conn.RemoteAddr(), "error", err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	// The client sends nothing more: a read that ends means it hung up,
	// which stops the stream without waiting for a write to fail.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, conn)
	}()
	err := s.stream(conn, req, gone)
	conn.Close()
	<-gone
	if err != nil && !errors.Is(err, net.ErrClosed) {
		s.logger.Debug("state stream ended", "remote", conn.RemoteAddr(), "error", err)
	}
}

func (s *Server) stream(conn net.Conn, req streamRequest, gone <-chan struct{}) error {
	feed := s.fsm.feed
	w := bufio.NewWriterSize(conn, 64<<10)
	flush := func() error {
		_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return w.Flush()
	}
	gen, after := feed.generation(), req.After
	needSnapshot, fromSnapshot := !req.Resume, false
	heartbeat := time.NewTicker(streamHeartbeatInterval)
	defer heartbeat.Stop()
	if err := s.sendHeartbeat(w); err != nil {
		return err
	}
	batch := make([]feedEntry, 0, streamBatch)
	for {
		if needSnapshot {
			idx, g, err := s.sendSnapshot(conn, w)
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
			if err := writeStreamFrame(w, frameEntry, e.index, e.data); err != nil {
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
			if err := s.sendHeartbeat(w); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
		case <-gone:
			return nil
		case <-s.stop:
			return nil
		}
	}
}

func (s *Server) sendHeartbeat(w *bufio.Writer) error {
	hb := streamHeartbeat{Leader: s.Leader(), StalenessMs: s.Staleness().Milliseconds()}
	body, err := json.Marshal(hb)
	if err != nil {
		return err
	}
	return writeStreamFrame(w, frameHeartbeat, s.fsm.AppliedIndex(), body)
}

// sendSnapshot sends the whole state and returns the index and feed
// generation it reflects.
func (s *Server) sendSnapshot(conn net.Conn, w *bufio.Writer) (uint64, uint64, error) {
	snap, idx, gen := s.fsm.feedSnapshot()
	if err := writeStreamFrame(w, frameSnapBegin, idx, nil); err != nil {
		return 0, 0, err
	}
	cw := &chunkWriter{w: w, conn: conn, buf: make([]byte, 0, streamChunkSize)}
	if err := snap.Write(cw); err != nil {
		return 0, 0, fmt.Errorf("streaming a snapshot: %w", err)
	}
	if err := cw.flush(); err != nil {
		return 0, 0, err
	}
	if err := writeStreamFrame(w, frameSnapEnd, idx, nil); err != nil {
		return 0, 0, err
	}
	return idx, gen, nil
}
