package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The import rules each package's doc.go states, held to the code. A rule
// changes with its doc.go, in the same commit.

const module = "github.com/beacon-dns/beacon"

// beaconImports lists, for every package, the beacon packages its non-test
// code may import directly; "*" allows any. A package missing here fails
// the test, so a new package comes with its rule.
var beaconImports = map[string][]string{
	"":                    {"*"}, // main: the composition
	"acl":                 {},
	"agent":               {"acl", "adminapi", "corefile", "gossip", "healthcheck", "internal/atomicfile", "internal/telemetry", "internal/tlsutil", "raftstore", "state"},
	"adminapi":            {"acl", "internal/telemetry", "snapshot", "state", "ui"},
	"cli":                 {"internal/atomicfile", "internal/tlsutil", "snapshot"},
	"corefile":            {"internal/tlsutil"},
	"gossip":              {"internal/atomicfile"},
	"healthcheck":         {"internal/atomicfile", "state"},
	"internal/atomicfile": {},
	"internal/telemetry":  {},
	"internal/tlsutil":    {},
	"internal/wire":       {},
	"plugin":              {"acl", "corefile", "state"},
	"raftstore":           {"acl", "internal/tlsutil", "internal/wire", "snapshot", "state"},
	"snapshot":            {"state"},
	"state":               {"acl"},
	"state/statetest":     {"state"},
	"ui":                  {},
	// End-to-end tests and benchmarks speak to beacon over its public
	// interfaces only (checked for their tests below too).
	"e2e":                    {},
	"deploy":                 {}, // the deployment files; its tests read them as an operator's tools would
	"bench/cmd/churn":        {},
	"bench/cmd/clusterbench": {},
	"bench/cmd/dnscheck":     {},
	// The one exception: fanout runs the real client replica code
	// (raftstore.NewClient, each replica with its own state.Store) against
	// a beacon server process, to measure what following the change feed
	// costs; a copy of that code would measure the copy. It still reaches
	// the server only over its RPC port and HTTP API.
	"bench/cmd/fanout":      {"bench/internal/proc", "raftstore", "state"},
	"bench/cmd/healthbench": {},
	"bench/cmd/kvbench":     {"bench/internal/proc"},
	"bench/internal/proc":   {},
	"bench/cmd/register":    {},
	"bench/cmd/dnswait":     {},
}

// raftFree are the packages that must not link Raft or its bolt store at
// all, directly or through another package: the DNS path, the HTTP API,
// the health checks, the CLI and everything they build on.
var raftFree = []string{"acl", "adminapi", "cli", "corefile", "gossip", "healthcheck", "internal/atomicfile",
	"internal/telemetry", "internal/tlsutil", "internal/wire", "plugin", "snapshot", "state", "ui"}

// raftModules are what raftFree packages must not depend on.
var raftModules = []string{"github.com/hashicorp/raft", "github.com/hashicorp/raft-boltdb", "go.etcd.io/bbolt"}

type listedPackage struct {
	ImportPath   string
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) map[string]listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list: %v", err)
		}
		pkgs[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = p
	}
	return pkgs
}

// beaconPackages returns the beacon packages among paths, module-relative.
func beaconPackages(paths []string) []string {
	var out []string
	for _, p := range paths {
		if p == module || strings.HasPrefix(p, module+"/") {
			out = append(out, strings.TrimPrefix(strings.TrimPrefix(p, module), "/"))
		}
	}
	return out
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	for name, p := range pkgs {
		allowed, ok := beaconImports[name]
		if !ok {
			t.Errorf("package %q has no import rule in imports_test.go (and its doc.go should say what it must not import)", name)
			continue
		}
		if slices.Contains(allowed, "*") {
			continue
		}
		for _, imp := range beaconPackages(p.Imports) {
			if !slices.Contains(allowed, imp) {
				t.Errorf("%s imports %s, which its doc.go does not allow (allowed: %v)", name, imp, allowed)
			}
		}
		if name == "e2e" || name == "deploy" || strings.HasPrefix(name, "bench/") {
			for _, imp := range beaconPackages(append(p.TestImports, p.XTestImports...)) {
				t.Errorf("%s's tests import %s: end-to-end tests use public interfaces only", name, imp)
			}
		}
	}
	for name := range beaconImports {
		if _, ok := pkgs[name]; !ok {
			t.Errorf("imports_test.go has a rule for %q, which is not a package", name)
		}
	}
	for _, name := range raftFree {
		p, ok := pkgs[name]
		if !ok {
			t.Errorf("package %s is gone: update raftFree", name)
			continue
		}
		for _, dep := range p.Deps {
			for _, m := range raftModules {
				if dep == m || strings.HasPrefix(dep, m+"/") {
					t.Errorf("%s depends on %s: it must not link Raft or bolt", name, dep)
				}
			}
		}
	}
}
