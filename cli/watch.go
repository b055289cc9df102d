package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api/watch"
	"github.com/hashicorp/go-hclog"
)

// `watch` is Consul's command/watch on its api/watch plans: it hands every
// change of a view to a handler, or prints the first answer without one.

// stringList is a flag that may be given several times (-tag).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func (l *stringList) Get() any { return []string(*l) }

var watchCommand = &command{name: "watch", synopsis: "Watch for changes in the cluster's data",
	help: "beacon watch [options] [child...]", http: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("type", "", "Specifies the watch type. One of key, keyprefix, services, nodes, service, checks or event.")
		fs.String("key", "", "Specifies the key to watch. Only for 'key' type.")
		fs.String("prefix", "", "Specifies the key prefix to watch. Only for 'keyprefix' type.")
		fs.String("service", "", "Specifies the service to watch. Required for 'service' type, optional for 'checks' type.")
		fs.Var(new(stringList), "tag", "Specifies a service tag to filter on, for 'service' type; may be repeated.")
		fs.String("passingonly", "", "Show only instances passing all checks, for 'service' type: `true` or false.")
		fs.Bool("shell", true, "Use a shell to run the command (can set a custom shell via the SHELL environment variable).")
		fs.String("state", "", "Specifies the states to watch. Optional for 'checks' type.")
		fs.String("name", "", "Specifies an event name to watch. Only for 'event' type.")
		fs.String("filter", "", "Filter to use with the request")
		serverFlags(fs, true)
	},
	run: runWatch,
}

func runWatch(e *env, fs *flag.FlagSet, args []string) int {
	if flagString(fs, "type") == "" {
		e.fail("Watch type must be specified")
		return exitUsage
	}
	params := map[string]any{}
	for _, name := range []string{"type", "key", "prefix", "service", "name", "filter", "state"} {
		if v := flagString(fs, name); v != "" {
			params[name] = v
		}
	}
	if tags := flagOf[[]string](fs, "tag"); len(tags) > 0 {
		params["tag"] = tags
	}
	if flagOf[bool](fs, "stale") {
		params["stale"] = true
	}
	if v := flagString(fs, "passingonly"); v != "" {
		passing, err := strconv.ParseBool(v)
		if err != nil {
			return e.fail("Failed to parse passingonly flag: %s", err)
		}
		params["passingonly"] = passing
	}
	plan, err := parseWatch(params)
	if err != nil {
		return e.fail("%s", err)
	}
	// Find out that the agent answers before blocking on it.
	if _, err := e.client.Status().Leader(); err != nil {
		return e.fail("Error querying Consul agent: %s", decoded("/v1/status/leader", err))
	}

	shutdown, stopListening := shutdownContext(e)
	defer stopListening()
	defer context.AfterFunc(shutdown, plan.Stop)()
	exit := exitOK
	plan.Handler = func(_ uint64, data any) { // no child: print the first answer and stop
		if b, err := json.MarshalIndent(data, "", "    "); err != nil {
			exit = e.fail("Error encoding output: %s", err)
		} else {
			e.info("%s", b)
		}
		plan.Stop()
	}
	if len(args) > 0 {
		plan.Handler = func(index uint64, data any) {
			if err := runHandler(e, args, flagOf[bool](fs, "shell"), index, data, shutdown.Done()); err != nil {
				exit = e.fail("%s", err)
				plan.Stop()
			}
		}
	}
	if err := plan.RunWithClientAndHclog(e.client.Client, hclog.New(&hclog.LoggerOptions{Output: e.stderr})); err != nil {
		return e.fail("Error running watch: %s", err)
	}
	return exit
}

// healthStates are the states /v1/health/state takes.
var healthStates = map[string]bool{"any": true, "passing": true, "warning": true, "critical": true}

// parseWatch is Consul's watch.Parse for the types the command runs, with
// its leftover parameters named in order.
func parseWatch(params map[string]any) (*watch.Plan, error) {
	state, _ := params["state"].(string)
	plan, err := watch.Parse(params)
	switch {
	case err != nil && strings.HasPrefix(err.Error(), "Invalid parameters"): // what Parse did not consume is left
		return nil, consulErrorf("Invalid parameters: %v", slices.Sorted(maps.Keys(params)))
	case err != nil:
		return nil, err
	case plan.Type == "checks" && state != "" && !healthStates[state]:
		return nil, consulErrorf("Unsupported state: %v", state)
	case strings.HasPrefix(plan.Type, "connect_"), strings.HasPrefix(plan.Type, "agent_"):
		return nil, consulErrorf("Type %s is not supported in the CLI tool", plan.Type)
	}
	return plan, nil
}

// runHandler runs the child with the data as JSON on its stdin and
// CONSUL_INDEX set, and fails if it does. A shutdown while it runs stops
// it (SIGTERM, SIGKILL after the grace period).
func runHandler(e *env, args []string, shell bool, index uint64, data any, shutdown <-chan struct{}) error {
	var input bytes.Buffer
	if err := json.NewEncoder(&input).Encode(data); err != nil {
		return consulErrorf("Error encoding output: %s", err)
	}
	cmd := childCommand(e, args, shell)
	idx := strconv.FormatUint(index, 10)
	cmd.Env = append(os.Environ(), "CONSUL_INDEX="+idx, "BEACON_INDEX="+idx)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = &input, e.stdout, e.stderr
	ch, err := startChild(cmd, true)
	if err != nil {
		return consulErrorf("Error starting handler: %s", err)
	}
	select {
	case <-ch.done:
	case <-shutdown:
		ch.stop(e, func(string, ...any) {})
		return nil
	}
	if ch.err != nil {
		return consulErrorf("Error executing handler: %s", ch.err)
	}
	return nil
}
