package raftstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/beacon-dns/beacon/internal/wire"
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

// serveSnapshotRPC answers one transfer.
func (s *Server) serveSnapshotRPC(raw net.Conn) {
	defer raw.Close()
	conn := wire.DeadlineConn{Conn: raw, Timeout: snapshotIOTimeout}
	br := bufio.NewReaderSize(conn, 64<<10)
	bw := bufio.NewWriterSize(conn, 64<<10)
	var req snapshotRPCRequest
	if err := wire.ReadMsg(br, &req, maxRPCFrame); err != nil {
		s.logger.Debug("snapshot transfer: bad request", "remote", raw.RemoteAddr(), "error", err)
		return
	}
	respond := func(idx uint64, err error) {
		resp := &rpcResponse{Index: idx}
		if err != nil {
			resp.Error, resp.Code = err.Error(), errorCode(err)
		}
		if wire.WriteMsg(bw, resp) == nil {
			_ = bw.Flush()
		}
	}
	switch req.Op {
	case snapshotOpRestore:
		if !s.IsLeader() {
			respond(0, s.notLeader()) // unread: the sender stops at the answer
			return
		}
		src := wire.NewChunkReader(br, nil, nil)
		err := s.restoreLocal(src)
		if err == nil {
			_, err = io.Copy(io.Discard, src) // up to the end frame
		}
		respond(0, err)
	case snapshotOpSave:
		sink := wire.NewChunkWriter(bw, nil)
		idx, err := s.SaveSnapshot(sink)
		if err == nil {
			err = sink.Flush()
		}
		if werr := wire.WriteFrame(bw, frameSnapEnd, idx, nil); werr != nil {
			return
		}
		respond(idx, err)
	default:
		respond(0, fmt.Errorf("unknown snapshot operation %q", req.Op))
	}
}

// forwardRestore sends the archive read from r to the leader at addr.
func forwardRestore(tlsc *tlsutil.Configurator, addr string, r io.Reader) error {
	raw, err := dialServer(context.Background(), tlsc, addr, protoSnapshot, rpcDialTimeout)
	if err != nil {
		return fmt.Errorf("%w: dialing the leader %s: %v", state.ErrNoLeader, addr, err)
	}
	defer raw.Close()
	conn := wire.DeadlineConn{Conn: raw, Timeout: snapshotIOTimeout}
	bw := bufio.NewWriterSize(conn, 64<<10)
	if err := wire.WriteMsg(bw, &snapshotRPCRequest{Op: snapshotOpRestore}); err != nil {
		return err
	}
	// The leader answers early when it refuses (not the leader, a bad
	// archive): read its answer alongside the upload.
	answer := make(chan error, 1)
	go func() {
		var resp rpcResponse
		if err := wire.ReadMsg(bufio.NewReader(conn), &resp, maxRPCFrame); err != nil {
			answer <- fmt.Errorf("snapshot restore on the leader %s: %w", addr, err)
			return
		}
		answer <- remoteError(&resp)
	}()
	sink := wire.NewChunkWriter(bw, nil)
	_, copyErr := io.Copy(sink, r)
	if copyErr == nil {
		copyErr = sink.Flush()
	}
	if copyErr == nil {
		copyErr = wire.WriteFrame(bw, frameSnapEnd, 0, nil)
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
func forwardSave(tlsc *tlsutil.Configurator, addr string, w io.Writer) (uint64, error) {
	raw, err := dialServer(context.Background(), tlsc, addr, protoSnapshot, rpcDialTimeout)
	if err != nil {
		return 0, fmt.Errorf("%w: dialing server %s: %v", state.ErrNoLeader, addr, err)
	}
	defer raw.Close()
	conn := wire.DeadlineConn{Conn: raw, Timeout: snapshotIOTimeout}
	bw := bufio.NewWriter(conn)
	if err := wire.WriteMsg(bw, &snapshotRPCRequest{Op: snapshotOpSave}); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	if _, err := io.Copy(w, wire.NewChunkReader(br, nil, nil)); err != nil {
		return 0, fmt.Errorf("receiving the snapshot from %s: %w", addr, err)
	}
	var resp rpcResponse
	if err := wire.ReadMsg(br, &resp, maxRPCFrame); err != nil {
		return 0, fmt.Errorf("snapshot save on %s: %w", addr, err)
	}
	return resp.Index, remoteError(&resp)
}
