package deploy

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

// dockerfileStages reads the Dockerfile into its stages, each a list of
// instructions starting with its FROM.
func dockerfileStages(t *testing.T) [][]instruction {
	t.Helper()
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
			}
			return
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for _, line := range strings.Split(readFile(t, "Dockerfile"), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

func (s stageList) find(t *testing.T, name string) []instruction {
	t.Helper()
	for _, st := range s {
		if strings.HasSuffix(strings.ToLower(st[0].args), " as "+name) {
			return st
		}
	}
	t.Fatalf("Dockerfile: no stage %q", name)
	return nil
}

type stageList [][]instruction

func args0(st []instruction, cmd string) []string {
	var out []string
	for _, in := range st {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// The image: built by a golang stage into a static binary, run on a small
// base as a numeric non-root user, the data_dir on a volume, a health check
// that needs nothing but the binary, the entrypoint that renders Corefiles.
func TestDockerfile(t *testing.T) {
	stages := stageList(dockerfileStages(t))
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a builder and a runtime", len(stages))
	}
	build := stages.find(t, "build")
	if !strings.HasPrefix(build[0].args, "golang:") {
		t.Errorf("the build stage is FROM %s, want golang", build[0].args)
	}
	goMod := readFile(t, "../go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindStringSubmatch(goMod)
	if goVersion == nil || !strings.Contains(readFile(t, "Dockerfile"), "ARG GO_VERSION="+goVersion[1]) {
		t.Errorf("the Dockerfile's GO_VERSION is not go.mod's go %v", goVersion)
	}
	runs := strings.Join(args0(build, "RUN"), "\n")
	if !regexp.MustCompile(`CGO_ENABLED=0 go build\b.* -o /out/beacon \.`).MatchString(runs) {
		t.Errorf("the build stage does not build a static binary (CGO_ENABLED=0 go build ... -o /out/beacon .):\n%s", runs)
	}

	final := stages[len(stages)-1]
	if !strings.HasPrefix(final[0].args, "alpine:") || strings.Contains(strings.ToLower(final[0].args), " as ") {
		t.Errorf("the runtime stage is FROM %s, want an unnamed alpine (the last stage is the default target)", final[0].args)
	}
	users := args0(final, "USER")
	if len(users) != 1 {
		t.Fatalf("runtime USER %v: want one", users)
	}
	uid, err := strconv.Atoi(strings.Split(users[0], ":")[0])
	if err != nil || uid == 0 {
		t.Errorf("runtime USER %s: want a numeric non-root uid (runAsNonRoot checks it)", users[0])
	}
	for _, k8s := range []string{"kubernetes/server.yaml", "kubernetes/client.yaml"} {
		if !strings.Contains(readFile(t, k8s), "runAsUser: "+strconv.Itoa(uid)) {
			t.Errorf("%s does not run as the image's user %d", k8s, uid)
		}
	}
	if v := args0(final, "VOLUME"); !slices.Equal(v, []string{"/var/lib/beacon"}) {
		t.Errorf("VOLUME %v, want /var/lib/beacon", v)
	}
	copies := strings.Join(args0(final, "COPY"), "\n")
	for _, want := range []string{"--from=build /out/beacon /usr/local/bin/beacon", "deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh"} {
		if !strings.Contains(copies, want) {
			t.Errorf("the runtime stage does not COPY %s", want)
		}
	}
	for _, in := range final {
		if in.cmd == "RUN" && regexp.MustCompile(`\b(curl|wget|bind-tools)\b`).MatchString(in.args) {
			t.Errorf("the runtime stage installs tools it does not need: RUN %s", in.args)
		}
	}
	hc := args0(final, "HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("HEALTHCHECK %v: want one", hc)
	}
	_, execForm, ok := strings.Cut(hc[0], "CMD ")
	var argv []string
	if !ok || json.Unmarshal([]byte(execForm), &argv) != nil || len(argv) == 0 || argv[0] != "beacon" {
		t.Errorf("HEALTHCHECK %s: want CMD [\"beacon\", ...] (exec form: the image has no curl, and needs no shell for it)", hc[0])
	}
	if e := args0(final, "ENTRYPOINT"); !slices.Equal(e, []string{`["docker-entrypoint.sh"]`}) {
		t.Errorf("ENTRYPOINT %v", e)
	}
	if fi, err := os.Stat("docker-entrypoint.sh"); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("docker-entrypoint.sh is not executable: %v", err)
	}
	if !regexp.MustCompile(`(?m)^EXPOSE .*\b53/udp\b.*\b53/tcp\b`).MatchString(readFile(t, "Dockerfile")) {
		t.Error("the image does not expose DNS on 53/udp and 53/tcp")
	}

	// The toolbox compose builds for its demo containers is a stage too.
	toolbox := stages.find(t, "toolbox")
	if !strings.Contains(strings.Join(args0(toolbox, "RUN"), " "), "bind-tools") {
		t.Error("the toolbox stage has no dig (bind-tools)")
	}
}

// loadCompose loads docker-compose.yml as docker compose does, with
// compose-go (compose's own loader): validated against the Compose
// Specification's schema, interpolated, normalized.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  wd,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(wd, "docker-compose.yml")}},
		Environment: map[string]string{},
	}
	p, err := loader.LoadWithContext(context.Background(), details)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

func env(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// The compose layout: three servers expecting three, two client agents,
// every agent joining the servers by name, the image's build, port 53 for
// the non-root user, a demo service that registers itself with a health
// check, and a container whose resolver is a client agent.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	var servers, clients []string
	for name, s := range p.Services {
		e := env(s)
		mode, ok := e["BEACON_MODE"]
		if !ok {
			continue
		}
		switch mode {
		case "server":
			servers = append(servers, name)
			if e["BEACON_BOOTSTRAP_EXPECT"] != "3" {
				t.Errorf("%s: BEACON_BOOTSTRAP_EXPECT %q, want 3", name, e["BEACON_BOOTSTRAP_EXPECT"])
			}
		case "client":
			clients = append(clients, name)
		default:
			t.Errorf("%s: BEACON_MODE %q", name, mode)
		}
		if s.Build == nil || filepath.Base(s.Build.Dockerfile) != "Dockerfile" || s.Build.Target != "" {
			t.Errorf("%s: not built from deploy/Dockerfile's runtime stage: %+v", name, s.Build)
		}
		if e["BEACON_NODE"] != name || s.Hostname != name {
			t.Errorf("%s: node %q, host name %q: want the service's name", name, e["BEACON_NODE"], s.Hostname)
		}
		if s.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "0" {
			t.Errorf("%s: no net.ipv4.ip_unprivileged_port_start=0: the non-root agent could not bind 53", name)
		}
		if !slices.Equal(s.CapDrop, []string{"ALL"}) || len(s.CapAdd) != 0 || !s.ReadOnly {
			t.Errorf("%s: want cap_drop ALL, no cap_add, a read-only root", name)
		}
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Target == "/var/lib/beacon" && v.Type == types.VolumeTypeVolume
		}) {
			t.Errorf("%s: no named volume on /var/lib/beacon", name)
		}
		// The Corefile this agent's container renders parses, and has
		// what the mode needs.
		e["BEACON_BIND"] = "172.28.0.99" // hostname -i in the container
		c := parseCorefile(t, name+" (rendered)", render(t, e, false))
		checkNoCacheInFrontOfDiscovery(t, c)
		_, isServer := c.props(t)["server"]
		if isServer != (mode == "server") {
			t.Errorf("%s: a %s whose rendered Corefile says server=%v", name, mode, isServer)
		}
	}
	slices.Sort(servers)
	slices.Sort(clients)
	if len(servers) != 3 || len(clients) != 2 {
		t.Fatalf("servers %v, clients %v: want 3 and 2", servers, clients)
	}
	for _, name := range append(slices.Clone(servers), clients...) {
		join := strings.Fields(env(p.Services[name])["BEACON_JOIN"])
		slices.Sort(join)
		if !slices.Equal(join, servers) {
			t.Errorf("%s joins %v, want the servers %v", name, join, servers)
		}
	}

	// The demo service registers itself, with a check, through a client
	// agent's API, and deregisters when stopped.
	redis, ok := p.Services["redis"]
	if !ok {
		t.Fatal("no redis service")
	}
	script := strings.Join(redis.Command, " ")
	agent := env(redis)["AGENT"]
	if !slices.ContainsFunc(clients, func(c string) bool { return agent == "http://"+c+":8500" }) {
		t.Errorf("redis registers with %q, not a client agent's API", agent)
	}
	for _, want := range []string{"/v1/agent/service/register", `\"Check\"`, `\"TCP\"`, "/v1/agent/service/deregister/", "trap "} {
		if !strings.Contains(script, want) {
			t.Errorf("redis's command has no %s:\n%s", want, script)
		}
	}

	// A container whose resolver is a client agent (dns: takes addresses).
	app, ok := p.Services["app"]
	if !ok {
		t.Fatal("no app service")
	}
	if len(app.DNS) != 1 {
		t.Fatalf("app's dns %v: want one address", app.DNS)
	}
	var resolver string
	for name, s := range p.Services {
		for _, n := range s.Networks {
			if n != nil && n.Ipv4Address == app.DNS[0] {
				resolver = name
			}
		}
	}
	if !slices.Contains(clients, resolver) {
		t.Errorf("app's resolver %s is %q, not a client agent", app.DNS[0], resolver)
	}
	for _, s := range []types.ServiceConfig{redis, app} {
		if s.Build == nil || s.Build.Target != "toolbox" {
			t.Errorf("%s is not built from the Dockerfile's toolbox stage", s.Name)
		}
	}
}

// With a Docker daemon the image builds; here, without one, this says so.
func TestDockerImageBuilds(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skipf("no docker CLI (%v): the image is not built here; TestDockerfile and TestCompose check the files", err)
	}
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker daemon (docker info: %v: %s): the image is not built here; TestDockerfile and TestCompose check the files",
			err, lastLine(string(out)))
	}
	if testing.Short() {
		t.Skip("-short: not building the image")
	}
	cmd := exec.Command(docker, "build", "-f", "deploy/Dockerfile", "-t", "beacon:deploy-test", ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	out, err := exec.Command(docker, "run", "--rm", "beacon:deploy-test", "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "beacon ") {
		t.Errorf("docker run beacon:deploy-test version: %v: %s", err, out)
	}
	out, err = exec.Command(docker, "run", "--rm", "-e", "BEACON_BIND=10.0.0.9", "beacon:deploy-test", "render").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "bootstrap_expect 1") {
		t.Errorf("docker run beacon:deploy-test render: %v: %s", err, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
