package deploy

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const namespace = "beacon"

// manifests are the objects of deploy/kubernetes/*.yaml, by name.
type manifests struct {
	namespaces   map[string]*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	statefulSets map[string]*appsv1.StatefulSet
	daemonSets   map[string]*appsv1.DaemonSet
	pdbs         map[string]*policyv1.PodDisruptionBudget
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// loadManifests decodes every document of kubernetes/*.yaml strictly into
// its Kubernetes API type: a field the type does not have (a typo, a field
// at the wrong level) or a key given twice fails the test, as kubectl's
// server-side validation would refuse it.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{
		namespaces: map[string]*corev1.Namespace{}, configMaps: map[string]*corev1.ConfigMap{},
		services: map[string]*corev1.Service{}, statefulSets: map[string]*appsv1.StatefulSet{},
		daemonSets: map[string]*appsv1.DaemonSet{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
	}
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/: %v", err)
	}
	for _, f := range files {
		for i, doc := range docSeparator.Split(readFile(t, f), -1) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			if tm.Kind == "" && strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
				continue // comments only
			}
			where := fmt.Sprintf("%s document %d (%s %s)", f, i+1, tm.APIVersion, tm.Kind)
			decode := func(obj any) {
				if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
					t.Fatalf("%s: %v", where, err)
				}
			}
			var meta *metav1.ObjectMeta
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				o := &corev1.Namespace{}
				decode(o)
				m.namespaces[o.Name], meta = o, &o.ObjectMeta
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				decode(o)
				m.configMaps[o.Name], meta = o, &o.ObjectMeta
			case "v1 Service":
				o := &corev1.Service{}
				decode(o)
				m.services[o.Name], meta = o, &o.ObjectMeta
			case "apps/v1 StatefulSet":
				o := &appsv1.StatefulSet{}
				decode(o)
				m.statefulSets[o.Name], meta = o, &o.ObjectMeta
			case "apps/v1 DaemonSet":
				o := &appsv1.DaemonSet{}
				decode(o)
				m.daemonSets[o.Name], meta = o, &o.ObjectMeta
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				decode(o)
				m.pdbs[o.Name], meta = o, &o.ObjectMeta
			default:
				t.Fatalf("%s: a kind this test does not know; add it here", where)
			}
			if tm.Kind != "Namespace" && meta.Namespace != namespace {
				t.Errorf("%s %s is in namespace %q, want %q", tm.Kind, meta.Name, meta.Namespace, namespace)
			}
		}
	}
	return m
}

// The strict decoding is what catches a mistyped field; make sure it does.
func TestManifestDecodingIsStrict(t *testing.T) {
	var s appsv1.StatefulSet
	bad := "apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  replicas: 3\n  replicaz: 3\n"
	if err := yaml.UnmarshalStrict([]byte(bad), &s); err == nil || !strings.Contains(err.Error(), "replicaz") {
		t.Errorf("a mistyped field decoded without a word: %v", err)
	}
	dup := "apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  replicas: 3\n  replicas: 1\n"
	if err := yaml.UnmarshalStrict([]byte(dup), &s); err == nil {
		t.Error("a key given twice decoded without a word")
	}
}

// matches reports whether sel selects a pod with podLabels.
func matches(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// podCorefile returns the Corefile a pod runs: the ConfigMap key mounted
// where its -conf argument points, parsed with the pod's env given values.
func podCorefile(t *testing.T, m manifests, what string, spec corev1.PodSpec, env map[string]string) (corefile, string) {
	t.Helper()
	c := onlyContainer(t, what, spec)
	i := slices.Index(c.Args, "-conf")
	if i < 0 || i+1 >= len(c.Args) || c.Args[0] != "agent" {
		t.Fatalf("%s: args %v, want agent -conf FILE", what, c.Args)
	}
	conf := c.Args[i+1]
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			for _, item := range v.ConfigMap.Items {
				if filepath.Join(vm.MountPath, item.Path) != conf {
					continue
				}
				cm, ok := m.configMaps[v.ConfigMap.Name]
				if !ok {
					t.Fatalf("%s mounts ConfigMap %s, which is not in the manifests", what, v.ConfigMap.Name)
				}
				text, ok := cm.Data[item.Key]
				if !ok {
					t.Fatalf("%s mounts key %s of ConfigMap %s, which has no such key", what, item.Key, cm.Name)
				}
				for k, val := range env {
					t.Setenv(k, val)
				}
				return parseCorefile(t, cm.Name+" "+item.Key, text), text
			}
		}
	}
	t.Fatalf("%s: nothing mounted at %s, its -conf", what, conf)
	return corefile{}, ""
}

func onlyContainer(t *testing.T, what string, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(spec.Containers) != 1 {
		t.Fatalf("%s has %d containers, want 1", what, len(spec.Containers))
	}
	return spec.Containers[0]
}

// containerPort returns the port of c named name, and fails unless it has
// the number and protocol the Corefile says.
func checkPort(t *testing.T, what string, c corev1.Container, name string, number int, proto corev1.Protocol) {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			if int(p.ContainerPort) != number || p.Protocol != proto {
				t.Errorf("%s: port %s is %d/%s, the Corefile listens on %d/%s", what, name, p.ContainerPort, p.Protocol, number, proto)
			}
			return
		}
	}
	t.Errorf("%s: no container port named %s (%d/%s)", what, name, number, proto)
}

// checkAgentPod holds a pod template of agents to what every agent pod
// needs: non-root with no capabilities, probes on the Corefile's health
// and ready addresses, the data_dir on a volume, the downward API values
// the Corefile substitutes, ports as the Corefile listens.
func checkAgentPod(t *testing.T, m manifests, what string, tmpl corev1.PodTemplateSpec, persistent []string) (corefile, map[string][]string) {
	t.Helper()
	spec := tmpl.Spec
	c := onlyContainer(t, what, spec)

	psc, sc := spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: the pod must run as a non-root user (runAsNonRoot, runAsUser not 0): %+v", what, psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: no RuntimeDefault seccomp profile", what)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 || sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: the container must drop every capability, add none, not escalate, and have a read-only root: %+v", what, sc)
	}
	for _, p := range c.Ports {
		if p.HostPort != 0 {
			t.Errorf("%s: host port %d (the restricted Pod Security Standard refuses it)", what, p.HostPort)
		}
	}
	if spec.HostNetwork {
		t.Errorf("%s: hostNetwork", what)
	}

	// The downward API values the Corefile substitutes.
	fieldOf := map[string]string{}
	secretOf := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fieldOf[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secretOf[e.Name] = e.ValueFrom.SecretKeyRef.Name
		}
	}
	if fieldOf["POD_NAME"] != "metadata.name" || fieldOf["POD_IP"] != "status.podIP" || secretOf["BEACON_ENCRYPT"] == "" {
		t.Errorf("%s: env POD_NAME, POD_IP, BEACON_ENCRYPT from metadata.name, status.podIP and a Secret; got %v %v", what, fieldOf, secretOf)
	}
	const podName, podIP, key = "beacon-test-0", "10.1.0.10", "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	cf, text := podCorefile(t, m, what, spec, map[string]string{"POD_NAME": podName, "POD_IP": podIP, "BEACON_ENCRYPT": key})
	for _, ref := range []string{"{$POD_NAME}", "{$POD_IP}", "{$BEACON_ENCRYPT}"} {
		if !strings.Contains(text, ref) {
			t.Errorf("%s: the Corefile does not use %s", what, ref)
		}
	}
	checkNoCacheInFrontOfDiscovery(t, cf)
	p := cf.props(t)
	for prop, want := range map[string]string{"node": podName, "bind": podIP, "encrypt": key, "http": "0.0.0.0:8500"} {
		if got := strings.Join(p[prop], " "); got != want {
			t.Errorf("%s: %s is %q, want %q", what, prop, got, want)
		}
	}

	// DNS, health and ready where the ports and probes say.
	d := cf.discoveryBlock(t)
	_, dnsPort := zoneOf(d.Keys[0])
	n, err := strconv.Atoi(dnsPort)
	if err != nil {
		t.Fatalf("%s: the DNS block %v has no port", what, d.Keys)
	}
	checkPort(t, what, c, "dns", n, corev1.ProtocolUDP)
	checkPort(t, what, c, "dns-tcp", n, corev1.ProtocolTCP)
	checkPort(t, what, c, "http", 8500, corev1.ProtocolTCP)
	checkPort(t, what, c, "serflan-tcp", 8301, corev1.ProtocolTCP)
	checkPort(t, what, c, "serflan-udp", 8301, corev1.ProtocolUDP)
	for _, probe := range []struct {
		kind, plugin, path string
		p                  *corev1.Probe
	}{{"readiness", "ready", "/ready", c.ReadinessProbe}, {"liveness", "health", "/health", c.LivenessProbe}} {
		a := args(d, probe.plugin)
		if len(a) != 1 {
			t.Errorf("%s: the Corefile has no `%s ADDR` for the %s probe", what, probe.plugin, probe.kind)
			continue
		}
		_, port, err := net.SplitHostPort(a[0])
		if err != nil {
			t.Fatalf("%s: %s %s: %v", what, probe.plugin, a[0], err)
		}
		n, _ := strconv.Atoi(port)
		checkPort(t, what, c, probe.plugin, n, corev1.ProtocolTCP)
		if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path ||
			probe.p.HTTPGet.Port != intstr.FromString(probe.plugin) {
			t.Errorf("%s: the %s probe is not GET %s on port %s: %+v", what, probe.kind, probe.path, probe.plugin, probe.p)
		}
	}

	// data_dir on a volume of one of the kinds given.
	dataDir := strings.Join(p["data_dir"], "")
	mounted := false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == dataDir && !vm.ReadOnly {
			mounted = slices.Contains(persistent, vm.Name)
		}
	}
	if !mounted {
		t.Errorf("%s: data_dir %s is not a writable mount of %v", what, dataDir, persistent)
	}
	return cf, p
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if _, ok := m.namespaces[namespace]; !ok {
		t.Errorf("no Namespace %s", namespace)
	}

	// The servers: 3 replicas, started together, one per machine, a stable
	// name each under the headless Service, a volume each.
	sts, ok := m.statefulSets["beacon-server"]
	if !ok {
		t.Fatal("no StatefulSet beacon-server")
	}
	podLabels := sts.Spec.Template.Labels
	if sts.Spec.Replicas == nil {
		t.Fatal("the servers' replicas are not set (1 by default), want 3")
	}
	if *sts.Spec.Replicas != 3 {
		t.Fatalf("the servers' replicas are %d, want 3", *sts.Spec.Replicas)
	}
	replicas := int(*sts.Spec.Replicas)
	if !matches(t, sts.Spec.Selector, podLabels) {
		t.Error("the StatefulSet's selector does not select its own pods")
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: with OrderedReady the first server waits for ever to be ready (it needs a leader, which needs the 3)",
			sts.Spec.PodManagementPolicy)
	}
	aff := sts.Spec.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Error("the servers have no required pod anti-affinity")
	} else {
		for _, term := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if term.TopologyKey != "kubernetes.io/hostname" || !matches(t, term.LabelSelector, podLabels) {
				t.Errorf("anti-affinity term %+v: want the servers' own labels, per kubernetes.io/hostname", term)
			}
		}
	}

	headless, ok := m.services[sts.Spec.ServiceName]
	if !ok {
		t.Fatalf("the StatefulSet's serviceName %q is not a Service of the manifests", sts.Spec.ServiceName)
	}
	if headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless: a name per pod)", headless.Name, headless.Spec.ClusterIP)
	}
	if !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: publishNotReadyAddresses is off: the servers could not find each other before they are ready", headless.Name)
	}
	if !labels.SelectorFromSet(headless.Spec.Selector).Matches(labels.Set(podLabels)) || len(headless.Spec.Selector) == 0 {
		t.Errorf("Service %s does not select the servers", headless.Name)
	}
	for _, want := range []struct {
		port  int32
		proto corev1.Protocol
	}{{8300, corev1.ProtocolTCP}, {8301, corev1.ProtocolTCP}, {8301, corev1.ProtocolUDP}} {
		if !slices.ContainsFunc(headless.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == want.port && p.Protocol == want.proto }) {
			t.Errorf("Service %s has no port %d/%s", headless.Name, want.port, want.proto)
		}
	}

	var claims []string
	for _, vct := range sts.Spec.VolumeClaimTemplates {
		claims = append(claims, vct.Name)
	}
	_, p := checkAgentPod(t, m, "StatefulSet beacon-server", sts.Spec.Template, claims)
	if _, ok := p["server"]; !ok {
		t.Error("the servers' Corefile does not say server")
	}
	if got := strings.Join(p["bootstrap_expect"], ""); got != strconv.Itoa(replicas) {
		t.Errorf("the servers' bootstrap_expect is %q, want the replicas, %d", got, replicas)
	}
	// Every server joins every server by its stable name.
	var names []string
	for i := range replicas {
		names = append(names, fmt.Sprintf("%s-%d.%s:8301", sts.Name, i, headless.Name))
	}
	if got := p["join"]; !slices.Equal(got, names) {
		t.Errorf("the servers' join is %v, want the StatefulSet's pods under the headless Service: %v", got, names)
	}

	// The PodDisruptionBudget keeps a quorum: it selects the servers and
	// lets at most replicas - quorum go at once.
	pdb, ok := m.pdbs["beacon-server"]
	if !ok {
		t.Fatal("no PodDisruptionBudget beacon-server")
	}
	if !matches(t, pdb.Spec.Selector, podLabels) {
		t.Error("the PodDisruptionBudget does not select the servers")
	}
	quorum := replicas/2 + 1
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if v := pdb.Spec.MaxUnavailable.IntValue(); v < 1 || v > replicas-quorum || pdb.Spec.MaxUnavailable.Type != intstr.Int {
			t.Errorf("maxUnavailable %s: want 1 to %d", pdb.Spec.MaxUnavailable.String(), replicas-quorum)
		}
	case pdb.Spec.MinAvailable != nil:
		if v := pdb.Spec.MinAvailable.IntValue(); v < quorum || v >= replicas || pdb.Spec.MinAvailable.Type != intstr.Int {
			t.Errorf("minAvailable %s: want %d to %d", pdb.Spec.MinAvailable.String(), quorum, replicas-1)
		}
	default:
		t.Error("the PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}

	// A client agent on every machine.
	ds, ok := m.daemonSets["beacon-client"]
	if !ok {
		t.Fatal("no DaemonSet beacon-client")
	}
	if !matches(t, ds.Spec.Selector, ds.Spec.Template.Labels) {
		t.Error("the DaemonSet's selector does not select its own pods")
	}
	if matches(t, ds.Spec.Selector, podLabels) || matches(t, sts.Spec.Selector, ds.Spec.Template.Labels) {
		t.Error("the servers' and the clients' selectors overlap")
	}
	var emptyDirs []string
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.EmptyDir != nil {
			emptyDirs = append(emptyDirs, v.Name)
		}
	}
	_, cp := checkAgentPod(t, m, "DaemonSet beacon-client", ds.Spec.Template, emptyDirs)
	for _, prop := range []string{"server", "bootstrap_expect", "serf_wan", "join_wan"} {
		if _, ok := cp[prop]; ok {
			t.Errorf("the clients' Corefile says %s", prop)
		}
	}
	if !slices.Equal(cp["join"], names) {
		t.Errorf("the clients' join is %v, want the servers %v", cp["join"], names)
	}

	// DNS on 53 for the cluster, from the agents' DNS ports.
	dns, ok := m.services["beacon-dns"]
	if !ok {
		t.Fatal("no Service beacon-dns")
	}
	for _, tmpl := range []corev1.PodTemplateSpec{sts.Spec.Template, ds.Spec.Template} {
		if !labels.SelectorFromSet(dns.Spec.Selector).Matches(labels.Set(tmpl.Labels)) {
			t.Errorf("Service beacon-dns does not select the pods labelled %v", tmpl.Labels)
		}
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		i := slices.IndexFunc(dns.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == 53 && p.Protocol == proto })
		if i < 0 {
			t.Errorf("Service beacon-dns has no port 53/%s", proto)
			continue
		}
		target := dns.Spec.Ports[i].TargetPort
		for _, tmpl := range []corev1.PodTemplateSpec{sts.Spec.Template, ds.Spec.Template} {
			c := tmpl.Spec.Containers[0]
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
				return p.Protocol == proto && (target.Type == intstr.String && p.Name == target.StrVal ||
					target.Type == intstr.Int && p.ContainerPort == target.IntVal)
			}) {
				t.Errorf("Service beacon-dns 53/%s targets %s, which pods %v have not for %s", proto, target.String(), tmpl.Labels, proto)
			}
		}
	}
	if dns.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Error("Service beacon-dns is headless: the cluster DNS's stub block needs an address")
	}

	// The agent API of one's own machine.
	agentSvc, ok := m.services["beacon-agent"]
	if !ok {
		t.Fatal("no Service beacon-agent")
	}
	if agentSvc.Spec.InternalTrafficPolicy == nil || *agentSvc.Spec.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyLocal ||
		!labels.SelectorFromSet(agentSvc.Spec.Selector).Matches(labels.Set(ds.Spec.Template.Labels)) ||
		labels.SelectorFromSet(agentSvc.Spec.Selector).Matches(labels.Set(podLabels)) {
		t.Error("Service beacon-agent must select the client agents only, with internalTrafficPolicy Local")
	}
}

// The cluster DNS's stub block: consul. to the beacon-dns Service's
// address, on 53, without a cache.
func TestCoreDNSStubBlock(t *testing.T) {
	c := parseCorefile(t, "kubernetes/coredns-stub.Corefile", readFile(t, "kubernetes/coredns-stub.Corefile"))
	checkNoCacheInFrontOfDiscovery(t, c)
	if len(c.blocks) != 1 || !slices.Equal(c.blocks[0].Keys, []string{"consul:53"}) {
		t.Fatalf("want one block, consul:53; got %d: %v", len(c.blocks), c.blocks)
	}
	fwd := args(c.blocks[0], "forward")
	if len(fwd) != 2 || fwd[0] != "." || net.ParseIP(fwd[1]) == nil {
		t.Errorf("forward %v: want . and the beacon-dns Service's cluster IP", fwd)
	}
}
