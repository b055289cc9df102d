package cli

import (
	"cmp"
	"encoding/json"
	"flag"
	"strings"
)

// Binary is what the commands that do not talk to an agent need of the
// binary they are part of: main gives it, as the CLI imports neither the
// agent nor CoreDNS.
type Binary struct {
	// Version, Revision and BuildDate describe the build; Revision and
	// BuildDate are "" when it did not record them.
	Version, Revision, BuildDate string
	// CoreDNSVersion is the CoreDNS release the binary is built on.
	CoreDNSVersion string
	// ValidateCorefile checks the Corefile at path as the agent's start-up
	// would, without starting anything; nil when the binary cannot.
	ValidateCorefile func(path string) error
}

// The protocol range the agents advertise (their members' vsn tags), which
// Consul's version prints.
const protocolDefault, protocolMin, protocolMax = 2, 2, 3

var versionCommand = &command{name: "version", synopsis: "Prints the beacon version",
	help: "beacon version [options]", noArgs: true,
	flags: func(fs *flag.FlagSet) {
		fs.String("format", "pretty", "Output format {pretty|json}")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		b := e.binary
		switch format := flagString(fs, "format"); format {
		case "pretty":
			var out strings.Builder
			out.WriteString("beacon v" + b.Version + "\n")
			out.WriteString("Revision " + cmp.Or(b.Revision, "unknown") + "\n")
			out.WriteString("Build Date " + cmp.Or(b.BuildDate, "unknown") + "\n")
			out.WriteString("CoreDNS " + cmp.Or(b.CoreDNSVersion, "unknown") + "\n")
			out.WriteString("Protocol 2 spoken by default, understands 2 to 3 (agent will automatically use protocol >2 " +
				"when speaking to compatible agents)\n")
			return writeOutput(e, out.String())
		case "json":
			// Consul's fields: the version without its prerelease, which
			// has its own.
			version, prerelease, _ := strings.Cut(b.Version, "-")
			out, err := json.MarshalIndent(map[string]any{
				"Version": version, "Prerelease": prerelease, "Revision": b.Revision, "BuildDate": b.BuildDate,
				"CoreDNS": b.CoreDNSVersion,
				"RPC":     map[string]int{"Default": protocolDefault, "Min": protocolMin, "Max": protocolMax},
			}, "", "    ")
			if err != nil {
				return e.fail("Error encoding output: %v", err)
			}
			return writeOutput(e, string(out)+"\n")
		default:
			return e.fail("Unknown format: %s", format)
		}
	},
}

var validateCommand = &command{name: "validate", synopsis: "Validate a Corefile",
	help: "beacon validate [options] COREFILE",
	flags: func(fs *flag.FlagSet) {
		fs.Bool("quiet", false, "When given, a successful run will produce no output.")
	},
	run: func(e *env, fs *flag.FlagSet, args []string) int {
		switch {
		case len(args) == 0:
			return e.fail("Must specify a Corefile to validate")
		case len(args) > 1:
			return usageErr(e, "one Corefile at a time, not %d arguments", len(args))
		case e.binary.ValidateCorefile == nil:
			return e.fail("This binary cannot validate Corefiles")
		}
		if err := e.binary.ValidateCorefile(args[0]); err != nil {
			return e.fail("Config validation failed: %v", err)
		}
		if !flagOf[bool](fs, "quiet") {
			e.info("Configuration is valid!")
		}
		return exitOK
	},
}
