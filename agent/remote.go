package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/beacon-dns/beacon/state"
)

// Another datacenter's catalog for DNS (the plugin's RemoteCatalog): read
// through this agent's own HTTP API with ?dc=, which sends the request to a
// server of that datacenter (through a local server from a client agent),
// with the agent's default token, as DNS reads locally.

// RemoteServiceInstances are the instances of a service (with tag) in
// datacenter dc, with their checks.
func (a *Agent) RemoteServiceInstances(ctx context.Context, dc, name, tag string) ([]state.ServiceNode, error) {
	q := url.Values{"dc": {dc}, "stale": {""}}
	if tag != "" {
		q.Set("tag", tag)
	}
	var out []state.ServiceNode
	if err := a.apiGet(ctx, "/v1/health/service/"+url.PathEscape(name)+"?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RemoteNode is datacenter dc's node of that name, nil when none.
func (a *Agent) RemoteNode(ctx context.Context, dc, name string) (*state.Node, error) {
	var out *struct{ Node *state.Node }
	q := url.Values{"dc": {dc}, "stale": {""}}
	if err := a.apiGet(ctx, "/v1/catalog/node/"+url.PathEscape(name)+"?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, nil
	}
	return out.Node, nil
}

// apiGet runs a GET of uri through the agent's HTTP API, in process, and
// decodes a 200 answer's JSON into v.
func (a *Agent) apiGet(ctx context.Context, uri string, v any) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, http.NoBody)
	if err != nil {
		return fmt.Errorf("GET %s: %w", uri, err)
	}
	r.RemoteAddr = "127.0.0.1:0"
	rec := httptest.NewRecorder()
	a.api.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", uri, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		return fmt.Errorf("GET %s: decoding the answer: %w", uri, err)
	}
	return nil
}
