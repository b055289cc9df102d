package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Another datacenter's catalog for DNS is read through the agent's own
// API: an unknown datacenter is an error, this one's names answer.
func TestRemoteCatalogThroughTheAPI(t *testing.T) {
	a := startAgent(t, newAgentConf(t, "n1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.RemoteServiceInstances(ctx, "dc9", "web", ""); err == nil || !strings.Contains(err.Error(), "No path to datacenter") {
		t.Errorf("instances in an unknown datacenter: %v", err)
	}
	if _, err := a.RemoteNode(ctx, "dc9", "n1"); err == nil {
		t.Error("a node in an unknown datacenter: no error")
	}
	eventually(t, 10*time.Second, func() error {
		node, err := a.RemoteNode(ctx, "dc1", "n1")
		if err != nil || node == nil || node.Node != "n1" {
			return fmt.Errorf("the agent's node read through the API: %v, %v", node, err)
		}
		return nil
	})
	if node, err := a.RemoteNode(ctx, "dc1", "nobody"); err != nil || node != nil {
		t.Errorf("an unknown node: %v, %v", node, err)
	}
	if insts, err := a.RemoteServiceInstances(ctx, "dc1", "consul", ""); err != nil || len(insts) != 1 || insts[0].Node.Node != "n1" {
		t.Errorf("the consul service: %v, %v", insts, err)
	}
}
