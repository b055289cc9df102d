#!/usr/bin/env bash
# Memory of a server and a client agent holding a large catalog, and how
# soon a new client agent answers all of it. Loopback only: the agents bind
# 127.0.77.1 (server), .2 and .3 (client agents), each with the default
# ports there, away from agents on 127.0.0.1.
#
#   bash bench/memory.sh      # from the repository root (or anywhere)
#
# Knobs (environment): SERVICES (10000) × INSTANCES (5) registrations with
# CONCURRENCY (16) clients; PORT_BASE (29000); KEEP_TMP (1 keeps the work
# directory); MAX_SECONDS (hard bound on the whole run, 900).
# See bench/README.md ("Memory") for what is measured and how to read it.
set -euo pipefail

SERVICES=${SERVICES:-10000}
INSTANCES=${INSTANCES:-5}
CONCURRENCY=${CONCURRENCY:-16}
PORT_BASE=${PORT_BASE:-29000}
KEEP_TMP=${KEEP_TMP:-0}
MAX_SECONDS=${MAX_SECONDS:-900}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results_dir="$repo/bench/results"
tmp=$(mktemp -d /tmp/beacon-memory.XXXXXX)
watchdog_pid=""
declare -A pid=()

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_watchdog

base=$(free_port_block 8)
dns=$base http_s=$((base + 1)) pprof_s=$((base + 2)) http_c=$((base + 3)) pprof_c=$((base + 4))
http_n=$((base + 5)) dns_n=$((base + 6)) pprof_n=$((base + 7))

need_dnsperf
log "building"
build_bench register dnswait

# agent NAME BIND DNSPORT HTTPPORT [server|client] [PPROFPORT]: starts an agent.
agent() {
	local name=$1 bind=$2 dnsport=$3 httpport=$4 role=$5 pprofport=${6:-}
	mkdir -p "$tmp/$name"
	{
		echo "consul:$dnsport {"
		echo "    bind $bind"
		echo "    discovery {"
		echo "        node $name"
		echo "        data_dir $tmp/$name/data"
		echo "        bind $bind"
		echo "        http 127.0.0.1:$httpport"
		if [[ $role == server ]]; then
			echo "        server"
			echo "        bootstrap_expect 1"
		else
			echo "        join 127.0.77.1:8301"
		fi
		echo "    }"
		[[ -n $pprofport ]] && echo "    pprof 127.0.0.1:$pprofport"
		echo "}"
	} >"$tmp/$name/Corefile"
	"$tmp/beacon" agent -conf "$tmp/$name/Corefile" >"$tmp/$name/beacon.log" 2>&1 &
	pid[$name]=$!
}

# mem NAME: "VmRSS VmHWM RssAnon RssFile" in MB.
mem() {
	awk '/^(VmRSS|VmHWM|RssAnon|RssFile):/ { v[$1] = $2 / 1024 }
		END { printf "%.0f %.0f %.0f %.0f", v["VmRSS:"], v["VmHWM:"], v["RssAnon:"], v["RssFile:"] }' "/proc/${pid[$1]}/status"
}
# heap PPROFPORT: the Go heap in use, MB (after a GC: pprof's heap profile forces one).
heap() {
	curl -fsS "http://127.0.0.1:$1/debug/pprof/heap?debug=1&gc=1" |
		awk '/^# HeapInuse = / { printf "%.0f", $4 / 1048576 }'
}
# services HTTPPORT: how many services the agent's replica holds (?stale).
services() { curl -fsS "http://127.0.0.1:$1/v1/catalog/services?stale" | tr ',' '\n' | grep -c ':' || true; }

agent s1 127.0.77.1 "$dns" "$http_s" server "$pprof_s"
for _ in $(seq 100); do
	[[ $(curl -fsS "http://127.0.0.1:$http_s/v1/status/leader" 2>/dev/null) == *:* ]] && break
	sleep 0.1
done
agent c1 127.0.77.2 "$dns" "$http_c" client "$pprof_c"

log "registering $SERVICES services × $INSTANCES instances"
"$tmp/register" -http "127.0.0.1:$http_s" -services "$SERVICES" -instances "$INSTANCES" -concurrency "$CONCURRENCY" >"$tmp/register.out"
rate=$(tail -1 "$tmp/register.out")
want=$((SERVICES + 1)) # and the consul service
for _ in $(seq 600); do
	[[ $(services "$http_c") -ge $want ]] && break
	sleep 0.1
done
[[ $(services "$http_c") -ge $want ]] || die "the client agent's replica did not reach the catalog"

log "a new client agent: time until its DNS answers the last service"
last=$(printf 'svc%04d.service.consul' $((SERVICES - 1)))
agent n1 127.0.77.3 "$dns_n" "$http_n" client "$pprof_n"
answered=$("$tmp/dnswait" -server "127.0.77.3:$dns_n" -name "$last" -timeout 60s) ||
	die "the new client agent never answered $last"

read -r s_rss s_hwm s_anon s_file <<<"$(mem s1)"
read -r c_rss c_hwm c_anon c_file <<<"$(mem c1)"
read -r n_rss n_hwm n_anon n_file <<<"$(mem n1)"
s_heap=$(heap "$pprof_s") c_heap=$(heap "$pprof_c") n_heap=$(heap "$pprof_n")

# Serving: every service asked for once over DNS on the first client agent,
# so its answer cache holds an entry (and the store a watch channel per row
# read) for each, as on an agent whose applications use them all.
log "every service asked for once over the first client agent's DNS"
for ((i = 0; i < SERVICES; i++)); do printf 'svc%04d.service.consul A\n' "$i"; done >"$tmp/q.all"
dnsperf -s 127.0.77.2 -p "$dns" -d "$tmp/q.all" -n 1 -c 4 -q 50 -Q 20000 >"$tmp/dnsperf.all" 2>&1 ||
	die "dnsperf failed: $(tail -5 "$tmp/dnsperf.all")"
grep -Eq 'NOERROR [0-9]+ \(100.00%\)' "$tmp/dnsperf.all" || die "not every service answered: $(grep -E 'Queries|Response codes' "$tmp/dnsperf.all")"
read -r a_rss a_hwm a_anon a_file <<<"$(mem c1)"
a_heap=$(heap "$pprof_c")
instances=$((SERVICES * INSTANCES))
stamp=$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$results_dir"
# The heap profiles, kept for `go tool pprof`, and where the client agent's bytes are.
curl -fsS -o "$results_dir/memory-$stamp-server.heap" "http://127.0.0.1:$pprof_s/debug/pprof/heap?gc=1" ||
	log "WARNING: no heap profile of the server"
curl -fsS -o "$results_dir/memory-$stamp-client.heap" "http://127.0.0.1:$pprof_c/debug/pprof/heap?gc=1" ||
	log "WARNING: no heap profile of the client agent"
c_top=$(go tool pprof -sample_index=inuse_space -top -nodecount=20 "$tmp/beacon" "$results_dir/memory-$stamp-client.heap" 2>/dev/null |
	sed -n '/flat%/,$p' || true)
report=$(
	cat <<EOT
## Memory: $SERVICES services × $INSTANCES instances ($instances), $(date -u +%Y-%m-%dT%H:%MZ)

Registration: $rate

| agent | VmRSS (MB) | VmHWM (MB) | anonymous (MB) | file-backed (MB) | Go heap in use (MB) | RSS per instance (KB) |
|---|---:|---:|---:|---:|---:|---:|
| server | $s_rss | $s_hwm | $s_anon | $s_file | $s_heap | $(awk -v r="$s_rss" -v n="$instances" 'BEGIN { printf "%.2f", r * 1024 / n }') |
| client agent (replica built by the change stream, one registration at a time) | $c_rss | $c_hwm | $c_anon | $c_file | $c_heap | $(awk -v r="$c_rss" -v n="$instances" 'BEGIN { printf "%.2f", r * 1024 / n }') |
| client agent, after answering every service once over DNS | $a_rss | $a_hwm | $a_anon | $a_file | $a_heap | $(awk -v r="$a_rss" -v n="$instances" 'BEGIN { printf "%.2f", r * 1024 / n }') |
| new client agent (replica installed from a snapshot) | $n_rss | $n_hwm | $n_anon | $n_file | $n_heap | $(awk -v r="$n_rss" -v n="$instances" 'BEGIN { printf "%.2f", r * 1024 / n }') |

A new client agent answered \`$last\` over DNS ${answered} s after it was started (process start, gossip join, snapshot of the whole catalog streamed and installed).

The client agent's heap in use, by function (\`go tool pprof -sample_index=inuse_space -top\`; profiles in \`bench/results/memory-$stamp-*.heap\`):

\`\`\`
$c_top
\`\`\`
EOT
)
echo "$report"
echo "$report" >"$results_dir/memory-$stamp.md"
