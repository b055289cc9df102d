//go:build unix

package healthcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/state"
)

func sh(script string) []string { return []string{"sh", "-c", script} }

func TestScriptCheck(t *testing.T) {
	t.Parallel()
	digits := strings.Repeat("0123456789", 500) // 5000 bytes
	tests := []struct {
		name       string
		args       []string
		timeout    string
		wantStatus string
		wantOutput string
	}{
		{"exit 0 is passing, stdout and stderr captured", sh("echo out; echo err >&2; exit 0"), "",
			pass, "out\nerr\n"},
		{"exit 1 is warning", sh("echo degraded; exit 1"), "", warn, "degraded\n"},
		{"exit 2 is critical", sh("echo down; exit 2"), "", crit, "down\n"},
		{"exit 127 is critical", sh("echo gone; exit 127"), "", crit, "gone\n"},
		{"killed by a signal is critical", sh("echo dying; kill -9 $$"), "", crit, "dying\n"},
		{"output keeps the last 4 KiB", sh("printf '%s' " + digits), "",
			pass, "Captured 4096 of 5000 bytes\n...\n" + digits[5000-4096:]},
		{"args are passed as they are, no shell", []string{"echo", "$HOME", "a  b"}, "", pass, "$HOME a  b\n"},
		{"a missing program is critical", []string{"/nonexistent/check"}, "",
			crit, "fork/exec /nonexistent/check: no such file or directory"},
		{"past the timeout is critical, with the output so far", sh("echo started; exec sleep 60"), "200ms",
			crit, "Timed out (200ms) running check\n\nstarted\n"},
		{"past the timeout without output", []string{"sleep", "60"}, "200ms",
			crit, "Timed out (200ms) running check"},
	}
	m, rec := newTestMonitor(t, true)
	for i, tt := range tests {
		id := fmt.Sprintf("script-%d", i)
		mustAdd(t, m, id, TypeScript, state.CheckDefinition{ScriptArgs: tt.args, Timeout: tt.timeout})
		t.Run(tt.name, func(t *testing.T) {
			e := rec.waitCount(t, id, 1)[0]
			if e.status != tt.wantStatus || e.output != tt.wantOutput {
				t.Errorf("got %s %q, want %s %q", e.status, e.output, tt.wantStatus, tt.wantOutput)
			}
		})
	}
}

// TestScriptTimeoutKillsProcessGroup: on timeout the shell's children die
// with it, as Consul kills the command's subtree.
func TestScriptTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	m, rec := newTestMonitor(t, true)
	mustAdd(t, m, "tree", TypeScript, state.CheckDefinition{
		// Each run appends its child's PID: the first line is the run
		// that timed out.
		ScriptArgs: sh(fmt.Sprintf("sleep 60 & echo $! >> %s; wait", pidFile)),
		Timeout:    "300ms",
	})
	e := rec.waitStatus(t, "tree", crit)
	if !strings.HasPrefix(e.output, "Timed out (300ms) running check") {
		t.Fatalf("output %q, want a timeout", e.output)
	}
	pid := readPID(t, pidFile)
	waitUntil(t, fmt.Sprintf("the script's child %d to die", pid), func() bool { return processGone(pid) })
}

// TestScriptBackgroundChildHoldingOutput: a script that exits 0 leaving a
// child that holds its output open is passing, without waiting for the child.
func TestScriptBackgroundChildHoldingOutput(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	t.Cleanup(func() {
		// The script left its children running, as they would be under
		// Consul; this runs after the monitor's Stop (cleanups run last
		// first), once no run can start another.
		b, _ := os.ReadFile(pidFile)
		for _, line := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(line); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	m, rec := newTestMonitor(t, true)
	mustAdd(t, m, "bg", TypeScript, state.CheckDefinition{
		ScriptArgs: sh(fmt.Sprintf("sleep 30 & echo $! >> %s; echo started", pidFile)),
		Timeout:    "1m",
	})
	e := rec.waitCount(t, "bg", 1)[0]
	if e.status != pass || e.output != "started\n" {
		t.Fatalf("got %s %q, want passing %q", e.status, e.output, "started\n")
	}
}

// TestRemoveKillsRunningScript: removing a check whose script is running
// kills the script and returns without waiting for its timeout.
func TestRemoveKillsRunningScript(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "script.pid")
	m, rec := newTestMonitor(t, true)
	mustAdd(t, m, "long", TypeScript, state.CheckDefinition{
		ScriptArgs: sh(fmt.Sprintf("echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 60", pidFile, pidFile, pidFile)),
		Timeout:    "1h",
	})
	waitUntil(t, "the script to start", func() bool { _, err := os.Stat(pidFile); return err == nil })
	pid := readPID(t, pidFile)
	start := time.Now()
	m.Remove("long")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Remove took %s with a script running", d)
	}
	waitUntil(t, fmt.Sprintf("the script %d to die", pid), func() bool { return processGone(pid) })
	if events := rec.of("long"); len(events) != 0 {
		t.Fatalf("a cancelled run was notified: %s", formatEvents(events))
	}
}

// readPID reads the first PID written to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

// processGone reports whether pid has exited: no such process, or a zombie
// (an orphan waits for a reaper, which a container's init may not be).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// The state follows the parenthesised command name.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z' || stat[i+2] == 'X'
	}
	return false
}
