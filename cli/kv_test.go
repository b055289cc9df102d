package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
)

// runInput runs the CLI with stdin.
func runInput(stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
		getenv: func(string) string { return "" }, timeouts: defaultTimeouts, pace: defaultPacing}
	code := run(e, args)
	return result{code, stdout.String(), stderr.String()}
}

// kvCase is one run of a kv command against a routed fake API.
type kvCase struct {
	name   string
	args   []string // after "kv <sub>"; -http-addr is added before them
	stdin  string
	routes map[string]reply
	// requests are "METHOD /path?query"; bodies (when set) the body of
	// each, exactly.
	requests []string
	bodies   []string
	code     int
	// stdout is the whole of it; stderr a part of it, "" for none.
	stdout, stderr string
}

func runKVCases(t *testing.T, sub string, routes map[string]reply, cases []kvCase) {
	t.Helper()
	for _, tc := range cases {
		rs := tc.routes
		if rs == nil {
			rs = routes
		}
		api := routedAPI(t, rs)
		r := runInput(tc.stdin, append([]string{"kv", sub, "-http-addr=" + api.addr()}, tc.args...)...)
		if r.code != tc.code || r.stdout != tc.stdout || (tc.stderr == "" && r.stderr != "") ||
			!strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%s: kv %s %q:\n%v\nwant exit %d, stdout:\n%s\nstderr containing %q", tc.name, sub, tc.args, r,
				tc.code, tc.stdout, tc.stderr)
		}
		got := api.recorded()
		var calls []string
		for _, g := range got {
			call := g.method + " " + g.path
			if g.query != "" {
				call += "?" + g.query
			}
			calls = append(calls, call)
		}
		if strings.Join(calls, "\n") != strings.Join(tc.requests, "\n") {
			t.Errorf("%s: requests\n%s\nwant\n%s", tc.name, strings.Join(calls, "\n"), strings.Join(tc.requests, "\n"))
			continue
		}
		for i, want := range tc.bodies {
			if string(got[i].body) != want {
				t.Errorf("%s: body of request %d is %q, want %q", tc.name, i, got[i].body, want)
			}
			if got[i].method == http.MethodPut && got[i].contentType != "application/octet-stream" {
				t.Errorf("%s: Content-Type of request %d is %q", tc.name, i, got[i].contentType)
			}
		}
	}
}

// The KV answers are in the shape Consul's server sends (its own field
// order, Value base64, null for no value).
const (
	fooJSON = `[{"LockIndex":0,"Key":"foo","Flags":0,"Value":"YmFy","CreateIndex":10,"ModifyIndex":12}]`
	appJSON = `[
 {"LockIndex":1,"Key":"app/a","Flags":42,"Value":"MQ==","Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","CreateIndex":5,"ModifyIndex":9},
 {"LockIndex":0,"Key":"app/b/","Flags":0,"Value":null,"CreateIndex":6,"ModifyIndex":6},
 {"LockIndex":0,"Key":"app/c","Flags":0,"Value":"PGE+Jgo=","CreateIndex":7,"ModifyIndex":8}
]`
)

func TestKVGet(t *testing.T) {
	routes := map[string]reply{
		"GET /v1/kv/foo":     {body: fooJSON},
		"GET /v1/kv/app":     {body: appJSON},
		"GET /v1/kv/":        {body: fooJSON},
		"GET /v1/kv/missing": {status: http.StatusNotFound},
	}
	keysRoutes := map[string]reply{"GET /v1/kv/app": {body: `["app/a","app/b/","app/c"]`}}
	failing := map[string]reply{"GET /v1/kv/foo": {http.StatusInternalServerError, "No cluster leader"}}
	runKVCases(t, "get", routes, []kvCase{
		{name: "value", args: []string{"foo"}, requests: []string{"GET /v1/kv/foo"}, stdout: "bar\n"},
		{name: "leading slash", args: []string{"/foo"}, requests: []string{"GET /v1/kv/foo"}, stdout: "bar\n"},
		{name: "base64", args: []string{"-base64", "foo"}, requests: []string{"GET /v1/kv/foo"}, stdout: "YmFy\n"},
		{name: "detailed", args: []string{"-detailed", "foo"}, requests: []string{"GET /v1/kv/foo"}, stdout: "" +
			"CreateIndex      10\n" +
			"Flags            0\n" +
			"Key              foo\n" +
			"LockIndex        0\n" +
			"ModifyIndex      12\n" +
			"Session          -\n" +
			"Value            bar\n"},
		{name: "stale, datacenter", args: []string{"-stale", "-datacenter=dc2", "foo"},
			requests: []string{"GET /v1/kv/foo?dc=dc2&stale="}, stdout: "bar\n"},
		{name: "no such key", args: []string{"missing"}, code: 1, requests: []string{"GET /v1/kv/missing"},
			stderr: "Error! No key exists at: missing\n"},
		{name: "recurse", args: []string{"-recurse", "app"}, requests: []string{"GET /v1/kv/app?recurse="},
			stdout: "app/a:1\napp/b/:\napp/c:<a>&\n\n"},
		{name: "recurse, base64", args: []string{"-recurse", "-base64", "app"}, requests: []string{"GET /v1/kv/app?recurse="},
			stdout: "app/a:MQ==\napp/b/:\napp/c:PGE+Jgo=\n"},
		{name: "recurse the root", args: []string{"-recurse"}, requests: []string{"GET /v1/kv/?recurse="}, stdout: "foo:bar\n"},
		{name: "recurse, nothing there", args: []string{"-recurse", "missing"},
			requests: []string{"GET /v1/kv/missing?recurse="}},
		{name: "recurse, detailed", args: []string{"-recurse", "-detailed", "app"},
			requests: []string{"GET /v1/kv/app?recurse="}, stdout: "" +
				"CreateIndex      5\n" +
				"Flags            42\n" +
				"Key              app/a\n" +
				"LockIndex        1\n" +
				"ModifyIndex      9\n" +
				"Session          adf4238a-882b-9ddc-4a9d-5b6758e4159e\n" +
				"Value            1\n" +
				"\n" +
				"CreateIndex      6\n" +
				"Flags            0\n" +
				"Key              app/b/\n" +
				"LockIndex        0\n" +
				"ModifyIndex      6\n" +
				"Session          -\n" +
				"Value\n" + // tabwriter pads no empty last cell

				"\n" +
				"CreateIndex      7\n" +
				"Flags            0\n" +
				"Key              app/c\n" +
				"LockIndex        0\n" +
				"ModifyIndex      8\n" +
				"Session          -\n" +
				"Value            <a>&\n\n"},
		{name: "keys", args: []string{"-keys", "app"}, routes: keysRoutes,
			requests: []string{"GET /v1/kv/app?keys=&separator=%2F"}, stdout: "app/a\napp/b/\napp/c\n"},
		{name: "keys, no separator", args: []string{"-keys", "-separator=", "app"}, routes: keysRoutes,
			requests: []string{"GET /v1/kv/app?keys="}, stdout: "app/a\napp/b/\napp/c\n"},
		{name: "keys, other separator", args: []string{"-keys", "-separator=-", "app"}, routes: keysRoutes,
			requests: []string{"GET /v1/kv/app?keys=&separator=-"}, stdout: "app/a\napp/b/\napp/c\n"},
		{name: "keys and recurse", args: []string{"-keys", "-recurse", "app"},
			requests: []string{"GET /v1/kv/app?recurse="}, stdout: "app/a\napp/b/\napp/c\n"},
		{name: "keys and recurse, detailed", args: []string{"-keys", "-recurse", "-detailed", "foo"},
			requests: []string{"GET /v1/kv/foo?recurse="}, stdout: "" +
				"CreateIndex      10\n" +
				"Flags            0\n" +
				"Key              foo\n" +
				"LockIndex        0\n" +
				"ModifyIndex      12\n" +
				"Session          -\n\n"},
		{name: "keys of nothing", args: []string{"-keys", "missing"}, requests: []string{"GET /v1/kv/missing?keys=&separator=%2F"}},
		{name: "no key", args: nil, code: 1, stderr: "Error! Missing KEY argument\n"},
		{name: "only a slash", args: []string{"/"}, code: 1, stderr: "Error! Missing KEY argument\n"},
		{name: "two keys", args: []string{"a", "b"}, code: 1, stderr: "Too many arguments (expected 1, got 2)\n"},
		{name: "agent error", args: []string{"foo"}, routes: failing, code: 1, requests: []string{"GET /v1/kv/foo"},
			stderr: "Error querying Consul agent: Unexpected response code: 500 (No cluster leader)\n"},
		{name: "not JSON", args: []string{"foo"}, routes: map[string]reply{"GET /v1/kv/foo": {body: "{"}}, code: 1,
			requests: []string{"GET /v1/kv/foo"}, stderr: "Error querying Consul agent: decoding the agent's answer"},
	})
}

func TestKVPut(t *testing.T) {
	ok := map[string]reply{"PUT /v1/kv/foo": {body: "true"}, "PUT /v1/kv/a/b": {body: "true"}}
	no := map[string]reply{"PUT /v1/kv/foo": {body: "false"}}
	failing := map[string]reply{"PUT /v1/kv/foo": {http.StatusInternalServerError, "Missing session"}}
	dir := t.TempDir()
	file := filepath.Join(dir, "license.lic")
	if err := os.WriteFile(file, []byte("line 1\nline 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const session = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
	runKVCases(t, "put", ok, []kvCase{
		{name: "value", args: []string{"foo", "bar"}, requests: []string{"PUT /v1/kv/foo"}, bodies: []string{"bar"},
			stdout: "Success! Data written to: foo\n"},
		{name: "no value", args: []string{"foo"}, requests: []string{"PUT /v1/kv/foo"}, bodies: []string{""},
			stdout: "Success! Data written to: foo\n"},
		{name: "empty value", args: []string{"foo", ""}, requests: []string{"PUT /v1/kv/foo"}, bodies: []string{""},
			stdout: "Success! Data written to: foo\n"},
		{name: "nested key", args: []string{"a/b", "1"}, requests: []string{"PUT /v1/kv/a/b"}, bodies: []string{"1"},
			stdout: "Success! Data written to: a/b\n"},
		{name: "stdin", args: []string{"foo", "-"}, stdin: "from\nstdin\n", requests: []string{"PUT /v1/kv/foo"},
			bodies: []string{"from\nstdin\n"}, stdout: "Success! Data written to: foo\n"},
		{name: "a value that starts with a dash", args: []string{"foo", "-x"}, requests: []string{"PUT /v1/kv/foo"},
			bodies: []string{"-x"}, stdout: "Success! Data written to: foo\n"},
		{name: "file", args: []string{"foo", "@" + file}, requests: []string{"PUT /v1/kv/foo"},
			bodies: []string{"line 1\nline 2\n"}, stdout: "Success! Data written to: foo\n"},
		{name: "missing file", args: []string{"foo", "@" + filepath.Join(dir, "nope")}, code: 1,
			stderr: "Error! Failed to read file: open " + filepath.Join(dir, "nope") + ": no such file or directory\n"},
		{name: "flags", args: []string{"-flags=42", "foo", "bar"}, requests: []string{"PUT /v1/kv/foo?flags=42"},
			bodies: []string{"bar"}, stdout: "Success! Data written to: foo\n"},
		{name: "datacenter", args: []string{"-datacenter=dc2", "foo", "bar"}, requests: []string{"PUT /v1/kv/foo?dc=dc2"},
			bodies: []string{"bar"}, stdout: "Success! Data written to: foo\n"},
		{name: "base64", args: []string{"-base64", "foo", "YmFy"}, requests: []string{"PUT /v1/kv/foo"},
			bodies: []string{"bar"}, stdout: "Success! Data written to: foo\n"},
		{name: "bad base64", args: []string{"-base64", "foo", "%%%"}, code: 1,
			stderr: "Error! Cannot base 64 decode data: illegal base64 data at input byte 0\n"},
		{name: "cas", args: []string{"-cas", "-modify-index=123", "foo", "bar"},
			requests: []string{"PUT /v1/kv/foo?cas=123"}, bodies: []string{"bar"}, stdout: "Success! Data written to: foo\n"},
		{name: "cas with flags", args: []string{"-cas", "-modify-index=123", "-flags=7", "foo", "bar"},
			requests: []string{"PUT /v1/kv/foo?cas=123&flags=7"}, bodies: []string{"bar"}, stdout: "Success! Data written to: foo\n"},
		{name: "cas fails", args: []string{"-cas", "-modify-index=123", "foo", "bar"}, routes: no, code: 1,
			requests: []string{"PUT /v1/kv/foo?cas=123"}, stderr: "Error! Did not write to foo: CAS failed\n"},
		{name: "cas on a new key", args: []string{"-cas", "foo", "bar"}, requests: []string{"PUT /v1/kv/foo?cas=0"},
			stdout: "Success! Data written to: foo\n"},
		{name: "cas on a key that exists", args: []string{"-cas", "foo", "bar"}, routes: no, code: 1,
			requests: []string{"PUT /v1/kv/foo?cas=0"},
			stderr:   "Error! Did not write to foo: CAS performed with index=0 and key already exists.\n"},
		{name: "cas error", args: []string{"-cas", "-modify-index=1", "foo", "bar"}, routes: failing, code: 1,
			requests: []string{"PUT /v1/kv/foo?cas=1"},
			stderr:   "Error! Did not write to foo: Unexpected response code: 500 (Missing session)\n"},
		{name: "acquire", args: []string{"-acquire", "-session=" + session, "foo", "bar"},
			requests: []string{"PUT /v1/kv/foo?acquire=" + session}, bodies: []string{"bar"},
			stdout: "Success! Lock acquired on: foo\n"},
		{name: "acquire fails", args: []string{"-acquire", "-session=" + session, "foo"}, routes: no, code: 1,
			requests: []string{"PUT /v1/kv/foo?acquire=" + session}, stderr: "Error! Did not acquire lock\n"},
		{name: "acquire error", args: []string{"-acquire", "-session=x", "foo"}, routes: failing, code: 1,
			requests: []string{"PUT /v1/kv/foo?acquire=x"},
			stderr:   "Error! Failed writing data: Unexpected response code: 500 (Missing session)\n"},
		{name: "release", args: []string{"-release", "-session=" + session, "foo"},
			requests: []string{"PUT /v1/kv/foo?release=" + session}, stdout: "Success! Lock released on: foo\n"},
		{name: "release fails", args: []string{"-release", "-session=" + session, "foo"}, routes: no, code: 1,
			requests: []string{"PUT /v1/kv/foo?release=" + session}, stderr: "Error! Did not release lock\n"},
		{name: "acquire without session", args: []string{"-acquire", "foo"}, code: 1,
			stderr: "Error! Missing -session (required with -acquire and -release)\n"},
		{name: "release without session", args: []string{"-release", "foo"}, code: 1,
			stderr: "Error! Missing -session (required with -acquire and -release)\n"},
		{name: "agent error", args: []string{"foo", "bar"}, routes: failing, code: 1, requests: []string{"PUT /v1/kv/foo"},
			stderr: "Error! Failed writing data: Unexpected response code: 500 (Missing session)\n"},
		{name: "key with a leading slash", args: []string{"/foo", "bar"}, code: 1,
			stderr: "Error! Failed writing data: Invalid key. Key must not begin with a '/': /foo\n"},
		{name: "no key", code: 1, stderr: "Error! Missing KEY argument\n"},
		{name: "too many", args: []string{"a", "b", "c"}, code: 1, stderr: "Error! Too many arguments (expected 1 or 2, got 3)\n"},
		{name: "bad flags", args: []string{"-flags=-1", "foo"}, code: 1, stderr: "invalid value \"-1\" for flag -flags"},
	})
}

func TestKVDelete(t *testing.T) {
	ok := map[string]reply{"DELETE /v1/kv/foo": {body: "true"}, "DELETE /v1/kv/": {body: "true"}}
	no := map[string]reply{"DELETE /v1/kv/foo": {body: "false"}}
	failing := map[string]reply{"DELETE /v1/kv/foo": {http.StatusForbidden, "Permission denied"}}
	runKVCases(t, "delete", ok, []kvCase{
		{name: "key", args: []string{"foo"}, requests: []string{"DELETE /v1/kv/foo"}, stdout: "Success! Deleted key: foo\n"},
		{name: "leading slash", args: []string{"/foo"}, requests: []string{"DELETE /v1/kv/foo"}, stdout: "Success! Deleted key: foo\n"},
		{name: "recurse", args: []string{"-recurse", "foo"}, requests: []string{"DELETE /v1/kv/foo?recurse="},
			stdout: "Success! Deleted keys with prefix: foo\n"},
		{name: "recurse everything", args: []string{"-recurse"}, requests: []string{"DELETE /v1/kv/?recurse="},
			stdout: "Success! Deleted keys with prefix: \n"},
		{name: "cas", args: []string{"-cas", "-modify-index=7", "foo"}, requests: []string{"DELETE /v1/kv/foo?cas=7"},
			stdout: "Success! Deleted key: foo\n"},
		{name: "cas fails", args: []string{"-cas", "-modify-index=7", "foo"}, routes: no, code: 1,
			requests: []string{"DELETE /v1/kv/foo?cas=7"}, stderr: "Error! Did not delete key foo: CAS failed\n"},
		{name: "cas error", args: []string{"-cas", "-modify-index=7", "foo"}, routes: failing, code: 1,
			requests: []string{"DELETE /v1/kv/foo?cas=7"},
			stderr:   "Error! Did not delete key foo: Unexpected response code: 403 (Permission denied)\n"},
		{name: "recurse error", args: []string{"-recurse", "foo"}, routes: failing, code: 1,
			requests: []string{"DELETE /v1/kv/foo?recurse="},
			stderr:   "Error! Did not delete prefix foo: Unexpected response code: 403 (Permission denied)\n"},
		{name: "error", args: []string{"foo"}, routes: failing, code: 1, requests: []string{"DELETE /v1/kv/foo"},
			stderr: "Error deleting key foo: Unexpected response code: 403 (Permission denied)\n"},
		{name: "datacenter", args: []string{"-datacenter=dc2", "foo"}, requests: []string{"DELETE /v1/kv/foo?dc=dc2"},
			stdout: "Success! Deleted key: foo\n"},
		{name: "cas without index", args: []string{"-cas", "foo"}, code: 1,
			stderr: "Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.\n"},
		{name: "index without cas", args: []string{"-modify-index=3", "foo"}, code: 1,
			stderr: "Cannot specify -modify-index without -cas!\n"},
		{name: "cas and recurse", args: []string{"-cas", "-modify-index=3", "-recurse", "foo"}, code: 1,
			stderr: "Cannot specify both -cas and -recurse!\n"},
		{name: "no key", code: 1, stderr: "Error! Missing KEY argument\n"},
		{name: "two keys", args: []string{"a", "b"}, code: 1, stderr: "Too many arguments (expected 1, got 2)\n"},
	})
}

// exportJSON is what Consul's export prints for appJSON: tab-indented, the
// values base64, HTML characters escaped as encoding/json escapes them.
const exportJSON = `[
	{
		"key": "app/a",
		"flags": 42,
		"value": "MQ=="
	},
	{
		"key": "app/b/",
		"flags": 0,
		"value": ""
	},
	{
		"key": "app/c",
		"flags": 0,
		"value": "PGE+Jgo="
	}
]
`

func TestKVExport(t *testing.T) {
	routes := map[string]reply{"GET /v1/kv/app": {body: appJSON}, "GET /v1/kv/": {body: appJSON},
		"GET /v1/kv/none": {status: http.StatusNotFound}}
	runKVCases(t, "export", routes, []kvCase{
		{name: "prefix", args: []string{"app"}, requests: []string{"GET /v1/kv/app?recurse="}, stdout: exportJSON},
		{name: "leading slash", args: []string{"/app"}, requests: []string{"GET /v1/kv/app?recurse="}, stdout: exportJSON},
		{name: "everything", requests: []string{"GET /v1/kv/?recurse="}, stdout: exportJSON},
		{name: "stale", args: []string{"-stale", "app"}, requests: []string{"GET /v1/kv/app?recurse=&stale="}, stdout: exportJSON},
		{name: "nothing there", args: []string{"none"}, requests: []string{"GET /v1/kv/none?recurse="}, stdout: "[]\n"},
		{name: "agent error", args: []string{"app"}, code: 1,
			routes:   map[string]reply{"GET /v1/kv/app": {http.StatusInternalServerError, "boom"}},
			requests: []string{"GET /v1/kv/app?recurse="},
			stderr:   "Error querying Consul agent: Unexpected response code: 500 (boom)\n"},
		{name: "two prefixes", args: []string{"a", "b"}, code: 1, stderr: "Too many arguments (expected 1, got 2)\n"},
	})
}

func TestKVImport(t *testing.T) {
	routes := map[string]reply{}
	for _, k := range []string{"app/a", "app/b/", "app/c", "new/app/a", "new/app/b/", "new/app/c", "x"} {
		routes["PUT /v1/kv/"+k] = reply{body: "true"}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "export.json")
	if err := os.WriteFile(file, []byte(exportJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	all := []string{"PUT /v1/kv/app/a?flags=42", "PUT /v1/kv/app/b/", "PUT /v1/kv/app/c"}
	bodies := []string{"1", "", "<a>&\n"}
	imported := "Imported: app/a\nImported: app/b/\nImported: app/c\n"
	runKVCases(t, "import", routes, []kvCase{
		{name: "argument", args: []string{exportJSON}, requests: all, bodies: bodies, stdout: imported},
		{name: "stdin", args: []string{"-"}, stdin: exportJSON, requests: all, bodies: bodies, stdout: imported},
		{name: "file", args: []string{"@" + file}, requests: all, bodies: bodies, stdout: imported},
		{name: "prefix", args: []string{"-prefix=new", "@" + file},
			requests: []string{"PUT /v1/kv/new/app/a?flags=42", "PUT /v1/kv/new/app/b/", "PUT /v1/kv/new/app/c"},
			bodies:   bodies, stdout: "Imported: new/app/a\nImported: new/app/b/\nImported: new/app/c\n"},
		{name: "prefix is joined as a path", args: []string{"-prefix=new/", `[{"key":"/app/a","flags":0,"value":""}]`},
			requests: []string{"PUT /v1/kv/new/app/a"}, stdout: "Imported: new/app/a\n"},
		{name: "nothing", args: []string{"[]"}},
		{name: "not JSON", args: []string{"{"}, code: 1, stderr: "Cannot unmarshal data: unexpected end of JSON input\n"},
		{name: "bad base64", args: []string{`[{"key":"x","flags":0,"value":"YQ=="},{"key":"y","flags":0,"value":"%"}]`},
			code: 1, requests: []string{"PUT /v1/kv/x"}, stdout: "Imported: x\n",
			stderr: "Error base 64 decoding value for key y: illegal base64 data at input byte 0\n"},
		{name: "agent error", args: []string{`[{"key":"y","flags":0,"value":""}]`}, code: 1,
			requests: []string{"PUT /v1/kv/y"},
			stderr:   "Error! Failed writing data for key y: Unexpected response code: 404 (no such route: PUT /v1/kv/y)\n"},
		{name: "no data", code: 1, stderr: "Error! Missing DATA argument\n"},
		{name: "empty data", args: []string{""}, code: 1, stderr: "Error! Empty DATA argument\n"},
		{name: "two", args: []string{"[]", "[]"}, code: 1, stderr: "Error! Too many arguments (expected 1, got 2)\n"},
	})
}

// What export prints, import takes back: the same keys, flags and values.
func TestKVExportImportRoundTrip(t *testing.T) {
	src := routedAPI(t, map[string]reply{"GET /v1/kv/app": {body: appJSON}})
	exp := runCLI("kv", "export", "-http-addr="+src.addr(), "app")
	if exp.code != 0 {
		t.Fatalf("export: %v", exp)
	}
	routes := map[string]reply{}
	var pairs []consulapi.KVPair
	if err := json.Unmarshal([]byte(appJSON), &pairs); err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		routes["PUT /v1/kv/"+p.Key] = reply{body: "true"}
	}
	dst := routedAPI(t, routes)
	imp := runInput(exp.stdout, "kv", "import", "-http-addr="+dst.addr(), "-")
	if imp.code != 0 {
		t.Fatalf("import: %v", imp)
	}
	got := dst.recorded()
	if len(got) != len(pairs) {
		t.Fatalf("%d writes for %d keys", len(got), len(pairs))
	}
	for i, p := range pairs {
		wantQuery := ""
		if p.Flags != 0 {
			wantQuery = "flags=42"
		}
		if got[i].path != "/v1/kv/"+p.Key || got[i].query != wantQuery || !bytes.Equal(got[i].body, p.Value) {
			t.Errorf("write %d: %s?%s %q, want key %s flags %d value %q", i, got[i].path, got[i].query, got[i].body,
				p.Key, p.Flags, p.Value)
		}
	}
}

func TestKVDispatch(t *testing.T) {
	r := runCLI("kv")
	if r.code != 1 || !strings.Contains(r.stderr, "Usage: beacon kv <subcommand>") {
		t.Errorf("kv: %v", r)
	}
	for _, sub := range []string{"get", "put", "delete", "export", "import"} {
		if !strings.Contains(r.stderr, "    "+sub+" ") {
			t.Errorf("kv usage does not list %s:\n%s", sub, r.stderr)
		}
		h := runCLI("kv", sub, "-h")
		if h.code != 0 || !strings.Contains(h.stdout, "Usage: beacon kv "+sub) || !strings.Contains(h.stdout, "-http-addr") ||
			!strings.Contains(h.stdout, "-datacenter") {
			t.Errorf("kv %s -h: %v", sub, h)
		}
	}
	for _, name := range []string{"kv", "lock", "watch"} {
		if !Has(name) || !strings.Contains(Summary(), "    "+name+" ") {
			t.Errorf("%s is not registered", name)
		}
	}
	down := closedAddr(t)
	for _, args := range [][]string{{"get", "foo"}, {"put", "foo", "bar"}, {"delete", "foo"}, {"export"}, {"import", "[{}]"}} {
		r := runCLI(append([]string{"kv", args[0], "-http-addr=" + down}, args[1:]...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, HTTPAddrEnv) {
			t.Errorf("kv %q with no agent: %v", args, r)
		}
	}
}
