package discovery

import (
	"fmt"
	"os"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	coreparse "github.com/coredns/coredns/plugin/pkg/parse"
	"github.com/miekg/dns"

	"github.com/beacon-dns/beacon/corefile"
)

// ValidateCorefile checks the Corefile at path as the agent's start-up
// does, without starting anything (`beacon validate`): CoreDNS's parser
// with this build's directives (syntax, imports, unknown directives), the
// server blocks' keys as CoreDNS reads them, and every discovery block
// with the parser setup uses, with the rule the one agent of the process
// sets: every block that names agent properties names the same ones as the
// first. The errors are the agent's, naming the file and the line. Other
// plugins' blocks are not set up, so their own arguments go unchecked.
func ValidateCorefile(path string) error { return validateCorefile(path, dnsserver.Directives) }

func validateCorefile(path string, directives []string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading the Corefile: %w", err)
	}
	defer f.Close()
	blocks, err := caddyfile.Parse(path, f, directives)
	if err != nil {
		return err
	}
	var first *corefile.Config
	firstLine := 0
	for _, sb := range blocks {
		if err := checkKeys(sb.Keys); err != nil {
			return err
		}
		tokens, ok := sb.Tokens[pluginName]
		if !ok || len(sb.Keys) == 0 {
			continue
		}
		// The controller setup gets, but for the instance: parsing needs
		// none, and nothing is started.
		c := &caddy.Controller{Dispenser: caddyfile.NewDispenserTokens(path, tokens), Key: sb.Keys[0],
			ServerBlockKeys: sb.Keys}
		cfg, err := parse(c)
		if err != nil {
			return plugin.Error(pluginName, err)
		}
		// As Acquire decides: the first block starts the agent, a later
		// one that names agent settings must not change any.
		switch {
		case first == nil:
			first, firstLine = cfg, tokens[0].Line
		case cfg.AgentSet:
			if diff := first.Agent.DiffFixed(cfg.Agent); diff != "" {
				return plugin.Error(pluginName, fmt.Errorf("%s:%d - Error during parsing: discovery: agent setting %s "+
					"differs from the discovery block at line %d: the process runs one agent, and every block "+
					"that names agent properties must name the same", path, tokens[0].Line, diff, firstLine))
			}
		}
	}
	return nil
}

// checkKeys refuses the server block keys CoreDNS refuses when it reads
// them (dnsserver's InspectServerBlocks): a zone or port it cannot split.
func checkKeys(keys []string) error {
	for _, k := range keys {
		_, hostPort := coreparse.Transport(k)
		hosts, _, err := plugin.SplitHostPort(hostPort)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if _, _, err := plugin.SplitHostPort(dns.Fqdn(h)); err != nil {
				return err
			}
		}
	}
	return nil
}
