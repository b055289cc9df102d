package cli

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServicesRegister(t *testing.T) {
	routes := map[string]reply{"PUT /v1/agent/service/register": {}}
	register := "PUT /v1/agent/service/register"
	jsonFile := writeFile(t, "web.json", `{"service": {"name": "web", "id": "web-1", "port": 80,
		"tags": ["primary"], "meta": {"Version": "2"}, "enable_tag_override": true,
		"check": {"http": "http://127.0.0.1:80/health", "interval": "10s", "deregister_critical_service_after": "1m"}}}`)
	hclFile := writeFile(t, "svcs.hcl", `
services {
  name = "db"
  port = 5432
  checks = [{ args = ["/bin/true"], interval = "5s" }]
}
services {
  name = "cache"
  address = "10.0.0.9"
  meta { zone = "a" }
}
`)
	for _, tc := range []cmdCase{
		{name: "flags", args: []string{"services", "register", "-name=web", "-id=web-1", "-address=10.0.0.5", "-port=8080",
			"-tag=a", "-tag=b", "-meta=v=1", "-tagged-address=wan=198.51.100.5:80"},
			requests: []string{register}, stdout: "Registered service: web\n",
			bodies: []string{`{"ID":"web-1","Name":"web","Tags":["a","b"],"Port":8080,"Address":"10.0.0.5",` +
				`"TaggedAddresses":{"wan":{"Address":"198.51.100.5","Port":80}},"Meta":{"v":"1"},"Check":null,"Checks":null}`}},
		{name: "JSON file", args: []string{"services", "register", jsonFile}, requests: []string{register},
			stdout: "Registered service: web\n",
			bodies: []string{`{"ID":"web-1","Name":"web","Tags":["primary"],"Port":80,"EnableTagOverride":true,` +
				`"Meta":{"Version":"2"},"Check":{"Interval":"10s","HTTP":"http://127.0.0.1:80/health",` +
				`"DeregisterCriticalServiceAfter":"1m"},"Checks":null}`}},
		{name: "HCL file, two services", args: []string{"services", "register", hclFile},
			requests: []string{register, register}, stdout: "Registered service: db\nRegistered service: cache\n",
			bodies: []string{`{"Name":"db","Port":5432,"Check":null,"Checks":[{"ScriptArgs":["/bin/true"],"Interval":"5s"}]}`,
				`{"Name":"cache","Address":"10.0.0.9","Meta":{"zone":"a"},"Check":null,"Checks":null}`}},
		{name: "file and flags", args: []string{"services", "register", "-tag=extra", "-meta=k=v", "-address=10.1.1.1", hclFile},
			requests: []string{register, register}, stdout: "Registered service: db\nRegistered service: cache\n",
			bodies: []string{`{"Name":"db","Tags":["extra"],"Port":5432,"Address":"10.1.1.1","Meta":{"k":"v"},"Check":null,` +
				`"Checks":[{"ScriptArgs":["/bin/true"],"Interval":"5s"}]}`,
				`{"Name":"cache","Tags":["extra"],"Address":"10.0.0.9","Meta":{"k":"v","zone":"a"},"Check":null,"Checks":null}`}},
		{name: "agent refuses", args: []string{"services", "register", "-name=web", "-port=70000"}, requests: []string{register},
			code: 1, routes: map[string]reply{register: {http.StatusBadRequest,
				"Invalid service port 70000: must be from 0 to 65535"}},
			stderr: `Error registering service "web": Unexpected response code: 400 (Invalid service port 70000`},
		{name: "nothing to register", args: []string{"services", "register"}, code: 1,
			stderr: "Service registration requires at least one argument or flags."},
		{name: "file and -name", args: []string{"services", "register", "-name=web", jsonFile}, code: 1,
			stderr: "Service registration requires arguments or -id, not both."},
		{name: "bad meta flag", args: []string{"services", "register", "-name=web", "-meta=novalue"}, code: 1,
			stderr: `Missing "=" value in argument: novalue`},
		{name: "bad tagged address", args: []string{"services", "register", "-name=web", "-tagged-address=wan=x:y"}, code: 1,
			stderr: "Invalid Tagged Address:"},
	} {
		if tc.routes == nil {
			tc.routes = routes
		}
		tc.words = 2
		tc.run(t)
	}
}

// A definition file with a mistake registers nothing and says what is
// wrong, naming the file.
func TestServicesRegisterBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, file, body, want string }{
		{"unknown key", "a.json", `{"service": {"name": "web", "bogus": 1}}`, "invalid config key service.bogus"},
		{"unknown top-level key", "a.json", `{"service": {"name": "web"}, "datacenter": "dc1"}`, "invalid config key datacenter"},
		{"unknown check key", "a.hcl", `service { name = "web" check { htp = "x" } }`, "invalid config key service.check.htp"},
		{"wrong type", "a.json", `{"service": {"name": "web", "port": "eighty"}}`, "cannot unmarshal string"},
		{"not JSON", "a.json", `{"service": `, "decoding JSON"},
		{"not HCL", "a.hcl", `service { name = `, "decoding HCL"},
		{"two check blocks", "a.hcl", `service { name = "a" check { ttl = "5s" } check { ttl = "6s" } }`,
			"service.check: want one object, got a list of 2"},
		{"unknown format", "a.yaml", `service: {}`, "a service definition file is .json or .hcl"},
		{"empty", "a.json", `{}`, "no service definition"},
		{"no such file", "", "", "no such file or directory"},
	} {
		path := filepath.Join(t.TempDir(), "missing.json")
		if tc.file != "" {
			path = writeFile(t, tc.file, tc.body)
		}
		api := routedAPI(t, map[string]reply{"PUT /v1/agent/service/register": {}})
		r := runCLI("services", "register", "-http-addr="+api.addr(), path)
		if r.code != 1 || !strings.Contains(r.stderr, "Error: ") || !strings.Contains(r.stderr, tc.want) ||
			(tc.file != "" && !strings.Contains(r.stderr, path)) {
			t.Errorf("%s: %v\nwant exit 1 and %q", tc.name, r, tc.want)
		}
		if n := len(api.recorded()); n != 0 {
			t.Errorf("%s: %d requests reached the agent", tc.name, n)
		}
	}
}

func TestServicesDeregister(t *testing.T) {
	routes := map[string]reply{
		"PUT /v1/agent/service/deregister/web-1": {},
		"PUT /v1/agent/service/deregister/db":    {},
		"PUT /v1/agent/service/deregister/gone": {http.StatusNotFound,
			`Unknown service ID "gone". Ensure that the service ID is passed, not the service name.`},
	}
	files := writeFile(t, "svcs.json", `{"services": [{"name": "web", "id": "web-1"}, {"name": "db"}]}`)
	for _, tc := range []cmdCase{
		{name: "id", args: []string{"services", "deregister", "-id=web-1"},
			requests: []string{"PUT /v1/agent/service/deregister/web-1"}, stdout: "Deregistered service: web-1\n"},
		{name: "files: the ID, else the name", args: []string{"services", "deregister", files},
			requests: []string{"PUT /v1/agent/service/deregister/web-1", "PUT /v1/agent/service/deregister/db"},
			stdout:   "Deregistered service: web-1\nDeregistered service: db\n"},
		{name: "unknown", args: []string{"services", "deregister", "-id=gone"}, code: 1,
			requests: []string{"PUT /v1/agent/service/deregister/gone"},
			stderr:   `Error deregistering service "gone": Unexpected response code: 404 (Unknown service ID "gone"`},
		{name: "nothing", args: []string{"services", "deregister"}, code: 1,
			stderr: "Service deregistration requires at least one argument or -id."},
		{name: "both", args: []string{"services", "deregister", "-id=web-1", files}, code: 1,
			stderr: "Service deregistration requires arguments or -id, not both."},
		{name: "bad flag", args: []string{"services", "deregister", "-name=web"}, code: 1,
			stderr: "flag provided but not defined: -name"},
	} {
		tc.routes = routes
		tc.words = 2
		tc.run(t)
	}
}
