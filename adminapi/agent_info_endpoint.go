package adminapi

import (
	"cmp"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/beacon-dns/beacon/acl"
)

// The agent's endpoints about itself beyond /v1/agent/self: its build
// (version), the machine it runs on (host), reloading its configuration
// (reload) and streaming its logs (monitor).

// Introspection is what /v1/agent/version, host and reload need of the
// running agent.
type Introspection interface {
	// Build describes the agent's build.
	Build() BuildInfo
	// HostInfo describes the machine the agent runs on.
	HostInfo() HostInfo
	// ReloadConfig reloads the agent's configuration and says whether
	// it worked; a failed reload changes nothing.
	ReloadConfig() error
}

// BuildInfo describes the agent's build: its version, the commit it was
// built from and that commit's date ("" when unknown), and the version of
// Consul's API client it answers as (/v1/agent/version's SDK).
type BuildInfo struct {
	Version, Revision, BuildDate, SDK string
}

// HostInfo is what /v1/agent/host reports, in Consul's shape: Memory, CPU,
// Host and Disk as gopsutil describes them (nil when unreadable),
// CollectionTime in Unix nanoseconds, and Errors naming what could not be
// read (Consul's are errors, which JSON renders as empty objects; these
// say what failed).
type HostInfo struct {
	Memory         any
	CPU            any
	Host           any
	Disk           any
	CollectionTime int64
	Errors         []string
}

func (s *Server) agentInfoRoutes(mux *http.ServeMux) {
	if in, ok := s.agent.(Introspection); ok {
		// Consul's version takes no ACL: it is what clients check first.
		mux.HandleFunc("GET /v1/agent/version", func(w http.ResponseWriter, r *http.Request) {
			b := in.Build()
			writeJSON(w, map[string]string{"SDK": b.SDK, "HumanVersion": "v" + b.Version, "BuildDate": b.BuildDate,
				"FIPS": ""})
		})
		mux.HandleFunc("GET /v1/agent/host", s.guarded((*acl.Authorizer).OperatorRead, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, in.HostInfo())
		}))
		agentWrite := func(a *acl.Authorizer) bool { return a.AgentWrite(s.agent.NodeName()) }
		mux.HandleFunc("PUT /v1/agent/reload", s.guarded(agentWrite, func(w http.ResponseWriter, r *http.Request) {
			if err := in.ReloadConfig(); err != nil {
				// The agent logged it; the client gets why, as Consul's 500.
				httpError(w, http.StatusInternalServerError, err.Error())
			}
		}))
	}
	// The monitor taps the agent's logger: one that takes sinks.
	if logs, ok := s.logger.(hclog.InterceptLogger); ok {
		agentRead := func(a *acl.Authorizer) bool { return a.AgentRead(s.agent.NodeName()) }
		mux.HandleFunc("GET /v1/agent/monitor", s.guarded(agentRead, s.agentMonitor(logs)))
	}
}

// monitorBuffer bounds the log lines one monitor holds that its client has
// not taken yet; past it lines are dropped, so a slow client never slows
// the logger (which every goroutine of the agent writes to).
const monitorBuffer = 512

// agentMonitor streams the agent's log lines at the requested level
// (?loglevel=, default INFO; ?logjson for hclog's JSON lines), as they are
// written, until the client goes or the agent stops. What goes to stderr
// does not change: the monitor gets its own copy, at its own level.
func (s *Server) agentMonitor(logs hclog.InterceptLogger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		levelName := cmp.Or(q.Get("loglevel"), "INFO")
		level := hclog.LevelFromString(levelName)
		if level == hclog.NoLevel {
			s.writeErr(w, badRequest("Unknown log level: %s", levelName))
			return
		}
		jsonValue, logJSON := q["logjson"]
		if logJSON && len(jsonValue) > 0 && jsonValue[0] != "" {
			logJSON = isTrue(jsonValue[0])
		}
		tap := newLogTap(monitorBuffer)
		sink := hclog.NewSinkAdapter(&hclog.LoggerOptions{Level: level, JSONFormat: logJSON, Output: tap})
		logs.RegisterSink(sink)
		defer logs.DeregisterSink(sink)

		rc := http.NewResponseController(w)
		// A monitor lasts as long as its client wants it: the server's
		// write timeout, which bounds blocking queries, does not apply.
		_ = rc.SetWriteDeadline(time.Time{})
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		// The headers go at once: the client's Monitor returns only once
		// it has them.
		if err := rc.Flush(); err != nil {
			return
		}
		for {
			select {
			case <-r.Context().Done(): // the client went, or the agent stops
				return
			case line := <-tap.lines:
				if _, err := w.Write(line); err != nil {
					return
				}
				// Whatever else is waiting goes in the same flush.
				for more := true; more; {
					select {
					case line := <-tap.lines:
						if _, err := w.Write(line); err != nil {
							return
						}
					default:
						more = false
					}
				}
				if err := rc.Flush(); err != nil {
					return
				}
				if n := tap.dropped.Swap(0); n > 0 {
					s.logger.Warn("monitor dropped log lines its client was too slow to take", "dropped", n)
				}
			}
		}
	}
}

// logTap is a log sink's output: each formatted line is queued for the
// monitor, or dropped (and counted) when the queue is full. Write never
// blocks: it runs inside the logger.
type logTap struct {
	lines   chan []byte
	dropped atomic.Int64
}

func newLogTap(size int) *logTap { return &logTap{lines: make(chan []byte, size)} }

func (t *logTap) Write(p []byte) (int, error) {
	line := append([]byte(nil), p...) // the logger reuses p
	select {
	case t.lines <- line:
	default:
		t.dropped.Add(1)
	}
	return len(p), nil
}
