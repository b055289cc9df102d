// Package discovery is the CoreDNS plugin `discovery`: beacon's DNS interface,
// a drop-in for Consul's. It owns the directive's setup (parsing through
// corefile, attaching to the process-wide agent), the query handler (zone
// matching, parsing of Consul's name forms, building the answers from the
// local replica of the catalog), the per-handler cache of service answers
// that the store's watch channels keep current, its Prometheus metrics and
// its readiness.
//
// The handler reads the catalog through the small Catalog interface, so it
// can be tested with a bare state.Store. Only setup knows the agent.
//
// It must not import adminapi, gossip or healthcheck: the DNS path reads the
// state store and nothing else. Nothing but main imports it.
package discovery
