package corefile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/coredns/caddy"
)

func parse(t *testing.T, block string) (*Config, error) {
	t.Helper()
	c := caddy.NewTestController("dns", block)
	c.ServerBlockKeys = []string{"consul.:8600", "dc1.:8600"}
	return Parse(c)
}

func TestParseDefaults(t *testing.T) {
	cfg, err := parse(t, "discovery")
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Agent
	if a.Datacenter != "dc1" || a.Domain != "consul." || a.Bind != "127.0.0.1" || a.HTTP != "127.0.0.1:8500" {
		t.Errorf("defaults: %+v", a)
	}
	if a.RPC != "127.0.0.1:8300" || a.SerfLAN != "127.0.0.1:8301" || a.SerfWAN != "127.0.0.1:8302" {
		t.Errorf("derived addresses: rpc %s lan %s wan %s", a.RPC, a.SerfLAN, a.SerfWAN)
	}
	if a.ReconnectTimeout != 72*time.Hour || a.Encrypt != "" || a.EnableScriptChecks {
		t.Errorf("gossip and check defaults: %+v", a)
	}
	if a.Node == "" || !strings.HasSuffix(a.DataDir, a.Node) {
		t.Errorf("node %q, data_dir %q: want data_dir under data/<node>", a.Node, a.DataDir)
	}
	if cfg.AgentSet {
		t.Error("AgentSet is true for a block with no agent property")
	}
	if !cfg.DNS.AllowStale || cfg.DNS.MaxStale != DefaultMaxStale || cfg.DNS.NodeTTL != 0 {
		t.Errorf("DNS defaults: %+v", cfg.DNS)
	}
	if got := strings.Join(cfg.DNS.Zones, " "); got != "consul. dc1." {
		t.Errorf("zones = %q, want the server block's", got)
	}
}

func TestParseRelay(t *testing.T) {
	cfg, err := parse(t, "discovery {\n node c1\n relay\n rpc 10.0.0.5:9300\n}")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Agent.Relay || cfg.Agent.Server || cfg.Agent.RPC != "10.0.0.5:9300" {
		t.Errorf("relay client: %+v", cfg.Agent)
	}
}

func TestParseFull(t *testing.T) {
	cfg, err := parse(t, `discovery {
		datacenter east
		domain Example.
		node n1
		data_dir /var/lib/beacon
		server
		bootstrap_expect 3
		bind 10.0.0.1
		http 127.0.0.1:9500
		rpc 10.0.0.1:9300
		serf_lan 10.0.0.1:9301
		serf_wan 10.0.0.1:9302
		join 10.0.0.2:9301 10.0.0.3:9301
		join 10.0.0.4:9301
		join beacon-server-0.beacon-server:9301 s4.example.org.:9301
		join_wan 10.1.0.1:9302 10.1.0.2:9302
		encrypt pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=
		reconnect_timeout 24h
		enable_script_checks
		rpc_hold_timeout 3s
		acl deny
		acl_down_policy extend-cache
		acl_token initial_management 0d2c5a1e-root
		acl_token default dns-token
		node_ttl 10s
		service_ttl * 5
		service_ttl redis 1m
		negative_ttl 30s
		only_passing
		allow_stale false
		max_stale 10s
		a_record_limit 3
		fallthrough
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := AgentConfig{
		Datacenter: "east", Domain: "example.", Node: "n1", DataDir: "/var/lib/beacon", Server: true,
		BootstrapExpect: 3, Bind: "10.0.0.1", HTTP: "127.0.0.1:9500", RPC: "10.0.0.1:9300",
		SerfLAN: "10.0.0.1:9301", SerfWAN: "10.0.0.1:9302",
		Join: []string{"10.0.0.2:9301", "10.0.0.3:9301", "10.0.0.4:9301", "beacon-server-0.beacon-server:9301",
			"s4.example.org.:9301"},
		JoinWAN: []string{"10.1.0.1:9302", "10.1.0.2:9302"},
		Encrypt: "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=", ReconnectTimeout: 24 * time.Hour,
		EnableScriptChecks: true, RPCHoldTimeout: 3 * time.Second,
		ACL: "deny", ACLDownPolicy: "extend-cache",
		ACLTokens: ACLTokens{InitialManagement: "0d2c5a1e-root", Default: "dns-token"},
	}
	if d := want.Diff(cfg.Agent); d != "" {
		t.Errorf("agent config differs: %s", d)
	}
	if !cfg.AgentSet {
		t.Error("AgentSet is false")
	}
	d := cfg.DNS
	if d.NodeTTL != 10*time.Second || d.ServiceTTL["redis"] != time.Minute || d.ServiceTTL["*"] != 5*time.Second ||
		d.NegativeTTL != 30*time.Second || !d.OnlyPassing || d.AllowStale || d.MaxStale != 10*time.Second ||
		d.ARecordLimit != 3 || !d.Fall.Through("x.consul.") {
		t.Errorf("DNS config: %+v", d)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  string // each error names the line and the property
	}{
		{"unknown property", "discovery {\n node n1\n foo bar\n}", `:3 - Error during parsing: discovery: property "foo": unknown property`},
		{"missing value", "discovery {\n node\n}", `:2 - Error during parsing: discovery: property "node": missing value`},
		{"two values", "discovery {\n datacenter a b\n}", `property "datacenter": want one value`},
		{"bad port", "discovery {\n http 127.0.0.1:99999\n}", `:2 - Error during parsing: discovery: property "http": "127.0.0.1:99999": port`},
		{"no port", "discovery {\n rpc 127.0.0.1\n}", `property "rpc": "127.0.0.1" is not an address of the form IP:port`},
		{"hostname", "discovery {\n serf_lan localhost:8301\n}", `property "serf_lan": "localhost:8301": "localhost" is not an IP address`},
		{"bad bind", "discovery {\n bind 10.0.0\n}", `property "bind": "10.0.0" is not an IP address`},
		{"unspecified bind", "discovery {\n bind 0.0.0.0\n}", `property "bind": bind is advertised`},
		{"bad label", "discovery {\n node my.node\n}", `property "node": "my.node" is not a DNS label`},
		{"bad duration", "discovery {\n node_ttl soon\n}", `property "node_ttl": want a duration`},
		{"negative duration", "discovery {\n max_stale -1s\n}", `property "max_stale": want a duration`},
		{"service_ttl arity", "discovery {\n service_ttl 5s\n}", `property "service_ttl": want a service name`},
		{"server takes no value", "discovery {\n server yes\n}", `property "server": takes no value`},
		{"bootstrap range", "discovery {\n server\n bootstrap_expect 0\n}", `property "bootstrap_expect": want a number of servers from 1 to 7`},
		{"join_wan without server", "discovery {\n node n1\n join_wan 10.1.0.1:8302\n}", `property "join_wan": only servers join the WAN pool`},
		{"join_wan bad address", "discovery {\n server\n join_wan nope\n}", `property "join_wan"`},
		{"bootstrap without server", "discovery {\n node n1\n bootstrap_expect 1\n}", `:3 - Error during parsing: discovery: property "bootstrap_expect": only a server can bootstrap`},
		{"relay on a server", "discovery {\n server\n relay\n}", `property "relay": only a client agent relays`},
		{"relay takes no value", "discovery {\n relay yes\n}", `property "relay": takes no value`},
		{"relay port clash", "discovery {\n relay\n rpc 127.0.0.1:8500\n}", `property "rpc": address 127.0.0.1:8500 is already used by "http"`},
		{"port clash", "discovery {\n server\n rpc 127.0.0.1:8500\n}", `property "rpc": address 127.0.0.1:8500 is already used by "http"`},
		{"allow_stale value", "discovery {\n allow_stale maybe\n}", `property "allow_stale": want true or false`},
		{"join empty", "discovery {\n join\n}", `property "join": missing value`},
		{"join no port", "discovery {\n join beacon-server-0.beacon-server\n}", `property "join": "beacon-server-0.beacon-server" is not an address of the form IP:port or host:port`},
		{"join bad name", "discovery {\n join bad_name.example:8301\n}", `property "join": "bad_name.example:8301": "bad_name.example" is neither an IP address nor a host name`},
		{"join bad IP", "discovery {\n join 10.0.0.300:8301\n}", `property "join": "10.0.0.300:8301": "10.0.0.300" is neither`},
		{"join hyphen", "discovery {\n join -s1.example:8301\n}", `property "join": "-s1.example:8301"`},
		{"join empty label", "discovery {\n join s1..example:8301\n}", `property "join": "s1..example:8301"`},
		{"join bad port", "discovery {\n join s1.example:0\n}", `property "join": "s1.example:0": port "0" is not from 1 to 65535`},
		{"join_wan name", "discovery {\n server\n join_wan dc2-server:http\n}", `property "join_wan": "dc2-server:http": port "http"`},
		{"a_record_limit", "discovery {\n a_record_limit -1\n}", `property "a_record_limit": want a whole number`},
		{"encrypt not base64", "discovery {\n encrypt %%%\n}", `:2 - Error during parsing: discovery: property "encrypt": the key is not base64`},
		{"encrypt short key", "discovery {\n encrypt c2hvcnQ=\n}", `property "encrypt": the key is 5 bytes; it must be 16, 24 or 32`},
		{"acl bad policy", "discovery {\n acl maybe\n}", `property "acl": want allow or deny, got "maybe"`},
		{"acl_down_policy bad", "discovery {\n acl deny\n acl_down_policy never\n}", `property "acl_down_policy"`},
		{"acl_token bad role", "discovery {\n acl deny\n acl_token root s3cret\n}", `property "acl_token": unknown role "root"`},
		{"acl_token no secret", "discovery {\n acl deny\n acl_token default\n}", `property "acl_token": want a role`},
		{"rpc_hold_timeout zero", "discovery {\n rpc_hold_timeout 0s\n}", `property "rpc_hold_timeout": 0s is not between 0 and 1m0s`},
		{"rpc_hold_timeout too long", "discovery {\n rpc_hold_timeout 2m\n}", `property "rpc_hold_timeout"`},
		{"reconnect_timeout too short", "discovery {\n reconnect_timeout 1h\n}", `property "reconnect_timeout": 1h0m0s is below the minimum of 8h0m0s`},
		{"enable_script_checks value", "discovery {\n enable_script_checks yes\n}", `property "enable_script_checks": takes no value`},
		{"tls arity", "discovery {\n tls cert.pem\n}", `:2 - Error during parsing: discovery: property "tls": want a certificate, its key and a CA bundle`},
		{"tls too many", "discovery {\n tls a b c d\n}", `property "tls": want a certificate`},
		{"https address", "discovery {\n https localhost:8501\n}", `property "https": "localhost:8501"`},
		{"https without tls", "discovery {\n node n1\n https 127.0.0.1:8501\n}", `:3 - Error during parsing: discovery: property "https": HTTPS needs the agent's certificate`},
		{"https clash", "discovery {\n https 127.0.0.1:8500\n}", `property "https": address 127.0.0.1:8500 is already used by "http"`},
		{"http and https off", "discovery {\n http off\n}", `property "http": with http off the agent has no API`},
		{"verify_incoming without CA", "discovery {\n tls c.pem k.pem\n verify_incoming\n}", `:3 - Error during parsing: discovery: property "verify_incoming": needs the agent's certificate and the CA`},
		{"verify_outgoing without CA", "discovery {\n verify_outgoing\n}", `property "verify_outgoing": needs the CA`},
		{"verify_server_hostname without CA", "discovery {\n verify_server_hostname\n}", `property "verify_server_hostname": needs the CA`},
		{"verify_incoming value", "discovery {\n verify_incoming yes\n}", `property "verify_incoming": takes no value`},
		{"tls files missing", "discovery {\n node n1\n tls /nonexistent/c.pem /nonexistent/k.pem\n}", `:3 - Error during parsing: discovery: property "tls": reading the certificate: open /nonexistent/c.pem`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.block)
			if err == nil {
				t.Fatalf("no error for %q", tc.block)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\n does not contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "Testfile:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// tlsFiles writes a CA, and a server certificate and key it signed, and
// returns their paths.
func tlsFiles(t *testing.T) (cert, key, ca string) {
	t.Helper()
	caPEM, caKey, err := tlsutil.GenerateCA(tlsutil.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := tlsutil.GenerateCert(caPEM, caKey, tlsutil.CertOptions{Kind: tlsutil.KindServer, Datacenter: "dc1"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for path, b := range map[string][]byte{"server.pem": certPEM, "server-key.pem": keyPEM, "ca.pem": caPEM, "ca-key.pem": caKey} {
		if err := os.WriteFile(filepath.Join(dir, path), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem")
}

// issueFile signs a certificate for opts with the CA whose certificate is
// caFile (its key beside it, as tlsFiles writes it) and returns its files.
func issueFile(t *testing.T, caFile string, opts tlsutil.CertOptions) (cert, key string) {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(strings.TrimSuffix(caFile, ".pem") + "-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := tlsutil.GenerateCert(caPEM, caKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestParseTLS(t *testing.T) {
	cert, key, ca := tlsFiles(t)
	cfg, err := parse(t, fmt.Sprintf(`discovery {
		domain Example.
		http off
		https 127.0.0.1:8501
		tls %s %s %s
		verify_incoming
		verify_outgoing
		verify_server_hostname
	}`, cert, key, ca))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Agent
	want := TLSConfig{CertFile: cert, KeyFile: key, CAFile: ca, VerifyIncoming: true, VerifyOutgoing: true, VerifyServerHostname: true}
	if a.TLS != want || a.HTTPS != "127.0.0.1:8501" || a.HTTP != "" || !cfg.AgentSet {
		t.Errorf("TLS %+v, https %q, http %q, AgentSet %v", a.TLS, a.HTTPS, a.HTTP, cfg.AgentSet)
	}
	if u := a.TLSUtil(); u.ServerName != "server.dc1.example" || u.CertFile != cert || !u.VerifyServerHostname {
		t.Errorf("TLSUtil() = %+v", u)
	}

	// The CA is optional when nothing verifies: HTTPS alone, as CoreDNS's
	// tls takes CERT KEY [CA].
	cfg, err = parse(t, fmt.Sprintf("discovery {\n https 127.0.0.1:8501\n tls %s %s\n}", cert, key))
	if err != nil || cfg.Agent.TLS.CAFile != "" || cfg.Agent.HTTP != DefaultHTTP {
		t.Errorf("https with a certificate and no CA: %+v, %v", cfg, err)
	}

	// A key that is not the certificate's stops start-up at the tls line.
	_, err = parse(t, fmt.Sprintf("discovery {\n node n1\n tls %s %s %s\n}", cert, ca, ca))
	if err == nil || !strings.Contains(err.Error(), `:3 - Error during parsing: discovery: property "tls": loading the certificate`) {
		t.Errorf("a CA as the key: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "BEGIN") {
		t.Errorf("the error shows file contents: %v", err)
	}
}

// TestParseRelayTLS: a relay under TLS needs a certificate, and with
// verify_server_hostname one its followers take: named relay.<dc>.<domain>.
func TestParseRelayTLS(t *testing.T) {
	serverCert, serverKey, ca := tlsFiles(t)
	relay := func(cert, key string, verify string) error {
		_, err := parse(t, fmt.Sprintf("discovery {\n relay\n tls %s %s %s\n%s}", cert, key, ca, verify))
		return err
	}
	const vsh = " verify_outgoing\n verify_server_hostname\n"
	issue := func(kind tlsutil.Kind, names ...string) (string, string) {
		return issueFile(t, ca, tlsutil.CertOptions{Kind: kind, Datacenter: "dc1", DNSNames: names})
	}
	// What followers with verify_server_hostname take starts: a client
	// certificate issued to relay, or a server's.
	relayCert, relayKey := issue(tlsutil.KindClient, "relay.dc1.consul")
	for name, files := range map[string][2]string{
		"a client certificate named relay.dc1.consul": {relayCert, relayKey},
		"a server's certificate":                      {serverCert, serverKey},
	} {
		if err := relay(files[0], files[1], vsh); err != nil {
			t.Errorf("a relay with %s: %v", name, err)
		}
	}
	// What they refuse does not.
	plain, plainKey := issue(tlsutil.KindClient)
	if err := relay(plain, plainKey, vsh); err == nil || !strings.Contains(err.Error(),
		`property "relay": with verify_server_hostname a relay's certificate must allow server authentication and name relay.dc1.consul`) {
		t.Errorf("a relay with a client certificate not named for relaying: %v", err)
	}
	cli, cliKey := issue(tlsutil.KindCLI, "relay.dc1.consul")
	if err := relay(cli, cliKey, vsh); err == nil || !strings.Contains(err.Error(), "incompatible key usage") {
		t.Errorf("a relay with a CLI certificate (no server authentication): %v", err)
	}
	// verify_outgoing alone checks no name.
	if err := relay(plain, plainKey, " verify_outgoing\n"); err != nil {
		t.Errorf("a relay with a client certificate under verify_outgoing: %v", err)
	}
}

func TestAgentConfigDiff(t *testing.T) {
	a := Default().Agent
	b := a
	if d := a.Diff(b); d != "" {
		t.Errorf("equal configs differ: %s", d)
	}
	b.DataDir = "elsewhere"
	if d := a.Diff(b); !strings.HasPrefix(d, "data_dir (") || !strings.Contains(d, "elsewhere") {
		t.Errorf("Diff = %q, want it to name data_dir and the new value", d)
	}
	b = a
	b.Join = []string{"10.0.0.1:8301"}
	if d := a.Diff(b); !strings.HasPrefix(d, "join") {
		t.Errorf("Diff = %q, want join", d)
	}
	// Secrets are named, never shown: the error is logged.
	b = a
	b.Encrypt = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	if d := a.Diff(b); !strings.HasPrefix(d, "encrypt") || strings.Contains(d, b.Encrypt) {
		t.Errorf("Diff = %q, want encrypt named and its value not shown", d)
	}
	// TLS changes live: DiffFixed, what a reload may not change, leaves
	// it out; https (a listener's address) stays fixed.
	b = a
	b.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem", VerifyIncoming: true}
	if d := a.Diff(b); !strings.HasPrefix(d, "tls") {
		t.Errorf("Diff = %q, want tls", d)
	}
	if d := a.DiffFixed(b); d != "" {
		t.Errorf("DiffFixed = %q for a TLS change, want none", d)
	}
	b.HTTPS = "127.0.0.1:8501"
	if d := a.DiffFixed(b); !strings.HasPrefix(d, "https") {
		t.Errorf("DiffFixed = %q, want https", d)
	}
}
