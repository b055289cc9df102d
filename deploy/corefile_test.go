package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
)

// directives are the directives a beacon Corefile may use: CoreDNS's, and
// discovery, which beacon's main adds. (The left-out backends are still
// in CoreDNS's list; none of the deploy Corefiles uses them.)
var directives = append(slices.Clone(dnsserver.Directives), "discovery")

// corefile is one parsed Corefile.
type corefile struct {
	name   string
	blocks []caddyfile.ServerBlock
}

// parseCorefile groups text's tokens by server block and directive, as
// CoreDNS does before any plugin sees them: a directive CoreDNS does not
// know is an error. {$VAR} is replaced from the environment, as there.
func parseCorefile(t *testing.T, name, text string) corefile {
	t.Helper()
	blocks, err := caddyfile.Parse(name, strings.NewReader(text), directives)
	if err != nil {
		t.Fatalf("%s does not parse as a Corefile: %v\n%s", name, err, text)
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no server block", name)
	}
	return corefile{name: name, blocks: blocks}
}

// discoveryBlock is the server block with the discovery plugin; it fails
// the test unless there is exactly one.
func (c corefile) discoveryBlock(t *testing.T) caddyfile.ServerBlock {
	t.Helper()
	var found []caddyfile.ServerBlock
	for _, b := range c.blocks {
		if _, ok := b.Tokens["discovery"]; ok {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d server blocks with discovery, want 1", c.name, len(found))
	}
	return found[0]
}

// props are the discovery block's properties: each property's values, the
// values of repeated lines appended.
func (c corefile) props(t *testing.T) map[string][]string {
	t.Helper()
	toks := c.discoveryBlock(t).Tokens["discovery"]
	out := map[string][]string{}
	line, prop := -1, ""
	for _, tk := range toks[1:] { // after the directive itself
		if tk.Text == "{" || tk.Text == "}" {
			continue
		}
		if tk.Line != line {
			line, prop = tk.Line, tk.Text
			if _, ok := out[prop]; !ok {
				out[prop] = []string{}
			}
			continue
		}
		out[prop] = append(out[prop], tk.Text)
	}
	return out
}

// args are the values of directive dir in block b (every occurrence).
func args(b caddyfile.ServerBlock, dir string) []string {
	var out []string
	for _, tk := range b.Tokens[dir] {
		if tk.Text != dir {
			out = append(out, tk.Text)
		}
	}
	return out
}

// zoneOf splits a server block key ("consul:8600", "dns://.:53") into its
// zone, lower case with the final dot, and its port ("" when none).
func zoneOf(key string) (zone, port string) {
	key = strings.TrimPrefix(key, "dns://")
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		key, port = key[:i], key[i+1:]
	}
	zone = strings.ToLower(strings.TrimSuffix(key, ".")) + "."
	return zone, port
}

// checkNoCacheInFrontOfDiscovery fails the test when a server block that
// answers beacon's names — it has discovery, or it sends consul. (or a
// datacenter zone) on to beacon, as a stub domain does — also has cache:
// the cache would go on answering a failed or deregistered instance.
func checkNoCacheInFrontOfDiscovery(t *testing.T, c corefile) {
	t.Helper()
	for _, b := range c.blocks {
		_, hasDiscovery := b.Tokens["discovery"]
		ours := hasDiscovery
		for _, k := range b.Keys {
			if z, _ := zoneOf(k); z == "consul." || strings.HasSuffix(z, ".consul.") || z == "dc1." {
				ours = true
			}
		}
		if _, hasCache := b.Tokens["cache"]; ours && hasCache {
			t.Errorf("%s: the server block %v has cache in front of beacon's answers: cache the upstream block only", c.name, b.Keys)
		}
	}
}

// normalize drops comments, blank lines and repeated blanks, so that two
// Corefiles that say the same compare equal.
func normalize(text string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	comment := regexp.MustCompile(`(^|\s)#.*$`)
	for sc.Scan() {
		line := strings.Join(strings.Fields(comment.ReplaceAllString(sc.Text(), "")), " ")
		if line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// render runs docker-entrypoint.sh render with env (and PATH) only, as the
// image runs it, and returns what it printed. With wantErr, the script
// must fail, and its error output is returned.
func render(t *testing.T, env map[string]string, wantErr bool) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("rendering the entrypoint's Corefile needs a POSIX sh: %v", err)
	}
	cmd := exec.Command(sh, "docker-entrypoint.sh", "render")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if wantErr {
		if err == nil {
			t.Fatalf("docker-entrypoint.sh render with %v succeeded:\n%s", env, stdout.String())
		}
		return stderr.String()
	}
	if err != nil {
		t.Fatalf("docker-entrypoint.sh render with %v: %v\n%s", env, err, stderr.String())
	}
	return stdout.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The production Corefiles for hosts are what the image's entrypoint
// renders from the same values: one Corefile, two ways to get it. So the
// cluster e2e/deploy_test.go runs from rendered Corefiles runs these too.
func TestHostCorefilesAreWhatTheEntrypointRenders(t *testing.T) {
	const key = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	common := map[string]string{
		"BEACON_DATACENTER": "dc1", "BEACON_DATA_DIR": "/var/lib/beacon", "BEACON_HTTP": "127.0.0.1:8500",
		"BEACON_JOIN": "10.0.0.1:8301 10.0.0.2:8301 10.0.0.3:8301", "BEACON_ENCRYPT": key,
		"BEACON_UPSTREAM": "10.0.0.53 10.0.0.54",
	}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range common {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	for _, tc := range []struct {
		file string
		env  map[string]string
	}{
		{"Corefile.server", with(map[string]string{"BEACON_MODE": "server", "BEACON_NODE": "s1", "BEACON_BIND": "10.0.0.1",
			"BEACON_BOOTSTRAP_EXPECT": "3", "BEACON_DNS_BIND": "127.0.0.1 10.0.0.1"})},
		{"Corefile.client", with(map[string]string{"BEACON_MODE": "client", "BEACON_NODE": "web-7", "BEACON_BIND": "10.0.1.7",
			"BEACON_DNS_BIND": "127.0.0.1"})},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want := normalize(readFile(t, tc.file))
			got := normalize(render(t, tc.env, false))
			if got != want {
				t.Errorf("%s and the entrypoint's rendering of the same values differ:\n--- %s\n%s\n--- rendered\n%s",
					tc.file, tc.file, want, got)
			}
			c := parseCorefile(t, tc.file, readFile(t, tc.file))
			checkNoCacheInFrontOfDiscovery(t, c)
			checkHostResolverCorefile(t, c)
		})
	}
}

// checkHostResolverCorefile: DNS on port 53; beacon's zones in one block;
// every other name forwarded to explicit upstreams (not resolv.conf, which
// names beacon once beacon is the host's resolver), with loop, and cached.
func checkHostResolverCorefile(t *testing.T, c corefile) {
	t.Helper()
	d := c.discoveryBlock(t)
	for _, k := range d.Keys {
		if _, port := zoneOf(k); port != "53" {
			t.Errorf("%s: %s is not on port 53", c.name, k)
		}
	}
	var upstream *caddyfile.ServerBlock
	for i, b := range c.blocks {
		if len(b.Keys) == 1 && (b.Keys[0] == ".:53" || b.Keys[0] == "dns://.:53") {
			upstream = &c.blocks[i]
		}
	}
	if upstream == nil {
		t.Fatalf("%s: no .:53 block for the other names", c.name)
	}
	fwd := args(*upstream, "forward")
	if len(fwd) < 2 || fwd[0] != "." || slices.Contains(fwd, "/etc/resolv.conf") {
		t.Errorf("%s: forward %v: want . and the network's resolvers, not /etc/resolv.conf", c.name, fwd)
	}
	for _, dir := range []string{"loop", "cache"} {
		if _, ok := upstream.Tokens[dir]; !ok {
			t.Errorf("%s: the upstream block has no %s", c.name, dir)
		}
	}
}

// The entrypoint's own rules: a client needs join addresses, the mode is
// server or client, a join address without a port gets 8301, lists may be
// separated by commas, and the defaults are the image's.
func TestEntrypointRendering(t *testing.T) {
	if msg := render(t, map[string]string{"BEACON_MODE": "client", "BEACON_BIND": "10.0.0.9"}, true); !strings.Contains(msg, "needs BEACON_JOIN") {
		t.Errorf("a client without join: %q", msg)
	}
	if msg := render(t, map[string]string{"BEACON_MODE": "leader", "BEACON_BIND": "10.0.0.9"}, true); !strings.Contains(msg, "server or client") {
		t.Errorf("a bad mode: %q", msg)
	}
	if msg := render(t, map[string]string{"BEACON_RELAY": "1", "BEACON_BIND": "10.0.0.9"}, true); !strings.Contains(msg, "for client agents") {
		t.Errorf("a relaying server: %q", msg)
	}
	if msg := render(t, map[string]string{"BEACON_MODE": "client", "BEACON_JOIN": "s1", "BEACON_RELAY": "yes", "BEACON_BIND": "10.0.0.9"}, true); !strings.Contains(msg, "0 or 1") {
		t.Errorf("a bad BEACON_RELAY: %q", msg)
	}
	relay := parseCorefile(t, "rendered relay", render(t, map[string]string{"BEACON_MODE": "client", "BEACON_JOIN": "s1",
		"BEACON_RELAY": "1", "BEACON_BIND": "10.0.0.9"}, false))
	if _, ok := relay.props(t)["relay"]; !ok {
		t.Error("BEACON_RELAY=1 rendered no relay")
	}
	out := render(t, map[string]string{"BEACON_MODE": "client", "BEACON_BIND": "10.0.0.9", "BEACON_NODE": "c9",
		"BEACON_JOIN": "server-1,server-2:9301, 10.0.0.3", "BEACON_UPSTREAM": "10.0.0.53,10.0.0.54:5353"}, false)
	c := parseCorefile(t, "rendered", out)
	p := c.props(t)
	if got := strings.Join(p["join"], " "); got != "server-1:8301 server-2:9301 10.0.0.3:8301" {
		t.Errorf("join %q", got)
	}
	if _, ok := p["server"]; ok {
		t.Error("a client agent's Corefile says server")
	}
	if _, ok := p["relay"]; ok {
		t.Error("a client agent's Corefile says relay without BEACON_RELAY")
	}
	checkNoCacheInFrontOfDiscovery(t, c)
	for _, b := range c.blocks {
		if b.Keys[0] == ".:53" {
			if got := strings.Join(args(b, "forward"), " "); got != ". 10.0.0.53 10.0.0.54:5353" {
				t.Errorf("forward %q", got)
			}
		}
	}

	// The defaults: a single server that bootstraps itself, DNS on 53, the
	// API on every address of the container, data on the image's volume,
	// other names to the container's resolv.conf.
	out = render(t, map[string]string{"BEACON_BIND": "10.0.0.9", "BEACON_NODE": "n1"}, false)
	c = parseCorefile(t, "rendered defaults", out)
	p = c.props(t)
	for prop, want := range map[string]string{"datacenter": "dc1", "node": "n1", "data_dir": "/var/lib/beacon",
		"server": "", "bootstrap_expect": "1", "bind": "10.0.0.9", "http": "0.0.0.0:8500"} {
		if got, ok := p[prop]; !ok || strings.Join(got, " ") != want {
			t.Errorf("default %s = %q (set %v), want %q", prop, got, ok, want)
		}
	}
	if !slices.Equal(c.discoveryBlock(t).Keys, []string{"consul:53", "dc1:53"}) {
		t.Errorf("zones %v", c.discoveryBlock(t).Keys)
	}
	if _, ok := p["join"]; ok {
		t.Error("join without BEACON_JOIN")
	}
	if !strings.Contains(out, "forward . /etc/resolv.conf") {
		t.Errorf("default upstream:\n%s", out)
	}
	if df := readFile(t, "Dockerfile"); !strings.Contains(df, "VOLUME /var/lib/beacon") {
		t.Error("the Dockerfile's volume is not the entrypoint's default data_dir /var/lib/beacon")
	}
}

// No cache in front of discovery, anywhere: every Corefile of deploy/, the
// Corefiles of the Kubernetes ConfigMap and the cluster DNS's stub block,
// what the entrypoint renders, and every Corefile in the documentation.
func TestNoCacheInFrontOfDiscoveryAnywhere(t *testing.T) {
	t.Setenv("POD_NAME", "beacon-server-0")
	t.Setenv("POD_IP", "10.1.0.10")
	t.Setenv("BEACON_ENCRYPT", "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=")
	checked := 0
	check := func(name, text string) {
		t.Helper()
		checkNoCacheInFrontOfDiscovery(t, parseCorefile(t, name, text))
		checked++
	}
	files, err := filepath.Glob("Corefile.*")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "kubernetes/coredns-stub.Corefile", "../Corefile.example")
	for _, f := range files {
		check(f, readFile(t, f))
	}
	for key, text := range loadManifests(t).configMaps["beacon-config"].Data {
		check("kubernetes/configmap.yaml "+key, text)
	}
	for _, mode := range []string{"server", "client"} {
		check("rendered "+mode, render(t, map[string]string{"BEACON_MODE": mode, "BEACON_BIND": "10.0.0.9",
			"BEACON_NODE": "n1", "BEACON_JOIN": "server-1"}, false))
	}
	// Documentation: each fenced block that has a discovery block or a
	// cache and parses as a Corefile; one that has a cache and does not
	// parse cannot be checked, and fails.
	fence := regexp.MustCompile("(?ms)^(```|~~~)[^\n]*\n(.*?)^(```|~~~)")
	for _, doc := range []string{"README.md", "../README.md", "../plugin/README.md"} {
		for _, m := range fence.FindAllStringSubmatch(readFile(t, doc), -1) {
			body := m[2]
			hasCache := regexp.MustCompile(`(?m)^\s*cache\b`).MatchString(body)
			if !hasCache && !strings.Contains(body, "discovery") {
				continue
			}
			if _, err := caddyfile.Parse(doc, strings.NewReader(body), directives); err != nil {
				if hasCache {
					t.Errorf("%s: a block with cache that does not parse as a Corefile, so cannot be checked: %v\n%s", doc, err, body)
				}
				continue
			}
			check(doc+" (a code block)", body)
		}
	}
	t.Logf("%d Corefiles checked", checked)
}

// The systemd-resolved drop-in sends consul. to where Corefile.resolved
// listens, and only consul.
func TestResolvedDropInMatchesItsCorefile(t *testing.T) {
	conf := map[string]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, "systemd/resolved-beacon.conf")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section != "[Resolve]" {
				t.Fatalf("resolved-beacon.conf: %q is not a key of [Resolve]", line)
			}
			conf[k] = v
		}
	}
	if conf["Domains"] != "~consul" {
		t.Errorf("Domains=%q, want ~consul (route only consul. to beacon)", conf["Domains"])
	}
	c := parseCorefile(t, "Corefile.resolved", readFile(t, "Corefile.resolved"))
	checkNoCacheInFrontOfDiscovery(t, c)
	d := c.discoveryBlock(t)
	var listens []string
	for _, k := range d.Keys {
		z, port := zoneOf(k)
		for _, ip := range args(d, "bind") {
			listens = append(listens, fmt.Sprintf("%s %s:%s", z, ip, port))
		}
	}
	if !slices.Contains(listens, "consul. "+conf["DNS"]) {
		t.Errorf("resolved sends consul. to %s; Corefile.resolved listens at %v", conf["DNS"], listens)
	}
	if len(c.blocks) != 1 {
		t.Errorf("Corefile.resolved has %d server blocks; resolved sends it consul. only, so one", len(c.blocks))
	}
}
