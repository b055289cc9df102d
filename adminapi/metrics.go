package adminapi

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beacon-dns/beacon/acl"
	"github.com/beacon-dns/beacon/internal/telemetry"
	metrics "github.com/hashicorp/go-metrics/compat"
)

// agentMetrics is GET /v1/agent/metrics: the process's metrics in Consul's
// JSON (the last finished 10 s interval of the in-memory sink) or, with
// ?format=prometheus, in Prometheus' exposition format. It takes
// agent:read on this agent's node, as Consul's.
func (s *Server) agentMetrics(w http.ResponseWriter, r *http.Request) {
	sinks, err := telemetry.Process()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if r.URL.Query().Get("format") == "prometheus" {
		sinks.ServePrometheus(w, r)
		return
	}
	summary, err := sinks.Summary()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, summary)
}

// agentReadable is the permission of the endpoints that describe this
// agent.
func (s *Server) agentReadable(a *acl.Authorizer) bool { return a.AgentRead(s.agent.NodeName()) }

// measured records every request in Consul's HTTP metrics: the timer
// consul.api.http{method,path}, its pre-1.9 form consul.http.<METHOD>.<path>,
// and the counter consul.api.http.requests{method,path,code}. The path is
// the route's pattern, as Consul's (wildcards are "_": /v1/kv/{key...} is
// v1.kv._), never the request's, so a client cannot grow the label set;
// requests no route takes are path "unknown".
func measured(mux *http.ServeMux, next http.Handler) http.Handler {
	var routes sync.Map // pattern -> routeMetric
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)

		method := methodLabel(r.Method)
		route := routeMetric{label: "unknown"}
		if _, pattern := mux.Handler(r); pattern != "" {
			if v, ok := routes.Load(pattern); ok {
				route = v.(routeMetric)
			} else {
				route = newRouteMetric(pattern)
				routes.Store(pattern, route)
			}
			metrics.MeasureSince(append([]string{"http", method}, route.parts...), start)
		}
		labels := []metrics.Label{{Name: "method", Value: method}, {Name: "path", Value: route.label}}
		metrics.MeasureSinceWithLabels([]string{"api", "http"}, start, labels)
		metrics.IncrCounterWithLabels([]string{"api", "http", "requests"}, 1,
			append(labels, metrics.Label{Name: "code", Value: strconv.Itoa(rec.code())}))
	})
}

// routeMetric is a route's path in metric names: parts for the legacy
// key, label (the parts joined by "_") for the labelled one.
type routeMetric struct {
	parts []string
	label string
}

// newRouteMetric derives the metric path of a route pattern such as
// "GET /v1/catalog/service/{name}": v1, catalog, service, _.
func newRouteMetric(pattern string) routeMetric {
	path := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		path = p // the method
	}
	if i := strings.IndexByte(path, '/'); i >= 0 {
		path = path[i+1:] // a host, and the leading slash
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if p == "" || strings.HasPrefix(p, "{") {
			parts[i] = "_" // a wildcard, or a subtree pattern's trailing slash
		}
	}
	return routeMetric{parts: parts, label: strings.Join(parts, "_")}
}

// methodLabel is the request's method, or OTHER for one HTTP does not
// define: the method is in metric names, and a client picks it.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// statusRecorder remembers the status code a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // not an informational 1xx
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes a streaming handler's flushes on (http.Flusher).
func (w *statusRecorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) code() int {
	if w.status == 0 {
		return http.StatusOK // the handler wrote nothing
	}
	return w.status
}
