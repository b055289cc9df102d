package healthcheck

import (
	"fmt"
	"log"
	"net"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/state"
)

// quietLog is a logger for test servers whose expected errors would only
// clutter the output.
func quietLog() *log.Logger {
	return log.New(discard{}, "", 0)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestTCPCheck(t *testing.T) {
	t.Parallel()
	open := listenTCP(t)
	closed := closedPort(t)

	tests := []struct {
		name       string
		addr       string
		wantStatus string
		wantOutput string // exact for passing, contained for critical
	}{
		{"open port is passing", open, pass, "TCP connect " + open + ": Success"},
		{"closed port is critical", closed, crit, "dial tcp " + closed + ": connect: connection refused"},
	}
	m, rec := newTestMonitor(t, false)
	for i, tt := range tests {
		id := fmt.Sprintf("tcp-%d", i)
		mustAdd(t, m, id, TypeTCP, state.CheckDefinition{TCP: tt.addr, Timeout: "2s"})
		t.Run(tt.name, func(t *testing.T) {
			e := rec.waitCount(t, id, 1)[0]
			if e.status != tt.wantStatus || !strings.Contains(e.output, tt.wantOutput) {
				t.Errorf("got %s %q, want %s %q", e.status, e.output, tt.wantStatus, tt.wantOutput)
			}
		})
	}
}

// listenTCP listens on a local port, accepting and closing connections,
// and returns its address.
func listenTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}
