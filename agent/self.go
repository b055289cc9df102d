package agent

import (
	"runtime"
	"strconv"
	"strings"

	"github.com/beacon-dns/beacon/adminapi"
)

// The agent's endpoints about itself find it by assertion: keep the
// agent providing them.
var _ adminapi.Introspection = (*Agent)(nil)

// hidden is what Consul's DebugConfig shows for a secret that is set.
const hidden = "hidden"

// Self describes the agent for /v1/agent/self.
func (a *Agent) Self() adminapi.AgentSelf {
	self := adminapi.AgentSelf{
		Version: Version, Revision: Revision(), BuildDate: BuildDate(),
		NodeName: a.cfg.Node, NodeID: a.nodeID, Datacenter: a.cfg.Datacenter,
		Domain: a.cfg.Domain, Server: a.cfg.Server, DataDir: a.cfg.DataDir,
		DebugConfig: a.debugConfig(),
		Member:      consulMember(a.lan.LocalMember()),
		Stats:       a.stats(),
	}
	if c, err := a.lan.Coordinate(); err == nil {
		self.Coord = c
	}
	return self
}

// debugConfig is the agent's configuration under the names of Consul's
// RuntimeConfig, for the tools that read /v1/agent/self's DebugConfig.
// Secrets stay out: the gossip key and the ACL tokens are only said to be
// set, as Consul says it.
func (a *Agent) debugConfig() map[string]any {
	c := a.cfg
	secret := func(v string) string {
		if v == "" {
			return ""
		}
		return hidden
	}
	addrs := func(scheme, addr string) []string {
		if addr == "" {
			return []string{}
		}
		return []string{scheme + "://" + addr}
	}
	list := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	tls := map[string]any{
		"CAFile": c.TLS.CAFile, "CertFile": c.TLS.CertFile, "KeyFile": c.TLS.KeyFile,
		"VerifyIncoming": c.TLS.VerifyIncoming, "VerifyOutgoing": c.TLS.VerifyOutgoing,
		"VerifyServerHostname": c.TLS.VerifyServerHostname,
	}
	return map[string]any{
		"Datacenter": c.Datacenter, "PrimaryDatacenter": c.Datacenter, "NodeName": c.Node, "NodeID": a.nodeID,
		"DataDir": c.DataDir, "ServerMode": c.Server, "BootstrapExpect": c.BootstrapExpect,
		"DNSDomain": c.Domain, "BindAddr": c.Bind, "AdvertiseAddrLAN": c.Bind,
		"HTTPAddrs": addrs("tcp", c.HTTP), "HTTPSAddrs": addrs("tcp", c.HTTPS),
		"RPCBindAddr": c.RPC, "SerfBindAddrLAN": c.SerfLAN, "SerfBindAddrWAN": serverOnly(c.Server, c.SerfWAN),
		"RetryJoinLAN": list(c.Join), "RetryJoinWAN": list(c.JoinWAN),
		"ReconnectTimeoutLAN": c.ReconnectTimeout.String(), "RPCHoldTimeout": c.RPCHoldTimeout.String(),
		"EnableLocalScriptChecks": c.EnableScriptChecks, "EnableRemoteScriptChecks": c.EnableScriptChecks,
		"EncryptKey":  secret(c.Encrypt),
		"ACLsEnabled": c.ACL != "", "ACLDefaultPolicy": c.ACL, "ACLDownPolicy": c.ACLDownPolicy,
		"TLS":     map[string]any{"InternalRPC": tls, "HTTPS": tls},
		"Version": Version, "Revision": Revision(),
	}
}

func serverOnly(server bool, v string) string {
	if !server {
		return ""
	}
	return v
}

// stats are /v1/agent/self's Stats, the sections `beacon info` prints.
func (a *Agent) stats() map[string]map[string]string {
	out := map[string]map[string]string{
		"agent":    a.agentStats(),
		"build":    buildStats(),
		"runtime":  runtimeStats(),
		"serf_lan": a.lan.Stats(),
	}
	if a.client != nil {
		out["consul"] = a.client.Stats()
		out["consul"]["acl"] = aclStat(a.cfg.ACL)
		return out
	}
	out["consul"] = map[string]string{
		"server":            "true",
		"leader":            strconv.FormatBool(a.server.IsLeader()),
		"leader_addr":       a.server.Leader(),
		"known_servers":     strconv.Itoa(len(a.dcServers())),
		"bootstrap":         strconv.FormatBool(a.cfg.BootstrapExpect == 1),
		"known_datacenters": strconv.Itoa(len(a.Datacenters())),
		"acl":               aclStat(a.cfg.ACL),
		// The client agents (or relays) following this server's state.
		"streams": strconv.FormatInt(a.server.FeedStats().Streams, 10),
	}
	out["raft"] = a.server.Stats()
	if a.wan != nil {
		out["serf_wan"] = a.wan.Stats()
	}
	return out
}

// aclStat is Consul's consul.acl figure: "disabled", or "enabled".
func aclStat(policy string) string {
	if policy == "" {
		return "disabled"
	}
	return "enabled"
}

// agentStats counts the local services and checks as Consul does:
// check_monitors are script checks, check_ttls TTL checks.
func (a *Agent) agentStats() map[string]string {
	checks := a.LocalChecks()
	scripts, ttls := 0, 0
	for _, c := range checks {
		switch c.Type {
		case "script":
			scripts++
		case "ttl":
			ttls++
		}
	}
	return map[string]string{
		"services": strconv.Itoa(len(a.LocalServices())), "checks": strconv.Itoa(len(checks)),
		"check_monitors": strconv.Itoa(scripts), "check_ttls": strconv.Itoa(ttls),
	}
}

// buildStats are Consul's build section: the version split at its
// prerelease ("0.1.0-dev" is version 0.1.0, prerelease dev).
func buildStats() map[string]string {
	version, prerelease, _ := strings.Cut(Version, "-")
	return map[string]string{"version": version, "prerelease": prerelease, "revision": Revision(),
		"version_metadata": ""}
}

func runtimeStats() map[string]string {
	return map[string]string{
		"os": runtime.GOOS, "arch": runtime.GOARCH, "version": runtime.Version(),
		"max_procs": strconv.Itoa(runtime.GOMAXPROCS(0)), "cpu_count": strconv.Itoa(runtime.NumCPU()),
		"goroutines": strconv.Itoa(runtime.NumGoroutine()),
	}
}

// Build describes this build for /v1/agent/version.
func (a *Agent) Build() adminapi.BuildInfo {
	return adminapi.BuildInfo{Version: Version, Revision: Revision(), BuildDate: BuildDate(), SDK: apiVersion()}
}
