package cli

import (
	"net/http"
	"testing"
)

// coordinatesJSON: s1 at the origin, s2 0.6 ms away along one axis, c1 in
// segment alpha only, s3 with a coordinate of another dimensionality.
const coordinatesJSON = `[
 {"Node":"s1","Segment":"","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":0.2,"Adjustment":0,"Height":0.00001}},
 {"Node":"s2","Segment":"","Coord":{"Vec":[0.0006,0,0,0,0,0,0,0],"Error":0.2,"Adjustment":0,"Height":0.00001}},
 {"Node":"s2","Segment":"alpha","Coord":{"Vec":[0.002,0,0,0,0,0,0,0],"Error":0.2,"Adjustment":0,"Height":0.00001}},
 {"Node":"c1","Segment":"alpha","Coord":{"Vec":[0.0025,0,0,0,0,0,0,0],"Error":0.2,"Adjustment":0.0001,"Height":0.00001}},
 {"Node":"s3","Segment":"","Coord":{"Vec":[0,0],"Error":0.2,"Adjustment":0,"Height":0.00001}}
]`

func TestRTT(t *testing.T) {
	routes := map[string]reply{
		"GET /v1/coordinate/nodes": {body: coordinatesJSON},
		"GET /v1/agent/self":       {body: `{"Config":{"NodeName":"s2","Datacenter":"dc1"}}`},
	}
	coords, self, dcs := "GET /v1/coordinate/nodes", "GET /v1/agent/self", "GET /v1/coordinate/datacenters"
	wanRoutes := map[string]reply{
		"GET /v1/coordinate/datacenters": {body: `[
 {"Datacenter":"dc1","AreaID":"WAN","Coordinates":[{"Node":"s1.dc1","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":0.2,"Adjustment":0,"Height":0.00001}}]},
 {"Datacenter":"dc2","AreaID":"WAN","Coordinates":[{"Node":"s9.dc2","Coord":{"Vec":[0.01,0,0,0,0,0,0,0],"Error":0.2,"Adjustment":0,"Height":0.00001}}]}]`},
		"GET /v1/agent/self": {body: `{"Config":{"NodeName":"s1","Datacenter":"dc1","Server":true}}`},
	}
	for _, tc := range []cmdCase{
		{name: "two nodes", args: []string{"rtt", "s1", "s2"}, requests: []string{coords},
			stdout: "Estimated s1 <-> s2 rtt: 0.620 ms (using LAN coordinates)\n"},
		{name: "the agent's node", args: []string{"rtt", "s1"}, requests: []string{self, coords},
			stdout: "Estimated s1 <-> s2 rtt: 0.620 ms (using LAN coordinates)\n"},
		// c1 is in segment alpha only: compared there, adjustments added.
		{name: "a node of one segment", args: []string{"rtt", "c1", "s2"}, requests: []string{coords},
			stdout: "Estimated c1 <-> s2 rtt: 0.620 ms (using LAN coordinates)\n"},
		{name: "itself", args: []string{"rtt", "s1", "s1"}, requests: []string{coords},
			stdout: "Estimated s1 <-> s1 rtt: 0.020 ms (using LAN coordinates)\n"},
		{name: "unknown node", args: []string{"rtt", "s1", "nope"}, code: 1, requests: []string{coords},
			stderr: "Could not find coordinates for both nodes\n"},
		{name: "no common segment", args: []string{"rtt", "s1", "c1"}, code: 1, requests: []string{coords},
			stderr: "Could not find coordinates for both nodes\n"},
		{name: "other dimensionality", args: []string{"rtt", "s1", "s3"}, code: 1, requests: []string{coords},
			stderr: "Could not find coordinates for both nodes\n"},
		{name: "wan", args: []string{"rtt", "-wan", "s1.dc1", "s9.dc2"}, requests: []string{dcs}, routes: wanRoutes,
			stdout: "Estimated s1.dc1 <-> s9.dc2 rtt: 10.020 ms (using WAN coordinates)\n"},
		{name: "wan by datacenter", args: []string{"rtt", "-wan", "dc2", "s1.dc1"}, requests: []string{dcs}, routes: wanRoutes,
			stdout: "Estimated dc2 <-> s1.dc1 rtt: 10.020 ms (using WAN coordinates)\n"},
		{name: "wan from the agent", args: []string{"rtt", "-wan", "s9.dc2"}, requests: []string{dcs, self}, routes: wanRoutes,
			stdout: "Estimated s9.dc2 <-> s1.dc1 rtt: 10.020 ms (using WAN coordinates)\n"},
		{name: "wan from a client agent", args: []string{"rtt", "-wan", "s9.dc2"}, code: 1, requests: []string{dcs, self},
			routes: map[string]reply{"GET /v1/coordinate/datacenters": wanRoutes["GET /v1/coordinate/datacenters"],
				"GET /v1/agent/self": {body: `{"Config":{"NodeName":"c1","Datacenter":"dc1","Server":false}}`}},
			stderr: "Must specify two server node names for client agent"},
		{name: "wan unknown server", args: []string{"rtt", "-wan", "s7.dc3", "s1.dc1"}, code: 1, requests: []string{dcs}, routes: wanRoutes,
			stderr: "Could not find coordinates for both nodes\n"},
		{name: "no node", args: []string{"rtt"}, code: 1, stderr: "One or two node names must be specified"},
		{name: "three nodes", args: []string{"rtt", "a", "b", "c"}, code: 1, stderr: "One or two node names must be specified"},
		{name: "agent error", args: []string{"rtt", "s1", "s2"}, code: 1, requests: []string{coords},
			routes: map[string]reply{"GET /v1/coordinate/nodes": {http.StatusForbidden, "Permission denied"}},
			stderr: "Error getting coordinates: Unexpected response code: 403 (Permission denied)\n"},
		{name: "self error", args: []string{"rtt", "s1"}, code: 1, requests: []string{self},
			routes: map[string]reply{"GET /v1/agent/self": {http.StatusInternalServerError, "boom"}},
			stderr: "Unable to look up agent info: Unexpected response code: 500 (boom)\n"},
	} {
		if tc.routes == nil {
			tc.routes = routes
		}
		tc.run(t)
	}
	if !Has("rtt") {
		t.Error("rtt is not a command")
	}
}
