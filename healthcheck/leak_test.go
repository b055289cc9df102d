//go:build unix

package healthcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
)

// TestStopLeavesNoGoroutines runs a check of every kind, stops them, and
// waits for the process's goroutines to come back to where they were.
// Not parallel: it counts every goroutine of the process.
func TestStopLeavesNoGoroutines(t *testing.T) {
	srv, _ := countingServer(t)
	tcpAddr := listenTCP(t)
	grpcAddr := startGRPCHealthServer(t, nil)
	baseline := runtime.NumGoroutine()

	m, rec := newTestMonitor(t, true)
	mustAdd(t, m, "http", TypeHTTP, state.CheckDefinition{HTTP: srv.URL})
	mustAdd(t, m, "tcp", TypeTCP, state.CheckDefinition{TCP: tcpAddr})
	mustAdd(t, m, "grpc", TypeGRPC, state.CheckDefinition{GRPC: grpcAddr})
	mustAdd(t, m, "script", TypeScript, state.CheckDefinition{ScriptArgs: []string{"sh", "-c", "exit 0"}})
	pidFile := filepath.Join(t.TempDir(), "script.pid")
	mustAdd(t, m, "slow-script", TypeScript, state.CheckDefinition{
		ScriptArgs: sh(fmt.Sprintf("echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 60", pidFile, pidFile, pidFile)),
	})
	if err := m.Add("ttl", TypeTTL, state.CheckDefinition{TTL: "1h"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"http", "tcp", "grpc", "script"} {
		rec.waitStatus(t, id, pass)
	}
	waitUntil(t, "the slow script to start", func() bool { _, err := os.Stat(pidFile); return err == nil })
	scriptPID := readPID(t, pidFile)
	if err := m.UpdateTTL("ttl", warn, "degraded"); err != nil {
		t.Fatal(err)
	}
	if n := m.running.Load(); n != 6 {
		t.Fatalf("%d check goroutines running, want 6", n)
	}

	m.Stop()
	if n := m.running.Load(); n != 0 {
		t.Fatalf("%d check goroutines running after Stop", n)
	}
	if !processGone(scriptPID) {
		t.Errorf("the running script %d outlived Stop", scriptPID)
	}
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Stop, %d before the checks:\n%s",
				runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // polling pace
	}
	if err := m.UpdateTTL("ttl", pass, ""); !errors.Is(err, ErrUnknownCheck) {
		t.Errorf("UpdateTTL after Stop: %v, want ErrUnknownCheck", err)
	}
}
