package telemetry

import (
	metricsprom "github.com/hashicorp/go-metrics/compat/prometheus"
)

// The metrics declared to the Prometheus sink up front: they are there
// from the first scrape (at zero until something happens), carry a help
// text, and never expire. Only metrics without labels can be declared (a
// declared series is the one without labels), and only those that mean
// something on every agent: a server-only counter reads 0 on a client,
// which is true, where a server-only gauge at 0 would not be. The others
// appear when first emitted, with their name for help.

type definition struct {
	name []string // after the prefix
	help string
}

var counterDefinitions = []definition{
	{[]string{"raft", "apply"}, "Commands proposed to Raft by this server while the leader: every replicated write."},
	{[]string{"raft", "state", "leader"}, "Times this server became the Raft leader."},
	{[]string{"raft", "state", "candidate"}, "Elections this server started."},
	{[]string{"raft", "state", "follower"}, "Times this server became a Raft follower."},
	{[]string{"raft", "transition", "heartbeat_timeout"}, "Times this follower heard nothing from the leader for a heartbeat timeout and started an election."},
	{[]string{"client", "replica", "resyncs"}, "Full states this client agent's replica installed from a server: one at start, more when the change feed could not resume it."},
	{[]string{"feed", "snapshots_sent"}, "Full states this server sent client replicas: each one's first, and any the change feed could not resume."},
}

var summaryDefinitions = []definition{
	{[]string{"raft", "commitTime"}, "Time from the leader dispatching a Raft log entry to its commit by a quorum, in ms."},
	{[]string{"raft", "leader", "lastContact"}, "Time since the leader last heard from a follower, sampled per follower, in ms."},
	{[]string{"raft", "leader", "dispatchLog"}, "Time the leader takes to write log entries to its disk, in ms."},
	{[]string{"raft", "rpc", "appendEntries"}, "Time a follower takes to process an AppendEntries RPC, in ms."},
	{[]string{"kvs", "apply"}, "Time a KV write received by this agent takes to commit through Raft, in ms."},
	{[]string{"txn", "apply"}, "Time a transaction received by this agent takes to commit through Raft, in ms."},
	{[]string{"session", "apply"}, "Time a session operation received by this agent takes to commit through Raft, in ms."},
	{[]string{"catalog", "register"}, "Time a catalog registration from this agent (API or anti-entropy) takes to commit through Raft, in ms."},
	{[]string{"catalog", "deregister"}, "Time a catalog deregistration from this agent takes to commit through Raft, in ms."},
	{[]string{"fsm", "register"}, "Time the state machine takes to apply a catalog registration, in ms."},
	{[]string{"fsm", "deregister"}, "Time the state machine takes to apply a catalog deregistration, in ms."},
	{[]string{"fsm", "txn"}, "Time the state machine takes to apply a transaction, in ms."},
}

var gaugeDefinitions = []definition{
	{[]string{"runtime", "num_goroutines"}, "Goroutines running in the process."},
	{[]string{"runtime", "alloc_bytes"}, "Bytes of heap allocated and in use."},
	{[]string{"runtime", "sys_bytes"}, "Bytes obtained from the operating system."},
	{[]string{"runtime", "heap_objects"}, "Objects allocated on the heap."},
	{[]string{"runtime", "total_gc_pause_ns"}, "Total time the garbage collector has paused the process, in ns."},
	{[]string{"runtime", "total_gc_runs"}, "Garbage collections completed."},
}

// definitions turns the lists above into the Prometheus sink's options.
func definitions() ([]metricsprom.GaugeDefinition, []metricsprom.SummaryDefinition, []metricsprom.CounterDefinition) {
	name := func(d definition) []string { return append([]string{Prefix}, d.name...) }
	var gauges []metricsprom.GaugeDefinition
	for _, d := range gaugeDefinitions {
		gauges = append(gauges, metricsprom.GaugeDefinition{Name: name(d), Help: d.help})
	}
	var summaries []metricsprom.SummaryDefinition
	for _, d := range summaryDefinitions {
		summaries = append(summaries, metricsprom.SummaryDefinition{Name: name(d), Help: d.help})
	}
	var counters []metricsprom.CounterDefinition
	for _, d := range counterDefinitions {
		counters = append(counters, metricsprom.CounterDefinition{Name: name(d), Help: d.help})
	}
	return gauges, summaries, counters
}
