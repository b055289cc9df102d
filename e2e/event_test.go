package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// eventNames lists the names of the events agent a kept, oldest first.
func eventNames(t *testing.T, a *Agent) []string {
	t.Helper()
	evs, _, err := a.Client.Event().List("", nil)
	if err != nil {
		t.Fatalf("event list on %s: %v", a.Opts.Node, err)
	}
	names := []string{}
	for _, e := range evs {
		names = append(names, e.Name)
	}
	return names
}

// waitEvent waits until every agent lists the event with that ID.
func waitEvent(t *testing.T, id string, agents ...*Agent) {
	t.Helper()
	for _, a := range agents {
		eventually(t, 20*time.Second, func() error {
			evs, _, err := a.Client.Event().List("", nil)
			if err != nil {
				return err
			}
			for _, e := range evs {
				if e.ID == id {
					return nil
				}
			}
			return fmt.Errorf("%s does not list event %s yet", a.Opts.Node, id)
		})
	}
}

// beaconCLI runs the beacon command with args against agent a and returns
// its output, failing the test unless it exits as wanted.
func beaconCLI(t *testing.T, a *Agent, wantExit int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, beaconBin, append(args[:1:1], append([]string{"-http-addr=" + a.HTTPAddr}, args[1:]...)...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("beacon %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		code = exit.ExitCode()
	}
	if code != wantExit {
		t.Fatalf("beacon %s exited %d, want %d:\n%s", strings.Join(args, " "), code, wantExit, out)
	}
	return string(out)
}

// User events on a 3-server cluster and a client agent, through the
// official client and the CLI: an event reaches the agents its filters
// select and no others, a blocking list wakes on a new event, bad input
// fires nothing.
func TestEventsAcrossTheCluster(t *testing.T) {
	t.Parallel()
	servers := StartCluster(t, 3)
	client := StartClient(t, "c1", servers)
	all := append([]*Agent{client}, servers...)
	if err := client.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-1", Name: "web",
		Tags: []string{"v2"}, Port: 80}); err != nil {
		t.Fatal(err)
	}

	// A list blocked on c1 (nothing yet: index 1) wakes with the first
	// event meant for it.
	evs, meta, err := client.Client.Event().List("", nil)
	if err != nil || len(evs) != 0 || meta.LastIndex != 1 {
		t.Fatalf("c1's first list: %v, %+v, %v; want none at index 1", evs, meta, err)
	}
	type listed struct {
		evs  []*api.UserEvent
		meta *api.QueryMeta
		err  error
	}
	woken := make(chan listed, 1)
	go func() {
		evs, meta, err := client.Client.Event().List("", &api.QueryOptions{WaitIndex: 1, WaitTime: time.Minute})
		woken <- listed{evs, meta, err}
	}()
	id, _, err := servers[0].Client.Event().Fire(&api.UserEvent{Name: "deploy", Payload: []byte("v1.2.3"),
		NodeFilter: "^c1$"}, nil)
	if err != nil {
		t.Fatalf("firing deploy on s1: %v", err)
	}
	select {
	case got := <-woken:
		if got.err != nil || len(got.evs) != 1 || got.evs[0].ID != id ||
			got.meta.LastIndex != client.Client.Event().IDToIndex(id) {
			t.Fatalf("the blocked list woke with %+v, %v", got.evs, got.err)
		}
		e := got.evs[0]
		if e.Name != "deploy" || string(e.Payload) != "v1.2.3" || e.NodeFilter != "^c1$" || e.Version != 1 || e.LTime == 0 {
			t.Errorf("c1 kept %+v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the blocked list on c1 did not wake on the event")
	}

	// A service and tag filter selects c1 by its service; fired through
	// a follower.
	svcID, _, err := servers[1].Client.Event().Fire(&api.UserEvent{Name: "web-v2", ServiceFilter: "^web$",
		TagFilter: "^v2$"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, svcID, client)

	// Bad input is refused with nothing fired.
	for _, tc := range []struct {
		ev   api.UserEvent
		want string
	}{
		{api.UserEvent{Name: "bad", NodeFilter: "(["}, "400 (invalid user event: invalid node filter"},
		{api.UserEvent{Name: "bad", TagFilter: "v2"}, "400 (invalid user event: a tag filter needs a service filter"},
		{api.UserEvent{Name: "_rexec"}, "400 (invalid user event: event names starting with an underscore are reserved"},
		{api.UserEvent{Name: "bad", Payload: make([]byte, 600)}, "413 (Request body(600 bytes) too large, max size: 512 bytes"},
		{api.UserEvent{Name: strings.Repeat("b", 120), Payload: make([]byte, 400)}, "413 (user event too large"},
	} {
		if _, _, err := client.Client.Event().Fire(&tc.ev, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("firing %.20s: %v, want %q", tc.ev.Name, err, tc.want)
		}
	}
	if _, _, err := client.Client.Event().Fire(&api.UserEvent{Name: "x"}, &api.WriteOptions{Datacenter: "dc2"}); err == nil ||
		!strings.Contains(err.Error(), "500 (No path to datacenter)") {
		t.Errorf("firing into dc2: %v", err)
	}

	// An event for all, fired with the CLI on the client: once every
	// agent has it, the filtered ones had as long to arrive.
	out := beaconCLI(t, client, 0, "event", "-name=all", "hello")
	lastID, ok := strings.CutPrefix(strings.TrimSpace(out), "Event ID: ")
	if !ok || len(lastID) != 36 {
		t.Fatalf("beacon event printed %q", out)
	}
	waitEvent(t, lastID, all...)
	if got := eventNames(t, client); !slices.Equal(got, []string{"deploy", "web-v2", "all"}) {
		t.Errorf("c1 lists %v, want [deploy web-v2 all]", got)
	}
	for _, s := range servers {
		if got := eventNames(t, s); !slices.Equal(got, []string{"all"}) {
			t.Errorf("%s lists %v, want [all]", s.Opts.Node, got)
		}
	}

	// `beacon watch -type event` without a handler prints the events of
	// that name.
	var watched []*api.UserEvent
	if err := json.Unmarshal([]byte(beaconCLI(t, client, 0, "watch", "-type=event", "-name=deploy")), &watched); err != nil ||
		len(watched) != 1 || watched[0].ID != id {
		t.Errorf("beacon watch -type=event -name=deploy: %+v, %v", watched, err)
	}
	if out := beaconCLI(t, client, 1, "event", "-name=x", "-node=("); !strings.Contains(out,
		"Failed to compile node filter regexp") {
		t.Errorf("beacon event with a bad filter: %q", out)
	}
}

// With ACLs on and default deny, firing needs event:write on the name and
// listing shows what event:read allows.
func TestEventACLs(t *testing.T) {
	t.Parallel()
	const root = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	a := StartAgent(t, Options{Node: "n1", Token: root, Discovery: []string{
		"acl deny",
		"acl_token initial_management " + root,
	}})
	writer := a.clientWithToken(t, a.tokenWithRules(t, "deploy-writer", `event "deploy" { policy = "write" }`))
	// Reads all it may, but no events (the CLI asks the agent's name
	// first, which takes agent:read, as Consul's does).
	readerToken := a.tokenWithRules(t, "reader", `key_prefix "" { policy = "read" }
agent_prefix "" { policy = "read" }`)
	reader := a.clientWithToken(t, readerToken)
	anon := a.clientWithToken(t, "")

	for _, tc := range []struct {
		who    string
		client *api.Client
		name   string
	}{{"anonymous", anon, "deploy"}, {"reader", reader, "deploy"}, {"deploy-writer", writer, "other"}} {
		if _, _, err := tc.client.Event().Fire(&api.UserEvent{Name: tc.name}, nil); !isForbidden(err) {
			t.Errorf("%s firing %s: %v, want 403", tc.who, tc.name, err)
		}
	}
	id, _, err := writer.Event().Fire(&api.UserEvent{Name: "deploy"}, nil)
	if err != nil {
		t.Fatalf("deploy-writer firing deploy: %v", err)
	}
	waitEvent(t, id, a) // with the management token
	if got := eventNames(t, a); !slices.Equal(got, []string{"deploy"}) {
		t.Errorf("the management token lists %v: a refused event was fired", got)
	}
	evs, meta, err := anon.Event().List("", nil)
	if err != nil || len(evs) != 0 || !meta.ResultsFilteredByACLs {
		t.Errorf("anonymous list: %v (filtered %v), %v; want none, filtered", evs, meta != nil && meta.ResultsFilteredByACLs, err)
	}
	if out := beaconCLI(t, a, 1, "event", "-token="+readerToken, "-name=deploy"); !strings.Contains(out,
		"Error firing event: Unexpected response code: 403 (Permission denied)") {
		t.Errorf("beacon event with a token without event:write: %q", out)
	}
}
