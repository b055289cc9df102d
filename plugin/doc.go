// Package discovery is the CoreDNS plugin `discovery`: beacon's DNS interface,
// a drop-in for Consul's. It owns the directive's setup (parsing through
// corefile, attaching to the process-wide agent), the query handler (zone
// matching, parsing of Consul's name forms, building the answers from the
// local replica of the catalog), the per-handler cache of service answers
// that the store's watch channels keep current, its Prometheus metrics and
// its readiness; and, for the CLI and the API through main, checking a
// Corefile as start-up would without starting anything (ValidateCorefile,
// `beacon validate`) and reloading the Corefile in process as the reload
// plugin does, reporting the outcome (ReloadCorefile, PUT
// /v1/agent/reload).
//
// The handler reads the catalog through the small Catalog interface, so it
// can be tested with a bare state.Store. Only setup knows the agent, through
// the Agent interface it defines, and hands the handler the agent's
// execution of prepared queries (PreparedQueries), which may ask other
// datacenters.
//
// Of beacon it imports only state and corefile: the DNS path reads the state
// store and nothing else, and does not link Raft. It does not import the
// agent either: main registers the directive with the agent attached
// (Register), where a CoreDNS plugin would register itself in init.
// Nothing but main imports it (imports_test.go holds it to that).
package discovery
