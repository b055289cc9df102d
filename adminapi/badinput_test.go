package adminapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/beacon-dns/beacon/state"
)

// chunked hides a body's length so the client sends it chunked, without
// Content-Length.
type chunked struct{ io.Reader }

// seed puts something in the store so "unchanged" is meaningful.
func seed(t *testing.T, ta *testAPI) {
	t.Helper()
	ta.agent.registerSelf(t)
	ta.register(&state.RegisterRequest{Node: "n1", Address: "10.0.0.1",
		Service: &state.Service{ID: "web", Service: "web", Port: 80, Tags: []string{}, Meta: map[string]string{}},
		Check:   &state.HealthCheck{CheckID: "web", Name: "web", ServiceID: "web", Status: state.HealthPassing}})
}

type badCase struct {
	name     string
	body     string
	wantCode int
	wantMsg  string // substring of the response body
	// reachesRaft: the API cannot see the problem, the FSM rejects the
	// command (the log entry is spent, the store is unchanged).
	reachesRaft bool
}

func runBadCases(t *testing.T, path string, cases []badCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			seed(t, ta)
			before, applies := ta.state(), ta.agent.applyCount()
			localBefore := len(ta.agent.LocalServices())
			r := ta.put(path, tc.body)
			if r.code != tc.wantCode {
				t.Errorf("status %d (%q), want %d", r.code, r.body, tc.wantCode)
			}
			if !strings.Contains(r.String(), tc.wantMsg) || r.String() == "" {
				t.Errorf("body %q, want a message containing %q", r.body, tc.wantMsg)
			}
			if tc.reachesRaft {
				applies = ta.agent.applyCount()
			}
			ta.assertUnchanged(before, applies)
			if n := len(ta.agent.LocalServices()); n != localBefore {
				t.Errorf("local services changed: %d -> %d", localBefore, n)
			}
		})
	}
}

func TestCatalogRegisterBadInput(t *testing.T) {
	const valid = `{"Node":"n2","Address":"10.0.0.2"}`
	runBadCases(t, "/v1/catalog/register", []badCase{
		{"malformed", `{"Node":`, 400, "Request decode failed", false},
		{"not JSON", `hello`, 400, "Request decode failed", false},
		{"empty body", ``, 400, "Request decode failed", false},
		{"null body", `null`, 400, "Must supply node", false},
		{"wrong type node", `{"Node":5,"Address":"10.0.0.2"}`, 400, "Request decode failed", false},
		{"wrong type port", `{"Node":"n2","Address":"a","Service":{"Service":"s","Port":"80"}}`, 400, "Request decode failed", false},
		{"wrong type tags", `{"Node":"n2","Address":"a","Service":{"Service":"s","Tags":"x"}}`, 400, "Request decode failed", false},
		{"missing node", `{"Address":"10.0.0.2"}`, 400, "Must supply node", false},
		{"blank node", `{"Node":"  ","Address":"10.0.0.2"}`, 400, "Must supply node", false},
		{"missing address", `{"Node":"n2"}`, 400, "Must supply address", false},
		{"service without name", `{"Node":"n2","Address":"a","Service":{"ID":"x"}}`, 400, "service name", false},
		{"port too large", `{"Node":"n2","Address":"a","Service":{"Service":"s","Port":65536}}`, 400, "port", false},
		{"negative port", `{"Node":"n2","Address":"a","Service":{"Service":"s","Port":-1}}`, 400, "port", false},
		{"invalid check status", `{"Node":"n2","Address":"a","Check":{"CheckID":"c","Status":"ok"}}`, 400, "Status", false},
		{"invalid status among checks", `{"Node":"n2","Address":"a","Checks":[{"CheckID":"c1","Status":"passing"},{"CheckID":"c2","Status":"bad"}]}`, 400, "Status", false},
		{"null check", `{"Node":"n2","Address":"a","Checks":[null]}`, 400, "Check is not valid", false},
		{"check without id or name", `{"Node":"n2","Address":"a","Check":{"Status":"passing"}}`, 400, "CheckID", false},
		{"other datacenter", `{"Datacenter":"dc2","Node":"n2","Address":"a"}`, 500, "No path to datacenter", false},
		{"trailing garbage", valid + ` x`, 400, "unexpected data after the JSON body", false},
		{"trailing second object", valid + ` {}`, 400, "unexpected data after the JSON body", false},
		{"trailing array", valid + `[]`, 400, "unexpected data after the JSON body", false},
		{"trailing closing brace", valid + `}`, 400, "Request decode failed", false},
		{"trailing closing bracket", valid + `]`, 400, "Request decode failed", false},
		// Store-level rejections: the whole request is one transaction.
		{"check for an unknown service", `{"Node":"n2","Address":"a","Service":{"Service":"s"},
			"Checks":[{"CheckID":"ok","ServiceID":"s","Status":"passing"},{"CheckID":"bad","ServiceID":"nope","Status":"passing"}]}`,
			400, "nope", true},
		{"node ID owned by another node", `{"Node":"n2","Address":"a","ID":"` + testNodeID + `"}`,
			400, "already registered", true},
	})
}

func TestCatalogDeregisterBadInput(t *testing.T) {
	runBadCases(t, "/v1/catalog/deregister", []badCase{
		{"malformed", `{"Node":`, 400, "Request decode failed", false},
		{"wrong type", `{"Node":["n1"]}`, 400, "Request decode failed", false},
		{"missing node", `{"ServiceID":"web"}`, 400, "Must supply node", false},
		{"service and check", `{"Node":"n1","ServiceID":"web","CheckID":"web"}`, 400, "not both", false},
		{"other datacenter", `{"Datacenter":"dc9","Node":"n1"}`, 500, "No path to datacenter", false},
		{"trailing garbage", `{"Node":"n1"} {"Node":"agent-1"}`, 400, "unexpected data", false},
	})
}

func TestAgentServiceRegisterBadInput(t *testing.T) {
	runBadCases(t, "/v1/agent/service/register", []badCase{
		{"malformed", `{"Name":`, 400, "Request decode failed", false},
		{"wrong type", `{"Name":"x","Port":"80"}`, 400, "Request decode failed", false},
		{"missing name", `{"Port":80}`, 400, "missing service name", false},
		{"blank name", `{"Name":" "}`, 400, "missing service name", false},
		{"port too large", `{"Name":"x","Port":70000}`, 400, "port", false},
		{"negative port", `{"Name":"x","Port":-5}`, 400, "port", false},
		{"empty meta key", `{"Name":"x","Meta":{"":"v"}}`, 400, "Meta", false},
		{"long meta key", `{"Name":"x","Meta":{"` + strings.Repeat("k", 129) + `":"v"}}`, 400, "Meta", false},
		{"bad weights", `{"Name":"x","Weights":{"Passing":0,"Warning":1}}`, 400, "Weights", false},
		{"check without kind", `{"Name":"x","Check":{"Interval":"10s"}}`, 400, "one of HTTP", false},
		{"check with two kinds", `{"Name":"x","Check":{"HTTP":"http://x","TCP":"x:1","Interval":"10s"}}`, 400, "only one", false},
		{"http check without interval", `{"Name":"x","Check":{"HTTP":"http://x"}}`, 400, "Interval", false},
		{"bad TTL", `{"Name":"x","Check":{"TTL":"banana"}}`, 400, "TTL", false},
		{"negative interval", `{"Name":"x","Check":{"TCP":"x:1","Interval":"-1s"}}`, 400, "Interval", false},
		{"invalid check status", `{"Name":"x","Check":{"TTL":"10s","Status":"ok"}}`, 400, "Status", false},
		{"second check invalid", `{"Name":"x","Checks":[{"TTL":"10s"},{"HTTP":"http://x"}]}`, 400, "Interval", false},
		{"trailing garbage", `{"Name":"x"} junk`, 400, "unexpected data", false},
	})
}

// bigBody is a valid registration whose JSON is over the limit.
func bigBody() []byte {
	return []byte(`{"Node":"big","Address":"10.0.0.9","NodeMeta":{"k":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`)
}

func TestBodyLimit(t *testing.T) {
	paths := []string{"/v1/catalog/register", "/v1/agent/service/register", "/v1/catalog/deregister"}
	bodies := []struct {
		name string
		body func() []byte
	}{
		{"oversized JSON", bigBody},
		// A valid body followed by more than the limit of whitespace: the
		// request body is over the limit all the same.
		{"valid JSON then padding", func() []byte {
			return append([]byte(`{"Node":"pad","Address":"10.0.0.9","Name":"pad"}`), bytes.Repeat([]byte(" "), MaxBodyBytes+1)...)
		}},
	}
	for _, path := range paths {
		for _, b := range bodies {
			for _, withLength := range []bool{true, false} {
				if withLength && path != "/v1/catalog/register" {
					continue // one middleware answers these before any handler runs
				}
				name := path + "/" + b.name + "/chunked"
				if withLength {
					name = path + "/" + b.name + "/Content-Length"
				}
				t.Run(name, func(t *testing.T) {
					ta := newTestAPI(t)
					seed(t, ta)
					before, applies := ta.state(), ta.agent.applyCount()
					var body io.Reader = bytes.NewReader(b.body())
					if !withLength {
						body = chunked{body}
					}
					req, err := http.NewRequest(http.MethodPut, ta.ts.URL+path, body)
					if err != nil {
						t.Fatal(err)
					}
					if !withLength && req.ContentLength > 0 {
						t.Fatal("request would carry a Content-Length")
					}
					r := ta.send(req)
					if r.code != http.StatusRequestEntityTooLarge {
						t.Errorf("status %d (%q), want 413", r.code, r.body)
					}
					if !strings.Contains(r.String(), "too large") {
						t.Errorf("body %q, want a message", r.body)
					}
					ta.assertUnchanged(before, applies)
				})
			}
		}
	}

	// Just under the limit is fine.
	ta := newTestAPI(t)
	prefix := `{"Node":"ok","Address":"10.0.0.9","NodeMeta":{"k":"`
	suffix := `"}}`
	ok := prefix + strings.Repeat("x", MaxBodyBytes-len(prefix)-len(suffix)) + suffix
	if r := ta.put("/v1/catalog/register", chunked{strings.NewReader(ok)}); r.code != http.StatusOK {
		t.Errorf("body of exactly the limit, chunked: %d %q", r.code, r.body)
	}
	if r := ta.put("/v1/catalog/register", ok); r.code != http.StatusOK {
		t.Errorf("body of exactly the limit: %d %q", r.code, r.body)
	}
}

func TestSessionCreateBadInput(t *testing.T) {
	runBadCases(t, "/v1/session/create", []badCase{
		{"malformed", `{"TTL":`, 400, "Request decode failed", false},
		{"wrong type", `{"TTL":10}`, 400, "Request decode failed", false},
		{"TTL too short", `{"TTL":"1s"}`, 400, "Invalid Session TTL", false},
		{"TTL too long", `{"TTL":"25h"}`, 400, "Invalid Session TTL", false},
		{"TTL not a duration", `{"TTL":"soon"}`, 400, "Invalid Session TTL", false},
		{"bad behavior", `{"Behavior":"explode"}`, 400, "Invalid Behavior", false},
		{"lock delay too long", `{"LockDelay":"2m"}`, 400, "Invalid LockDelay", false},
		{"lock delay not a duration", `{"LockDelay":"soon"}`, 400, "Request decode failed", false},
		{"unknown node", `{"Node":"ghost"}`, 400, "failed to find node", true},
		{"unknown check", `{"NodeChecks":["nope"]}`, 400, "missing check", true},
	})
}

func TestKVBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"missing key", "PUT", "/v1/kv/", "v", 400},
		{"bad cas", "PUT", "/v1/kv/k?cas=x", "v", 400},
		{"bad flags", "PUT", "/v1/kv/k?flags=-1", "v", 400},
		{"acquire and release", "PUT", "/v1/kv/k?acquire=a&release=a", "v", 400},
		{"acquire without session", "PUT", "/v1/kv/k?acquire", "v", 400},
		{"oversized value", "PUT", "/v1/kv/k", strings.Repeat("x", state.MaxKVValueBytes+1), 413},
		{"delete without key", "DELETE", "/v1/kv/", "", 400},
		{"delete recurse with cas", "DELETE", "/v1/kv/k?recurse&cas=1", "", 400},
		{"txn malformed", "PUT", "/v1/txn", `[{"KV":`, 400},
		{"txn not KV", "PUT", "/v1/txn", `[{"Node":{}}]`, 400},
		{"txn too many", "PUT", "/v1/txn", "[" + strings.TrimSuffix(strings.Repeat(`{"KV":{"Verb":"set","Key":"k"}},`, state.MaxTxnOps+1), ",") + "]", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t)
			seed(t, ta)
			before, applies := ta.state(), ta.agent.applyCount()
			req, err := http.NewRequest(tc.method, ta.ts.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ta.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || len(bytes.TrimSpace(msg)) == 0 {
				t.Errorf("HTTP %d %q, want %d with a message", resp.StatusCode, msg, tc.want)
			}
			ta.assertUnchanged(before, applies)
		})
	}
}
