package raftstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// Snapshot transfers (first byte protoSnapshot on the server port): how a
// follower or a client agent passes a snapshot save or restore to the
// leader, as Consul forwards them. The caller sends a snapshotRPCRequest
// frame, then for a restore the archive as frameSnapChunk frames ended by
// frameSnapEnd, and reads an rpcResponse frame; for a save, it reads the
// archive in chunks, and the rpcResponse (the snapshot's index, or the
// error) after frameSnapEnd.

const (
	snapshotOpSave    = "save"
	snapshotOpRestore = "restore"
	// snapshotIOTimeout bounds every read and write of a transfer; the
	// whole transfer has no bound but its progress.
	snapshotIOTimeout = 30 * time.Second
)

type snapshotRPCRequest struct {
	Op string
}

// deadlineConn refreshes the connection's deadline on every read and write.
type deadlineConn struct{ net.Conn }

func (c deadlineConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(snapshotIOTimeout))
	return c.Conn.Read(p)
}

func (c deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(snapshotIOTimeout))
	return c.Conn.Write(p)
}

// chunkSink cuts what is written into frameSnapChunk frames on w.
type chunkSink struct {
	w   *bufio.Writer
	buf []byte
}

func (c *chunkSink) Write(p []byte) (int, error) {
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

func (c *chunkSink) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := writeStreamFrame(c.w, frameSnapChunk, 0, c.buf)
	c.buf = c.buf[:0]
	return err
}

// chunkSource reads the payload of frameSnapChunk frames up to frameSnapEnd.
type chunkSource struct {
	r    io.Reader
	rest []byte
	done bool
}

func (s *chunkSource) Read(p []byte) (int, error) {
	for len(s.rest) == 0 {
		if s.done {
			return 0, io.EOF
		}
		kind, _, payload, err := readStreamFrame(s.r, nil)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		switch kind {
		case frameSnapChunk:
			s.rest = payload
		case frameSnapEnd:
			s.done = true
		default:
			return 0, fmt.Errorf("unexpected frame kind %d in a snapshot transfer", kind)
		}
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// serveSnapshotRPC answers one transfer.
func (s *Server) serveSnapshotRPC(raw net.Conn) {
	defer raw.Close()
	conn := deadlineConn{raw}
	br := bufio.NewReaderSize(conn, 64<<10)
	bw := bufio.NewWriterSize(conn, 64<<10)
	var req snapshotRPCRequest
	if err := readFrame(br, &req); err != nil {
		s.logger.Debug("snapshot transfer: bad request", "remote", raw.RemoteAddr(), "error", err)
		return
	}
	respond := func(idx uint64, err error) {
		resp := &rpcResponse{Index: idx}
		if err != nil {
			resp.Error, resp.Code = err.Error(), errorCode(err)
		}
		if writeFrame(bw, resp) == nil {
			_ = bw.Flush()
		}
	}
	switch req.Op {
	case snapshotOpRestore:
		if !s.IsLeader() {
			respond(0, s.notLeader()) // unread: the sender stops at the answer
			return
		}
		src := &chunkSource{r: br}
		err := s.restoreLocal(src)
		if err == nil {
			_, err = io.Copy(io.Discard, src) // up to the end frame
		}
		respond(0, err)
	case snapshotOpSave:
		sink := &chunkSink{w: bw, buf: make([]byte, 0, streamChunkSize)}
		idx, err := s.SaveSnapshot(sink)
		if err == nil {
			err = sink.flush()
		}
		if werr := writeStreamFrame(bw, frameSnapEnd, idx, nil); werr != nil {
			return
		}
		respond(idx, err)
	default:
		respond(0, fmt.Errorf("unknown snapshot operation %q", req.Op))
	}
}

// forwardRestore sends the archive read from r to the leader at addr.
func forwardRestore(addr string, r io.Reader) error {
	raw, err := net.DialTimeout("tcp", addr, rpcDialTimeout)
	if err != nil {
		return fmt.Errorf("%w: dialing the leader %s: %v", state.ErrNoLeader, addr, err)
	}
	defer raw.Close()
	conn := deadlineConn{raw}
	bw := bufio.NewWriterSize(conn, 64<<10)
	if err := bw.WriteByte(protoSnapshot); err != nil {
		return err
	}
	if err := writeFrame(bw, &snapshotRPCRequest{Op: snapshotOpRestore}); err != nil {
		return err
	}
	// The leader answers early when it refuses (not the leader, a bad
	// archive): read its answer alongside the upload.
	answer := make(chan error, 1)
	go func() {
		var resp rpcResponse
		if err := readFrame(bufio.NewReader(conn), &resp); err != nil {
			answer <- fmt.Errorf("snapshot restore on the leader %s: %w", addr, err)
			return
		}
		answer <- remoteError(&resp)
	}()
	sink := &chunkSink{w: bw, buf: make([]byte, 0, streamChunkSize)}
	_, copyErr := io.Copy(sink, r)
	if copyErr == nil {
		copyErr = sink.flush()
	}
	if copyErr == nil {
		copyErr = writeStreamFrame(bw, frameSnapEnd, 0, nil)
	}
	if copyErr == nil {
		copyErr = bw.Flush()
	}
	if copyErr != nil {
		select {
		case err := <-answer: // the leader refused first: its reason counts
			if err != nil {
				return err
			}
		default:
		}
		raw.Close() // the leader sees a cut stream and restores nothing
		<-answer
		return copyErr
	}
	return <-answer
}

// forwardSave has the server at addr save a snapshot into w.
func forwardSave(addr string, w io.Writer) (uint64, error) {
	raw, err := net.DialTimeout("tcp", addr, rpcDialTimeout)
	if err != nil {
		return 0, fmt.Errorf("%w: dialing server %s: %v", state.ErrNoLeader, addr, err)
	}
	defer raw.Close()
	conn := deadlineConn{raw}
	bw := bufio.NewWriter(conn)
	if err := bw.WriteByte(protoSnapshot); err != nil {
		return 0, err
	}
	if err := writeFrame(bw, &snapshotRPCRequest{Op: snapshotOpSave}); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	if _, err := io.Copy(w, &chunkSource{r: br}); err != nil {
		return 0, fmt.Errorf("receiving the snapshot from %s: %w", addr, err)
	}
	var resp rpcResponse
	if err := readFrame(br, &resp); err != nil {
		return 0, fmt.Errorf("snapshot save on %s: %w", addr, err)
	}
	return resp.Index, remoteError(&resp)
}
