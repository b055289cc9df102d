package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// `watch` is Consul's command/watch with the watch plans of its api/watch
// package: a blocking-query loop on one view of the data that hands every
// change to a handler, or prints the first answer and exits when there is
// no handler.

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
		fs.String("type", "", "Specifies the watch type. One of key, keyprefix, services, nodes, service, checks, or event.")
		fs.String("key", "", "Specifies the key to watch. Only for 'key' type.")
		fs.String("prefix", "", "Specifies the key prefix to watch. Only for 'keyprefix' type.")
		fs.String("service", "", "Specifies the service to watch. Required for 'service' type, optional for 'checks' type.")
		fs.Var(new(stringList), "tag", "Specifies the service tag(s) to filter on. Optional for 'service' type. "+
			"May be specified multiple times")
		fs.String("passingonly", "", "Specifies if only hosts passing all checks are displayed. Optional for "+
			"'service' type, must be one of `[true|false]`. Defaults false.")
		fs.Bool("shell", true, "Use a shell to run the command (can set a custom shell via the SHELL environment variable).")
		fs.String("state", "", "Specifies the states to watch. Optional for 'checks' type.")
		fs.String("name", "", "Specifies an event name to watch. Only for 'event' type.")
		fs.String("filter", "", "Filter to use with the request")
		serverFlags(fs, true)
	},
	run: runWatch,
}

// watchPlan is a parsed watch: its type and how to read its view.
type watchPlan struct {
	typ string
	// fetch reads the view, blocking on index when it is not 0, and
	// returns the view's index and data.
	fetch func(ctx context.Context, index uint64) (uint64, any, error)
}

// watchParams are a watch's parameters, consumed as each type takes its
// own; what is left is an error, as in Consul's watch.Parse.
type watchParams map[string]any

func (p watchParams) str(name string) string {
	v, _ := p[name].(string)
	delete(p, name)
	return v
}

func (p watchParams) flag(name string) bool {
	v, _ := p[name].(bool)
	delete(p, name)
	return v
}

func (p watchParams) list(name string) []string {
	v, _ := p[name].([]string)
	delete(p, name)
	return v
}

// healthStates are the states /v1/health/state takes.
var healthStates = map[string]bool{"any": true, "passing": true, "warning": true, "critical": true}

// parseWatch is Consul's watch.Parse for the types the command runs.
func parseWatch(c *client, p watchParams) (*watchPlan, error) {
	dc := p.str("datacenter")
	typ := p.str("type")
	if typ == "" {
		return nil, consulErrorf("Watch type must be specified")
	}
	// Every type but event takes stale.
	var stale bool
	switch typ {
	case "key", "keyprefix", "services", "nodes", "service", "checks":
		stale = p.flag("stale")
	}
	opts := func(ctx context.Context, index uint64) readOpts {
		return readOpts{ctx: ctx, index: index, stale: stale, dc: dc}
	}
	withFilter := func(filter string) url.Values {
		q := url.Values{}
		if filter != "" {
			q.Set("filter", filter)
		}
		return q
	}
	plan := &watchPlan{typ: typ}
	switch typ {
	case "key":
		key := p.str("key")
		if key == "" {
			return nil, consulErrorf("Must specify a single key to watch")
		}
		plan.fetch = func(ctx context.Context, index uint64) (uint64, any, error) {
			pair, meta, err := getKV(c, key, opts(ctx, index))
			if err != nil {
				return 0, nil, err
			}
			if pair == nil {
				return meta.index, nil, nil
			}
			return meta.index, pair, nil
		}
	case "keyprefix":
		prefix := p.str("prefix")
		if prefix == "" {
			return nil, consulErrorf("Must specify a single prefix to watch")
		}
		plan.fetch = func(ctx context.Context, index uint64) (uint64, any, error) {
			pairs, meta, err := listKV(c, prefix, opts(ctx, index))
			return meta.index, pairs, err
		}
	case "services":
		filter := p.str("filter")
		plan.fetch = func(ctx context.Context, index uint64) (uint64, any, error) {
			var services map[string][]string
			meta, err := c.query("/v1/catalog/services", withFilter(filter), opts(ctx, index), &services)
			return meta.index, services, err
		}
	case "nodes":
		filter := p.str("filter")
		plan.fetch = func(ctx context.Context, index uint64) (uint64, any, error) {
			var nodes []*catalogNode
			meta, err := c.query("/v1/catalog/nodes", withFilter(filter), opts(ctx, index), &nodes)
			return meta.index, nodes, err
		}
	case "service":
		filter := p.str("filter")
		service := p.str("service")
		if service == "" {
			return nil, consulErrorf("Must specify a single service to watch")
		}
		tags := p.list("tag")
		passing := p.flag("passingonly")
		plan.fetch = func(ctx context.Context, index uint64) (uint64, any, error) {
			q := withFilter(filter)
			for _, t := range tags {
				q.Add("tag", t)
			}
			if passing {
				q.Set("passing", "1")
			}
			var entries []*serviceEntry
			meta, err := c.query("/v1/health/service/"+service, q, opts(ctx, index), &entries)
			return meta.index, entries, err
		}
	case "checks":
		service, state, filter := p.str("service"), p.str("state"), p.str("filter")
		if service != "" && state != "" {
			return nil, consulErrorf("Cannot specify service and state")
		}
		if service == "" && state == "" {
			state = "any"
		}
		if state != "" && !healthStates[state] {
			return nil, consulErrorf("Unsupported state: %v", state)
		}
		endpoint := "/v1/health/checks/" + service
		if state != "" {
			endpoint = "/v1/health/state/" + state
		}
		plan.fetch = func(ctx context.Context, index uint64) (uint64, any, error) {
			var checks []*healthCheck
			meta, err := c.query(endpoint, withFilter(filter), opts(ctx, index), &checks)
			return meta.index, checks, err
		}
	case "event":
		name := p.str("name")
		plan.fetch = func(ctx context.Context, index uint64) (uint64, any, error) {
			q := url.Values{}
			if name != "" {
				q.Set("name", name)
			}
			var events []*userEvent
			meta, err := c.query("/v1/event/list", q, readOpts{ctx: ctx, index: index, dc: dc}, &events)
			if err != nil {
				return 0, nil, err
			}
			// Only the events after the last one delivered.
			if index != 0 {
				for i, ev := range events {
					if id, ok := eventIndex(ev.ID); ok && id == index {
						events = events[i+1:]
						break
					}
				}
			}
			return meta.index, events, nil
		}
	case "connect_roots", "agent_service":
		p.str("service_id")
	case "connect_leaf":
		p.str("service")
	default:
		return nil, consulErrorf("Unsupported watch type: %s", typ)
	}
	if len(p) != 0 {
		bad := make([]string, 0, len(p))
		for k := range p {
			bad = append(bad, k)
		}
		sort.Strings(bad)
		return nil, consulErrorf("Invalid parameters: %v", bad)
	}
	if plan.fetch == nil {
		return nil, consulErrorf("Type %s is not supported in the CLI tool", typ)
	}
	return plan, nil
}

// eventIndex is Consul's Event.IDToIndex: the index an event list's
// X-Consul-Index gives for the event with this ID (a UUID).
func eventIndex(id string) (uint64, bool) {
	if len(id) != 36 {
		return 0, false
	}
	low, err1 := strconv.ParseUint(id[0:8]+id[9:13]+id[14:18], 16, 64)
	high, err2 := strconv.ParseUint(id[19:23]+id[24:36], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return low ^ high, true
}

func runWatch(e *env, fs *flag.FlagSet, args []string) int {
	stdout, stderr := sharedOutputs(e)
	ui := consulUI{stdout, stderr}
	typ := flagString(fs, "type")
	if typ == "" {
		ui.error("Watch type must be specified")
		return exitUsage
	}
	p := watchParams{"type": typ}
	for _, name := range []string{"datacenter", "key", "prefix", "service", "filter", "state", "name"} {
		if v := flagString(fs, name); v != "" {
			p[name] = v
		}
	}
	if tags := fs.Lookup("tag").Value.(flag.Getter).Get().([]string); len(tags) > 0 {
		p["tag"] = tags
	}
	if flagBool(fs, "stale") {
		p["stale"] = true
	}
	if v := flagString(fs, "passingonly"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return ui.error("Failed to parse passingonly flag: %s", err)
		}
		p["passingonly"] = b
	}
	c, err := newClient(e, fs, false)
	if err != nil {
		return usageErr(e, "%v", err)
	}
	defer c.close()
	plan, err := parseWatch(c, p)
	if err != nil {
		return ui.error("%s", err)
	}
	// Find out that the agent answers before blocking on it.
	var leader string
	if _, err := c.query("/v1/status/leader", nil, readOpts{}, &leader); err != nil {
		return ui.error("Error querying Consul agent: %s", err)
	}

	shutdown, stopSignals := shutdownSignals(e)
	defer stopSignals()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-shutdown:
			cancel()
		case <-ctx.Done():
		}
	}()

	w := &watchRun{e: e, ui: ui, plan: plan, ctx: ctx, pace: e.pacing()}
	if len(args) == 0 {
		w.handle = w.print
	} else {
		w.handle = func(index uint64, data any) bool { return w.runHandler(args, flagBool(fs, "shell"), index, data) }
	}
	w.loop()
	return w.exit
}

// watchRun is a running watch.
type watchRun struct {
	e    *env
	ui   consulUI
	plan *watchPlan
	ctx  context.Context
	pace pacing
	// handle takes a change; false stops the watch.
	handle func(index uint64, data any) bool
	exit   int
}

// loop is Consul's Plan.Run: read, blocking on the last index; on an error
// back off (5s times the square of the failures in a row, at most 3
// minutes) and read afresh; hand over the data when the index moved and
// the data changed (or it is the first answer, or the first after an
// error). It also resets the index when it goes backwards and never
// blocks on index 0, as Consul's documentation of blocking queries asks
// of clients.
func (w *watchRun) loop() {
	var (
		last, wait uint64
		have       bool
		lastData   any
		failures   int
	)
	for w.ctx.Err() == nil {
		index, data, err := w.plan.fetch(w.ctx, wait)
		if w.ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			have, wait = false, 0
			retry := w.pace.watchRetry * time.Duration(failures*failures)
			if retry > w.pace.watchMaxBackoff || retry <= 0 {
				retry = w.pace.watchMaxBackoff
			}
			fmt.Fprintf(w.ui.stderr, "%s [ERROR] watch: Watch errored: type=%s error=%q retry=%s\n",
				time.Now().Format("2006-01-02T15:04:05.000Z0700"), w.plan.typ, err.Error(), retry)
			t := time.NewTimer(retry)
			select {
			case <-t.C:
			case <-w.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		failures = 0
		prevHave, prevLast := have, last
		last, have, wait = index, true, index
		switch {
		case prevHave && index < prevLast:
			wait = 0 // the index went backwards: read afresh
		case wait == 0:
			wait = 1 // never block on 0, which does not block
		}
		if prevHave && index == prevLast {
			continue // the wait passed with nothing new
		}
		if prevHave && reflect.DeepEqual(lastData, data) {
			continue
		}
		lastData = data
		if !w.handle(index, data) {
			return
		}
	}
}

// print is the handler without a child: the data as indented JSON, once.
func (w *watchRun) print(_ uint64, data any) bool {
	b, err := json.MarshalIndent(data, "", "    ")
	if err != nil {
		w.ui.error("Error encoding output: %s", err)
		w.exit = exitError
	}
	fmt.Fprintf(w.ui.stdout, "%s\n", b)
	return false
}

// runHandler runs the child with the data as JSON on its stdin and
// CONSUL_INDEX set; a child that fails ends the watch with exit 1. A stop
// while it runs stops it (SIGTERM, SIGKILL after the grace period).
func (w *watchRun) runHandler(args []string, shell bool, index uint64, data any) bool {
	fail := func(format string, a ...any) bool {
		w.ui.error(format, a...)
		w.exit = exitError
		return false
	}
	var input bytes.Buffer
	if err := json.NewEncoder(&input).Encode(data); err != nil {
		return fail("Error encoding output: %s", err)
	}
	cmd := childCommand(w.e, args, shell)
	idx := strconv.FormatUint(index, 10)
	cmd.Env = append(os.Environ(), "CONSUL_INDEX="+idx, "BEACON_INDEX="+idx)
	cmd.Stdin = io.Reader(&input)
	cmd.Stdout, cmd.Stderr = w.ui.stdout, w.ui.stderr
	ch, err := startChild(cmd, true)
	if err != nil {
		return fail("Error starting handler: %s", err)
	}
	select {
	case <-ch.done:
	case <-w.ctx.Done():
		ch.signal(syscall.SIGTERM)
		t := time.NewTimer(w.pace.killGrace)
		select {
		case <-ch.done:
		case <-t.C:
			ch.signal(syscall.SIGKILL)
			<-ch.done
		}
		t.Stop()
		return false
	}
	if ch.err != nil {
		return fail("Error executing handler: %s", ch.err)
	}
	return true
}
