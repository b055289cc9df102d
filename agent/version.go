package agent

import (
	"runtime/debug"
	"strings"
	"sync"
)

// buildInfo is what the Go toolchain recorded about this binary's build:
// the commit and its time when it was built from a git checkout, and the
// modules it links.
var buildInfo = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, s := range info.Settings {
		out[s.Key] = s.Value
	}
	for _, dep := range info.Deps {
		out["module:"+dep.Path] = dep.Version
	}
	return out
})

// Revision is the git commit beacon was built from (Consul's Revision,
// shortened as Consul's are), "" when the build did not record one (go
// test binaries, builds outside a checkout); a tree with uncommitted
// changes says so with "+dirty".
func Revision() string {
	rev := buildInfo()["vcs.revision"]
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && buildInfo()["vcs.modified"] == "true" {
		rev += "+dirty"
	}
	return rev
}

// BuildDate is the time of the commit beacon was built from, RFC 3339 in
// UTC (Consul's BuildDate is its release's), "" when unknown.
func BuildDate() string { return buildInfo()["vcs.time"] }

// apiVersion is the version of Consul's Go client beacon is built with
// and answers as: what /v1/agent/version reports as its SDK.
func apiVersion() string {
	return strings.TrimPrefix(buildInfo()["module:github.com/hashicorp/consul/api"], "v")
}
