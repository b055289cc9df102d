// Package telemetry owns the process's metrics: go-metrics' global, set up
// once per process, feeding an in-memory sink (Consul's 10 s intervals kept
// for a minute: /v1/agent/metrics in JSON) and a Prometheus sink on a
// registry of its own (/v1/agent/metrics?format=prometheus). Raft,
// raft-boltdb, serf and memberlist emit into go-metrics' global themselves;
// beacon's own packages emit into it too, through the same compat package
// (github.com/hashicorp/go-metrics/compat), so that everything lands in
// these sinks whichever go-metrics implementation the build selects. Every
// name is prefixed with `consul`, as Consul's tools and dashboards expect.
//
// The registry is not Prometheus' default one: CoreDNS's `prometheus`
// plugin serves that (the DNS metrics, Go's runtime), and the two must
// never hold the same collector.
//
// It must not import any beacon package.
package telemetry
