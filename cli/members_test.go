package cli

import (
	"fmt"
	"net/http"
	"testing"
)

// membersJSON is /v1/agent/members in Consul's shape, out of order: servers
// and clients mixed, every status, an IPv6 member, builds with and without
// a revision and one without any, a member without a role.
const membersJSON = `[
 {"Name":"web-2","Addr":"10.0.2.2","Port":8301,"Tags":{"role":"node","dc":"dc1","vsn":"1","build":"0.4.0:deadbeef","id":"c2"},"Status":4,"ProtocolMin":1,"ProtocolMax":5,"ProtocolCur":2,"DelegateMin":2,"DelegateMax":5,"DelegateCur":4},
 {"Name":"s2","Addr":"10.0.1.2","Port":8301,"Tags":{"role":"consul","dc":"dc1","vsn":"1","build":"0.4.0:deadbeef","id":"s2"},"Status":1},
 {"Name":"web-1","Addr":"fd00::1","Port":8301,"Tags":{"role":"node","dc":"dc1","vsn":"1"},"Status":1},
 {"Name":"s1","Addr":"10.0.1.1","Port":8301,"Tags":{"role":"consul","dc":"dc1","vsn":"1","build":"0.4.0"},"Status":3},
 {"Name":"odd","Addr":"10.0.3.3","Port":8301,"Tags":{},"Status":2}
]`

// columns lays rows out as Consul's columnize does: each column but the
// last padded to its widest cell plus two spaces.
func columns(widths []int, rows ...[]string) string {
	var out string
	for _, r := range rows {
		for i, c := range r {
			if i == len(r)-1 {
				out += c + "\n"
			} else {
				out += fmt.Sprintf("%-*s  ", widths[i], c)
			}
		}
	}
	return out
}

func TestMembers(t *testing.T) {
	routes := map[string]reply{"GET /v1/agent/members": {body: membersJSON}}
	widths := []int{5, 14, 7, 7, 5, 8, 3, 9}
	header := []string{"Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"}
	s1 := []string{"s1", "10.0.1.1:8301", "left", "server", "0.4.0", "1", "dc1", "default", "<all>"}
	s2 := []string{"s2", "10.0.1.2:8301", "alive", "server", "0.4.0", "1", "dc1", "default", "<all>"}
	odd := []string{"odd", "10.0.3.3:8301", "leaving", "unknown", "", "", "", "", ""}
	web1 := []string{"web-1", "[fd00::1]:8301", "alive", "client", "< 0.3", "1", "dc1", "default", "<default>"}
	web2 := []string{"web-2", "10.0.2.2:8301", "failed", "client", "0.4.0", "1", "dc1", "default", "<default>"}

	dw := []int{5, 14, 7}
	dheader := []string{"Node", "Address", "Status", "Tags"}
	get := []string{"GET /v1/agent/members"}
	for _, tc := range []cmdCase{
		{name: "all", args: []string{"members"}, requests: get,
			stdout: columns(widths, header, s1, s2, odd, web1, web2)},
		{name: "status", args: []string{"members", "-status=alive"}, requests: get,
			stdout: columns([]int{5, 14, 6, 6, 5, 8, 3, 9}, header, s2, web1)},
		{name: "status regexp", args: []string{"members", "-status", "^(left|failed)$"}, requests: get,
			stdout: columns([]int{5, 13, 6, 6, 5, 8, 3, 9}, header, s1, web2)},
		{name: "nothing matches", args: []string{"members", "-status=none"}, requests: get, code: 2},
		{name: "detailed", args: []string{"members", "-detailed"}, requests: get,
			stdout: columns(dw, dheader,
				[]string{"s1", "10.0.1.1:8301", "left", "ap=default,build=0.4.0,dc=dc1,role=consul,segment=<all>,vsn=1"},
				[]string{"s2", "10.0.1.2:8301", "alive", "ap=default,build=0.4.0:deadbeef,dc=dc1,id=s2,role=consul,segment=<all>,vsn=1"},
				[]string{"odd", "10.0.3.3:8301", "leaving", "ap=default,segment=<default>"},
				[]string{"web-1", "[fd00::1]:8301", "alive", "ap=default,dc=dc1,role=node,segment=<default>,vsn=1"},
				[]string{"web-2", "10.0.2.2:8301", "failed", "ap=default,build=0.4.0:deadbeef,dc=dc1,id=c2,role=node,segment=<default>,vsn=1"},
			)},
		{name: "detailed and status", args: []string{"members", "-detailed", "-status=leaving"}, requests: get,
			stdout: columns([]int{4, 13, 7}, dheader, []string{"odd", "10.0.3.3:8301", "leaving", "ap=default,segment=<default>"})},
		{name: "agent error", args: []string{"members"}, code: 1, requests: get,
			routes: map[string]reply{"GET /v1/agent/members": {http.StatusInternalServerError, "gossip is not running"}},
			stderr: "Error retrieving members: Unexpected response code: 500 (gossip is not running)\n"},
		{name: "no members", args: []string{"members"}, code: 2, requests: get,
			routes: map[string]reply{"GET /v1/agent/members": {body: `[]`}}},
		{name: "bad regexp", args: []string{"members", "-status=("}, code: 1,
			stderr: "Error: Failed to compile status regexp: error parsing regexp: missing closing ): `(`\n\n" + usageText + "members"},
		{name: "argument", args: []string{"members", "web-1"}, code: 1, stderr: `unexpected argument "web-1"`},
		{name: "unknown flag", args: []string{"members", "-lan"}, code: 1, stderr: "flag provided but not defined: -lan"},
	} {
		if tc.routes == nil {
			tc.routes = routes
		}
		tc.run(t)
	}
}

// Partitions and segments sort and print as Consul's command has them.
func TestMembersPartitionsAndSegments(t *testing.T) {
	routes := map[string]reply{"GET /v1/agent/members": {body: `[
 {"Name":"c-part","Addr":"10.0.0.5","Port":8301,"Tags":{"role":"node","dc":"dc1","vsn":"1","build":"1.0.0","ap":"team-a","segment":"x"},"Status":1},
 {"Name":"c-seg","Addr":"10.0.0.4","Port":8301,"Tags":{"role":"node","dc":"dc1","vsn":"1","build":"1.0.0","segment":"alpha"},"Status":1},
 {"Name":"b-plain","Addr":"10.0.0.3","Port":8301,"Tags":{"role":"node","dc":"dc1","vsn":"1","build":"1.0.0"},"Status":1},
 {"Name":"z-server","Addr":"10.0.0.1","Port":8300,"Tags":{"role":"consul","dc":"dc1","vsn":"1","build":"1.0.0","segment":"ignored"},"Status":1},
 {"Name":"bad\tname","Addr":"host.example","Port":8301,"Tags":{"role":"node","dc":"dc1\n","vsn":"1","build":"1.0.0"},"Status":9}
]`}}
	widths := []int{8, 17, 7, 6, 5, 8, 3, 9}
	tc := cmdCase{name: "partitions", args: []string{"members"}, routes: routes, requests: []string{"GET /v1/agent/members"},
		stdout: columns(widths,
			[]string{"Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"},
			[]string{"z-server", "10.0.0.1:8300", "alive", "server", "1.0.0", "1", "dc1", "default", "<all>"},
			[]string{"b-plain", "10.0.0.3:8301", "alive", "client", "1.0.0", "1", "dc1", "default", "<default>"},
			[]string{"bad name", "host.example:8301", "unknown", "client", "1.0.0", "1", "dc1", "default", "<default>"},
			[]string{"c-seg", "10.0.0.4:8301", "alive", "client", "1.0.0", "1", "dc1", "default", "alpha"},
			[]string{"c-part", "10.0.0.5:8301", "alive", "client", "1.0.0", "1", "dc1", "team-a", ""},
		)}
	tc.run(t)
}
