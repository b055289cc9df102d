#!/usr/bin/env bash
# KV benchmark of beacon on a 3-server cluster (bootstrap_expect 3, each
# server its own process, raft-boltdb with fsync on): PUT/s and GET/s
# (default, ?consistent, ?stale) with 64 concurrent clients spread over the
# three servers, the wake-up latency of 1,000 blocking watchers on one key
# after one PUT, and the resident memory of each server holding 100,000 keys
# of 100 bytes (on a fresh cluster). Loopback only; all timing by
# bench/cmd/kvbench.
#
#   bash bench/kv.sh        # from the repository root (or anywhere)
#
# Knobs (environment): CONCURRENCY (64 clients), KEYS (10000 keys the load
# spreads over), VALUE_SIZE (100 bytes), WARMUP (2 s) and DURATION (10 s)
# per phase; WATCHERS (1000), WATCH_TARGET (all: spread over the three
# servers; leader or follower: all on that one), WATCH_ROUNDS (3), SETTLE
# (3 s after the last watcher's request is sent); MEM_KEYS (100000),
# MEM_CONCURRENCY (64); PORT_BASE (28900); PROFILE (1: CoreDNS's pprof
# plugin on every server, CPU profiles of the leader and a follower during
# the PUT and the ?stale phase, and a heap profile of the memory cluster's
# leader after loading, in the report; 0, the default: no listener);
# KEEP_TMP (1 keeps the work directory); MAX_SECONDS (hard bound on the
# whole run, 900).
# See bench/README.md ("KV") for what is measured and how to read it.
set -euo pipefail

CONCURRENCY=${CONCURRENCY:-64}
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
WARMUP=${WARMUP:-2}
DURATION=${DURATION:-10}
WATCHERS=${WATCHERS:-1000}
WATCH_TARGET=${WATCH_TARGET:-all}
WATCH_ROUNDS=${WATCH_ROUNDS:-3}
SETTLE=${SETTLE:-3}
MEM_KEYS=${MEM_KEYS:-100000}
MEM_CONCURRENCY=${MEM_CONCURRENCY:-64}
PORT_BASE=${PORT_BASE:-28900}
PROFILE=${PROFILE:-0}
KEEP_TMP=${KEEP_TMP:-0}
MAX_SECONDS=${MAX_SECONDS:-900}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results_dir="$repo/bench/results"
tmp=$(mktemp -d /tmp/beacon-kv.XXXXXX)
watchdog_pid=""
declare -A pid=() # server name -> pid of its beacon process (empty when stopped)

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_watchdog

# --- 1. binaries, ports, file descriptors -----------------------------------------
command -v curl >/dev/null || die "curl is needed"
cd "$repo"
log "building beacon (go build .) and bench/cmd/kvbench"
build_bench kvbench

# The watchers hold one connection each: kvbench needs WATCHERS descriptors
# and a server up to WATCHERS when they all go to it. Children inherit the limit.
need=$((WATCHERS + 1024))
if (($(ulimit -n) < need)); then
	ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	(($(ulimit -n) >= need)) || die "open files limit $(ulimit -n) (hard $(ulimit -Hn)) is below the $need the watchers need"
fi
log "open files limit: $(ulimit -n)"

# 5 ports per server (DNS, HTTP, RPC, serf LAN, serf WAN), 6 servers: s1–s3
# for throughput and watchers, m1–m3 (a fresh cluster) for memory; then
# pprof for each (used with PROFILE=1).
base=$(free_port_block 39)
declare -A dnsp httpp rpcp lanp wanp pprofp
i=0
for n in s1 s2 s3 m1 m2 m3; do
	b=$((base + 5 * i))
	dnsp[$n]=$b httpp[$n]=$((b + 1)) rpcp[$n]=$((b + 2)) lanp[$n]=$((b + 3)) wanp[$n]=$((b + 4))
	pid[$n]=""
	i=$((i + 1))
done
i=30
for n in s1 s2 s3 m1 m2 m3; do pprofp[$n]=$((base + i)) i=$((i + 1)); done
# The ceiling servers (kvbench ceiling), one per beacon server: HTTP only.
declare -A ceilp
for n in c1 c2 c3; do ceilp[$n]=$((base + i)) i=$((i + 1)); done
http() { echo "127.0.0.1:${httpp[$1]}"; }

write_corefile() { # NAME JOIN...
	local n=$1 pp=""
	shift
	[[ $PROFILE == 1 && -n ${pprofp[$n]:-} ]] && pp="    pprof 127.0.0.1:${pprofp[$n]}"
	mkdir -p "$tmp/$n"
	cat >"$tmp/$n/Corefile" <<EOF
consul:${dnsp[$n]} dc1:${dnsp[$n]} {
    bind 127.0.0.1
$pp
    discovery {
        datacenter dc1
        node $n
        data_dir $tmp/$n/data
        server
        bootstrap_expect 3
        bind 127.0.0.1
        http 127.0.0.1:${httpp[$n]}
        rpc 127.0.0.1:${rpcp[$n]}
        serf_lan 127.0.0.1:${lanp[$n]}
        serf_wan 127.0.0.1:${wanp[$n]}
        join $*
    }
}
EOF
}
leader_of() { curl -fsS --max-time 2 "http://$(http "$1")/v1/status/leader" 2>/dev/null | tr -d '"' || true; }
name_of_rpc() { # RPC ADDR -> server name
	local n
	for n in "${!rpcp[@]}"; do [[ "127.0.0.1:${rpcp[$n]}" == "$1" ]] && { echo "$n"; return; }; done
	echo "?"
}
start_cluster() { # NAME NAME NAME: starts them, waits until all know the leader; sets cluster_leader
	local n m others l deadline=$((SECONDS + 90))
	for n in "$@"; do
		others=()
		for m in "$@"; do [[ $m != "$n" ]] && others+=("127.0.0.1:${lanp[$m]}"); done
		write_corefile "$n" "${others[@]}"
		"$tmp/beacon" agent -conf "$tmp/$n/Corefile" >>"$tmp/$n/beacon.log" 2>&1 &
		pid[$n]=$!
	done
	for n in "$@"; do
		while :; do
			kill -0 "${pid[$n]}" 2>/dev/null || die "$n exited (see $tmp/$n/beacon.log)"
			l=$(leader_of "$n")
			[[ -n $l ]] && break
			((SECONDS < deadline)) || die "$n: no leader after 90s"
			sleep 0.2
		done
	done
	# A write through every server, so that each has a working path to the leader.
	for n in "$@"; do
		until curl -fsS --max-time 5 -X PUT -d ready "http://$(http "$n")/v1/kv/ready" >/dev/null 2>&1; do
			((SECONDS < deadline)) || die "$n: no write accepted after 90s"
			sleep 0.2
		done
	done
	cluster_leader=$(name_of_rpc "$l")
}
spec() { # NAME...: name=http=rpc=pid,...
	local n s=""
	for n in "$@"; do s+="${s:+,}$n=$(http "$n")=127.0.0.1:${rpcp[$n]}=${pid[$n]}"; done
	echo "$s"
}
mem_of() { # NAME -> "VmRSS VmHWM RssAnon RssFile" in MB (2^20 bytes)
	awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
		END { printf "%.1f %.1f %.1f %.1f\n", r / 1024, h / 1024, a / 1024, f / 1024 }' "/proc/${pid[$1]}/status"
}
mem_cell() { # "VmRSS VmHWM RssAnon RssFile" -> a table cell
	awk '{ printf "%s / %s (anon %s, file %s)", $1, $2, $3, $4 }' <<<"$1"
}
du_mb() { du -sm "$1" 2>/dev/null | cut -f1; }
kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1" | head -n 1; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(busy_cores 3)
log "machine: $(nproc) cores; load average $load_before; busy before the run: $busy_before cores"

fsync_out=$(timeout 60 "$tmp/kvbench" fsync -dir "$tmp" -duration 3s) || die "fsync probe failed: $fsync_out"
log "disk: 4 KiB append + fdatasync, one after another: $fsync_out"

# --- 2. throughput -----------------------------------------------------------------
start_cluster s1 s2 s3
leader=$cluster_leader
log "3 servers up (s1, s2, s3); leader $leader"
[[ $leader != "?" ]] || die "the leader is none of the servers"
S=$(spec s1 s2 s3)
fill_out=$(timeout 300 "$tmp/kvbench" fill -servers "$S" -prefix bench/ -n "$KEYS" -concurrency "$CONCURRENCY" -size "$VALUE_SIZE") ||
	die "filling $KEYS keys failed: $fill_out"
log "filled bench/0…bench/$((KEYS - 1)): $fill_out"
declare -A ld=()
profiled=() # "phase server role" of each profile taken
follower=s1
[[ $leader == s1 ]] && follower=s2
for op in put get consistent stale; do
	log "phase $op: $CONCURRENCY clients over s1, s2, s3, ${WARMUP}s warm-up + ${DURATION}s"
	ppids=()
	if [[ $PROFILE == 1 && ($op == put || $op == stale) ]]; then
		psecs=$((DURATION > 3 ? DURATION - 2 : 1))
		for n in "$leader" "$follower"; do
			(sleep $((WARMUP + 1)) && curl -fsS --max-time $((psecs + 30)) -o "$tmp/cpu.$op.$n.pprof" \
				"http://127.0.0.1:${pprofp[$n]}/debug/pprof/profile?seconds=$psecs") &
			ppids+=($!)
			role=follower
			[[ $n == "$leader" ]] && role=leader
			profiled+=("$op $n $role")
		done
	fi
	ld[$op]=$(timeout $((WARMUP + DURATION + 120)) "$tmp/kvbench" load -servers "$S" -op "$op" -concurrency "$CONCURRENCY" \
		-keys "$KEYS" -size "$VALUE_SIZE" -warmup "${WARMUP}s" -duration "${DURATION}s" -clk-tck "$clk_tck") ||
		die "load $op failed: ${ld[$op]}"
	for p in "${ppids[@]}"; do wait "$p" || log "a profile fetch failed"; done
	log "  ${ld[$op]}"
done

# The ceiling: the same ?stale load against three kvbench ceiling processes,
# which answer each key's JSON encoded in advance over net/http with
# beacon's timeouts: what HTTP alone costs here, with this load generator.
C=""
for n in c1 c2 c3; do
	"$tmp/kvbench" ceiling -http "127.0.0.1:${ceilp[$n]}" -leader "127.0.0.1:${ceilp[c1]}" -keys "$KEYS" -size "$VALUE_SIZE" \
		>>"$tmp/ceiling.log" 2>&1 &
	pid[$n]=$!
	C+="${C:+,}$n=127.0.0.1:${ceilp[$n]}=127.0.0.1:${ceilp[c1]}=${pid[$n]}"
done
for n in c1 c2 c3; do
	until curl -fsS --max-time 1 "http://127.0.0.1:${ceilp[$n]}/v1/status/leader" >/dev/null 2>&1; do
		kill -0 "${pid[$n]}" 2>/dev/null || die "ceiling $n exited (see $tmp/ceiling.log)"
		sleep 0.1
	done
done
log "phase ceiling: the ?stale load against 3 kvbench ceiling servers"
ld[ceiling]=$(timeout $((WARMUP + DURATION + 120)) "$tmp/kvbench" load -servers "$C" -op stale -concurrency "$CONCURRENCY" \
	-keys "$KEYS" -size "$VALUE_SIZE" -warmup "${WARMUP}s" -duration "${DURATION}s" -clk-tck "$clk_tck") ||
	die "load against the ceiling failed: ${ld[ceiling]}"
log "  ${ld[ceiling]}"
for n in c1 c2 c3; do stop_server "$n"; done

# --- 3. blocking watchers ------------------------------------------------------------
log "watchers: $WATCHERS on one key, target $WATCH_TARGET, $WATCH_ROUNDS rounds"
watch_out=$(timeout 600 "$tmp/kvbench" watch -servers "$S" -watchers "$WATCHERS" -target "$WATCH_TARGET" \
	-rounds "$WATCH_ROUNDS" -settle "${SETTLE}s") || die "watch failed: $watch_out"
printf '%s\n' "$watch_out" >&2
declare -A mem_s=()
for n in s1 s2 s3; do mem_s[$n]=$(mem_of "$n"); done
leader_end=$(name_of_rpc "$(leader_of s1)")
for n in s1 s2 s3; do stop_server "$n"; done

# --- 4. memory with MEM_KEYS keys (a fresh cluster) ----------------------------------
start_cluster m1 m2 m3
mleader=$cluster_leader
log "3 fresh servers up (m1, m2, m3); leader $mleader"
M=$(spec m1 m2 m3)
declare -A mem0=() mem1=() mem2=() dsz=()
for n in m1 m2 m3; do mem0[$n]=$(mem_of "$n"); done
log "loading $MEM_KEYS keys of $VALUE_SIZE bytes, $MEM_CONCURRENCY clients over m1, m2, m3"
mfill=$(timeout 600 "$tmp/kvbench" fill -servers "$M" -prefix mem/ -n "$MEM_KEYS" -concurrency "$MEM_CONCURRENCY" -size "$VALUE_SIZE") ||
	die "loading $MEM_KEYS keys failed: $mfill"
log "  $mfill"
for n in m1 m2 m3; do mem1[$n]=$(mem_of "$n"); done
sleep 10
if [[ $PROFILE == 1 ]]; then
	curl -fsS --max-time 60 -o "$tmp/heap.$mleader.pprof" "http://127.0.0.1:${pprofp[$mleader]}/debug/pprof/heap" ||
		log "the heap profile fetch failed"
fi
declare -A mcount=()
for n in m1 m2 m3; do
	mem2[$n]=$(mem_of "$n")
	dsz[$n]=$(du_mb "$tmp/$n/data")
done
# After the readings: every server holds every key (the list costs memory).
for n in m1 m2 m3; do
	t0=$SECONDS
	while :; do
		mcount[$n]=$(kv "$(timeout 60 "$tmp/kvbench" count -http "$(http "$n")" -prefix mem/ 2>/dev/null || true)" keys)
		[[ ${mcount[$n]} == "$MEM_KEYS" ]] && break
		((SECONDS - t0 < 20)) || break
		sleep 0.5
	done
	log "  $n: VmRSS VmHWM RssAnon RssFile (MB) at start ${mem0[$n]}, after loading ${mem1[$n]}, 10 s later ${mem2[$n]}; data_dir ${dsz[$n]} MB; keys ${mcount[$n]:-?}"
done
for n in m1 m2 m3; do stop_server "$n"; done

# --- 5. report ---------------------------------------------------------------------------
stamp=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$results_dir"
report="$results_dir/kv-$stamp.md"
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "met" : "**MISSED**" }'; }
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
wall=$(grep '^all ' <<<"$watch_out")
wsetup=$(grep '^setup ' <<<"$watch_out")
maxmem() { # ARRAY-NAME FIELD(1 rss, 2 hwm)
	local -n a=$1
	local n m=0 v
	for n in "${!a[@]}"; do
		v=$(cut -d' ' -f"$2" <<<"${a[$n]}")
		m=$(awk -v a="$m" -v b="$v" 'BEGIN { print (b > a) ? b : a }')
	done
	echo "$m"
}
{
	echo "# beacon KV benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) cores ($cpu_model), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr), $(go version | cut -d' ' -f3-)"
	echo "- load before the run: load average $load_before, $busy_before cores busy (of $(nproc)); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- 3 servers (bootstrap_expect 3), each its own process, on 127.0.0.1 of this one machine: Raft with fsync, the three on the same disk; the load generator (kvbench, Go net/http, keep-alive, MaxIdleConnsPerHost ≥ clients) on the same cores"
	echo "- the disk, before the servers start: 4 KiB append + fdatasync one after another $(kv "$fsync_out" per_s)/s, p50 $(kv "$fsync_out" p50_ms) ms, p99 $(kv "$fsync_out" p99_ms) ms"
	echo "- CPU from /proc over each measured window: beacon = the three servers' utime+stime, load generator = kvbench's, other = machine busy − both (other processes, kernel work not charged to a process, steal)"
	echo
	echo "## Throughput ($CONCURRENCY clients, client i bound to server i mod 3; ${WARMUP} s warm-up, ${DURATION} s measured per phase)"
	echo
	echo "Keys bench/0 … bench/$((KEYS - 1)), values of $VALUE_SIZE bytes, filled first ($(kv "$fill_out" rate) PUT/s, $(kv "$fill_out" errors) errors); each request picks a key at random. Leader during the PUT phase: $(kv "${ld[put]}" leader)."
	echo
	echo "| phase | ops/s | p50 (ms) | p99 (ms) | max (ms) | errors | beacon cores (s1 / s2 / s3) | load generator cores | other + steal (cores) | of which steal | machine busy (cores) | iowait (cores) | beacon CPU (µs/op) | load generator CPU (µs/op) |"
	echo "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
	for op in put get consistent stale; do
		l=${ld[$op]}
		case $op in
		put) label="PUT /v1/kv/bench/<n>" ;;
		get) label="GET, default mode" ;;
		consistent) label="GET ?consistent" ;;
		stale) label="GET ?stale" ;;
		esac
		echo "| $label | $(kv "$l" ops_s) | $(kv "$l" p50_ms) | $(kv "$l" p99_ms) | $(kv "$l" max_ms) | $(kv "$l" errors) | $(kv "$l" beacon_cores) ($(kv "$l" cpu_s1) / $(kv "$l" cpu_s2) / $(kv "$l" cpu_s3)) | $(kv "$l" gen_cores) | $(kv "$l" other_cores) | $(kv "$l" steal_cores) | $(kv "$l" machine_cores) | $(kv "$l" iowait_cores) | $(kv "$l" beacon_us_op) | $(kv "$l" gen_us_op) |"
	done
	echo
	echo "Per server (ops/s, p50 / p99 ms of the clients bound to it):"
	echo
	echo "| phase | s1 | s2 | s3 |"
	echo "|---|---|---|---|"
	for op in put get consistent stale; do
		l=${ld[$op]}
		row="| $op |"
		for n in s1 s2 s3; do row+=" $(kv "$l" "role_$n"): $(kv "$l" "ops_$n") ops/s, $(kv "$l" "p50_$n") / $(kv "$l" "p99_$n") |"; done
		echo "$row"
	done
	for op in put get consistent stale; do
		fe=$(sed -n 's/^first_error=//p' <<<"${ld[$op]}")
		[[ -n $fe ]] && echo && echo "first error, $op: $fe"
	done
	echo
	lc=${ld[ceiling]}
	echo "Ceiling, the same \`?stale\` load against three \`kvbench ceiling\` processes (net/http, beacon's timeouts, each key's JSON encoded in advance): $(kv "$lc" ops_s) ops/s, p50 $(kv "$lc" p50_ms) ms, p99 $(kv "$lc" p99_ms) ms, $(kv "$lc" errors) errors; the three use $(kv "$lc" beacon_cores) cores, $(kv "$lc" beacon_us_op) µs/op; the load generator $(kv "$lc" gen_cores) cores, $(kv "$lc" gen_us_op) µs/op. beacon's \`?stale\` reads reach $(awk -v a="$(kv "${ld[stale]}" ops_s)" -v b="$(kv "$lc" ops_s)" 'BEGIN { printf "%.0f", (b > 0) ? 100 * a / b : 0 }')% of it."
	echo
	echo "PUT ≥ 5,000/s: $(verdict "$(kv "${ld[put]}" ops_s)" 5000 '>='); GET ?stale ≥ 30,000/s: $(verdict "$(kv "${ld[stale]}" ops_s)" 30000 '>=')"
	echo
	echo "## Blocking watchers ($WATCHERS on one key, $WATCH_ROUNDS rounds)"
	echo
	echo "$WATCHERS concurrent \`GET /v1/kv/watched?index=N&wait=5m\` (default mode) to $(kv "$wsetup" servers) (target \`$WATCH_TARGET\`, spread in turn), then one PUT of the key through the leader ($(kv "$wsetup" leader)). Time to each watcher's first response byte."
	echo
	targets=$(kv "$wsetup" servers | tr ',' ' ')
	hdr="| round | parked by | early returns | failed | late (> 30 s) | woken with the new value | woken ≤ 100 ms after the ack | PUT took (ms) | from the ack: min / p50 / p99 / max (ms) | from the sending: p50 / p99 / max (ms) |"
	sep="|---:|---|---:|---:|---:|---:|---:|---:|---|---|"
	for n in $targets; do hdr+=" $n: n, p50 / max (ms), ≤ 100 ms, connections |" sep+="---|"; done
	echo "$hdr"
	echo "$sep"
	while read -r line; do
		[[ $line == round=* ]] || continue
		row="| $(kv "$line" round) | $(kv "$line" parked_by | tr '_' ' ') | $(kv "$line" early) | $(kv "$line" failed) | $(kv "$line" late) | $(kv "$line" woken) | $(kv "$line" within100) | $(kv "$line" put_ms) | $(kv "$line" ack_min_ms) / $(kv "$line" ack_p50_ms) / $(kv "$line" ack_p99_ms) / $(kv "$line" ack_max_ms) | $(kv "$line" send_p50_ms) / $(kv "$line" send_p99_ms) / $(kv "$line" send_max_ms) |"
		for n in $targets; do row+=" $(kv "$line" "${n}_role"): $(kv "$line" "${n}_n"), $(kv "$line" "${n}_p50") / $(kv "$line" "${n}_max"), $(kv "$line" "${n}_in100"), $(kv "$line" "${n}_conns") |"; done
		echo "$row"
	done <<<"$watch_out"
	echo
	echo "All rounds: $(kv "$wall" woken) of $(kv "$wall" watchers) woken with the new value, $(kv "$wall" within100) within 100 ms of the PUT's acknowledgement; from the ack p50 $(kv "$wall" ack_p50_ms) ms, p99 $(kv "$wall" ack_p99_ms) ms, max $(kv "$wall" ack_max_ms) ms (from the sending: p50 $(kv "$wall" send_p50_ms), p99 $(kv "$wall" send_p99_ms), max $(kv "$wall" send_max_ms) ms)."
	echo
	echo "| server (over all rounds) | role | watchers | p50 (ms) | p99 (ms) | max (ms) | ≤ 100 ms |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	for n in $targets; do
		echo "| $n | $(kv "$wall" "${n}_role") | $(kv "$wall" "${n}_n") | $(kv "$wall" "${n}_p50") | $(kv "$wall" "${n}_p99") | $(kv "$wall" "${n}_max") | $(kv "$wall" "${n}_in100") |"
	done
	echo
	if [[ $(kv "$(grep '^round=1 ' <<<"$watch_out")" parked_by) == settle* ]]; then
		echo "The servers have no blocking-query gauge (\`/v1/agent/metrics\` absent or without one), so parking is not observed: after the last watcher's request was written, a ${SETTLE} s settle window; \"server-side connections\" counts the established TCP connections on each server's HTTP port (/proc/net/tcp) just before the PUT, and \"early returns\" the watchers answered before it (must be 0)."
		echo
	fi
	echo "A negative time: the watcher's answer arrived before the PUT's acknowledgement (the leader wakes its watchers when it applies the write, before it answers the PUT). A follower applies the write when it learns it is committed: with no further writes, on raft's next AppendEntries, CommitTimeout (50 ms, randomized up to 100 ms) after the commit."
	echo
	echo "every watcher of every round woken within 100 ms of the ack ($(kv "$wall" within100) of $(kv "$wall" watchers)): $(verdict "$(kv "$wall" within100)" "$(kv "$wall" watchers)" '>=')"
	echo
	echo "## Memory"
	echo
	echo "A fresh 3-server cluster (m1–m3; leader $mleader), $MEM_KEYS keys mem/0 … of $VALUE_SIZE bytes PUT with $MEM_CONCURRENCY clients over the three: $(kv "$mfill" rate) PUT/s, $(kv "$mfill" seconds) s, $(kv "$mfill" errors) errors (retried). VmRSS / VmHWM from /proc/PID/status, MB = 2^20 bytes; VmRSS = RssAnon (Go heap, stacks) + RssFile (mapped files: the binary, raft-boltdb's mmap of raft.db) + RssShmem."
	echo
	echo "| server | VmRSS / VmHWM at start | after loading | 10 s later | data_dir (MB) | keys held (GET ?keys&stale, after the readings) |"
	echo "|---|---|---|---|---:|---:|"
	for n in m1 m2 m3; do
		role=follower
		[[ $n == "$mleader" ]] && role=leader
		echo "| $n ($role) | $(mem_cell "${mem0[$n]}") | $(mem_cell "${mem1[$n]}") | $(mem_cell "${mem2[$n]}") | ${dsz[$n]} | ${mcount[$n]:-?} |"
	done
	echo
	rss=$(maxmem mem2 1)
	hwm=$(maxmem mem2 2)
	echo "≤ 200 MB per server with $MEM_KEYS keys (Consul: 456 MB): VmRSS max $rss MB: $(verdict "$rss" 200 '<='); VmHWM max $hwm MB: $(verdict "$hwm" 200 '<=')"
	echo
	echo "For comparison, the throughput cluster at its end ($KEYS keys, every PUT of the run in its Raft log; leader $leader_end), VmRSS / VmHWM (MB): s1 $(mem_cell "${mem_s[s1]}"), s2 $(mem_cell "${mem_s[s2]}"), s3 $(mem_cell "${mem_s[s3]}")."
	if [[ -s $tmp/heap.$mleader.pprof ]]; then
		cp "$tmp/heap.$mleader.pprof" "$results_dir/kv-$stamp.heap.$mleader.pprof"
		echo
		echo "## Heap profile of $mleader (the memory cluster's leader) after loading $MEM_KEYS keys: in-use space, top 25 flat and cumulative"
		echo
		echo '```'
		timeout 120 go tool pprof -sample_index=inuse_space -top -nodecount=25 "$tmp/beacon" "$tmp/heap.$mleader.pprof" 2>/dev/null | sed '/^File:/,/^Showing nodes/d' || true
		echo
		timeout 120 go tool pprof -sample_index=inuse_space -top -cum -nodecount=25 "$tmp/beacon" "$tmp/heap.$mleader.pprof" 2>/dev/null | sed '/^File:/,/^Showing nodes/d' || true
		echo '```'
		echo
		echo "Profile: bench/results/kv-$stamp.heap.$mleader.pprof"
	fi
	if ((${#profiled[@]} > 0)); then
		echo
		echo "## CPU profiles (PROFILE=1: CoreDNS's pprof plugin, $((DURATION > 3 ? DURATION - 2 : 1)) s inside the measured window)"
		for pr in "${profiled[@]}"; do
			read -r op n role <<<"$pr"
			f="$tmp/cpu.$op.$n.pprof"
			[[ -s $f ]] || continue
			cp "$f" "$results_dir/kv-$stamp.cpu.$op.$n.pprof"
			echo
			echo "### $op phase, $n ($role): top 25 flat, top 25 cumulative"
			echo
			echo '```'
			timeout 120 go tool pprof -top -nodecount=25 "$tmp/beacon" "$f" 2>/dev/null | sed '/^File:/,/^Showing nodes/d' || true
			echo
			timeout 120 go tool pprof -top -cum -nodecount=25 "$tmp/beacon" "$f" 2>/dev/null | sed '/^File:/,/^Showing nodes/d' || true
			echo '```'
			echo
			echo "Profile: bench/results/kv-$stamp.cpu.$op.$n.pprof"
		done
	fi
} >"$report"
cat "$report"
log "report written to $report"
