#!/usr/bin/env bash
# Health benchmark of beacon: how fast failed endpoints leave DNS (a client
# agent killed with SIGKILL, a graceful leave, a TCP check whose port
# closes, an HTTP check answering 500) and how many healthy ones are taken
# out under CPU stress (busy loops on every core). One server and two client
# agents on 127.0.0.1, each its own process; all timing by
# bench/cmd/healthbench (DNS polled every 5 ms).
#
#   bash bench/health.sh
#
# Knobs (environment): ROUNDS (5), STRESS_SECONDS (30), PORT_BASE (28800),
# KEEP_TMP (1 keeps the work directory), MAX_SECONDS (600).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
STRESS_SECONDS=${STRESS_SECONDS:-30}
PORT_BASE=${PORT_BASE:-28800}
KEEP_TMP=${KEEP_TMP:-0}
MAX_SECONDS=${MAX_SECONDS:-600}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results_dir="$repo/bench/results"
tmp=$(mktemp -d /tmp/beacon-health.XXXXXX)
watchdog_pid=""
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $watchdog_pid ]] && kill "$watchdog_pid" 2>/dev/null || true
	if [[ $rc -ne 0 ]]; then
		for f in "$tmp"/run/*/beacon.log; do
			[[ -f $f ]] || continue
			log "$f (last 15 lines):"
			tail -n 15 "$f" >&2 || true
		done
	fi
	if [[ $KEEP_TMP == 1 || $rc -ne 0 ]]; then log "work files kept in $tmp"; else rm -rf "$tmp"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_watchdog

cd "$repo"
log "building beacon and bench/cmd/healthbench"
build_bench healthbench
base=$(free_port_block 15)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(busy_cores 3)
log "machine: $(nproc) cores; load average $load_before; busy before the run: $busy_before cores"
mkdir -p "$tmp/run"
out=$(timeout $((MAX_SECONDS - 30)) "$tmp/healthbench" -beacon "$tmp/beacon" -dir "$tmp/run" -rounds "$ROUNDS" \
	-stress "${STRESS_SECONDS}s" -port-base "$base") || die "healthbench failed: $out"
printf '%s\n' "$out" >&2

kv() { sed -n "s/^$1 .*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$out"; }
row() { echo "| $2 | $(kv "$1" min_ms) | $(kv "$1" median_ms) | $(kv "$1" max_ms) | $(kv "$1" all_ms) | $3 |"; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 <= t + 0) ? "met" : "**MISSED**" }'; }
stamp=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$results_dir"
report="$results_dir/health-$stamp.md"
{
	echo "# beacon health benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr), $(go version | cut -d' ' -f3-)"
	echo "- load before the run: load average $load_before, $busy_before cores busy"
	echo "- one server, two client agents, 127.0.0.1; default gossip settings; DNS of the server polled every 5 ms"
	echo
	echo "| event → the service no longer in DNS | min (ms) | median (ms) | max (ms) | every round (ms) | target |"
	echo "|---|---:|---:|---:|---|---|"
	row kill_dns "client agent SIGKILLed" "≤ 5000: $(verdict "$(kv kill_dns max_ms)" 5000)"
	row kill_members_failed "client agent SIGKILLed → failed in /v1/agent/members" ""
	row tcp_check_dns "TCP check (interval 1s): its port closes" ""
	row http_check_dns "HTTP check (interval 1s): 200 → 500" ""
	row leave_dns "PUT /v1/agent/leave on a client (from sending the request)" ""
	echo
	s=$(grep '^stress ' <<<"$out")
	echo "CPU stress: busy loops on $(sed -n 's/.*cores=\([0-9]*\).*/\1/p' <<<"$s") cores for $STRESS_SECONDS s, sampled every 100 ms ($(sed -n 's/.*samples=\([0-9]*\).*/\1/p' <<<"$s") samples):"
	echo "members not alive $(sed -n 's/.*members_not_alive=\([0-9]*\).*/\1/p' <<<"$s"), critical checks $(sed -n 's/.*critical_checks=\([0-9]*\).*/\1/p' <<<"$s"), DNS misses $(sed -n 's/.*dns_misses=\([0-9]*\).*/\1/p' <<<"$s") — target 0"
} >"$report"
cat "$report"
log "report written to $report"
