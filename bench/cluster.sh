#!/usr/bin/env bash
# Cluster benchmark of beacon: write throughput through a 3-server cluster
# (and a 1-server one), consistent-read latency on a follower and on the
# leader, a client agent's DNS throughput against a server's and how fast a
# write reaches it, and leader failover under write load. Loopback only.
#
#   bash bench/cluster.sh        # from the repository root (or anywhere)
#
# Knobs (environment): SERVICES (3334) × INSTANCES (3) registrations with
# CONCURRENCY (16) clients; READS (2000 sequential GETs per mode and server);
# ROUNDS (3 failovers); WRITERS (4 clients writing through the followers);
# PROPAGATE (50 writes timed to the client agent's DNS); DNS_SECONDS (10 s
# per dnsperf run) × DNS_ROUNDS (2) against the client agent and a server;
# PORT_BASE (28700); KEEP_TMP (1 keeps the work directory);
# MAX_SECONDS (hard bound on the whole run, 900).
# See bench/README.md ("Cluster") for what is measured and how to read it.
set -euo pipefail

SERVICES=${SERVICES:-3334}
INSTANCES=${INSTANCES:-3}
CONCURRENCY=${CONCURRENCY:-16}
READS=${READS:-2000}
ROUNDS=${ROUNDS:-3}
WRITERS=${WRITERS:-4}
PORT_BASE=${PORT_BASE:-28700}
KEEP_TMP=${KEEP_TMP:-0}
MAX_SECONDS=${MAX_SECONDS:-900}
PROPAGATE=${PROPAGATE:-50}
DNS_SECONDS=${DNS_SECONDS:-10}
DNS_ROUNDS=${DNS_ROUNDS:-2}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results_dir="$repo/bench/results"
tmp=$(mktemp -d /tmp/beacon-cluster.XXXXXX)
watchdog_pid=""
declare -A pid=() # server name -> pid of its beacon process (empty when stopped)

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
# machine_ticks: "busy steal" over all cores, from /proc/stat.
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, $9; exit }' /proc/stat; }
# beacon_ticks: CPU ticks of the running beacon processes.
beacon_ticks() {
	local t=0 n
	for n in "${!pid[@]}"; do
		[[ -n ${pid[$n]} && -r /proc/${pid[$n]}/stat ]] || continue
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/${pid[$n]}/stat")))
	done
	echo "$t"
}
# phase_begin / phase_end NAME: cores used over a phase by the machine, by
# beacon, and by the rest (the benchmark clients + other processes + steal).
phase_begin() { ph_m0=$(machine_ticks) ph_b0=$(beacon_ticks) ph_w0=$(date +%s.%N); }
phase_end() {
	local m1 b1 w1
	m1=$(machine_ticks) b1=$(beacon_ticks) w1=$(date +%s.%N)
	awk -v m0="$ph_m0" -v m1="$m1" -v b0="$ph_b0" -v b1="$b1" -v w0="$ph_w0" -v w1="$w1" -v h="$clk_tck" 'BEGIN {
		split(m0, a, " "); split(m1, b, " "); w = w1 - w0
		busy = (b[1] - a[1] + b[2] - a[2]) / h / w; bc = (b1 - b0) / h / w
		printf "%.2f %.2f %.2f\n", busy, bc, busy - bc }'
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_watchdog

# --- 1. binaries and ports ---------------------------------------------------------
command -v curl >/dev/null || die "curl is needed"
need_dnsperf
cd "$repo"
log "building beacon (go build .) and the bench helpers"
build_bench register clusterbench

# 5 ports per agent (DNS, HTTP, RPC, serf LAN, serf WAN), 5 agents (s1–s3
# of the cluster, solo for the 1-server run, c1 the client agent): the first
# free block of 25.
base=$(free_port_block 25)
declare -A dnsp httpp rpcp lanp wanp
i=0
for n in s1 s2 s3 solo c1; do
	b=$((base + 5 * i))
	dnsp[$n]=$b httpp[$n]=$((b + 1)) rpcp[$n]=$((b + 2)) lanp[$n]=$((b + 3)) wanp[$n]=$((b + 4))
	pid[$n]=""
	i=$((i + 1))
done
http() { echo "127.0.0.1:${httpp[$1]}"; }

write_corefile() { # NAME EXPECT JOIN... (EXPECT 0: a client agent)
	local n=$1 expect=$2 join="" role="        server
        bootstrap_expect $2"
	shift 2
	(($# > 0)) && join="        join $*"
	((expect > 0)) || role=""
	mkdir -p "$tmp/$n"
	cat >"$tmp/$n/Corefile" <<EOF
consul:${dnsp[$n]} dc1:${dnsp[$n]} {
    bind 127.0.0.1
    discovery {
        datacenter dc1
        node $n
        data_dir $tmp/$n/data
$role
        bind 127.0.0.1
        http 127.0.0.1:${httpp[$n]}
        rpc 127.0.0.1:${rpcp[$n]}
        serf_lan 127.0.0.1:${lanp[$n]}
        serf_wan 127.0.0.1:${wanp[$n]}
$join
    }
}
EOF
}
start_server() { # NAME
	"$tmp/beacon" agent -conf "$tmp/$1/Corefile" >>"$tmp/$1/beacon.log" 2>&1 &
	pid[$1]=$!
}
leader_of() { curl -fsS --max-time 2 "http://$(http "$1")/v1/status/leader" 2>/dev/null | tr -d '"' || true; }
wait_leader() { # TIMEOUT NAME...: every named server knows the leader
	local deadline=$((SECONDS + $1)) n l
	shift
	for n in "$@"; do
		while :; do
			kill -0 "${pid[$n]}" 2>/dev/null || die "$n exited (see $tmp/$n/beacon.log)"
			l=$(leader_of "$n")
			[[ -n $l ]] && break
			((SECONDS < deadline)) || die "$n: no leader after the wait"
			sleep 0.2
		done
	done
	echo "$l"
}
name_of_rpc() { # RPC ADDR -> server name
	local n
	for n in s1 s2 s3; do [[ "127.0.0.1:${rpcp[$n]}" == "$1" ]] && { echo "$n"; return; }; done
	echo "?"
}

# Load on the machine (shared with other work): before, and per phase.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(busy_cores 3)
log "machine: $(nproc) cores; load average $load_before; busy before the run: $busy_before cores"

reg_rate() { sed -n 's/.*: \([0-9]*\) registrations\/s.*/\1/p' <<<"$1"; }
nreg=$((SERVICES * INSTANCES))

# --- 2. one server: registrations/s ------------------------------------------------
write_corefile solo 1
start_server solo
wait_leader 60 solo >/dev/null
log "1 server: registering $nreg instances, $CONCURRENCY clients"
phase_begin
out_solo=$(timeout 300 "$tmp/register" -http "$(http solo)" -services "$SERVICES" \
	-instances "$INSTANCES" -concurrency "$CONCURRENCY") || die "registration (1 server) failed: $out_solo"
read -r busy_solo bc_solo rest_solo < <(phase_end)
log "$out_solo (machine $busy_solo cores: beacon $bc_solo, rest $rest_solo)"
stop_server solo

# --- 3. three servers: registrations/s through all three ---------------------------
for n in s1 s2 s3; do
	others=()
	for m in s1 s2 s3; do [[ $m != "$n" ]] && others+=("127.0.0.1:${lanp[$m]}"); done
	write_corefile "$n" 3 "${others[@]}"
	start_server "$n"
done
leader_rpc=$(wait_leader 90 s1 s2 s3)
leader=$(name_of_rpc "$leader_rpc")
log "3 servers up; leader $leader ($leader_rpc)"
[[ $leader != "?" ]] || die "leader $leader_rpc is none of the servers"
sleep 1
log "3 servers: registering $nreg instances, $CONCURRENCY clients over s1, s2, s3"
phase_begin
out_3=$(timeout 300 "$tmp/register" -http "$(http s1),$(http s2),$(http s3)" -services "$SERVICES" \
	-instances "$INSTANCES" -concurrency "$CONCURRENCY") || die "registration (3 servers) failed: $out_3"
read -r busy_3 bc_3 rest_3 < <(phase_end)
log "$out_3 (machine $busy_3 cores: beacon $bc_3, rest $rest_3)"

# --- 4. read latency ---------------------------------------------------------------
curl -fsS --max-time 10 -X PUT -H 'Content-Type: application/json' \
	-d '{"Node":"read-node","Address":"10.8.8.8","Service":{"ID":"x","Service":"x","Address":"10.8.8.8","Port":8080}}' \
	"http://$(http "$leader")/v1/catalog/register" >/dev/null || die "registering service x failed"
leader_rpc=$(leader_of s1)
leader=$(name_of_rpc "$leader_rpc")
follower=""
for n in s1 s2 s3; do [[ $n != "$leader" ]] && { follower=$n; break; }; done
declare -A rd
for role in follower leader; do
	srv=$follower
	[[ $role == leader ]] && srv=$leader
	for mode in consistent default stale; do
		q="?$mode"
		[[ $mode == default ]] && q=""
		phase_begin
		rd[$role.$mode]=$(timeout 300 "$tmp/clusterbench" reads -url "http://$(http "$srv")/v1/catalog/service/x$q" -n "$READS") ||
			die "reads $role $mode failed"
		read -r busy _ rest < <(phase_end)
		rd[$role.$mode]+=" busy=$busy rest=$rest"
		log "reads on $role ($srv) $mode: ${rd[$role.$mode]}"
	done
done
kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

# --- 4b. a client agent: update propagation, DNS throughput against a server's -----
write_corefile c1 0 "127.0.0.1:${lanp[s1]}" "127.0.0.1:${lanp[s2]}" "127.0.0.1:${lanp[s3]}"
start_server c1
wait_leader 60 c1 >/dev/null
t0=$SECONDS
until [[ $(curl -fsS --max-time 2 "http://$(http c1)/v1/catalog/service/svc0000?stale" 2>/dev/null) == *svc0000* ]]; do
	((SECONDS - t0 < 60)) || die "c1: no replica of the catalog after 60s"
	sleep 0.2
done
c1_source=$(name_of_rpc "$(curl -fsS "http://$(http c1)/v1/agent/self" | sed -n 's/.*"source":"\([^"]*\)".*/\1/p')")
c1_source_role=follower
[[ $c1_source == "$leader" ]] && c1_source_role=leader
log "client agent c1 up, following $c1_source (the $c1_source_role)"
prop=$(timeout 300 "$tmp/clusterbench" propagate -http "$(http "$leader")" -dns "127.0.0.1:${dnsp[c1]}" -n "$PROPAGATE") ||
	die "propagation measurement failed: $prop"
log "write on the leader → client DNS: $prop"
awk -v n="$SERVICES" 'BEGIN { srand(7); for (i = 0; i < 10000; i++) printf "svc%04d.service.consul A\n", int(rand() * n) }' >"$tmp/q.svc"
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
dns_rows=""
declare -A dns_qps=() dns_cpu=()
for r in $(seq "$DNS_ROUNDS"); do
	for target in "$follower" c1; do
		p=${pid[$target]}
		c0=$(proc_ticks "$p")
		timeout $((DNS_SECONDS + 60)) dnsperf -s 127.0.0.1 -p "${dnsp[$target]}" -d "$tmp/q.svc" -l "$DNS_SECONDS" \
			-c 8 -T 1 -q 100 -Q 200000 -t 2 >"$tmp/perf.$target.$r" 2>&1 || { cat "$tmp/perf.$target.$r" >&2; die "dnsperf against $target failed"; }
		c1t=$(proc_ticks "$p")
		read -r qps done lost noerr < <(awk '/Queries per second:/ { q = $4 } /Queries completed:/ { d = $3 } /Queries lost:/ { l = $4; gsub(/[()%]/, "", l) }
			/Response codes:/ { if (match($0, /NOERROR [0-9]+ \(([0-9.]+)%\)/)) { s = substr($0, RSTART, RLENGTH); sub(/.*\(/, "", s); sub(/%\)/, "", s); n = s } else n = 0 }
			END { printf "%.0f %s %s %s\n", q, d, l, n }' "$tmp/perf.$target.$r")
		us=$(awk -v t=$((c1t - c0)) -v h="$clk_tck" -v d="$done" 'BEGIN { printf "%.1f", (d > 0) ? t / h / d * 1e6 : 0 }')
		role="server ($target)"
		[[ $target == c1 ]] && role="client agent (c1)"
		log "dnsperf round $r against $role: $qps q/s, $us µs CPU/query, lost $lost%, NOERROR $noerr%"
		dns_rows+="| $r | $role | $qps | $us | $lost% | $noerr% |"$'\n'
		dns_qps[$target]=$(awk -v a="${dns_qps[$target]:-0}" -v b="$qps" -v n="$DNS_ROUNDS" 'BEGIN { printf "%.0f", a + b / n }')
		dns_cpu[$target]=$(awk -v a="${dns_cpu[$target]:-0}" -v b="$us" -v n="$DNS_ROUNDS" 'BEGIN { printf "%.2f", a + b / n }')
	done
done
stop_server c1

# --- 5. failover ---------------------------------------------------------------------
fo_rows="" fo_max=0 lost_total=0 fo_ok=1
for r in $(seq "$ROUNDS"); do
	servers=""
	for n in s1 s2 s3; do servers+="${servers:+,}$n=$(http "$n")=127.0.0.1:${rpcp[$n]}=${pid[$n]}"; done
	log "failover $r: $WRITERS writers through the followers, SIGKILL of the leader"
	phase_begin
	out=$(timeout 120 "$tmp/clusterbench" failover -servers "$servers" -writers "$WRITERS" -round "$r" \
		-acked "$tmp/acked.txt") || die "failover round $r failed: $out"
	read -r busy _ rest < <(phase_end)
	log "  $out"
	killed=$(kv "$out" killed)
	# The killed process: reap it, then restart it on its own data_dir.
	wait "${pid[$killed]}" 2>/dev/null || true
	pid[$killed]=""
	t0=$SECONDS
	start_server "$killed"
	wait_leader 90 "$killed" >/dev/null
	until curl -fsS --max-time 5 "http://$(http "$killed")/v1/catalog/service/x?consistent" >/dev/null 2>&1; do
		((SECONDS - t0 < 90)) || die "$killed: no consistent read 90s after restart"
		sleep 0.2
	done
	ver=$(timeout 60 "$tmp/clusterbench" verify -http "$(http "$killed")" -acked "$tmp/acked.txt") || die "verify on $killed failed"
	log "  $killed restarted and caught up in $((SECONDS - t0))s; acknowledged writes so far on it: $ver"
	fo=$(kv "$out" failover_ms)
	lost=0
	for n in s1 s2 s3; do v=$(kv "$out" "lost_$n"); lost=$((lost + ${v:-0})); done
	lost_r=$(kv "$ver" lost)
	lost_total=$((lost_total + lost + lost_r))
	[[ $(kv "$out" status) == ok ]] || fo_ok=0
	fo_max=$(awk -v a="$fo_max" -v b="$fo" 'BEGIN { print (b > a) ? b : a }')
	new=$(name_of_rpc "$(kv "$out" new_leader_rpc)")
	fo_rows+="| $r | $killed → $new | $(kv "$out" status) | $fo | $(kv "$out" first_ack_any_ms) | $(kv "$out" acked) | $(kv "$out" acked_sent_after_kill) | $(kv "$out" write_errors) | $lost | $(kv "$ver" checked) / $lost_r | $busy |"$'\n'
	sleep 1
done

# --- 6. report -----------------------------------------------------------------------
stamp=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$results_dir"
report="$results_dir/cluster-$stamp.md"
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "met" : "**MISSED**" }'; }
r3=$(reg_rate "$out_3")
r1=$(reg_rate "$out_solo")
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
	echo "# beacon cluster benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) cores ($cpu_model), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr), $(go version | cut -d' ' -f3-)"
	echo "- load before the run: load average $load_before, $busy_before cores busy (of $(nproc)); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- all servers on 127.0.0.1 on this one machine (Raft with fsync on the same disk); \"rest\" = busy cores − beacon cores: the benchmark client plus other processes plus steal"
	echo
	echo "## Registrations (PUT /v1/catalog/register, $nreg instances, $CONCURRENCY clients)"
	echo
	echo "| cluster | registrations/s | result | machine busy (cores) | beacon (cores) | rest (cores) |"
	echo "|---|---:|---|---:|---:|---:|"
	echo "| 1 server | $r1 | $out_solo | $busy_solo | $bc_solo | $rest_solo |"
	echo "| 3 servers (requests spread over s1, s2, s3) | $r3 | $out_3 | $busy_3 | $bc_3 | $rest_3 |"
	echo
	echo "3 servers ≥ 900 registrations/s: $(verdict "$r3" 900 '>=')"
	echo
	echo "## Read latency (GET /v1/catalog/service/x, $READS sequential requests after 100 unmeasured)"
	echo
	echo "| server | mode | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) | errors | machine busy / rest (cores) |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
	for role in follower leader; do
		for mode in consistent default stale; do
			l=${rd[$role.$mode]}
			srv=$follower
			[[ $role == leader ]] && srv=$leader
			echo "| $role ($srv) | ${mode/default/default (no parameter)} | $(kv "$l" p50_ms) | $(kv "$l" p90_ms) | $(kv "$l" p99_ms) | $(kv "$l" max_ms) | $(kv "$l" mean_ms) | $(kv "$l" errors) | $(kv "$l" busy) / $(kv "$l" rest) |"
		done
	done
	echo
	echo "## Client agent (c1, following the servers' state stream)"
	echo
	echo "c1 followed $c1_source, the $c1_source_role. A follower applies a write once it hears it is committed: with no further writes, on raft's next AppendEntries, 50–100 ms (CommitTimeout) later; the leader has it when it acknowledges."
	echo
	echo "A write acknowledged by the leader's HTTP API → answered by the client agent's DNS (polled every 1 ms), $PROPAGATE writes one after another:"
	echo
	echo "| from | p50 (ms) | p99 (ms) | max (ms) |"
	echo "|---|---:|---:|---:|"
	echo "| the write's acknowledgement | $(kv "$prop" ack_p50_ms) | $(kv "$prop" ack_p99_ms) | $(kv "$prop" ack_max_ms) |"
	echo "| the write's sending | $(kv "$prop" send_p50_ms) | $(kv "$prop" send_p99_ms) | $(kv "$prop" send_max_ms) |"
	echo
	echo "update reaches the client within 1 s (max from sending): $(verdict "$(kv "$prop" send_max_ms)" 1000 '<=')"
	echo
	echo "DNS throughput, \`svcNNNN.service.consul A\` over the $SERVICES services registered above (10,000 random queries), dnsperf -l $DNS_SECONDS -c 8 -T 1 -q 100, UDP, rounds interleaved:"
	echo
	echo "| round | agent | QPS | agent CPU (µs/query) | lost | NOERROR |"
	echo "|---:|---|---:|---:|---:|---:|"
	printf '%s' "$dns_rows"
	echo
	ratio=$(awk -v c="${dns_qps[c1]}" -v s="${dns_qps[$follower]}" 'BEGIN { printf "%.2f", (s > 0) ? c / s : 0 }')
	echo "mean QPS: server $follower ${dns_qps[$follower]}, client c1 ${dns_qps[c1]}; client / server = $ratio (≥ 0.50, within 2×: $(verdict "$ratio" 0.5 '>='))"
	echo "mean CPU per query: server ${dns_cpu[$follower]} µs, client ${dns_cpu[c1]} µs"
	echo
	echo "## Failover ($WRITERS writers through the two followers, SIGKILL of the leader, $ROUNDS rounds)"
	echo
	echo "failover = from the kill to the first write acknowledged (HTTP 200) among the writes sent after the kill (client timeout 1 s, next write 10 ms after a failure)."
	echo "\"first ack, any\" also counts writes in flight at the kill. After each round the killed server is restarted on its data_dir and waited for (leader known, consistent read works)."
	echo
	echo "| round | leader killed → new leader | status | failover (ms) | first ack, any (ms) | writes acknowledged | acknowledged, sent after kill | write errors | acknowledged writes lost on survivors | restarted server: checked / lost | machine busy (cores) |"
	echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---|---|"
	printf '%s' "$fo_rows"
	echo
	echo "max failover: $fo_max ms — ≤ 3 s: $( ((fo_ok == 1)) && verdict "$fo_max" 3000 '<=' || echo '**MISSED** (a round timed out)')"
	echo
	echo "acknowledged writes lost: $lost_total"
} >"$report"
cat "$report"
log "report written to $report"
