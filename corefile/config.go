package corefile

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/coredns/coredns/plugin/pkg/fall"
)

// Config is one `discovery` block: the settings of the process-wide agent
// and those of the DNS handler attached to this server block.
type Config struct {
	Agent AgentConfig
	DNS   DNSConfig

	// AgentSet is true when the block named any agent property. A second
	// block that names none attaches to the agent the first one defined.
	AgentSet bool
}

// AgentConfig is what the agent is started with. None of it can change while
// the process runs but the fields tagged live (TLS): a reload that changes
// any other is refused.
type AgentConfig struct {
	Datacenter string `property:"datacenter"`
	Domain     string `property:"domain"`
	Node       string `property:"node"`
	DataDir    string `property:"data_dir"`
	Server     bool   `property:"server"`
	// Relay makes a client agent pass the state stream on to other client
	// agents, from its rpc address, so servers stream to a few relays
	// rather than to the whole fleet.
	Relay           bool     `property:"relay"`
	BootstrapExpect int      `property:"bootstrap_expect"`
	Bind            string   `property:"bind"`
	HTTP            string   `property:"http"`
	RPC             string   `property:"rpc"`
	SerfLAN         string   `property:"serf_lan"`
	SerfWAN         string   `property:"serf_wan"`
	Join            []string `property:"join"`
	// JoinWAN are other datacenters' servers' WAN gossip addresses,
	// retried until one answers (servers only).
	JoinWAN []string `property:"join_wan"`
	// Encrypt is the base64 gossip key (16, 24 or 32 bytes) a new
	// keyring starts from; the keyring in data_dir wins once it exists.
	Encrypt string `property:"encrypt" secret:"true"`
	// ReconnectTimeout is how long a failed member is kept before it is
	// reaped from gossip and the catalog.
	ReconnectTimeout time.Duration `property:"reconnect_timeout"`
	// EnableScriptChecks lets script (ScriptArgs) checks run.
	EnableScriptChecks bool `property:"enable_script_checks"`
	// RPCHoldTimeout is how long a request that needs the leader waits
	// for one while none is known (Consul's rpc_hold_timeout).
	RPCHoldTimeout time.Duration `property:"rpc_hold_timeout"`
	// ACL turns ACLs on with its default policy, "allow" or "deny"; ""
	// leaves them off.
	ACL string `property:"acl"`
	// ACLDownPolicy is Consul's acl down_policy; tokens resolve from the
	// local replica, which answers while servers are away, so it only
	// names what Consul users expect to set.
	ACLDownPolicy string `property:"acl_down_policy"`
	// ACLTokens are the agent's tokens by role.
	ACLTokens ACLTokens `property:"acl_token" secret:"true"`
	// HTTPS is the HTTPS API's address; "" for none. HTTP may be "" too
	// (`http off`), for an API over HTTPS only.
	HTTPS string `property:"https"`
	// TLS is the agent's certificate and how strictly it checks its
	// peers'. It changes live: a reload (or SIGHUP) loads its files for
	// the handshakes that follow.
	TLS TLSConfig `property:"tls" live:"true"`
}

// ACLTokens are the secrets the `acl_token ROLE SECRET` lines give.
type ACLTokens struct {
	// InitialManagement becomes a management token when the cluster's
	// leader first sees it (Consul's initial_management).
	InitialManagement string
	// Agent is what the agent acts with (kept for Consul's shape; the
	// agent's own writes go through Raft directly).
	Agent string
	// Default is the token of requests that carry none, and of DNS.
	Default string
}

// TLSConfig is the `tls CERT KEY CA` property (CoreDNS's argument order)
// and the verify_* ones, with Consul's meanings.
type TLSConfig struct {
	CertFile, KeyFile, CAFile string
	// VerifyIncoming: connections to the server port must be TLS with a
	// certificate signed by the CA, and so must HTTPS clients (as
	// Consul's verify_incoming, which applies to HTTPS too).
	VerifyIncoming bool
	// VerifyOutgoing: connections to servers use TLS and check the
	// server's certificate against the CA.
	VerifyOutgoing bool
	// VerifyServerHostname: a server's certificate must also be for
	// server.<datacenter>.<domain>; implies VerifyOutgoing.
	VerifyServerHostname bool
}

// TLSUtil is the agent's TLS as package tlsutil loads it.
func (a AgentConfig) TLSUtil() tlsutil.Config {
	t := a.TLS
	return tlsutil.Config{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile,
		VerifyIncoming: t.VerifyIncoming, VerifyOutgoing: t.VerifyOutgoing, VerifyServerHostname: t.VerifyServerHostname,
		ServerName: tlsutil.RoleName(tlsutil.KindServer, a.Datacenter, a.Domain)}
}

// DNSConfig is how one server block answers. It may change on reload.
type DNSConfig struct {
	// Zones this handler answers for; the domain and datacenter names among
	// the server block's zones.
	Zones []string
	// NodeTTL is the TTL of node answers.
	NodeTTL time.Duration
	// ServiceTTL maps a service name, or "*" for any other, to its TTL.
	ServiceTTL map[string]time.Duration
	// NegativeTTL is the SOA minimum: how long resolvers cache NXDOMAIN.
	NegativeTTL time.Duration
	// OnlyPassing leaves out instances with a warning check too.
	OnlyPassing bool
	// AllowStale answers from the local replica; MaxStale bounds how far it
	// may lag the leader before a server stops answering from it.
	AllowStale bool
	MaxStale   time.Duration
	// ARecordLimit caps the A/AAAA records of one answer; 0 is no cap.
	ARecordLimit int
	Fall         fall.F
}

// Defaults, as Consul's where it has one.
const (
	DefaultDatacenter = "dc1"
	DefaultDomain     = "consul."
	DefaultBind       = "127.0.0.1"
	DefaultHTTP       = "127.0.0.1:8500"
	DefaultRPCPort    = 8300
	DefaultLANPort    = 8301
	DefaultWANPort    = 8302
	DefaultMaxStale   = 87600 * time.Hour
	// DefaultReconnectTimeout and MinReconnectTimeout are Consul's.
	DefaultReconnectTimeout = 72 * time.Hour
	MinReconnectTimeout     = 8 * time.Hour
	// DefaultRPCHoldTimeout is Consul's; MaxRPCHoldTimeout keeps a
	// request from waiting past the agent's own bounds.
	DefaultRPCHoldTimeout = 7 * time.Second
	MaxRPCHoldTimeout     = time.Minute
)

// Default returns a Config with every default filled in.
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "beacon"
	}
	c := &Config{
		Agent: AgentConfig{
			Datacenter: DefaultDatacenter,
			Domain:     DefaultDomain,
			Node:       host,
			Bind:       DefaultBind,
			HTTP:       DefaultHTTP,

			ReconnectTimeout: DefaultReconnectTimeout,
			RPCHoldTimeout:   DefaultRPCHoldTimeout,
		},
		DNS: DNSConfig{
			ServiceTTL: map[string]time.Duration{},
			AllowStale: true,
			MaxStale:   DefaultMaxStale,
		},
	}
	return c
}

// fillDerived sets the defaults that depend on other properties.
func (a *AgentConfig) fillDerived() {
	if a.DataDir == "" {
		a.DataDir = filepath.Join("data", a.Node)
	}
	hostPort := func(port int) string { return fmt.Sprintf("%s:%d", a.Bind, port) }
	if a.RPC == "" {
		a.RPC = hostPort(DefaultRPCPort)
	}
	if a.SerfLAN == "" {
		a.SerfLAN = hostPort(DefaultLANPort)
	}
	if a.SerfWAN == "" {
		a.SerfWAN = hostPort(DefaultWANPort)
	}
}

// Diff names the first property whose value differs between a and b, with
// both values (but for secrets, which are only named), or returns "" when
// they are the same.
func (a AgentConfig) Diff(b AgentConfig) string { return a.diff(b, true) }

// DiffFixed is Diff of the properties that cannot change live: a reload
// that changes one of them is refused.
func (a AgentConfig) DiffFixed(b AgentConfig) string { return a.diff(b, false) }

func (a AgentConfig) diff(b AgentConfig, live bool) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !live && f.Tag.Get("live") == "true" {
			continue
		}
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if reflect.DeepEqual(x, y) {
			continue
		}
		if f.Tag.Get("secret") == "true" {
			return f.Tag.Get("property") + " (a secret: values not shown)"
		}
		return fmt.Sprintf("%s (%v, now %v)", f.Tag.Get("property"), x, y)
	}
	return ""
}
