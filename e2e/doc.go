// Package e2e owns beacon's end-to-end tests: they build the real binary
// once, start it as separate `beacon agent -conf Corefile` processes on free
// 127.0.0.1 ports — or, for the partition tests (partition_test.go), each in
// its own network namespace on a bridge, with links cut by blackhole routes
// (netns_test.go; root and iproute2's `ip` needed, else they skip saying
// why) — and talk to them only through public interfaces — DNS
// (github.com/miekg/dns), the Consul-compatible HTTP API (the official
// github.com/hashicorp/consul/api client, and plain net/http for what that
// client will not send; HTTPS with certificates made by `beacon tls`, in
// tls_test.go), the web UI in a headless Chromium driven with chromedp
// (browser_test.go, ui_test.go; Debian's chromium needed, else they skip
// saying why), signals (SIGKILL, SIGTERM, SIGUSR1, SIGHUP) and the
// process's exit status and output.
//
// It must not import any of beacon's own packages: a test that needs to
// reach inside the agent is not an end-to-end test. Everything lives in
// _test.go files; this file only documents the package.
//
// Run with:
//
//	go test -race -count=1 ./e2e/
//
// BEACON_BIN=/path/to/beacon skips the build and tests that binary. A failed
// test prints the Corefile and the output of every agent it started.
package e2e
