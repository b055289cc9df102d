package cli

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"
)

// The commands about the agent itself: info (its Stats), reload (its
// Corefile) and monitor (its logs), as Consul's.

var infoCommand = &command{name: "info", synopsis: "Provides debugging information for operators.",
	help: "beacon info [options]", http: true, noArgs: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		self, err := e.client.Agent().Self()
		if err != nil {
			return e.fail("Error querying agent: %v", decoded("/v1/agent/self", err))
		}
		stats, ok := self["Stats"]
		if !ok {
			return e.fail("Agent response did not contain 'Stats' key: %v", self)
		}
		// Each section and its figures by name, as Consul prints them.
		var b strings.Builder
		for _, section := range slices.Sorted(maps.Keys(stats)) {
			figures, ok := stats[section].(map[string]any)
			if !ok {
				return e.fail("Got invalid subkey in stats: %v", stats[section])
			}
			fmt.Fprintf(&b, "%s:\n", section)
			for _, name := range slices.Sorted(maps.Keys(figures)) {
				fmt.Fprintf(&b, "\t%s = %v\n", name, figures[name])
			}
		}
		return writeOutput(e, b.String())
	},
}

var reloadCommand = &command{name: "reload", synopsis: "Triggers the agent to reload configuration files",
	help: "beacon reload [options]", http: true, noArgs: true,
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		if err := e.client.Agent().Reload(); err != nil {
			return e.fail("Error reloading: %v", err)
		}
		e.info("Configuration reload triggered")
		return exitOK
	},
}

var monitorCommand = &command{name: "monitor", synopsis: "Stream logs from a beacon agent",
	help: "beacon monitor [options]", http: true, follow: true, noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("log-level", "INFO", "Log level of the agent: the monitor may ask for more than the agent writes "+
			"(TRACE, DEBUG, INFO, WARN or ERROR).")
		fs.Bool("log-json", false, "Output logs in JSON format.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		shutdown, stopListening := shutdownContext(e)
		defer stopListening()
		// Cancelling the request ends the client's read of the stream, so
		// its reader goroutine sees stop and goes.
		ctx, cancel := context.WithCancel(shutdown)
		defer cancel()
		stop := make(chan struct{})
		monitor := e.client.Agent().Monitor
		if flagOf[bool](fs, "log-json") {
			monitor = e.client.Agent().MonitorJSON
		}
		lines, err := monitor(flagString(fs, "log-level"), stop, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return e.fail("Error starting monitor: %v", err)
		}
		defer func() {
			close(stop)
			cancel()
			for range lines { // until the reader closes it
			}
		}()
		for {
			select {
			case line := <-lines:
				if line == "" { // the client's mark of the stream's end
					if shutdown.Err() != nil {
						return exitOK
					}
					e.info("\nRemote side ended the monitor! This usually means that the\nremote side has exited or crashed.")
					return exitError
				}
				if _, err := fmt.Fprintln(e.stdout, line); err != nil {
					return e.fail("Error writing output: %v", err)
				}
			case <-shutdown.Done():
				return exitOK
			}
		}
	},
}
