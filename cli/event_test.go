package cli

import (
	"net/http"
	"testing"
)

func TestEvent(t *testing.T) {
	const id = "b54fe110-7af5-cafc-d1fb-afc8ba432b1c"
	routes := map[string]reply{
		"GET /v1/agent/self":         {body: `{"Config":{"NodeName":"n1","Datacenter":"dc1"},"Member":{}}`},
		"PUT /v1/event/fire/deploy":  {body: `{"ID":"` + id + `","Name":"deploy","Payload":null,"Version":1,"LTime":0}`},
		"PUT /v1/event/fire/private": {http.StatusForbidden, "Permission denied"},
	}
	for _, tc := range []cmdCase{
		{name: "fire", args: []string{"event", "-name=deploy"},
			requests: []string{"GET /v1/agent/self", "PUT /v1/event/fire/deploy"},
			stdout:   "Event ID: " + id + "\n"},
		{name: "filters and datacenter", args: []string{"event", "-name=deploy", "-node=^web", "-service=api", "-tag=v2",
			"-datacenter=dc1"},
			requests: []string{"GET /v1/agent/self?dc=dc1", "PUT /v1/event/fire/deploy?dc=dc1&node=%5Eweb&service=api&tag=v2"},
			stdout:   "Event ID: " + id + "\n"},
		{name: "refused", args: []string{"event", "-name=private"}, code: 1,
			requests: []string{"GET /v1/agent/self", "PUT /v1/event/fire/private"},
			stderr:   "Error firing event: Unexpected response code: 403 (Permission denied)\n"},
		{name: "no name", args: []string{"event", "payload"}, code: 1,
			stderr: "Event name must be specified\n\n" + usageText + "event"},
		{name: "bad node filter", args: []string{"event", "-name=deploy", "-node=("}, code: 1,
			stderr: "Failed to compile node filter regexp: error parsing regexp: missing closing ): `(`\n"},
		{name: "bad tag filter", args: []string{"event", "-name=deploy", "-service=a", "-tag=*"}, code: 1,
			stderr: "Failed to compile tag filter regexp: error parsing regexp: missing argument to repetition operator: `*`\n"},
		{name: "tag without service", args: []string{"event", "-name=deploy", "-tag=v2"}, code: 1,
			stderr: "Cannot provide tag filter without service filter.\n"},
		{name: "two payloads", args: []string{"event", "-name=deploy", "a", "b"}, code: 1,
			stderr: "Too many command line arguments.\n\n" + usageText + "event"},
	} {
		tc.routes = routes
		tc.run(t)
	}

	// The payload is the body, sent as it is.
	api := routedAPI(t, routes)
	if r := runCLI("event", "-http-addr="+api.addr(), "-name=deploy", "v1.2.3"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	got := api.recorded()
	if len(got) != 2 || string(got[1].body) != "v1.2.3" {
		t.Errorf("requests %+v, want the payload as the fire's body", got)
	}

	// The agent does not answer: nothing is fired.
	down := routedAPI(t, map[string]reply{"GET /v1/agent/self": {http.StatusInternalServerError, "boom"}})
	if r := runCLI("event", "-http-addr="+down.addr(), "-name=deploy"); r.code != 1 ||
		r.stderr != "Error querying Consul agent: Unexpected response code: 500 (boom)\n" || len(down.recorded()) != 1 {
		t.Errorf("agent down: %v", r)
	}
}
