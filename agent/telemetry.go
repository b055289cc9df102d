package agent

import (
	"time"

	metrics "github.com/hashicorp/go-metrics/compat"

	"github.com/beacon-dns/beacon/gossip"
	"github.com/beacon-dns/beacon/raftstore"
	"github.com/beacon-dns/beacon/state"
)

// The agent's metrics. Raft, serf and memberlist emit theirs into the
// process's go-metrics global (internal/telemetry) by themselves; the
// agent adds the gauges nothing emits on its own, from a loop that stops
// with it, and times the writes it sends through Raft.

const (
	// gaugeInterval is how often the cheap gauges are set: the runtime's
	// (Consul's period), gossip members, local checks, the change feed
	// and the client replica.
	gaugeInterval = time.Second
	// usageInterval is how often a server counts the catalog (Consul's
	// usage_metrics_interval): the counts walk whole tables.
	usageInterval = 10 * time.Second
)

// telemetryLoop sets the gauges until the agent stops.
func (a *Agent) telemetryLoop() {
	defer a.wg.Done()
	tick := time.NewTicker(gaugeInterval)
	defer tick.Stop()
	var usageAt time.Time
	for {
		a.emitGauges()
		if a.server != nil && time.Since(usageAt) >= usageInterval {
			emitUsage(a.store)
			usageAt = time.Now()
		}
		select {
		case <-a.stop:
			return
		case <-tick.C:
		}
	}
}

// checkStatuses are the statuses the check gauges report, each every time,
// zero included: a gauge left at its last value would say checks are
// failing that no longer exist.
var checkStatuses = []string{state.HealthPassing, state.HealthWarning, state.HealthCritical}

var memberStatuses = []gossip.MemberStatus{gossip.StatusAlive, gossip.StatusLeaving, gossip.StatusLeft, gossip.StatusFailed}

func (a *Agent) emitGauges() {
	a.telemetry.EmitRuntimeStats()

	emitMembers("lan", a.lan.Members())
	if a.wan != nil {
		emitMembers("wan", a.wan.Members())
	}

	local := map[string]int{}
	for _, c := range a.LocalChecks() {
		local[c.Status]++
	}
	for _, s := range checkStatuses {
		metrics.SetGaugeWithLabels([]string{"agent", "checks"}, float32(local[s]), []metrics.Label{{Name: "status", Value: s}})
	}

	// The change feed of a server, or of a relay.
	var feed *raftstore.FeedStats
	if a.server != nil {
		f := a.server.FeedStats()
		feed = &f
	} else if a.cfg.Relay {
		f := a.client.Replica().RelayStats()
		feed = &f
	}
	if feed != nil {
		metrics.SetGauge([]string{"feed", "entries"}, float32(feed.Entries))
		metrics.SetGauge([]string{"feed", "bytes"}, float32(feed.Bytes))
		metrics.SetGauge([]string{"feed", "streams"}, float32(feed.Streams))
	}
	if a.client != nil {
		replica := a.client.Replica()
		if replica.Synced() { // before, lag and staleness are unbounded
			metrics.SetGauge([]string{"client", "replica", "index_lag"}, float32(replica.IndexLag()))
			metrics.SetGauge([]string{"client", "replica", "staleness"}, float32(replica.Staleness().Milliseconds()))
		}
	}
}

// emitMembers sets consul.serf.members{network,status}: the members of a
// gossip pool as this agent sees them.
func emitMembers(network string, members []gossip.Member) {
	count := map[gossip.MemberStatus]int{}
	for _, m := range members {
		count[m.Status]++
	}
	for _, s := range memberStatuses {
		metrics.SetGaugeWithLabels([]string{"serf", "members"}, float32(count[s]),
			[]metrics.Label{{Name: "network", Value: network}, {Name: "status", Value: s.String()}})
	}
}

// tableGauges name the gauges of the tables whose size is reported.
var tableGauges = map[string][]string{
	"nodes":    {"state", "nodes"},
	"services": {"state", "service_instances"},
	"kvs":      {"state", "kv_entries"},
	"sessions": {"state", "sessions"},
}

// emitUsage sets the catalog's sizes (Consul's consul.state.*) and its
// checks by status, from a server's replica of the state.
func emitUsage(store *state.Store) {
	for _, t := range store.TableRows() {
		if key, ok := tableGauges[t.Table]; ok {
			metrics.SetGauge(key, float32(t.Rows))
		}
	}
	if _, services, err := store.Services(nil); err == nil {
		metrics.SetGauge([]string{"state", "services"}, float32(len(services)))
	}
	for _, s := range checkStatuses {
		if _, checks, err := store.ChecksInState(nil, s); err == nil {
			metrics.SetGaugeWithLabels([]string{"state", "checks"}, float32(len(checks)), []metrics.Label{{Name: "status", Value: s}})
		}
	}
}

// applyMetricKeys name the timer of each kind of write, as Consul's
// endpoints name theirs (consul.kvs.apply, consul.catalog.register, …).
// Coordinate updates have none: the leader batches them.
var applyMetricKeys = map[state.MessageType][]string{
	state.RegisterRequestType:   {"catalog", "register"},
	state.DeregisterRequestType: {"catalog", "deregister"},
	state.KVSRequestType:        {"kvs", "apply"},
	state.SessionRequestType:    {"session", "apply"},
	state.TxnRequestType:        {"txn", "apply"},
	state.ACLRequestType:        {"acl", "apply"},
}

// measureApply records how long a write this agent sent through Raft took
// to commit (or fail), forwarding to the leader included.
func measureApply(t state.MessageType, start time.Time) {
	if key, ok := applyMetricKeys[t]; ok {
		metrics.MeasureSince(key, start)
	}
}
