package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// The operator's view of the servers, as Consul's: the Raft configuration
// with node names and each server's last index, autopilot's configuration
// (read, CAS write, CLI), health and state, a leadership transfer to a
// chosen server, and dead-server cleanup: a killed server leaves the Raft
// configuration once failed for ServerStabilizationTime, and comes back
// when it does.
func TestOperatorRaftAndAutopilot(t *testing.T) {
	t.Parallel()
	servers := StartCluster(t, 3)
	client := StartClient(t, "c1", servers)
	op := client.Client.Operator() // a client agent passes these on to a server

	eventually(t, 15*time.Second, func() error {
		conf, err := op.RaftGetConfiguration(nil)
		if err != nil || len(conf.Servers) != 3 {
			return fmt.Errorf("raft configuration: %+v, %v", conf, err)
		}
		for _, s := range conf.Servers {
			if !strings.HasPrefix(s.Node, "s") || s.LastIndex == 0 {
				return fmt.Errorf("server %s: node %q, last index %d", s.ID, s.Node, s.LastIndex)
			}
		}
		return nil
	})
	cli := func(a *Agent, args ...string) (string, error) {
		out, err := exec.Command(beaconBin, append(args[:3:3], append([]string{"-http-addr=" + a.HTTPAddr}, args[3:]...)...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := cli(servers[0], "operator", "raft", "list-peers"); err != nil || !strings.Contains(out, "Commit Index") ||
		!strings.Contains(out, "s1") || !strings.Contains(out, "leader") {
		t.Errorf("beacon operator raft list-peers: %v\n%s", err, out)
	}

	// Autopilot's configuration: Consul's defaults, a CAS write, the CLI.
	cfg, err := op.AutopilotGetConfiguration(nil)
	if err != nil || !cfg.CleanupDeadServers || cfg.LastContactThreshold.Duration() != 200*time.Millisecond || cfg.MaxTrailingLogs != 250 {
		t.Fatalf("autopilot defaults: %+v, %v", cfg, err)
	}
	stale := *cfg
	stale.ModifyIndex = 1 << 40
	if ok, err := op.AutopilotCASConfiguration(&stale, nil); ok || err != nil {
		t.Errorf("CAS with a wrong index: %v, %v", ok, err)
	}
	if out, err := cli(servers[1], "operator", "autopilot", "set-config", "-server-stabilization-time=1s", "-max-trailing-logs=500"); err != nil ||
		!strings.Contains(out, "Configuration updated!") {
		t.Fatalf("beacon operator autopilot set-config: %v\n%s", err, out)
	}
	if out, err := cli(servers[2], "operator", "autopilot", "get-config"); err != nil || !strings.Contains(out, "ServerStabilizationTime = 1s") ||
		!strings.Contains(out, "MaxTrailingLogs = 500") {
		t.Errorf("beacon operator autopilot get-config after set-config: %v\n%s", err, out)
	}
	if out, err := cli(servers[0], "operator", "autopilot", "set-config", "-cleanup-dead-servers=maybe"); err == nil {
		t.Errorf("set-config with a bad value succeeded:\n%s", out)
	}

	// Health and state: all healthy, one failure tolerated.
	eventually(t, 15*time.Second, func() error {
		h, err := op.AutopilotServerHealth(nil)
		if err != nil || !h.Healthy || h.FailureTolerance != 1 || len(h.Servers) != 3 {
			return fmt.Errorf("autopilot health: %+v, %v", h, err)
		}
		return nil
	})
	st, err := op.AutopilotState(nil)
	if err != nil || !st.Healthy || len(st.Voters) != 3 || st.Servers[st.Leader].Status != api.AutopilotServerLeader {
		t.Errorf("autopilot state: %+v, %v", st, err)
	}

	// A leadership transfer to a chosen follower.
	leader := leaderOf(t, servers)
	var target *Agent
	for _, s := range servers {
		if s != leader {
			target = s
			break
		}
	}
	targetID := ""
	conf, _ := op.RaftGetConfiguration(nil)
	for _, s := range conf.Servers {
		if s.Node == target.Opts.Node {
			targetID = s.ID
		}
	}
	if out, err := cli(servers[0], "operator", "raft", "transfer-leader", "-id="+targetID); err != nil || !strings.Contains(out, "Success") {
		t.Fatalf("beacon operator raft transfer-leader: %v\n%s", err, out)
	}
	if got := leaderOf(t, servers); got != target {
		t.Errorf("after the transfer the leader is %s, want %s", got.Opts.Node, target.Opts.Node)
	}
	if _, err := op.RaftLeaderTransfer("no-such-server", nil); err == nil {
		t.Error("a transfer to an unknown server succeeded")
	}

	// Dead-server cleanup: a killed follower leaves the configuration,
	// and is a voter again once back.
	var victim *Agent
	for _, s := range servers {
		if s != target {
			victim = s
			break
		}
	}
	victim.Kill(t)
	eventually(t, 30*time.Second, func() error {
		conf, err := op.RaftGetConfiguration(nil)
		if err != nil || len(conf.Servers) != 2 {
			return fmt.Errorf("raft configuration with %s dead: %d servers, %v", victim.Opts.Node, len(conf.Servers), err)
		}
		return nil
	})
	victim.Restart(t)
	eventually(t, 30*time.Second, func() error {
		h, err := op.AutopilotServerHealth(nil)
		if err != nil || !h.Healthy || len(h.Servers) != 3 {
			return fmt.Errorf("autopilot health after %s came back: %+v, %v", victim.Opts.Node, h, err)
		}
		return nil
	})
}
