package cli

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/beacon-dns/beacon/internal/tlsutil"
)

// `tls ca create` and `tls cert create`, as Consul's: a CA and agent
// certificates, written to the working directory under Consul's names
// (consul-agent-ca.pem, dc1-server-consul-0.pem, …) so that guides written
// for Consul work unchanged. Nothing is ever overwritten.

var tlsCommand = &command{name: "tls", synopsis: "Create a CA and certificates for the agents' TLS",
	subs: []*command{
		{name: "ca", synopsis: "Create a CA", subs: []*command{tlsCACreateCommand}},
		{name: "cert", synopsis: "Create certificates signed by a CA", subs: []*command{tlsCertCreateCommand}},
	},
}

var tlsCACreateCommand = &command{name: "create", help: "beacon tls ca create [options]", noArgs: true,
	synopsis: "Create a self-signed CA: <domain>-agent-ca.pem and its key, <domain>-agent-ca-key.pem",
	flags: func(fs *flag.FlagSet) {
		fs.Int("days", tlsutil.DefaultCADays, "Number of days the CA is valid for.")
		fs.String("domain", tlsutil.DefaultDomain, "The agents' DNS domain, which names the files.")
		fs.String("common-name", "", `Common name of the CA (default "Beacon Agent CA <serial>").`)
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		days, domain := flagOf[int](fs, "days"), strings.TrimSuffix(flagString(fs, "domain"), ".")
		if days <= 0 {
			return usageErr(e, "-days must be a positive number of days")
		}
		certFile, keyFile := domain+"-agent-ca.pem", domain+"-agent-ca-key.pem"
		for _, f := range []string{certFile, keyFile} {
			if _, err := os.Stat(f); err == nil {
				return e.fail("==> CA file %s already exists", f)
			}
		}
		cert, key, err := tlsutil.GenerateCA(tlsutil.CAOptions{Days: days, CommonName: flagString(fs, "common-name")})
		if err != nil {
			return e.fail("==> Error creating the CA: %v", err)
		}
		if err := writePair(certFile, cert, keyFile, key); err != nil {
			return e.fail("==> %v", err)
		}
		e.info("==> Saved %s", certFile)
		e.info("==> Saved %s", keyFile)
		return exitOK
	},
}

const serverCertWarning = `==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.`

var tlsCertCreateCommand = &command{name: "create", help: "beacon tls cert create -server|-client|-cli [options]",
	noArgs:   true,
	synopsis: "Create a certificate and key signed by the CA: <dc>-<kind>-<domain>-<n>.pem and -key.pem",
	flags: func(fs *flag.FlagSet) {
		fs.Bool("server", false, "Create a server certificate: server.<dc>.<domain>.")
		fs.Bool("client", false, "Create a client agent certificate: client.<dc>.<domain>.")
		fs.Bool("cli", false, "Create a certificate for the CLI: cli.<dc>.<domain>.")
		fs.String("dc", "dc1", "Datacenter of the certificate.")
		fs.String("domain", tlsutil.DefaultDomain, "The agents' DNS domain.")
		fs.String("node", "", "Node name of a server: adds <node>.server.<dc>.<domain>.")
		fs.String("ca", "#DOMAIN#-agent-ca.pem", "The CA's certificate.")
		fs.String("key", "#DOMAIN#-agent-ca-key.pem", "The CA's key.")
		fs.Int("days", tlsutil.DefaultCertDays, "Number of days the certificate is valid for.")
		fs.Var(&stringList{}, "additional-dnsname", "An additional DNS name; localhost is always included. May be repeated.")
		fs.Var(&stringList{}, "additional-ipaddress", "An additional IP address; 127.0.0.1 is always included (but for -cli). May be repeated.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		var kinds []tlsutil.Kind
		for _, k := range []tlsutil.Kind{tlsutil.KindServer, tlsutil.KindClient, tlsutil.KindCLI} {
			if flagOf[bool](fs, string(k)) {
				kinds = append(kinds, k)
			}
		}
		if len(kinds) != 1 {
			return usageErr(e, "Please provide one of -server, -client or -cli")
		}
		kind := kinds[0]
		dc, domain := flagString(fs, "dc"), strings.TrimSuffix(flagString(fs, "domain"), ".")
		if dc == "" {
			return usageErr(e, "Please provide the datacenter (-dc)")
		}
		if flagString(fs, "node") != "" && kind != tlsutil.KindServer {
			return usageErr(e, "-node is only for server certificates")
		}
		var ips []net.IP
		for _, s := range flagOf[[]string](fs, "additional-ipaddress") {
			ip := net.ParseIP(s)
			if ip == nil {
				return usageErr(e, "-additional-ipaddress %q is not an IP address", s)
			}
			ips = append(ips, ip)
		}
		caFile := strings.ReplaceAll(flagString(fs, "ca"), "#DOMAIN#", domain)
		caKeyFile := strings.ReplaceAll(flagString(fs, "key"), "#DOMAIN#", domain)
		caCert, err := os.ReadFile(caFile)
		if err != nil {
			return e.fail("==> Error reading the CA: %v", err)
		}
		caKey, err := os.ReadFile(caKeyFile)
		if err != nil {
			return e.fail("==> Error reading the CA key: %v", err)
		}
		cert, key, err := tlsutil.GenerateCert(caCert, caKey, tlsutil.CertOptions{Kind: kind, Datacenter: dc, Domain: domain,
			Node: flagString(fs, "node"), Days: flagOf[int](fs, "days"), DNSNames: flagOf[[]string](fs, "additional-dnsname"),
			IPAddresses: ips})
		if err != nil {
			return e.fail("==> Error creating the certificate: %v", err)
		}
		if kind == tlsutil.KindServer {
			e.info("%s", serverCertWarning)
		}
		e.info("==> Using %s and %s", caFile, caKeyFile)
		prefix := fmt.Sprintf("%s-%s-%s", dc, kind, domain)
		for i := 0; ; i++ {
			certFile, keyFile := fmt.Sprintf("%s-%d.pem", prefix, i), fmt.Sprintf("%s-%d-key.pem", prefix, i)
			err := writePair(certFile, cert, keyFile, key)
			if errors.Is(err, os.ErrExist) {
				continue // an earlier certificate: take the next number
			}
			if err != nil {
				return e.fail("==> %v", err)
			}
			e.info("==> Saved %s", certFile)
			e.info("==> Saved %s", keyFile)
			return exitOK
		}
	},
}

// writePair writes a certificate (readable by all) and its key (by the
// owner only), each as a new file: an existing one is never overwritten
// (os.ErrExist). When the key cannot be written the certificate goes too.
func writePair(certFile string, cert []byte, keyFile string, key []byte) error {
	if err := writeNew(certFile, cert, 0o644); err != nil {
		return err
	}
	if err := writeNew(keyFile, key, 0o600); err != nil {
		os.Remove(certFile)
		return err
	}
	return nil
}

func writeNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
