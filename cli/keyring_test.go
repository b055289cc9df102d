package cli

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

func TestKeygen(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		r := runCLI("keygen")
		if r.code != 0 || r.stderr != "" || !strings.HasSuffix(r.stdout, "\n") || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("keygen: %v", r)
		}
		key := strings.TrimSuffix(r.stdout, "\n")
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(b) != 32 {
			t.Errorf("keygen printed %q: %d bytes, %v; want 32 bytes of standard base64", key, len(b), err)
		}
		if seen[key] {
			t.Errorf("keygen printed %q twice", key)
		}
		seen[key] = true
	}
	for _, tc := range []cmdCase{
		{name: "argument", args: []string{"keygen", "x"}, noAddr: true, code: 1, stderr: `unexpected argument "x"`},
		// keygen needs no agent, so it takes no -http-addr (neither does Consul's).
		{name: "http-addr", args: []string{"keygen", "-http-addr=127.0.0.1:8500"}, noAddr: true, code: 1,
			stderr: "flag provided but not defined: -http-addr"},
	} {
		tc.run(t)
	}
}

// keyringJSON is /v1/operator/keyring in Consul's shape: a WAN pool and a
// LAN pool whose members disagree, with a member's message.
const keyringJSON = `[
 {"WAN":true,"Datacenter":"dc1","Segment":"","Keys":{"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=":3},
  "PrimaryKeys":{"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=":3},"NumNodes":3},
 {"WAN":false,"Datacenter":"dc1","Segment":"",
  "Keys":{"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=":5,"GfmVIZlbnB6kCyVUzGa9iDqaCnEPTi6xK5xxJ0Pgeu8=":4},
  "PrimaryKeys":{"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=":4,"GfmVIZlbnB6kCyVUzGa9iDqaCnEPTi6xK5xxJ0Pgeu8=":1},
  "NumNodes":5,"Messages":{"web-2":"key not installed","web-1":"timed out"}},
 {"WAN":false,"Datacenter":"dc1","Segment":"alpha","Keys":{},"PrimaryKeys":{},"NumNodes":0},
 {"WAN":false,"Datacenter":"dc1","Partition":"team-a","Keys":{"k":1},"PrimaryKeys":{"k":1},"NumNodes":1}
]`

const (
	keyA = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	keyB = "GfmVIZlbnB6kCyVUzGa9iDqaCnEPTi6xK5xxJ0Pgeu8="
)

func TestKeyring(t *testing.T) {
	routes := map[string]reply{
		"GET /v1/operator/keyring":    {body: keyringJSON},
		"POST /v1/operator/keyring":   {},
		"PUT /v1/operator/keyring":    {},
		"DELETE /v1/operator/keyring": {},
	}
	failing := map[string]reply{}
	for route := range routes {
		failing[route] = reply{http.StatusInternalServerError, "1 error occurred:\n\t* web-2: key not installed"}
	}
	keyBody := func(k string) string { return `{"Key":"` + k + `"}` }
	for _, tc := range []cmdCase{
		{name: "list", args: []string{"keyring", "-list"}, requests: []string{"GET /v1/operator/keyring"},
			stdout: "" +
				"==> Gathering installed encryption keys...\n" +
				"\n" +
				"WAN:\n" +
				"  " + keyA + " [3/3]\n" +
				"\n" +
				"dc1 (LAN):\n" +
				"  ===> web-1: timed out\n" +
				"  ===> web-2: key not installed\n" +
				"  " + keyB + " [4/5]\n" +
				"  " + keyA + " [5/5]\n" +
				"\n" +
				"dc1 (LAN) [alpha]:\n" +
				"\n" +
				"dc1 (LAN) [partition: team-a]:\n" +
				"  k [1/1]\n"},
		{name: "list primary", args: []string{"keyring", "-list-primary"}, requests: []string{"GET /v1/operator/keyring"},
			stdout: "" +
				"==> Gathering installed primary encryption keys...\n" +
				"\n" +
				"WAN:\n" +
				"  " + keyA + " [3/3]\n" +
				"\n" +
				"dc1 (LAN):\n" +
				"  ===> web-1: timed out\n" +
				"  ===> web-2: key not installed\n" +
				"  " + keyB + " [1/5]\n" +
				"  " + keyA + " [4/5]\n" +
				"\n" +
				"dc1 (LAN) [alpha]:\n" +
				"\n" +
				"dc1 (LAN) [partition: team-a]:\n" +
				"  k [1/1]\n"},
		{name: "list, local, relayed", args: []string{"keyring", "-list", "-local-only", "-relay-factor=2"},
			routes:   map[string]reply{"GET /v1/operator/keyring": {body: `[]`}},
			requests: []string{"GET /v1/operator/keyring?local-only=true&relay-factor=2"},
			stdout:   "==> Gathering installed encryption keys...\n"},
		{name: "install", args: []string{"keyring", "-install", keyB},
			requests: []string{"POST /v1/operator/keyring"}, bodies: []string{keyBody(keyB)},
			stdout: "==> Installing new gossip encryption key...\n"},
		{name: "use", args: []string{"keyring", "-use=" + keyB},
			requests: []string{"PUT /v1/operator/keyring"}, bodies: []string{keyBody(keyB)},
			stdout: "==> Changing primary gossip encryption key...\n"},
		{name: "remove, relayed", args: []string{"keyring", "-remove=" + keyA, "-relay-factor=5"},
			requests: []string{"DELETE /v1/operator/keyring?relay-factor=5"}, bodies: []string{keyBody(keyA)},
			stdout: "==> Removing gossip encryption key...\n"},

		{name: "list error", args: []string{"keyring", "-list"}, routes: failing, code: 1,
			requests: []string{"GET /v1/operator/keyring"},
			stdout:   "==> Gathering installed encryption keys...\n",
			stderr:   "error: Unexpected response code: 500 (1 error occurred:\n\t* web-2: key not installed)\n"},
		{name: "install error", args: []string{"keyring", "-install=" + keyB}, routes: failing, code: 1,
			requests: []string{"POST /v1/operator/keyring"},
			stdout:   "==> Installing new gossip encryption key...\n",
			stderr:   "error: Unexpected response code: 500 (1 error occurred:"},
		{name: "use error", args: []string{"keyring", "-use=" + keyB}, routes: failing, code: 1,
			requests: []string{"PUT /v1/operator/keyring"},
			stdout:   "==> Changing primary gossip encryption key...\n",
			stderr:   "error: Unexpected response code: 500"},
		{name: "remove error", args: []string{"keyring", "-remove=" + keyB}, routes: failing, code: 1,
			requests: []string{"DELETE /v1/operator/keyring"},
			stdout:   "==> Removing gossip encryption key...\n",
			stderr:   "error: Unexpected response code: 500"},
		{name: "not JSON", args: []string{"keyring", "-list"}, code: 1,
			routes:   map[string]reply{"GET /v1/operator/keyring": {body: `{"Keys":{}}`}},
			requests: []string{"GET /v1/operator/keyring"},
			stdout:   "==> Gathering installed encryption keys...\n",
			stderr:   "error: decoding the agent's answer to /v1/operator/keyring"},

		{name: "no action", args: []string{"keyring"}, code: 1,
			stderr: "Error: give one of -list, -list-primary, -install, -use or -remove\n\n" + usageText + "keyring"},
		{name: "two actions", args: []string{"keyring", "-list", "-install=" + keyA}, code: 1,
			stderr: "Error: Only a single action is allowed\n\n" + usageText + "keyring"},
		{name: "two keys", args: []string{"keyring", "-use=" + keyA, "-remove=" + keyB}, code: 1,
			stderr: "Only a single action is allowed"},
		{name: "both lists", args: []string{"keyring", "-list", "-list-primary"}, code: 1,
			stderr: "Only a single action is allowed"},
		{name: "relay factor too big", args: []string{"keyring", "-list", "-relay-factor=6"}, code: 1,
			stderr: "Error: Relay factor must be in range: [0, 5]"},
		{name: "relay factor negative", args: []string{"keyring", "-list", "-relay-factor=-1"}, code: 1,
			stderr: "Relay factor must be in range"},
		{name: "local-only write", args: []string{"keyring", "-install=" + keyA, "-local-only"}, code: 1,
			stderr: "Error: local-only can only be set for list requests"},
		{name: "argument", args: []string{"keyring", "-list", "dc1"}, code: 1, stderr: `unexpected argument "dc1"`},
		{name: "unknown flag", args: []string{"keyring", "-rotate"}, code: 1, stderr: "flag provided but not defined: -rotate"},
		{name: "flag without key", args: []string{"keyring", "-install"}, code: 1, stderr: "flag needs an argument: -install"},
	} {
		if tc.routes == nil {
			tc.routes = routes
		}
		tc.run(t)
	}
}
