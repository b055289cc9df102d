package raftstore

import (
	"net"
	"testing"
	"time"
)

func TestConnAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("no connection accepted")
	}
	if !connAlive(client) {
		t.Fatal("an open idle connection is reported dead")
	}
	server.Close()
	deadline := time.Now().Add(5 * time.Second)
	for connAlive(client) {
		if time.Now().After(deadline) {
			t.Fatal("a connection the peer closed is still reported alive")
		}
		time.Sleep(time.Millisecond)
	}
}
