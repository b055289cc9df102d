package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api/watch"
	"github.com/hashicorp/go-hclog"
)

// `watch` is Consul's command/watch on the watch plans of its api/watch
// package: a blocking-query loop on one view of the data that hands every
// change to a handler, or prints the first answer and exits when there is
// no handler. The plans' `event` type is left out: the agent has no
// /v1/event endpoint.

// stringList is a flag that may be given several times (-tag).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func (l *stringList) Get() any { return []string(*l) }

var watchCommand = &command{
	name:     "watch",
	synopsis: "Watch for changes in the cluster's data",
	help:     "beacon watch [options] [child...]",
	http:     true,
	flags: func(fs *flag.FlagSet) {
		fs.String("type", "", "Specifies the watch type. One of key, keyprefix, services, nodes, service or checks.")
		fs.String("key", "", "Specifies the key to watch. Only for 'key' type.")
		fs.String("prefix", "", "Specifies the key prefix to watch. Only for 'keyprefix' type.")
		fs.String("service", "", "Specifies the service to watch. Required for 'service' type, optional for 'checks' type.")
		fs.Var(new(stringList), "tag", "Specifies the service tag(s) to filter on. Optional for 'service' type. "+
			"May be specified multiple times")
		fs.String("passingonly", "", "Specifies if only hosts passing all checks are displayed. Optional for "+
			"'service' type, must be one of `[true|false]`. Defaults false.")
		fs.Bool("shell", true, "Use a shell to run the command (can set a custom shell via the SHELL environment variable).")
		fs.String("state", "", "Specifies the states to watch. Optional for 'checks' type.")
		fs.String("filter", "", "Filter to use with the request")
		serverFlags(fs, true)
	},
	run: runWatch,
}

// healthStates are the states /v1/health/state takes.
var healthStates = map[string]bool{"any": true, "passing": true, "warning": true, "critical": true}

// parseWatch is Consul's watch.Parse for the types the command runs, with
// its leftover parameters named in order.
func parseWatch(params map[string]any) (*watch.Plan, error) {
	if params["type"] == "event" {
		return nil, consulErrorf("Unsupported watch type: event")
	}
	state, _ := params["state"].(string)
	plan, err := watch.Parse(params)
	if err != nil {
		if strings.HasPrefix(err.Error(), "Invalid parameters") {
			// What Parse did not consume is left in params.
			leftover := make([]string, 0, len(params))
			for name := range params {
				leftover = append(leftover, name)
			}
			sort.Strings(leftover)
			return nil, consulErrorf("Invalid parameters: %v", leftover)
		}
		return nil, err
	}
	switch {
	case plan.Type == "checks" && state != "" && !healthStates[state]:
		return nil, consulErrorf("Unsupported state: %v", state)
	case strings.HasPrefix(plan.Type, "connect_"), strings.HasPrefix(plan.Type, "agent_"):
		return nil, consulErrorf("Type %s is not supported in the CLI tool", plan.Type)
	}
	return plan, nil
}

func runWatch(e *env, fs *flag.FlagSet, args []string) int {
	stdout, stderr := sharedOutputs(e)
	ui := consulUI{stdout, stderr}
	typ := flagString(fs, "type")
	if typ == "" {
		ui.error("Watch type must be specified")
		return exitUsage
	}
	params := map[string]any{"type": typ}
	for _, name := range []string{"key", "prefix", "service", "filter", "state"} {
		if v := flagString(fs, name); v != "" {
			params[name] = v
		}
	}
	if tags := fs.Lookup("tag").Value.(flag.Getter).Get().([]string); len(tags) > 0 {
		params["tag"] = tags
	}
	if flagOf[bool](fs, "stale") {
		params["stale"] = true
	}
	if v := flagString(fs, "passingonly"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return ui.error("Failed to parse passingonly flag: %s", err)
		}
		params["passingonly"] = b
	}
	plan, err := parseWatch(params)
	if err != nil {
		return ui.error("%s", err)
	}
	c := e.client
	// Find out that the agent answers before blocking on it.
	if _, err := c.Status().Leader(); err != nil {
		return ui.error("Error querying Consul agent: %s", decoded("/v1/status/leader", err))
	}

	shutdown, stopListening := shutdownContext(e)
	defer stopListening()
	defer context.AfterFunc(shutdown, plan.Stop)()
	exit := exitOK
	plan.Handler = func(_ uint64, data any) {
		b, err := json.MarshalIndent(data, "", "    ")
		if err != nil {
			exit = ui.error("Error encoding output: %s", err)
		} else {
			ui.info("%s", b)
		}
		plan.Stop()
	}
	if len(args) > 0 {
		plan.Handler = func(index uint64, data any) {
			if err := runHandler(e, ui, args, flagOf[bool](fs, "shell"), index, data, shutdown.Done()); err != nil {
				exit = ui.error("%s", err)
				plan.Stop()
			}
		}
	}
	logger := hclog.New(&hclog.LoggerOptions{Output: stderr})
	if err := plan.RunWithClientAndHclog(c.Client, logger); err != nil {
		return ui.error("Error running watch: %s", err)
	}
	return exit
}

// runHandler runs the child with the data as JSON on its stdin and
// CONSUL_INDEX set, and fails if it does. A shutdown while it runs stops
// it (SIGTERM, SIGKILL after the grace period).
func runHandler(e *env, ui consulUI, args []string, shell bool, index uint64, data any, shutdown <-chan struct{}) error {
	var input bytes.Buffer
	if err := json.NewEncoder(&input).Encode(data); err != nil {
		return consulErrorf("Error encoding output: %s", err)
	}
	cmd := childCommand(e, args, shell)
	idx := strconv.FormatUint(index, 10)
	cmd.Env = append(os.Environ(), "CONSUL_INDEX="+idx, "BEACON_INDEX="+idx)
	cmd.Stdin = &input
	cmd.Stdout, cmd.Stderr = ui.stdout, ui.stderr
	ch, err := startChild(cmd, true)
	if err != nil {
		return consulErrorf("Error starting handler: %s", err)
	}
	select {
	case <-ch.done:
	case <-shutdown:
		ch.stop(e.pacing().killGrace, ui, func(string, ...any) {})
		return nil
	}
	if ch.err != nil {
		return consulErrorf("Error executing handler: %s", ch.err)
	}
	return nil
}
