// Command beacon is a DNS-first service discovery agent: a CoreDNS build with
// the `discovery` plugin, a Consul-compatible HTTP API and a CLI.
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// CoreDNS's general-purpose plugins, so a Corefile chains to them as
	// usual. The cloud and orchestrator backends (kubernetes, k8s_external,
	// etcd, route53, azure, clouddns, nomad) are left out: they would triple
	// the binary's size.
	_ "github.com/coredns/caddy/onevent"
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/any"
	_ "github.com/coredns/coredns/plugin/auto"
	_ "github.com/coredns/coredns/plugin/autopath"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/bufsize"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/cancel"
	_ "github.com/coredns/coredns/plugin/chaos"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/dns64"
	_ "github.com/coredns/coredns/plugin/dnssec"
	_ "github.com/coredns/coredns/plugin/dnstap"
	_ "github.com/coredns/coredns/plugin/erratic"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/grpc"
	_ "github.com/coredns/coredns/plugin/header"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/local"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metadata"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/minimal"
	_ "github.com/coredns/coredns/plugin/nsid"
	_ "github.com/coredns/coredns/plugin/pprof"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/root"
	_ "github.com/coredns/coredns/plugin/secondary"
	_ "github.com/coredns/coredns/plugin/sign"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/timeouts"
	_ "github.com/coredns/coredns/plugin/tls"
	_ "github.com/coredns/coredns/plugin/transfer"
	_ "github.com/coredns/coredns/plugin/tsig"
	_ "github.com/coredns/coredns/plugin/view"
	_ "github.com/coredns/coredns/plugin/whoami"

	"github.com/beacon-dns/beacon/agent"
	"github.com/beacon-dns/beacon/cli"
	"github.com/beacon-dns/beacon/corefile"
	discovery "github.com/beacon-dns/beacon/plugin"
)

// The plugin finds the agent's execution of prepared queries by assertion:
// keep the agent providing it.
var _ discovery.PreparedQueries = (*agent.Agent)(nil)

// leftOut are CoreDNS directives whose plugins this build does not carry.
var leftOut = []string{"kubernetes", "k8s_external", "etcd", "route53", "azure", "clouddns", "nomad"}

// directives is CoreDNS's order with the left-out backends removed and
// `discovery` where etcd stood: below cache, rewrite and acl, so those act on
// its answers; above loop and forward, so names outside its zones chain on.
func directives() []string {
	out := make([]string, 0, len(dnsserver.Directives))
	for _, d := range dnsserver.Directives {
		if d == "etcd" {
			out = append(out, "discovery")
		}
		if !slices.Contains(leftOut, d) {
			out = append(out, d)
		}
	}
	return out
}

var usage = `Usage: beacon <command> [options]

Commands:
    agent -conf FILE   run an agent (a CoreDNS server with the discovery plugin)
` + cli.Summary()

func main() {
	if err := dnsserver.SetDirectives(directives()); err != nil {
		fmt.Fprintln(os.Stderr, "beacon: directives:", err)
		os.Exit(1)
	}
	// The composition: every discovery block attaches to the process's
	// one agent.
	discovery.Register(discovery.Agents{
		Acquire: func(cfg *corefile.Config) (discovery.Agent, error) {
			a, err := agent.Acquire(cfg)
			if err != nil {
				return nil, err // not a nil *agent.Agent in a non-nil interface
			}
			return a, nil
		},
		ShutdownFinal: agent.ShutdownFinal,
		ApplyLive:     agent.ApplyLive,
	})
	// PUT /v1/agent/reload reloads the Corefile as the reload plugin does.
	agent.SetConfigReloader(discovery.ReloadCorefile)
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(1)
	}
	// The CLI's commands: those that talk to an agent's HTTP API, and
	// version and validate, which need this binary's build and parser.
	bin := cli.Binary{Version: agent.Version, Revision: agent.Revision(), BuildDate: agent.BuildDate(),
		CoreDNSVersion: coremain.CoreVersion, ValidateCorefile: discovery.ValidateCorefile}
	if cli.Has(os.Args[1]) {
		os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr, bin))
	}
	switch os.Args[1] {
	case "agent":
		// coremain parses the process's flags: hand it the agent's.
		os.Args = append([]string{os.Args[0]}, os.Args[2:]...)
		coremain.Run()
	case "-version", "--version":
		os.Exit(cli.Run([]string{"version"}, os.Stdout, os.Stderr, bin))
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "beacon: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(1)
	}
}
