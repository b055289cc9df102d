package cli

import (
	"net/http"
	"testing"
)

// nodesJSON is /v1/catalog/nodes in Consul's shape, nearest first as
// ?near= would sort it.
const nodesJSON = `[
 {"ID":"5b8b0f0c-6a4e-4b1e-9c7f-0a1b2c3d4e5f","Node":"web-1","Address":"10.0.1.1","Datacenter":"dc1",
  "TaggedAddresses":{"wan":"198.51.100.1","lan":"10.0.1.1"},"Meta":{"rack":"r1","env":"prod"}},
 {"ID":"e35bde83-4e9c-434f-a6ef-453f44ee21ea","Node":"db","Address":"10.0.1.22","Datacenter":"dc1",
  "TaggedAddresses":null,"Meta":null},
 {"ID":"","Node":"ext","Address":"192.0.2.7","Datacenter":"dc1"}
]`

// serviceJSON is /v1/catalog/service/web: one instance on each of two nodes.
const serviceJSON = `[
 {"ID":"5b8b0f0c-6a4e-4b1e-9c7f-0a1b2c3d4e5f","Node":"web-1","Address":"10.0.1.1","Datacenter":"dc1",
  "TaggedAddresses":{"lan":"10.0.1.1"},"NodeMeta":{"rack":"r1"},"ServiceID":"web","ServiceName":"web"},
 {"ID":"aaaabbbb-0000-4000-8000-000000000002","Node":"web-2","Address":"10.0.1.2","Datacenter":"dc1",
  "ServiceID":"web","ServiceName":"web"}
]`

func TestCatalogDatacenters(t *testing.T) {
	get := []string{"GET /v1/catalog/datacenters"}
	for _, tc := range []cmdCase{
		{name: "nearest first", args: []string{"catalog", "datacenters"}, requests: get,
			routes: map[string]reply{"GET /v1/catalog/datacenters": {body: `["dc1","dc2","dc3"]`}},
			stdout: "dc1\ndc2\ndc3\n"},
		{name: "error", args: []string{"catalog", "datacenters"}, requests: get, code: 1,
			routes: map[string]reply{"GET /v1/catalog/datacenters": {http.StatusInternalServerError, "No known servers"}},
			stderr: "Error listing datacenters: Unexpected response code: 500 (No known servers)"},
		{name: "argument", args: []string{"catalog", "datacenters", "dc1"}, code: 1,
			stderr: "Too many arguments (expected 0, got 1)"},
		{name: "bad flag", args: []string{"catalog", "datacenters", "-nope"}, code: 1,
			stderr: "flag provided but not defined: -nope"},
	} {
		tc.words = 2
		tc.run(t)
	}
}

func TestCatalogNodes(t *testing.T) {
	routes := map[string]reply{
		"GET /v1/catalog/nodes":       {body: nodesJSON},
		"GET /v1/catalog/service/web": {body: serviceJSON},
		"GET /v1/catalog/service/nil": {body: `[]`},
	}
	for _, tc := range []cmdCase{
		{name: "plain", args: []string{"catalog", "nodes"}, requests: []string{"GET /v1/catalog/nodes"},
			stdout: columns([]int{5, 8, 9}, []string{"Node", "ID", "Address", "DC"},
				[]string{"web-1", "5b8b0f0c", "10.0.1.1", "dc1"},
				[]string{"db", "e35bde83", "10.0.1.22", "dc1"},
				[]string{"ext", "", "192.0.2.7", "dc1"})},
		{name: "detailed", args: []string{"catalog", "nodes", "-detailed"}, requests: []string{"GET /v1/catalog/nodes"},
			stdout: columns([]int{5, 36, 9, 3, 30}, []string{"Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"},
				[]string{"web-1", "5b8b0f0c-6a4e-4b1e-9c7f-0a1b2c3d4e5f", "10.0.1.1", "dc1", "lan=10.0.1.1, wan=198.51.100.1", "env=prod, rack=r1"},
				[]string{"db", "e35bde83-4e9c-434f-a6ef-453f44ee21ea", "10.0.1.22", "dc1", "", ""},
				[]string{"ext", "", "192.0.2.7", "dc1", "", ""})},
		{name: "near, node-meta, stale, datacenter",
			args:     []string{"catalog", "nodes", "-near=_agent", "-node-meta=rack=r1", "-stale", "-datacenter=dc2"},
			requests: []string{"GET /v1/catalog/nodes?dc=dc2&near=_agent&node-meta=rack%3Ar1&stale="},
			stdout: columns([]int{5, 8, 9}, []string{"Node", "ID", "Address", "DC"},
				[]string{"web-1", "5b8b0f0c", "10.0.1.1", "dc1"},
				[]string{"db", "e35bde83", "10.0.1.22", "dc1"},
				[]string{"ext", "", "192.0.2.7", "dc1"})},
		{name: "service", args: []string{"catalog", "nodes", "-service=web"}, requests: []string{"GET /v1/catalog/service/web"},
			stdout: columns([]int{5, 8, 8}, []string{"Node", "ID", "Address", "DC"},
				[]string{"web-1", "5b8b0f0c", "10.0.1.1", "dc1"},
				[]string{"web-2", "aaaabbbb", "10.0.1.2", "dc1"})},
		{name: "no match", args: []string{"catalog", "nodes", "-service=nil"}, requests: []string{"GET /v1/catalog/service/nil"},
			stderr: "No nodes match the given query - try expanding your search.\n"},
		{name: "error", args: []string{"catalog", "nodes", "-service=gone"}, requests: []string{"GET /v1/catalog/service/gone"},
			code: 1, stderr: "Error listing nodes for service: Unexpected response code: 404"},
		{name: "filter refused", args: []string{"catalog", "nodes", "-filter=Node == web"}, code: 1,
			requests: []string{"GET /v1/catalog/nodes?filter=Node+%3D%3D+web"},
			routes:   map[string]reply{"GET /v1/catalog/nodes": {http.StatusBadRequest, "filter expressions are not supported"}},
			stderr:   "Error listing nodes: Unexpected response code: 400 (filter expressions are not supported"},
		{name: "bad node-meta", args: []string{"catalog", "nodes", "-node-meta=rack"}, code: 1,
			stderr: `Missing "=" value in argument: rack`},
		{name: "argument", args: []string{"catalog", "nodes", "web-1"}, code: 1, stderr: "Too many arguments (expected 0, got 1)"},
	} {
		if tc.routes == nil {
			tc.routes = routes
		}
		tc.words = 2
		tc.run(t)
	}
}

func TestCatalogServices(t *testing.T) {
	routes := map[string]reply{
		"GET /v1/catalog/services": {body: `{"web":["v2","primary"],"consul":[],"db":["pg"]}`},
		"GET /v1/catalog/node/web-1": {body: `{"Node":{"Node":"web-1"},"Services":{
			"web-a":{"ID":"web-a","Service":"web","Tags":["b"]},"web-b":{"ID":"web-b","Service":"web","Tags":["a"]},
			"log":{"ID":"log","Service":"log"}}}`},
		"GET /v1/catalog/node/gone": {body: `null`},
	}
	for _, tc := range []cmdCase{
		{name: "names", args: []string{"catalog", "services"}, requests: []string{"GET /v1/catalog/services"},
			stdout: "consul\ndb\nweb\n"},
		// Consul's layout: tab stops of 2, 6 spaces of padding, the whole trimmed.
		{name: "tags", args: []string{"catalog", "services", "-tags"}, requests: []string{"GET /v1/catalog/services"},
			stdout: "consul      \ndb          pg\nweb         primary,v2\n"},
		{name: "node-meta", args: []string{"catalog", "services", "-node-meta=rack=r1"},
			requests: []string{"GET /v1/catalog/services?node-meta=rack%3Ar1"}, stdout: "consul\ndb\nweb\n"},
		{name: "node", args: []string{"catalog", "services", "-node=web-1", "-tags"},
			requests: []string{"GET /v1/catalog/node/web-1"}, stdout: "log      \nweb      a,b\n"},
		{name: "unknown node", args: []string{"catalog", "services", "-node=gone"},
			requests: []string{"GET /v1/catalog/node/gone"},
			stderr:   "No services match the given query - try expanding your search.\n"},
		{name: "error", args: []string{"catalog", "services"}, requests: []string{"GET /v1/catalog/services"}, code: 1,
			routes: map[string]reply{"GET /v1/catalog/services": {http.StatusForbidden, "Permission denied"}},
			stderr: "Error listing services: Unexpected response code: 403 (Permission denied)"},
		{name: "argument", args: []string{"catalog", "services", "x"}, code: 1, stderr: "Too many arguments (expected 0, got 1)"},
	} {
		if tc.routes == nil {
			tc.routes = routes
		}
		tc.words = 2
		tc.run(t)
	}
}

func TestCatalogGroup(t *testing.T) {
	for _, tc := range []cmdCase{
		{name: "no subcommand", args: []string{"catalog"}, noAddr: true, code: 1, stderr: "Usage: beacon catalog <subcommand>"},
		{name: "unknown", args: []string{"catalog", "hosts"}, noAddr: true, code: 1, stderr: `unknown subcommand "hosts"`},
	} {
		tc.run(t)
	}
}
