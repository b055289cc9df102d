package corefile

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
)

// parseErrRE is the form of every Parse error: the file, a line, and what
// is wrong, under the plugin's name.
var parseErrRE = regexp.MustCompile(`^Testfile:(\d+) - Error during parsing: discovery: `)

// FuzzParse: any `discovery` block parses or fails with an error naming the
// file and a line of the input, never a panic; a parsed configuration is a
// valid one, and every zone it was given is among its zones. The input is
// what follows the directive's name: CoreDNS hands the plugin its block
// from there.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, block string) {
		input := "discovery" + block
		c := caddy.NewTestController("dns", input)
		c.ServerBlockKeys = []string{"consul.:8600", "dc1.:8600"}
		cfg, err := Parse(c)
		if err != nil {
			m := parseErrRE.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error %q does not name the file and line", err)
			}
			line, _ := strconv.Atoi(m[1])
			if lines := strings.Count(input, "\n") + 1; line < 1 || line > lines {
				t.Fatalf("error %q names line %d of a %d-line input", err, line, lines)
			}
			return
		}
		if prop, err := cfg.Agent.validate(); err != nil {
			t.Errorf("parsed config is invalid: %s: %v", prop, err)
		}
		if d := cfg.Agent.Domain; !strings.HasSuffix(d, ".") || d != strings.ToLower(d) {
			t.Errorf("domain %q is not a lowercase, fully qualified name", d)
		}
		// The zones given as arguments, as the parser saw them.
		args := caddy.NewTestController("dns", input)
		args.Next()
		for _, z := range args.RemainingArgs() {
			norm := plugin.Host(z).NormalizeExact()
			if len(norm) == 0 {
				t.Fatalf("zone argument %q is not a zone, and was ignored without an error (zones %q)", z, cfg.DNS.Zones)
			}
			for _, n := range norm {
				if !slices.Contains(cfg.DNS.Zones, n) {
					t.Errorf("zone %q (from %q) is not among the zones %q", n, z, cfg.DNS.Zones)
				}
			}
		}
	})
}

// TestParseBadZone: a zone argument CoreDNS cannot read is an error naming
// it and its line; it used to be dropped silently (found by FuzzParse).
func TestParseBadZone(t *testing.T) {
	for name, zone := range map[string]string{"colon": ":", "empty label": "consul..", "empty port": "a:",
		"too long": strings.Repeat("x.", 130)} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, "\ndiscovery consul. "+zone+" {\n node n1\n}")
			want := `Testfile:2 - Error during parsing: discovery: zone "` + zone + `" is not a domain name`
			if err == nil || err.Error() != want {
				t.Errorf("error %v, want %s", err, want)
			}
		})
	}
	if cfg, err := parse(t, "discovery consul. 10.0.0.0/15"); err != nil || len(cfg.DNS.Zones) != 3 {
		t.Errorf("valid zones: %v, %v", cfg, err)
	}
}

// TestParseLongDomain: a domain longer than DNS allows is an error naming
// its line; it used to panic (its normalisation came back empty).
func TestParseLongDomain(t *testing.T) {
	label := strings.Repeat("a", 63)
	longest := strings.Repeat(label+".", 3) + strings.Repeat("b", 61) + "."
	cfg, err := parse(t, "discovery {\n domain "+longest+"\n}")
	if err != nil || cfg.Agent.Domain != longest {
		t.Fatalf("a 253-character domain: %v, %v", cfg, err)
	}
	_, err = parse(t, "discovery {\n node n1\n domain b"+longest+"\n}")
	want := `Testfile:3 - Error during parsing: discovery: property "domain": "b` + longest + `" is not a domain name: longer than 253 characters`
	if err == nil || err.Error() != want {
		t.Errorf("error %v,\nwant %s", err, want)
	}
}
