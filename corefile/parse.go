package corefile

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/beacon-dns/beacon/internal/tlsutil"
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
)

// Parse reads one `discovery` block from c. Every error names the file, the
// line and the property.
func Parse(c *caddy.Controller) (*Config, error) {
	cfg := Default()
	c.Next() // the directive itself
	zoneArgs := c.RemainingArgs()
	for _, z := range zoneArgs {
		// CoreDNS drops a zone it cannot read without a word, which would
		// leave the plugin answering for fewer zones, or none.
		if len(plugin.Host(z).NormalizeExact()) == 0 {
			return nil, c.Errf("discovery: zone %q is not a domain name", z)
		}
	}

	agentDefaults := cfg.Agent
	lines := map[string]int{}
	for c.NextBlock() {
		prop := c.Val()
		lines[prop] = c.Line()
		args := c.RemainingArgs()
		if err := applyProperty(cfg, prop, args); err != nil {
			return nil, c.Errf("discovery: property %q: %v", prop, err)
		}
	}
	cfg.AgentSet = cfg.Agent.Diff(agentDefaults) != ""
	cfg.Agent.fillDerived()
	if prop, err := cfg.Agent.validate(); err != nil {
		line, ok := lines[prop]
		if !ok {
			line = c.Line()
		}
		return nil, fmt.Errorf("%s:%d - Error during parsing: discovery: property %q: %v", c.File(), line, prop, err)
	}
	cfg.Agent.Domain = strings.ToLower(plugin.Host(cfg.Agent.Domain).NormalizeExact()[0])
	cfg.DNS.Zones = plugin.OriginsFromArgsOrServerBlock(zoneArgs, c.ServerBlockKeys)
	return cfg, nil
}

var errMissingValue = errors.New("missing value")

func applyProperty(cfg *Config, prop string, args []string) error {
	a, d := &cfg.Agent, &cfg.DNS
	one := func(dst *string, check func(string) error) error {
		if len(args) != 1 {
			return wantOne(args)
		}
		if check != nil {
			if err := check(args[0]); err != nil {
				return err
			}
		}
		*dst = args[0]
		return nil
	}
	none := func(dst *bool) error {
		if len(args) != 0 {
			return fmt.Errorf("takes no value, got %q", strings.Join(args, " "))
		}
		*dst = true
		return nil
	}
	duration := func(dst *time.Duration) error {
		if len(args) != 1 {
			return wantOne(args)
		}
		v, err := parseDuration(args[0])
		if err != nil {
			return err
		}
		*dst = v
		return nil
	}

	switch prop {
	case "datacenter":
		// Lowercased, as Consul takes it: the name is compared with what
		// gossip, DNS names and ?dc= carry.
		if err := one(&a.Datacenter, checkLabel); err != nil {
			return err
		}
		a.Datacenter = strings.ToLower(a.Datacenter)
		return nil
	case "domain":
		return one(&a.Domain, checkDomain)
	case "node":
		return one(&a.Node, checkLabel)
	case "data_dir":
		return one(&a.DataDir, nil)
	case "server":
		return none(&a.Server)
	case "relay":
		return none(&a.Relay)
	case "bootstrap_expect":
		if len(args) != 1 {
			return wantOne(args)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 7 {
			return fmt.Errorf("want a number of servers from 1 to 7, got %q", args[0])
		}
		a.BootstrapExpect = n
		return nil
	case "bind":
		return one(&a.Bind, checkBindIP)
	case "http":
		if len(args) == 1 && args[0] == "off" { // an API over HTTPS only
			a.HTTP = ""
			return nil
		}
		return one(&a.HTTP, checkHostPort)
	case "https":
		return one(&a.HTTPS, checkHostPort)
	case "tls":
		if len(args) < 2 || len(args) > 3 {
			return fmt.Errorf("want a certificate, its key and a CA bundle (CERT KEY [CA]), got %d values", len(args))
		}
		a.TLS.CertFile, a.TLS.KeyFile = args[0], args[1]
		a.TLS.CAFile = ""
		if len(args) == 3 {
			a.TLS.CAFile = args[2]
		}
		return nil
	case "verify_incoming":
		return none(&a.TLS.VerifyIncoming)
	case "verify_outgoing":
		return none(&a.TLS.VerifyOutgoing)
	case "verify_server_hostname":
		return none(&a.TLS.VerifyServerHostname)
	case "rpc":
		return one(&a.RPC, checkHostPort)
	case "serf_lan":
		return one(&a.SerfLAN, checkHostPort)
	case "serf_wan":
		return one(&a.SerfWAN, checkHostPort)
	case "join", "join_wan":
		if len(args) == 0 {
			return errMissingValue
		}
		for _, j := range args {
			if err := checkJoinAddr(j); err != nil {
				return err
			}
		}
		if prop == "join_wan" {
			a.JoinWAN = append(a.JoinWAN, args...)
		} else {
			a.Join = append(a.Join, args...)
		}
		return nil
	case "encrypt":
		return one(&a.Encrypt, checkGossipKey)
	case "reconnect_timeout":
		if err := duration(&a.ReconnectTimeout); err != nil {
			return err
		}
		if a.ReconnectTimeout < MinReconnectTimeout {
			return fmt.Errorf("%s is below the minimum of %s", a.ReconnectTimeout, MinReconnectTimeout)
		}
		return nil
	case "enable_script_checks":
		return none(&a.EnableScriptChecks)
	case "acl":
		return one(&a.ACL, func(v string) error {
			if v != "allow" && v != "deny" {
				return fmt.Errorf("want allow or deny, got %q", v)
			}
			return nil
		})
	case "acl_down_policy":
		return one(&a.ACLDownPolicy, func(v string) error {
			switch v {
			case "allow", "deny", "extend-cache", "async-cache":
				return nil
			}
			return fmt.Errorf("want allow, deny, extend-cache or async-cache, got %q", v)
		})
	case "acl_token":
		if len(args) != 2 {
			return fmt.Errorf("want a role (initial_management, agent or default) and a secret, got %d values", len(args))
		}
		role, secret := args[0], args[1]
		if secret == "" || len(secret) > 128 {
			return errors.New("the secret must be 1 to 128 characters")
		}
		switch role {
		case "initial_management":
			a.ACLTokens.InitialManagement = secret
		case "agent":
			a.ACLTokens.Agent = secret
		case "default":
			a.ACLTokens.Default = secret
		default:
			return fmt.Errorf("unknown role %q: want initial_management, agent or default", role)
		}
		return nil
	case "rpc_hold_timeout":
		if err := duration(&a.RPCHoldTimeout); err != nil {
			return err
		}
		if a.RPCHoldTimeout <= 0 || a.RPCHoldTimeout > MaxRPCHoldTimeout {
			return fmt.Errorf("%s is not between 0 and %s", a.RPCHoldTimeout, MaxRPCHoldTimeout)
		}
		return nil

	case "node_ttl":
		return duration(&d.NodeTTL)
	case "service_ttl":
		if len(args) != 2 {
			return fmt.Errorf("want a service name (or *) and a duration, got %d values", len(args))
		}
		v, err := parseDuration(args[1])
		if err != nil {
			return err
		}
		d.ServiceTTL[args[0]] = v
		return nil
	case "negative_ttl":
		return duration(&d.NegativeTTL)
	case "only_passing":
		return none(&d.OnlyPassing)
	case "allow_stale":
		if len(args) != 1 || (args[0] != "true" && args[0] != "false") {
			return fmt.Errorf("want true or false, got %q", strings.Join(args, " "))
		}
		d.AllowStale = args[0] == "true"
		return nil
	case "max_stale":
		return duration(&d.MaxStale)
	case "a_record_limit":
		if len(args) != 1 {
			return wantOne(args)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number of records, 0 for no limit, got %q", args[0])
		}
		d.ARecordLimit = n
		return nil
	case "fallthrough":
		d.Fall.SetZonesFromArgs(args)
		return nil
	}
	return errors.New("unknown property")
}

func wantOne(args []string) error {
	if len(args) == 0 {
		return errMissingValue
	}
	return fmt.Errorf("want one value, got %d: %q", len(args), strings.Join(args, " "))
}

// parseDuration accepts Go durations ("30s", "1h") and bare seconds ("30"),
// as TTLs are often written.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a duration such as 30s or 5m, got %q", s)
	}
	return v, nil
}

// checkLabel accepts a DNS label: node and datacenter names appear in names.
func checkLabel(s string) error {
	if len(s) == 0 || len(s) > 63 {
		return fmt.Errorf("%q is not a DNS label (1 to 63 letters, digits and hyphens)", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("%q is not a DNS label (1 to 63 letters, digits and hyphens)", s)
		}
	}
	return nil
}

func checkDomain(s string) error {
	// 253 characters is the longest name DNS carries (255 bytes on the wire).
	if len(strings.TrimSuffix(s, ".")) > 253 {
		return fmt.Errorf("%q is not a domain name: longer than 253 characters", s)
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("%q is not a domain name", s)
		}
	}
	return nil
}

// checkGossipKey accepts a base64 AES key of 16, 24 or 32 bytes.
func checkGossipKey(s string) error {
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("the key is not base64: %v", err)
	}
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("the key is %d bytes; it must be 16, 24 or 32 (beacon keygen makes one)", len(key))
}

func checkBindIP(s string) error {
	ip := net.ParseIP(s)
	if ip == nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	if ip.IsUnspecified() {
		return fmt.Errorf("%s is advertised to other agents, so it must be a reachable address, not %s", "bind", s)
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not an address of the form IP:port", s)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("%q: %q is not an IP address", s, host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not from 1 to 65535", s, port)
	}
	return nil
}

// checkJoinAddr accepts a gossip address to join: IP:port, or host:port
// with a DNS host name (as Consul's retry_join takes them: a StatefulSet's
// pods, a round-robin name), which gossip resolves at every attempt.
func checkJoinAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not an address of the form IP:port or host:port", s)
	}
	if net.ParseIP(host) == nil {
		if err := checkHostName(host); err != nil {
			return fmt.Errorf("%q: %v", s, err)
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not from 1 to 65535", s, port)
	}
	return nil
}

// checkHostName accepts a DNS host name: dot-separated labels of letters,
// digits and hyphens, neither starting nor ending with a hyphen, with an
// optional final dot; not all digits and dots (a mistyped IP address).
func checkHostName(s string) error {
	bad := fmt.Errorf("%q is neither an IP address nor a host name", s)
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return bad
	}
	allDigits := true
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				allDigits = false
			default:
				return bad
			}
		}
	}
	if allDigits {
		return bad
	}
	return nil
}

// validate checks the properties against each other, naming the property
// that is at fault.
func (a *AgentConfig) validate() (string, error) {
	if a.BootstrapExpect > 0 && !a.Server {
		return "bootstrap_expect", errors.New(`only a server can bootstrap; add "server"`)
	}
	if a.Relay && a.Server {
		return "relay", errors.New("only a client agent relays: servers stream to client agents already")
	}
	if len(a.JoinWAN) > 0 && !a.Server {
		return "join_wan", errors.New(`only servers join the WAN pool; add "server"`)
	}
	seen := map[string]string{}
	for _, p := range []struct{ name, addr string }{{"http", a.HTTP}, {"https", a.HTTPS}, {"rpc", a.RPC},
		{"serf_lan", a.SerfLAN}, {"serf_wan", a.SerfWAN}} {
		if (p.name == "serf_wan" && !a.Server) || (p.name == "rpc" && !a.Server && !a.Relay) {
			continue // a client listens on neither: only servers (and relays, rpc) take RPC and join the WAN pool
		}
		if p.addr == "" {
			continue // http off, no https
		}
		if other, dup := seen[p.addr]; dup {
			return p.name, fmt.Errorf("address %s is already used by %q", p.addr, other)
		}
		seen[p.addr] = p.name
	}
	return a.validateTLS()
}

// validateTLS checks that the TLS properties have what they need, and that
// the files load: a certificate with its key, a CA bundle of certificates.
func (a *AgentConfig) validateTLS() (string, error) {
	t := a.TLS
	const addTLS = `add "tls CERT KEY CA"`
	switch {
	case a.HTTP == "" && a.HTTPS == "":
		return "http", errors.New(`with http off the agent has no API: set https`)
	case a.HTTPS != "" && t.CertFile == "":
		return "https", errors.New("HTTPS needs the agent's certificate: " + addTLS)
	case t.VerifyIncoming && (t.CertFile == "" || t.CAFile == ""):
		return "verify_incoming", errors.New("needs the agent's certificate and the CA that signs its peers': " + addTLS)
	case t.VerifyOutgoing && t.CAFile == "":
		return "verify_outgoing", errors.New("needs the CA that signs the servers' certificates: " + addTLS)
	case t.VerifyServerHostname && t.CAFile == "":
		return "verify_server_hostname", errors.New("needs the CA that signs the servers' certificates: " + addTLS)
	}
	if t == (TLSConfig{}) {
		return "", nil
	}
	material, err := tlsutil.Load(a.TLSUtil())
	if err != nil {
		return "tls", err
	}
	if a.Relay && t.VerifyServerHostname {
		// Its followers check the certificate (tlsutil.OutgoingRelay);
		// this relay's own verify_server_hostname says the datacenter
		// checks names.
		if err := material.CanRelay(); err != nil {
			return "relay", fmt.Errorf("with verify_server_hostname a relay's certificate must allow server authentication "+
				"and name %s (beacon tls cert create -client -additional-dnsname %s) or be a server's: %w",
				material.RelayName(), material.RelayName(), err)
		}
	}
	return "", nil
}
