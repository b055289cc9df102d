package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// silentServer accepts connections on the server port and reads what is
// sent, never answering: a leader cut off after the request reached it.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return l.Addr().String()
}

// A call the caller gives up on (its leader changed) ends at once, with the
// cause, and is not taken for a request never sent: the server may have
// acted on it.
func TestCallEndsWithItsContext(t *testing.T) {
	addr := silentServer(t)
	var conns rpcConns
	defer conns.close()
	ctx, cancel := context.WithCancelCause(context.Background())
	ctx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	time.AfterFunc(200*time.Millisecond, func() { cancel(errLeaderChanged) })
	start := time.Now()
	_, err := conns.call(ctx, addr, &rpcRequest{Method: rpcMethodApply, Entry: []byte{1, 1}})
	if !errors.Is(err, errLeaderChanged) || errors.Is(err, errNotSent) {
		t.Errorf("call = %v, want errLeaderChanged and not errNotSent", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("call returned %v after it was given up", d)
	}

	// Given up before it is sent: not sent, so it may go elsewhere.
	_, err = conns.call(ctx, addr, &rpcRequest{Method: rpcMethodApply, Entry: []byte{1, 1}})
	if !errors.Is(err, errNotSent) || !errors.Is(err, errLeaderChanged) {
		t.Errorf("call with an ended context = %v, want errNotSent with the cause", err)
	}

	// At its deadline, a silent server's call ends too.
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	start = time.Now()
	if _, err := conns.call(short, addr, &rpcRequest{Method: rpcMethodReadIndex}); err == nil || errors.Is(err, errNotSent) {
		t.Errorf("call past its deadline = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("call past its deadline returned after %v", d)
	}
}

func TestLeaderWatch(t *testing.T) {
	var w leaderWatch
	ch := w.changed()
	if ch != w.changed() {
		t.Error("two channels before any change")
	}
	w.notify()
	select {
	case <-ch:
	default:
		t.Fatal("a change did not close the channel")
	}
	select {
	case <-w.changed():
		t.Fatal("the channel after a change is already closed")
	default:
	}
}

// A typed error keeps its kind and its wording across the wire.
func TestErrorsCrossTheWire(t *testing.T) {
	for _, k := range errorKinds {
		sent := fmt.Errorf("applying on %s: %w", "s1", k.err)
		resp := &rpcResponse{Error: sent.Error(), Code: errorCode(sent)}
		got := remoteError(resp)
		if !errors.Is(got, k.err) || got.Error() != sent.Error() {
			t.Errorf("%s: got %q (kind %v), want %q", k.code, got, errors.Is(got, k.err), sent)
		}
	}
	if got := remoteError(&rpcResponse{Error: "boom"}); got == nil || got.Error() != "boom" {
		t.Errorf("untyped error: %v", got)
	}
	if got := remoteError(&rpcResponse{}); got != nil {
		t.Errorf("no error: %v", got)
	}
}
