package cli

import (
	"mime"
	"net/http"
	"strings"
	"testing"
)

// reply is what a routed fake API answers to one route.
type reply struct {
	status int
	body   string
}

// routedAPI answers "METHOD /path" from routes (whatever the query) and
// 404 to anything else.
func routedAPI(t *testing.T, routes map[string]reply) *fakeAPI {
	t.Helper()
	return newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		rep, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			http.Error(w, "no such route: "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		if rep.status != 0 && rep.status != http.StatusOK {
			http.Error(w, rep.body, rep.status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(rep.body))
	})
}

// cmdCase is one run of a command against a routed fake API.
type cmdCase struct {
	name   string
	args   []string // the command and its arguments; -http-addr is added after the command
	routes map[string]reply
	// requests are the calls the command must make, in order, as
	// "METHOD /path?query" ("?query" only when there is one); bodies,
	// when set, the body of each.
	requests []string
	bodies   []string
	code     int
	// stdout is the whole of it; stderr a part of it, or "" for none.
	stdout, stderr string
	// noAddr leaves -http-addr out (commands that take none).
	noAddr bool
	// words is how many of args name the command ("catalog nodes" is 2);
	// 0 is 1.
	words int
}

func (tc cmdCase) run(t *testing.T) {
	t.Helper()
	api := routedAPI(t, tc.routes)
	args := tc.args
	if !tc.noAddr {
		words := max(tc.words, 1)
		args = append(append(args[:words:words], "-http-addr="+api.addr()), args[words:]...)
	}
	r := runCLI(args...)
	if r.code != tc.code || r.stdout != tc.stdout ||
		(tc.stderr == "" && r.stderr != "") || !strings.Contains(r.stderr, tc.stderr) {
		t.Errorf("%s: %q:\n%v\nwant exit %d, stdout:\n%s\nstderr containing %q", tc.name, tc.args, r, tc.code, tc.stdout, tc.stderr)
	}
	got := api.recorded()
	var calls []string
	for _, g := range got {
		call := g.method + " " + g.path
		if g.query != "" {
			call += "?" + g.query
		}
		calls = append(calls, call)
	}
	if strings.Join(calls, "\n") != strings.Join(tc.requests, "\n") {
		t.Errorf("%s: requests\n%s\nwant\n%s", tc.name, strings.Join(calls, "\n"), strings.Join(tc.requests, "\n"))
		return
	}
	for i, want := range tc.bodies {
		// Consul's client ends a JSON body with a newline.
		if strings.TrimSuffix(string(got[i].body), "\n") != want {
			t.Errorf("%s: body of request %d is %q, want %q", tc.name, i, got[i].body, want)
		}
		if mediaType, _, _ := mime.ParseMediaType(got[i].contentType); want != "" && mediaType != "application/json" {
			t.Errorf("%s: Content-Type of request %d is %q", tc.name, i, got[i].contentType)
		}
	}
}

const usageText = "Usage: beacon "

func TestJoin(t *testing.T) {
	routes := map[string]reply{
		"PUT /v1/agent/join/10.0.0.1:8301":  {},
		"PUT /v1/agent/join/10.0.0.2:8301":  {},
		"PUT /v1/agent/join/10.0.0.9:8301":  {http.StatusInternalServerError, "dial tcp 10.0.0.9:8301: connect: connection refused"},
		"PUT /v1/agent/join/[fd00::1]:8301": {},
	}
	for _, tc := range []cmdCase{
		{name: "one", args: []string{"join", "10.0.0.1:8301"},
			requests: []string{"PUT /v1/agent/join/10.0.0.1:8301"},
			stdout:   "Successfully joined cluster by contacting 1 nodes.\n"},
		{name: "several", args: []string{"join", "10.0.0.1:8301", "10.0.0.2:8301", "[fd00::1]:8301"},
			requests: []string{"PUT /v1/agent/join/10.0.0.1:8301", "PUT /v1/agent/join/10.0.0.2:8301", "PUT /v1/agent/join/[fd00::1]:8301"},
			stdout:   "Successfully joined cluster by contacting 3 nodes.\n"},
		{name: "some fail", args: []string{"join", "10.0.0.9:8301", "10.0.0.1:8301"},
			requests: []string{"PUT /v1/agent/join/10.0.0.9:8301", "PUT /v1/agent/join/10.0.0.1:8301"},
			stdout:   "Successfully joined cluster by contacting 1 nodes.\n",
			stderr:   "Error joining address '10.0.0.9:8301': Unexpected response code: 500 (dial tcp 10.0.0.9:8301: connect: connection refused)\n"},
		{name: "all fail", args: []string{"join", "10.0.0.9:8301"}, code: 1,
			requests: []string{"PUT /v1/agent/join/10.0.0.9:8301"},
			stderr:   "Error joining address '10.0.0.9:8301': Unexpected response code: 500 (dial tcp 10.0.0.9:8301: connect: connection refused)\nFailed to join any nodes.\n"},
		{name: "no address", args: []string{"join"}, code: 1, stderr: "At least one address to join must be specified."},
		{name: "unknown flag", args: []string{"join", "-lan", "10.0.0.1:8301"}, code: 1, stderr: "flag provided but not defined: -lan"},
	} {
		tc.routes = routes
		tc.run(t)
	}
}

func TestLeave(t *testing.T) {
	for _, tc := range []cmdCase{
		{name: "leave", args: []string{"leave"}, routes: map[string]reply{"PUT /v1/agent/leave": {}},
			requests: []string{"PUT /v1/agent/leave"}, stdout: "Graceful leave complete\n"},
		{name: "agent error", args: []string{"leave"}, code: 1,
			routes:   map[string]reply{"PUT /v1/agent/leave": {http.StatusInternalServerError, "leave timed out"}},
			requests: []string{"PUT /v1/agent/leave"},
			stderr:   "Error leaving: Unexpected response code: 500 (leave timed out)\n"},
		{name: "argument", args: []string{"leave", "n1"}, code: 1, stderr: "Error: found unexpected args: [n1]\n\n" + usageText + "leave"},
		{name: "unknown flag", args: []string{"leave", "-force"}, code: 1, stderr: "flag provided but not defined: -force"},
	} {
		tc.run(t)
	}
}

func TestForceLeave(t *testing.T) {
	routes := map[string]reply{
		"PUT /v1/agent/force-leave/web-3": {},
		"PUT /v1/agent/force-leave/ghost": {http.StatusInternalServerError, `agent: No node found with name "ghost"`},
	}
	for _, tc := range []cmdCase{
		{name: "node", args: []string{"force-leave", "web-3"},
			requests: []string{"PUT /v1/agent/force-leave/web-3"}},
		{name: "prune", args: []string{"force-leave", "-prune", "web-3"},
			requests: []string{"PUT /v1/agent/force-leave/web-3?prune=1"}},
		{name: "agent error", args: []string{"force-leave", "ghost"}, code: 1,
			requests: []string{"PUT /v1/agent/force-leave/ghost"},
			stderr:   `Error force leaving: Unexpected response code: 500 (agent: No node found with name "ghost")`},
		{name: "no node", args: []string{"force-leave"}, code: 1,
			stderr: "Error: A single node name must be specified to force leave.\n\n" + usageText + "force-leave"},
		{name: "empty node", args: []string{"force-leave", ""}, code: 1, stderr: "A single node name must be specified"},
		{name: "two nodes", args: []string{"force-leave", "a", "b"}, code: 1, stderr: "A single node name must be specified"},
		{name: "flag after the node", args: []string{"force-leave", "web-3", "-prune"}, code: 1, stderr: "A single node name must be specified"},
		{name: "unknown flag", args: []string{"force-leave", "-purge", "web-3"}, code: 1, stderr: "flag provided but not defined: -purge"},
	} {
		tc.routes = routes
		tc.run(t)
	}
}

func TestMaintChange(t *testing.T) {
	routes := map[string]reply{
		"PUT /v1/agent/maintenance":                 {},
		"PUT /v1/agent/service/maintenance/redis-1": {},
		"PUT /v1/agent/service/maintenance/nope":    {http.StatusNotFound, `Unknown service ID "nope"`},
	}
	for _, tc := range []cmdCase{
		{name: "enable node", args: []string{"maint", "-enable"},
			requests: []string{"PUT /v1/agent/maintenance?enable=true&reason="},
			stdout:   "Node maintenance is now enabled\n"},
		{name: "enable node with reason", args: []string{"maint", "-enable", "-reason", "disk swap & reboot"},
			requests: []string{"PUT /v1/agent/maintenance?enable=true&reason=disk+swap+%26+reboot"},
			stdout:   "Node maintenance is now enabled\n"},
		{name: "disable node", args: []string{"maint", "-disable"},
			requests: []string{"PUT /v1/agent/maintenance?enable=false"},
			stdout:   "Node maintenance is now disabled\n"},
		{name: "enable service", args: []string{"maint", "-enable", "-service=redis-1", "-reason=upgrade"},
			requests: []string{"PUT /v1/agent/service/maintenance/redis-1?enable=true&reason=upgrade"},
			stdout:   "Service maintenance is now enabled for \"redis-1\"\n"},
		{name: "disable service", args: []string{"maint", "-disable", "-service=redis-1"},
			requests: []string{"PUT /v1/agent/service/maintenance/redis-1?enable=false"},
			stdout:   "Service maintenance is now disabled for \"redis-1\"\n"},
		{name: "unknown service", args: []string{"maint", "-enable", "-service=nope"}, code: 1,
			requests: []string{"PUT /v1/agent/service/maintenance/nope?enable=true&reason="},
			stderr:   `Error enabling service maintenance: Unexpected response code: 404 (Unknown service ID "nope")`},
		{name: "agent error", args: []string{"maint", "-disable"}, code: 1,
			routes:   map[string]reply{"PUT /v1/agent/maintenance": {http.StatusInternalServerError, "No cluster leader"}},
			requests: []string{"PUT /v1/agent/maintenance?enable=false"},
			stderr:   "Error disabling node maintenance: Unexpected response code: 500 (No cluster leader)\n"},
		{name: "enable and disable", args: []string{"maint", "-enable", "-disable"}, code: 1,
			stderr: "Error: Only one of -enable or -disable may be provided\n\n" + usageText + "maint"},
		{name: "reason without enable", args: []string{"maint", "-disable", "-reason=x"}, code: 1,
			stderr: "Error: Reason may only be provided with -enable"},
		{name: "reason alone", args: []string{"maint", "-reason=x"}, code: 1,
			stderr: "Error: Reason may only be provided with -enable"},
		{name: "service alone", args: []string{"maint", "-service=redis-1"}, code: 1,
			stderr: "Error: Service requires either -enable or -disable"},
		{name: "argument", args: []string{"maint", "-enable", "now"}, code: 1, stderr: `unexpected argument "now"`},
		{name: "unknown flag", args: []string{"maint", "-on"}, code: 1, stderr: "flag provided but not defined: -on"},
	} {
		if tc.routes == nil {
			tc.routes = routes
		}
		tc.run(t)
	}
}

const maintChecksJSON = `{
 "serfHealth": {"Node":"n1","CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing","Notes":"","ServiceID":""},
 "_service_maintenance:web-2": {"Node":"n1","CheckID":"_service_maintenance:web-2","Name":"Service Maintenance Mode","Status":"critical","Notes":"Maintenance mode is enabled for this service, but no reason was provided. This is a default message.","ServiceID":"web-2"},
 "_node_maintenance": {"Node":"n1","CheckID":"_node_maintenance","Name":"Node Maintenance Mode","Status":"critical","Notes":"disk swap","ServiceID":""},
 "_service_maintenance:api": {"Node":"n1","CheckID":"_service_maintenance:api","Name":"Service Maintenance Mode","Status":"critical","Notes":"upgrade","ServiceID":"api"},
 "service:api": {"Node":"n1","CheckID":"service:api","Name":"api TTL","Status":"passing","Notes":"","ServiceID":"api"}
}`

func TestMaintList(t *testing.T) {
	for _, tc := range []cmdCase{
		{name: "node and services", args: []string{"maint"},
			routes:   map[string]reply{"GET /v1/agent/checks": {body: maintChecksJSON}},
			requests: []string{"GET /v1/agent/checks"},
			stdout: "" +
				"Node:\n" +
				"  Name:   n1\n" +
				"  Reason: disk swap\n" +
				"\n" +
				"Service:\n" +
				"  ID:     api\n" +
				"  Reason: upgrade\n" +
				"\n" +
				"Service:\n" +
				"  ID:     web-2\n" +
				"  Reason: Maintenance mode is enabled for this service, but no reason was provided. This is a default message.\n" +
				"\n"},
		{name: "nothing in maintenance", args: []string{"maint"},
			routes:   map[string]reply{"GET /v1/agent/checks": {body: `{"serfHealth":{"Node":"n1","CheckID":"serfHealth"}}`}},
			requests: []string{"GET /v1/agent/checks"}},
		{name: "no checks", args: []string{"maint"},
			routes:   map[string]reply{"GET /v1/agent/checks": {body: `{}`}},
			requests: []string{"GET /v1/agent/checks"}},
		{name: "node name from the agent", args: []string{"maint"},
			routes: map[string]reply{
				"GET /v1/agent/checks": {body: `{"_node_maintenance":{"CheckID":"_node_maintenance","Notes":"r"}}`},
				"GET /v1/agent/self":   {body: `{"Config":{"NodeName":"alice","Datacenter":"dc1"},"Member":{}}`},
			},
			requests: []string{"GET /v1/agent/checks", "GET /v1/agent/self"},
			stdout:   "Node:\n  Name:   alice\n  Reason: r\n\n"},
		{name: "checks error", args: []string{"maint"}, code: 1,
			routes:   map[string]reply{"GET /v1/agent/checks": {http.StatusInternalServerError, "ACL not found"}},
			requests: []string{"GET /v1/agent/checks"},
			stderr:   "Error getting checks: Unexpected response code: 500 (ACL not found)\n"},
		{name: "self error", args: []string{"maint"}, code: 1,
			routes: map[string]reply{
				"GET /v1/agent/checks": {body: `{"_node_maintenance":{"CheckID":"_node_maintenance"}}`},
				"GET /v1/agent/self":   {http.StatusInternalServerError, "boom"},
			},
			requests: []string{"GET /v1/agent/checks", "GET /v1/agent/self"},
			stderr:   "Error querying the agent: Unexpected response code: 500 (boom)\n"},
		{name: "not JSON", args: []string{"maint"}, code: 1,
			routes:   map[string]reply{"GET /v1/agent/checks": {body: `[]`}},
			requests: []string{"GET /v1/agent/checks"},
			stderr:   "Error getting checks: decoding the agent's answer to /v1/agent/checks"},
	} {
		tc.run(t)
	}
}

// The new commands are registered, listed, and answer -h.
func TestAgentCommandsRegistered(t *testing.T) {
	for _, name := range []string{"members", "join", "leave", "force-leave", "maint", "keygen", "keyring", "event"} {
		if !Has(name) {
			t.Errorf("Has(%q) is false", name)
		}
		if !strings.Contains(Summary(), "    "+name+" ") {
			t.Errorf("Summary() does not list %s:\n%s", name, Summary())
		}
		r := runCLI(name, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, usageText+name) || r.stderr != "" {
			t.Errorf("%s -h: %v", name, r)
		}
		wantAddr := name != "keygen"
		if got := strings.Contains(r.stdout, "-http-addr"); got != wantAddr {
			t.Errorf("%s -h mentions -http-addr: %v, want %v", name, got, wantAddr)
		}
	}
}

// A command that finds no agent says where it looked.
func TestAgentCommandsAgentDown(t *testing.T) {
	down := closedAddr(t)
	for _, args := range [][]string{
		{"members"}, {"join", "10.0.0.1"}, {"leave"}, {"force-leave", "n"}, {"maint"}, {"maint", "-enable"}, {"keyring", "-list"},
		{"keyring", "-install=k"}, {"event", "-name=deploy"},
	} {
		r := runCLI(append([]string{args[0], "-http-addr=" + down}, args[1:]...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, HTTPAddrEnv) {
			t.Errorf("%q: %v", args, r)
		}
	}
}
