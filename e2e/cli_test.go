package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBadCorefile: a Corefile mistake stops start-up promptly, naming the
// file, the line and the property.
func TestBadCorefile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, line, property string
	}{
		{"unknown property", "foo bar", "foo"},
		{"bad address", "http 127.0.0.1:99999", "http"},
		{"bad bind address", "bind not-an-ip", "bind"},
		{"missing value", "node", "node"},
		{"missing duration", "service_ttl *", "service_ttl"},
		{"bad duration", "negative_ttl soon", "negative_ttl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			a := &Agent{Opts: Options{Node: "n1", Datacenter: "dc1", Discovery: []string{c.line}}, Dir: dir,
				ConfPath: filepath.Join(dir, "Corefile")}
			a.setPorts(allocatePorts(t))
			defer a.transport.CloseIdleConnections()
			conf := a.Corefile()
			line := 0
			for i, l := range strings.Split(conf, "\n") {
				if strings.TrimSpace(l) == c.line {
					line = i + 1
				}
			}
			if line == 0 {
				t.Fatalf("%q not in the Corefile:\n%s", c.line, conf)
			}
			a.writeCorefile(t)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, beaconBin, "agent", "-conf", a.ConfPath)
			cmd.Dir = dir
			cmd.SysProcAttr = sysProcAttr()
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			report := fmt.Sprintf("Corefile:\n%s\noutput:\n%s", numbered(conf), out)
			if ctx.Err() != nil {
				t.Fatalf("beacon agent with %q still ran after 30s\n%s", c.line, report)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("beacon agent with %q: %v, want a non-zero exit\n%s", c.line, err, report)
			}
			if took > 10*time.Second {
				t.Errorf("beacon agent with %q took %v to fail, want it prompt", c.line, took)
			}
			s := string(out)
			if !strings.Contains(s, a.ConfPath) {
				t.Errorf("the error does not name the Corefile %s\n%s", a.ConfPath, report)
			}
			if !regexp.MustCompile(fmt.Sprintf(`(:|line )%d\b`, line)).MatchString(s) {
				t.Errorf("the error does not name line %d\n%s", line, report)
			}
			if !strings.Contains(s, c.property) {
				t.Errorf("the error does not name the property %q\n%s", c.property, report)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Errorf("a refused Corefile still created the data_dir")
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, beaconBin, "version")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("beacon version: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^beacon v?\d+\.\d+\.\d+\S*`).Match(out) {
		t.Errorf("beacon version printed %q, want a line like \"beacon 1.2.3 ...\"", out)
	}
}
