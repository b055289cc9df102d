#!/usr/bin/env bash
# Fan-out benchmark of beacon: what a fleet of client agents costs the server
# whose change feed they follow. One server (bootstrap_expect 1, its own
# process) and bench/cmd/fanout, which runs N client replicas (beacon's own
# replica code, each with its own state store) in one process, every one
# reaching the server through a counting TCP proxy. For each N: the time to
# sync them all, the server's CPU and memory with N streams idle, and at
# RATE writes/s the server's CPU per write, the bytes and write system calls
# it spends per replica and write, and the replicas' lag. Then a catalog of
# SERVICES × INSTANCES instances on NODES nodes is registered and new
# replicas sync it: the time, the index reached, the heap they take.
# With RELAYS, each N runs again through that many relays (client replicas
# that pass the stream on; the tool starts them first): the server streams
# to the relays alone. With VIA_RELAY=1 the replicas follow a relay agent
# (a client agent with `relay`, a process of its own, which follows the
# server) instead of the server, and every "server" figure of the report
# is that relay's: what a relay spends on each client that follows it.
#
#   bash bench/fanout.sh        # from the repository root (or anywhere)
#
# Knobs (environment): REPLICAS ("10 100 300"; a run with 0 replicas comes
# first, the baseline the others are measured against), RELAYS ("0": the
# relays each N runs through, one run each; "0 4" compares following the
# server with following 4 relays), RATE (500 writes/s),
# WRITE (catalog: PUT /v1/catalog/register; kv: PUT /v1/kv/...), POOL (1000
# distinct instances or keys the writes cycle through), IDLE (5 s), DURATION
# (20 s of writes per N), SAMPLE_MS (100: lag sampling), DRAIN_SECONDS (120:
# bound on the wait for replicas behind after the writes), SERVICES (10000),
# INSTANCES (5), NODES (1000), SYNC_REPLICAS ("1 10": replicas syncing the big
# catalog at once, one run each), PIN (1: the server and the writer on CPU
# 0, the replicas on CPU 1), TOOL_GOGC (400: the replicas' process), PORT_BASE
# (29600), WAIT_QUIET (seconds to wait for other processes to leave the CPUs
# alone, 0), KEEP_TMP (1 keeps the work directory), MAX_SECONDS (hard bound on
# the whole run).
# See bench/README.md ("Fan-out") for what is measured and how to read it.
set -euo pipefail

REPLICAS=${REPLICAS:-10 100 300}
RELAYS=${RELAYS:-0}
VIA_RELAY=${VIA_RELAY:-0}
RATE=${RATE:-500}
WRITE=${WRITE:-catalog}
POOL=${POOL:-1000}
IDLE=${IDLE:-5}
DURATION=${DURATION:-20}
SAMPLE_MS=${SAMPLE_MS:-100}
DRAIN_SECONDS=${DRAIN_SECONDS:-120}
SERVICES=${SERVICES:-10000}
INSTANCES=${INSTANCES:-5}
NODES=${NODES:-1000}
SYNC_REPLICAS=${SYNC_REPLICAS:-1 10}
PIN=${PIN:-1}
TOOL_GOGC=${TOOL_GOGC:-400}
PORT_BASE=${PORT_BASE:-29600}
WAIT_QUIET=${WAIT_QUIET:-0}
QUIET_CORES=${QUIET_CORES:-0.25}
KEEP_TMP=${KEEP_TMP:-0}
# The runs: the baseline, then every N through every number of relays.
runs="0:0"
for n in $REPLICAS; do for r in $RELAYS; do runs+=" $n:$r"; done; done
# Each run: sync, idle, writes, the drain of slow replicas.
MAX_SECONDS=${MAX_SECONDS:-$((1200 + WAIT_QUIET + $(wc -w <<<"$runs") * (IDLE + DURATION + DRAIN_SECONDS + 60)))}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results_dir="$repo/bench/results"
tmp=$(mktemp -d /tmp/beacon-fanout.XXXXXX)
watchdog_pid=""
declare -A pid=() # name -> pid of a process the cleanup stops (empty when stopped)

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_watchdog

# --- 1. binaries, CPUs, file descriptors, ports ----------------------------------
command -v curl >/dev/null || die "curl is needed"
[[ $WRITE == catalog || $WRITE == kv ]] || die "WRITE must be catalog or kv, not '$WRITE'"
if [[ $VIA_RELAY == 1 ]]; then
	for r in $RELAYS; do ((r == 0)) || die "VIA_RELAY=1 takes RELAYS=0: relays follow servers only, never another relay"; done
fi
cd "$repo"
log "building beacon (go build .), bench/cmd/fanout and bench/cmd/register"
build_bench fanout register

# Pinning keeps the server's core for the server: the replicas' process
# (hundreds of replicas applying every write) would otherwise take both
# cores and the server's figures would measure the competition. The
# writer is a process of its own, on the server's core, so the write rate
# holds however busy the replicas are.
server_prefix=() tool_prefix=() writer_cpus=""
if [[ $PIN == 1 ]]; then
	if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
		server_prefix=(taskset -c 0) tool_prefix=(taskset -c 1) writer_cpus=0
	else
		log "PIN=1 needs 2 CPUs and taskset; running unpinned"
		PIN=0
	fi
fi

# The replicas' process holds two connections per replica, the server one.
max_n=0
for n in $REPLICAS $SYNC_REPLICAS; do ((n > max_n)) && max_n=$n; done
need=$((3 * max_n + 1024))
if (($(ulimit -n) < need)); then
	ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	(($(ulimit -n) >= need)) || die "open files limit $(ulimit -n) (hard $(ulimit -Hn)) is below the $need that $max_n replicas need"
fi

# Ports: DNS, HTTP, RPC, serf LAN, serf WAN; then the relay's (VIA_RELAY):
# the first free block.
base=$(free_port_block 10)
DNS_PORT=$base HTTP_PORT=$((base + 1)) RPC_PORT=$((base + 2)) LAN_PORT=$((base + 3)) WAN_PORT=$((base + 4))
HTTP=127.0.0.1:$HTTP_PORT

# Background load: other processes on the 2 cores depress and blur every figure.
wait_quiet
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "background load before the run: $bg_load cores busy; load average $load_before"

# --- 2. the server ------------------------------------------------------------------
mkdir -p "$tmp/server"
cat >"$tmp/server/Corefile" <<EOF
consul:$DNS_PORT {
    bind 127.0.0.1
    discovery {
        datacenter dc1
        node server
        data_dir $tmp/server/data
        server
        bootstrap_expect 1
        bind 127.0.0.1
        http $HTTP
        rpc 127.0.0.1:$RPC_PORT
        serf_lan 127.0.0.1:$LAN_PORT
        serf_wan 127.0.0.1:$WAN_PORT
    }
}
EOF
# start_agent NAME CURL_ARGS...: starts beacon on $tmp/NAME/Corefile (on
# the server's CPU) and polls until curl with CURL_ARGS succeeds, 60 s at most.
start_agent() {
	local name=$1
	shift
	"${server_prefix[@]}" "$tmp/beacon" agent -conf "$tmp/$name/Corefile" >"$tmp/$name/beacon.log" 2>&1 &
	pid[$name]=$!
	local deadline=$((SECONDS + 60))
	until curl -fsS --max-time 5 "$@" >/dev/null 2>&1; do
		kill -0 "${pid[$name]}" 2>/dev/null || die "the $name exited during start-up"
		((SECONDS < deadline)) || die "the $name was not ready within 60s"
		sleep 0.25
	done
}
log "starting the server: HTTP $HTTP, RPC 127.0.0.1:$RPC_PORT$([[ $PIN == 1 ]] && echo ', on CPU 0')"
start_agent server -X PUT -d ready "http://$HTTP/v1/kv/ready"
log "the server leads and accepts writes"

# The stream's source the replicas follow: the server, or (VIA_RELAY) a
# relay agent following it, on the server's CPU.
source_pid=${pid[server]} source_rpc=127.0.0.1:$RPC_PORT source_name=server
if [[ $VIA_RELAY == 1 ]]; then
	mkdir -p "$tmp/relay"
	cat >"$tmp/relay/Corefile" <<EOF
consul:$((base + 5)) {
    bind 127.0.0.1
    discovery {
        datacenter dc1
        node relay
        data_dir $tmp/relay/data
        relay
        bind 127.0.0.1
        http 127.0.0.1:$((base + 6))
        rpc 127.0.0.1:$((base + 7))
        serf_lan 127.0.0.1:$((base + 8))
        join 127.0.0.1:$LAN_PORT
    }
}
EOF
	log "starting a relay agent: RPC 127.0.0.1:$((base + 7)), following the server"
	start_agent relay "http://127.0.0.1:$((base + 6))/v1/kv/ready?stale"
	source_pid=${pid[relay]} source_rpc=127.0.0.1:$((base + 7)) source_name=relay
	log "the relay holds the state"
fi

kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1" | head -n 1; }
# fanout N IDLE DURATION [RELAYS]: one run of the tool; its output in $tmp/run.<label>.
fanout() { # LABEL N IDLE DURATION [RELAYS]
	local label=$1 n=$2 idle=$3 dur=$4 relays=${5:-0}
	timeout $((idle + dur + DRAIN_SECONDS + 600)) env GOGC="$TOOL_GOGC" "${tool_prefix[@]}" "$tmp/fanout" \
		-http "$HTTP" -rpc "$source_rpc" -server-pid "$source_pid" -replicas "$n" -relays "$relays" \
		-write "$WRITE" -rate "$RATE" -pool "$POOL" -idle "${idle}s" -duration "${dur}s" \
		-sample "${SAMPLE_MS}ms" -drain-timeout "${DRAIN_SECONDS}s" -clk-tck "$clk_tck" -writer-cpus "$writer_cpus" \
		>"$tmp/run.$label" 2>"$tmp/run.$label.err" || {
		cat "$tmp/run.$label" "$tmp/run.$label.err" >&2
		die "fanout with $n replicas failed"
	}
	kill -0 "${pid[server]}" 2>/dev/null || die "the server died during the run with $n replicas"
	kill -0 "$source_pid" 2>/dev/null || die "the $source_name died during the run with $n replicas"
}

# --- 3. fan-out: N replicas, idle then writes ------------------------------------------
for run in $runs; do
	n=${run%:*} r=${run#*:}
	log "fan-out: $n replicas$( ((r > 0)) && echo " through $r relays"), ${IDLE}s idle, ${DURATION}s at $RATE $WRITE writes/s"
	fanout "n${n}r$r" "$n" "$IDLE" "$DURATION" "$r"
	w=$(grep '^writes ' "$tmp/run.n${n}r$r")
	l=$(grep '^lag ' "$tmp/run.n${n}r$r" || true)
	log "  $(kv "$w" rate) writes/s, server $(kv "$w" server_cores) cores ($(kv "$w" server_us_per_write) µs/write), $(kv "$w" bytes_per_entry_delivered) bytes per replica and write, lag p99 $(kv "$l" time_p99_ms) ms, other processes $(kv "$w" other_cores) cores"
	if grep -q '^first_error=' "$tmp/run.n${n}r$r"; then log "  $(grep '^first_error=' "$tmp/run.n${n}r$r")"; fi
done
rss_fanout=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$source_pid/status")

# --- 4. the big catalog, and new replicas syncing it -----------------------------------
log "registering $SERVICES services × $INSTANCES instances on $NODES nodes"
reg_out=$(timeout 900 "$tmp/register" -http "$HTTP" -services "$SERVICES" -instances "$INSTANCES" -nodes "$NODES" \
	-concurrency 16) || die "registration failed: $reg_out"
log "$reg_out"
reg_rate=$(sed -n 's/.*: \([0-9]*\) registrations\/s.*/\1/p' <<<"$reg_out")
rss_catalog=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$source_pid/status")
for n in $SYNC_REPLICAS; do
	log "sync: $n new replicas of the $((SERVICES * INSTANCES))-instance catalog"
	fanout "sync$n" "$n" 0 0
	s=$(grep '^sync ' "$tmp/run.sync$n")
	log "  all synced in $(kv "$s" all_s) s at index $(kv "$s" index_max); $(kv "$s" bytes_per_replica) bytes and $(kv "$s" heap_per_replica_kb) KB of heap per replica"
done
[[ $VIA_RELAY == 1 ]] && stop_server relay
stop_server server

# --- 5. report -----------------------------------------------------------------------------
stamp=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$results_dir"
report="$results_dir/fanout-$stamp.md"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
base_w=$(grep '^writes ' "$tmp/run.n0r0")
base_i=$(grep '^idle ' "$tmp/run.n0r0")
f() { awk "BEGIN { printf \"$1\", $2 }"; }
{
	echo "# beacon fan-out benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) cores ($cpu_model), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr), $(go version | cut -d' ' -f3-)"
	echo "- load before the run: $bg_load cores busy (of $(nproc)), load average $load_before; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- one server (bootstrap_expect 1, raft-boltdb with fsync)$([[ $PIN == 1 ]] && echo ' on CPU 0, with the writer process; the replicas, the proxy and the lag sampler in one process on CPU 1' || echo ', unpinned'); replicas' process GOGC=$TOOL_GOGC"
	echo "- writes: $RATE/s, paced by the clock, $WRITE ($([[ $WRITE == catalog ]] && echo "PUT /v1/catalog/register, one instance of $POOL each, its port changed" || echo "PUT /v1/kv/fanout/<n> of $POOL keys, 100-byte values")); ${DURATION} s per N after ${IDLE} s idle$([[ $WRITE == catalog ]] && echo "; the fan-out runs' catalog holds only those $POOL instances")"
	[[ $VIA_RELAY == 1 ]] && echo "- **VIA_RELAY=1: the replicas follow a relay agent (a client agent with \`relay\`, its own process on the server's CPU, following the server); every \"server\" figure below (CPU, write calls, bytes, VmRSS) is the relay's.** The writes still go to the server, and the lag is from the server's applied index."
	echo "- bytes: the stream's payload (beacon's frames) the server sent, counted by the tool's proxy; TCP/IP headers not included"
	echo
	echo "## Fan-out at $RATE writes/s"
	echo
	echo "| replicas | relays | writes/s | write p50 / p99 (ms) | server cores | server CPU per write (µs) | … per replica and write, over the baseline (µs) | server write syscalls per replica and write | bytes per replica and write | per replica at that rate (Mbit/s) | replica lag behind the server, p50 / p99 / max (ms) | index lag p99 / max | not drained / reconnects / resyncs | replicas' process (cores) | other processes + steal (cores) |"
	echo "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|"
	for run in $runs; do
		n=${run%:*} r=${run#*:}
		w=$(grep '^writes ' "$tmp/run.n${n}r$r")
		l=$(grep '^lag ' "$tmp/run.n${n}r$r" || true)
		marg="—" sysc="—" lagc="—" idxc="—"
		if ((n > 0)); then
			marg=$(f "%.2f" "($(kv "$w" server_us_per_write) - $(kv "$base_w" server_us_per_write)) / $n")
			sysc=$(f "%.2f" "($(kv "$w" server_syscw_per_write) - $(kv "$base_w" server_syscw_per_write)) / $n")
			lagc="$(kv "$l" time_p50_ms) / $(kv "$l" time_p99_ms) / $(kv "$l" time_max_ms)"
			idxc="$(kv "$l" index_p99) / $(kv "$l" index_max)"
			[[ $(kv "$l" unresolved) != 0 ]] && lagc+=" ($(kv "$l" unresolved) not reached)"
		fi
		echo "| $n | $r | $(kv "$w" rate) | $(kv "$w" p50_ms) / $(kv "$w" p99_ms) | $(kv "$w" server_cores) | $(kv "$w" server_us_per_write) | $marg | $sysc | $(kv "$w" bytes_per_entry_delivered) | $(kv "$w" replica_mbit_s_at_rate) | $lagc | $idxc | $(kv "$w" not_drained) / $(kv "$w" reconnects) / $(kv "$w" resyncs) | $(kv "$w" self_cores) | $(kv "$w" other_cores) |"
	done
	echo
	late="" errs=""
	for run in $runs; do
		n=${run%:*} r=${run#*:}
		w=$(grep '^writes ' "$tmp/run.n${n}r$r")
		late+="${late:+, }$n/$r: $(kv "$w" late)" errs+="${errs:+, }$n/$r: $(kv "$w" errors)"
	done
	echo "Writes that fell due while 64 were in flight and were skipped (late), by replicas/relays: $late. Write errors: $errs."
	echo
	echo "Server cores: during the writes. Server CPU per write: from the first write until every replica held the last one (or DRAIN_SECONDS), so that what the server sent after the writes to replicas still behind counts; the column after it is that minus the baseline's, divided by N. Write syscalls are the server's write(2) calls (/proc/PID/io): a flush of a stream is one, so about 1 per replica and write means every write went out to every replica on its own. Bytes: the payload the proxy saw per entry each replica received. With relays the server streams to the relays alone: its CPU, write calls and bytes per replica are per replica of the fleet behind them, the relays run in the replicas' process, and the lag is the replicas', two hops from the server."
	echo
	echo "The lag is the time from the server's answer giving its applied index to each replica applying it, sampled every ${SAMPLE_MS} ms (p50/p99/max over samples × replicas). All replicas share one core$([[ $PIN == 1 ]] || echo ' (unpinned: the machine)'): when N × $RATE applies a second are more than it does, the lag grows with N and measures this process, not the server (see \"replicas' process\"); the server then keeps sending after the writes (\"not drained\" counts the replicas still behind after DRAIN_SECONDS=$DRAIN_SECONDS)."
	echo
	echo "## Idle streams"
	echo
	echo "| replicas | relays | server cores | … per replica (µs/s) | server write syscalls per replica (/s) | bytes per replica (/s) | server VmRSS before the replicas → with them (MB) | per stream (KB) |"
	echo "|---:|---:|---:|---:|---:|---:|---|---:|"
	for run in $runs; do
		n=${run%:*} r=${run#*:}
		i=$(grep '^idle ' "$tmp/run.n${n}r$r")
		per="—"
		((n > 0)) && per=$(f "%.1f" "($(kv "$i" server_cores) - $(kv "$base_i" server_cores)) * 1e6 / $n")
		echo "| $n | $r | $(kv "$i" server_cores) | $per | $(kv "$i" server_syscw_per_replica_s) | $(kv "$i" bytes_per_replica_s) | $(kv "$i" server_rss_before_mb) → $(kv "$i" server_rss_mb) | $(kv "$i" rss_per_stream_kb) |"
	done
	echo
	echo "## Syncing the fan-out runs' replicas ($POOL instances)"
	echo
	echo "| replicas | relays | all synced (s) | per replica p50 (s) | bytes per replica | server CPU per replica (ms) | heap per replica (KB) |"
	echo "|---:|---:|---:|---:|---:|---:|---:|"
	for run in ${runs#0:0}; do
		n=${run%:*} r=${run#*:}
		s=$(grep '^sync ' "$tmp/run.n${n}r$r")
		echo "| $n | $r | $(kv "$s" all_s) | $(kv "$s" p50_s) | $(kv "$s" bytes_per_replica) | $(kv "$s" server_cpu_ms_per_replica) | $(kv "$s" heap_per_replica_kb) |"
	done
	echo
	echo "## New replicas syncing a $((SERVICES * INSTANCES))-instance catalog"
	echo
	echo "$SERVICES services × $INSTANCES instances on $NODES nodes (bench/cmd/register -nodes $NODES), registered at $reg_rate registrations/s (catalog API, 16 in flight), plus the $POOL instances of the write phases. Server VmRSS: $rss_fanout MB after the fan-out runs, $rss_catalog MB with the catalog. Time from NewClient to Replica().Synced(), all replicas started at once."
	echo
	echo "| new replicas | first / p50 / last synced (s) | index reached (server's) | bytes per replica | server CPU per replica (ms) | replicas' process CPU (s) | live heap before → after (MB) | heap per replica (MB) | other processes + steal (cores) |"
	echo "|---:|---|---|---:|---:|---:|---|---:|---:|"
	for n in $SYNC_REPLICAS; do
		s=$(grep '^sync ' "$tmp/run.sync$n")
		echo "| $n | $(kv "$s" first_s) / $(kv "$s" p50_s) / $(kv "$s" last_s) | $(kv "$s" index_max) ($(kv "$s" server_index_after)) | $(kv "$s" bytes_per_replica) | $(kv "$s" server_cpu_ms_per_replica) | $(kv "$s" self_cpu_s) | $(kv "$s" heap_before_mb) → $(kv "$s" heap_after_mb) | $(f "%.1f" "$(kv "$s" heap_per_replica_kb) / 1024") | $(kv "$s" other_cores) |"
	done
	echo
	echo "## Raw output of bench/cmd/fanout"
	echo
	echo '```'
	for run in $runs; do n=${run%:*} r=${run#*:}; cat "$tmp/run.n${n}r$r"; done
	for n in $SYNC_REPLICAS; do cat "$tmp/run.sync$n"; done
	echo '```'
} >"$report"
cat "$report"
log "report written to $report"
