package cli

import (
	"flag"
	"regexp"

	"github.com/hashicorp/consul/api"
)

// `event` is Consul's `consul event`: it fires a user event through the
// agent, which gossips it to the datacenter, and prints its ID.

var eventCommand = &command{name: "event", synopsis: "Fire a new event",
	help: "beacon event [options] [payload]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("name", "", "Name of the event.")
		fs.String("node", "", "Regular expression to filter on node names.")
		fs.String("service", "", "Regular expression to filter on service instances.")
		fs.String("tag", "", "Regular expression to filter on service tags. Must be used with -service.")
		serverFlags(fs, false)
	},
	run: runEvent,
}

func runEvent(e *env, fs *flag.FlagSet, args []string) int {
	name := flagString(fs, "name")
	if name == "" {
		e.fail("Event name must be specified")
		return exitUsage
	}
	filters := map[string]string{"node": flagString(fs, "node"), "service": flagString(fs, "service"),
		"tag": flagString(fs, "tag")}
	for _, what := range []string{"node", "service", "tag"} { // in Consul's order
		if _, err := regexp.Compile(filters[what]); err != nil {
			return e.fail("Failed to compile %s filter regexp: %v", what, err)
		}
	}
	if filters["tag"] != "" && filters["service"] == "" {
		return e.fail("Cannot provide tag filter without service filter.")
	}
	var payload []byte
	switch len(args) {
	case 0:
	case 1:
		payload = []byte(args[0])
	default:
		e.fail("Too many command line arguments.")
		return exitUsage
	}
	// Find out that the agent answers before firing, as Consul's does.
	if _, err := e.client.Agent().NodeName(); err != nil {
		return e.fail("Error querying Consul agent: %s", decoded("/v1/agent/self", err))
	}
	id, _, err := e.client.Event().Fire(&api.UserEvent{Name: name, Payload: payload, NodeFilter: filters["node"],
		ServiceFilter: filters["service"], TagFilter: filters["tag"]}, nil)
	if err != nil {
		return e.fail("Error firing event: %s", decoded("/v1/event/fire", err))
	}
	e.info("Event ID: %s", id)
	return exitOK
}
