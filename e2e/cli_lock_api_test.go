package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// lockRun is a `beacon lock` process running in the background.
type lockRun struct {
	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan struct{} // closed once the process exited; err is Wait's error then
	err    error
}

// lockedBuffer is the output of a process that the test reads as it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLock runs `beacon lock` against the agent with args (options, then
// the prefix and the child). The test's end kills it if it still runs.
func startLock(t *testing.T, a *Agent, args ...string) *lockRun {
	t.Helper()
	cmd := exec.Command(beaconBin, append([]string{"lock", "-http-addr=" + a.HTTPAddr}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = sysProcAttr()
	r := &lockRun{cmd: cmd, output: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.output, r.output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting beacon lock: %v", err)
	}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for the process to exit and returns its exit code.
func (r *lockRun) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		t.Fatalf("beacon lock still runs after %v; output:\n%s", timeout, r.output)
	}
	var exit *exec.ExitError
	if errors.As(r.err, &exit) {
		return exit.ExitCode()
	}
	if r.err != nil {
		t.Fatalf("beacon lock: %v", r.err)
	}
	return 0
}

// gatedChild is a shell child that appends "entered" to log, then waits
// until the gate file exists.
func gatedChild(log, gate string) string {
	return fmt.Sprintf("echo entered >> %s; while [ ! -e %s ]; do sleep 0.05; done", log, gate)
}

func entries(t *testing.T, log string) int {
	t.Helper()
	b, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "entered")
}

// `beacon lock` and a program using the official client's api.Lock, on the
// same key, exclude each other both ways: one holds the lock while the
// other waits, and the waiter gets it once the holder lets go.
func TestCLILockAndAPILockExcludeEachOther(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	const prefix = "service/deploy"
	key := prefix + "/.lock" // the key beacon lock holds for a PREFIX, as Consul's lock does
	dir := t.TempDir()
	apiLock := func(opts api.LockOptions) *api.Lock {
		t.Helper()
		opts.Key = key
		l, err := a.Client.LockOpts(&opts)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	t.Run("api.Lock waits while beacon lock's child runs", func(t *testing.T) {
		log, gate := filepath.Join(dir, "cli.log"), filepath.Join(dir, "cli.gate")
		run := startLock(t, a, prefix, gatedChild(log, gate))
		eventually(t, 30*time.Second, func() error {
			if entries(t, log) != 1 {
				return fmt.Errorf("the child has not started; output:\n%s", run.output)
			}
			return nil
		})
		// One attempt that waits 2s for the key to be free: it is not.
		lost, err := apiLock(api.LockOptions{LockTryOnce: true, LockWaitTime: 2 * time.Second}).Lock(nil)
		if err != nil || lost != nil {
			t.Fatalf("api.Lock while beacon lock's child runs: held %v, error %v; want neither", lost != nil, err)
		}
		// Once the child is done and beacon lock let go, api.Lock gets it.
		waiter := apiLock(api.LockOptions{})
		acquired := make(chan error, 1)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			lost, err := waiter.Lock(stop)
			if err == nil && lost == nil {
				err = errors.New("gave up")
			}
			acquired <- err
		}()
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if code := run.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("beacon lock exited %d; output:\n%s", code, run.output)
		}
		select {
		case err := <-acquired:
			if err != nil {
				t.Fatalf("api.Lock after beacon lock let go: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("api.Lock did not get the lock after beacon lock let go")
		}
		if entries(t, log) != 1 {
			t.Errorf("the child ran %d times, want once", entries(t, log))
		}
		if err := waiter.Unlock(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("beacon lock waits while api.Lock holds", func(t *testing.T) {
		holder := apiLock(api.LockOptions{})
		if _, err := holder.Lock(nil); err != nil {
			t.Fatal(err)
		}
		// An attempt bounded by -timeout gives up, its child never run.
		log, gate := filepath.Join(dir, "api.log"), filepath.Join(dir, "api.gate")
		bounded := startLock(t, a, "-timeout=2s", prefix, gatedChild(log, gate))
		if code := bounded.wait(t, 30*time.Second); code != 1 ||
			!strings.Contains(bounded.output.String(), "Shutdown triggered or timeout during lock acquisition") {
			t.Fatalf("beacon lock -timeout while api.Lock holds: exit %d, output:\n%s", code, bounded.output)
		}
		// One that waits runs its child only once the holder lets go.
		run := startLock(t, a, "-verbose", prefix, gatedChild(log, gate))
		eventually(t, 30*time.Second, func() error {
			if !strings.Contains(run.output.String(), "Attempting lock acquisition") {
				return fmt.Errorf("beacon lock has not started acquiring; output:\n%s", run.output)
			}
			return nil
		})
		if n := entries(t, log); n != 0 {
			t.Fatalf("beacon lock's child ran %d times while api.Lock held the lock", n)
		}
		if err := holder.Unlock(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			if entries(t, log) != 1 {
				return fmt.Errorf("the child has not started after api.Lock let go; output:\n%s", run.output)
			}
			return nil
		})
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if code := run.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("beacon lock exited %d; output:\n%s", code, run.output)
		}
	})

	// Nothing is left behind: no session, and no lock key (beacon lock
	// removes it once no one holds it).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sessions, _, err := a.Client.Session().List((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if strings.HasPrefix(s.Name, "Consul lock for") {
			t.Errorf("beacon lock left its session %s (%s)", s.ID, s.Name)
		}
	}
	if pair, _, err := a.Client.KV().Get(key, nil); err != nil || pair != nil {
		t.Errorf("the lock key after both let go: %+v, %v; want none", pair, err)
	}
}

// `beacon kv` and `beacon watch` against a real agent: a put is read back,
// and a watch hands each change of a key to its handler.
func TestCLIKVAndWatch(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	beacon := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, beaconBin, args...)
		cmd.Env = append(os.Environ(), "BEACON_HTTP_ADDR="+a.HTTPAddr)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("beacon %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := beacon("kv", "put", "app/config", "v1"); out != "Success! Data written to: app/config\n" {
		t.Errorf("kv put: %q", out)
	}
	if out := beacon("kv", "get", "app/config"); out != "v1\n" {
		t.Errorf("kv get: %q", out)
	}

	log := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(beaconBin, "watch", "-http-addr="+a.HTTPAddr, "-type=key", "-key=app/config",
		fmt.Sprintf(`{ cat; echo; } >> %s`, log))
	cmd.SysProcAttr = sysProcAttr()
	output := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	values := func() []string {
		b, _ := os.ReadFile(log)
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var pair api.KVPair
			if line != "" && json.Unmarshal([]byte(line), &pair) == nil {
				got = append(got, string(pair.Value))
			}
		}
		return got
	}
	eventually(t, 30*time.Second, func() error {
		if got := values(); len(got) != 1 || got[0] != "v1" {
			return fmt.Errorf("handed over %q, want [v1]; output:\n%s", got, output)
		}
		return nil
	})
	beacon("kv", "put", "app/config", "v2")
	eventually(t, 30*time.Second, func() error {
		if got := values(); len(got) != 2 || got[1] != "v2" {
			return fmt.Errorf("handed over %q, want [v1 v2]; output:\n%s", got, output)
		}
		return nil
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Errorf("beacon watch after SIGINT: %v; output:\n%s", err, output)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("beacon watch did not stop on SIGINT")
	}
}
