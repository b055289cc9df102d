package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

// catalogState is everything a bad request must leave alone.
type catalogState struct {
	servicesIndex, nodesIndex string
	services, nodes, agent    string
}

func stateOf(t testing.TB, a *Agent) catalogState {
	t.Helper()
	get := func(path string) httpResult {
		r := a.Do(t, "GET", path, nil, false)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %v", path, r)
		}
		return r
	}
	s, n, ag := get("/v1/catalog/services"), get("/v1/catalog/nodes"), get("/v1/agent/services")
	return catalogState{
		servicesIndex: s.Header.Get("X-Consul-Index"), nodesIndex: n.Header.Get("X-Consul-Index"),
		services: s.Body, nodes: n.Body, agent: ag.Body,
	}
}

// TestHTTPBadInput: every bad request gets its status code and a message,
// and changes nothing.
func TestHTTPBadInput(t *testing.T) {
	t.Parallel()
	a := StartAgent(t, Options{})
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-1", Name: "web", Address: "10.0.0.9", Port: 80}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: "ext", Address: "10.0.5.1",
		Service: &api.AgentService{ID: "db-1", Service: "db", Port: 5432}}, nil); err != nil {
		t.Fatal(err)
	}
	before := stateOf(t, a)

	huge := `{"Name":"big","Meta":{"k":"` + strings.Repeat("A", 1<<20) + `"}}`
	hugeCatalog := `{"Node":"big","Address":"10.0.0.1","Service":{"Service":"big","Meta":{"k":"` + strings.Repeat("A", 1<<20) + `"}}}`
	const agentReg, catalogReg = "/v1/agent/service/register", "/v1/catalog/register"
	cases := []struct {
		name         string
		method, path string
		body         string
		noBody       bool
		chunked      bool
		want         int
	}{
		{"agent: malformed JSON", "PUT", agentReg, `{"Name": "web",`, false, false, 400},
		{"agent: not JSON", "PUT", agentReg, `Name=web`, false, false, 400},
		{"agent: empty body", "PUT", agentReg, ``, false, false, 400},
		{"agent: Name is a number", "PUT", agentReg, `{"Name": 5}`, false, false, 400},
		{"agent: Port is a string", "PUT", agentReg, `{"Name": "web", "Port": "x"}`, false, false, 400},
		{"agent: Tags is a string", "PUT", agentReg, `{"Name": "web", "Tags": "primary"}`, false, false, 400},
		{"agent: missing Name", "PUT", agentReg, `{"ID": "web-2", "Port": 80}`, false, false, 400},
		{"agent: port out of range", "PUT", agentReg, `{"Name": "web", "Port": 70000}`, false, false, 400},
		{"agent: body over 1 MiB", "PUT", agentReg, huge, false, false, 413},
		{"agent: chunked body over 1 MiB", "PUT", agentReg, huge, false, true, 413},
		{"catalog: malformed JSON", "PUT", catalogReg, `{"Node": `, false, false, 400},
		{"catalog: Node is a number", "PUT", catalogReg, `{"Node": 5, "Address": "10.0.0.1"}`, false, false, 400},
		{"catalog: service Name is a number", "PUT", catalogReg, `{"Node": "x", "Address": "10.0.0.1", "Service": {"Service": 5}}`, false, false, 400},
		{"catalog: Port is a string", "PUT", catalogReg, `{"Node": "x", "Address": "10.0.0.1", "Service": {"Service": "web", "Port": "x"}}`, false, false, 400},
		{"catalog: missing service Name", "PUT", catalogReg, `{"Node": "x", "Address": "10.0.0.1", "Service": {"ID": "s", "Port": 80}}`, false, false, 400},
		{"catalog: missing Node", "PUT", catalogReg, `{"Address": "10.0.0.1", "Service": {"Service": "web"}}`, false, false, 400},
		{"catalog: missing Address", "PUT", catalogReg, `{"Node": "x", "Service": {"Service": "web"}}`, false, false, 400},
		{"catalog: bad check status", "PUT", catalogReg, `{"Node": "x", "Address": "10.0.0.1", "Check": {"CheckID": "c", "Status": "sideways"}}`, false, false, 400},
		{"catalog: body over 1 MiB", "PUT", catalogReg, hugeCatalog, false, false, 413},
		{"catalog: chunked body over 1 MiB", "PUT", catalogReg, hugeCatalog, false, true, 413},
		{"catalog deregister: malformed JSON", "PUT", "/v1/catalog/deregister", `{"Node"`, false, false, 400},
		{"catalog deregister: missing Node", "PUT", "/v1/catalog/deregister", `{"ServiceID": "db-1"}`, false, false, 400},
		{"unknown endpoint", "GET", "/v1/nosuch", "", true, false, 404},
		{"unknown catalog endpoint", "GET", "/v1/catalog/nosuch", "", true, false, 404},
		{"unknown agent endpoint", "PUT", "/v1/agent/nosuch", `{}`, false, false, 404},
		{"GET on catalog register", "GET", catalogReg, "", true, false, 405},
		{"POST on status leader", "POST", "/v1/status/leader", "", true, false, 405},
		{"DELETE on catalog services", "DELETE", "/v1/catalog/services", "", true, false, 405},
		{"GET on agent service register", "GET", agentReg, "", true, false, 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if !c.noBody {
				body = []byte(c.body)
			}
			r := a.Do(t, c.method, c.path, body, c.chunked)
			shown := c.body
			if len(shown) > 80 {
				shown = shown[:80] + "…"
			}
			if r.Status != c.want {
				t.Errorf("%s %s %q: got %v, want %d", c.method, c.path, shown, r, c.want)
			}
			if (c.want == 400 || c.want == 413) && strings.TrimSpace(r.Body) == "" {
				t.Errorf("%s %s %q: %d without a message", c.method, c.path, shown, r.Status)
			}
			if after := stateOf(t, a); after != before {
				t.Errorf("%s %s %q changed the catalog:\nbefore %+v\nafter  %+v", c.method, c.path, shown, before, after)
				before = after
			}
		})
	}
	// And the API still takes good requests.
	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-2", Name: "web", Address: "10.0.0.10", Port: 80}); err != nil {
		t.Fatalf("a good registration after the bad ones: %v", err)
	}
	if after := stateOf(t, a); after.servicesIndex == before.servicesIndex && after.agent == before.agent {
		t.Errorf("a good registration changed nothing")
	}
}
