package agent

import (
	"context"

	"github.com/beacon-dns/beacon/state"
)

// ExecutePreparedQuery executes a prepared query for DNS (the plugin's
// PreparedQueries, wired by main): as the HTTP API executes one, with the
// agent's default token, failing over to other datacenters as the query
// says, or in datacenter dc when that is another.
func (a *Agent) ExecutePreparedQuery(ctx context.Context, idOrName, dc string) (*state.PreparedQueryExecuteResponse, error) {
	return a.http.ExecutePreparedQuery(ctx, idOrName, dc)
}
