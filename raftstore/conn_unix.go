//go:build unix

package raftstore

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// connAlive peeks at an idle connection without blocking: nothing to read
// (EAGAIN) means the peer still holds it open. A read deadline cannot do
// this: Go fails a read whose deadline has passed before looking at the
// socket.
func connAlive(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		// The socket under TLS: the protocol sends nothing unasked, and
		// the server sends no session tickets (tlsutil), so anything
		// there is a close_notify or an EOF.
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK))
		return true // never wait for readiness
	})
	return err == nil && alive
}
