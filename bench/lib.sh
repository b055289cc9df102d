# Helpers shared by the benchmark scripts; sourced, not run.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# need_dnsperf: installs Debian's dnsperf when it is missing.
need_dnsperf() {
	command -v dnsperf >/dev/null || (apt-get update && apt-get install -y dnsperf) >&2 || die "cannot install dnsperf"
}

# build_bench CMD...: builds beacon and each bench/cmd/CMD into $tmp, from
# the repository root ($repo).
build_bench() {
	(
		cd "$repo" || exit 1
		timeout 1200 go build -o "$tmp/beacon" . || die "go build . failed"
		for c in "$@"; do
			timeout 600 go build -o "$tmp/$c" "./bench/cmd/$c" || die "building bench/cmd/$c failed"
		done
	) || exit 1
}

clk_tck=$(getconf CLK_TCK)

# busy_cores SECONDS: how many cores the machine kept busy over that time:
# wall time × CPUs minus idle and iowait (from /proc/stat). Not the sum of
# /proc/stat's busy fields: this kernel counts idle time exactly but user
# and system time by ticks, which miss most of a bursty load such as a DNS
# server's (bench/churn.sh measured a third of the processes' own times).
busy_cores() {
	local i0 i1 w0 w1 n
	n=$(grep -c '^cpu[0-9]' /proc/stat)
	i0=$(awk '/^cpu / { print $5 + $6; exit }' /proc/stat) w0=$(date +%s.%N)
	sleep "$1"
	i1=$(awk '/^cpu / { print $5 + $6; exit }' /proc/stat) w1=$(date +%s.%N)
	awk -v a="$i0" -v b="$i1" -v w0="$w0" -v w1="$w1" -v h="$clk_tck" -v n="$n" \
		'BEGIN { v = n - (b - a) / h / (w1 - w0); printf "%.2f", (v < 0 ? 0 : v) }'
}

# wait_quiet: waits up to WAIT_QUIET seconds for the machine to have fewer
# than QUIET_CORES busy cores, other processes on 2 cores depressing and
# blurring every figure; sets bg_load to the busy cores it last saw, and
# warns when it gives up.
wait_quiet() {
	local deadline=$((SECONDS + WAIT_QUIET))
	while :; do
		bg_load=$(busy_cores 3)
		awk -v l="$bg_load" -v q="$QUIET_CORES" 'BEGIN { exit !(l < q) }' && return
		((SECONDS < deadline)) || { log "WARNING: other processes keep $bg_load cores busy; figures will be depressed and noisy"; return; }
		log "other processes keep $bg_load cores busy; waiting for a quiet machine (WAIT_QUIET=${WAIT_QUIET}s)"
		sleep 7
	done
}

port_free() { [[ -z $(ss -Htanu "( sport = :$1 )" 2>/dev/null) ]]; }

# free_port_block SIZE: the first port from PORT_BASE that starts SIZE free
# consecutive ports (blocks aligned on SIZE); fails when there is none
# (it runs in a command substitution, where die would end only the subshell).
free_port_block() {
	local size=$1 base p ok
	for base in $(seq "$PORT_BASE" "$size" $((PORT_BASE + 50 * size))); do
		ok=1
		for p in $(seq "$base" $((base + size - 1))); do port_free "$p" || { ok=0; break; }; done
		[[ $ok == 1 ]] && { echo "$base"; return; }
	done
	log "FAIL: no free block of $size ports from $PORT_BASE"
	return 1
}

# start_watchdog: bounds the whole run to MAX_SECONDS by sending the script
# TERM (its trap cleans up); sets watchdog_pid, which the cleanup kills.
# Every blocking step has its own bound too, so the trap gets to run. The
# sleep must not hold the script's stdout open once the script is done.
start_watchdog() {
	(
		sleep "$MAX_SECONDS" </dev/null >/dev/null 2>&1 &
		trap 'kill $! 2>/dev/null; exit 0' TERM
		wait $!
		log "watchdog: run exceeded ${MAX_SECONDS}s, stopping"
		kill -TERM $$
	) &
	watchdog_pid=$!
}

# The scripts that run agents keep them in the associative array pid
# (name -> pid, empty when stopped), their files under $tmp (each agent's
# log in $tmp/NAME/beacon.log) and the watchdog's pid in watchdog_pid.

# stop_server NAME [SIGNAL]: signals the agent (TERM by default), waits up
# to 5 s, then SIGKILLs it.
stop_server() { # NAME [SIGNAL]
	local n=$1 sig=${2:-TERM} p=${pid[$1]:-}
	[[ -n $p ]] || return 0
	if kill -0 "$p" 2>/dev/null; then
		kill "-$sig" "$p" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	fi
	wait "$p" 2>/dev/null || true
	pid[$n]=""
}

# cleanup, the EXIT trap: stops every agent and the watchdog; on failure
# shows the end of each agent's log and keeps $tmp (also with KEEP_TMP=1).
cleanup() {
	local rc=$? n
	trap - EXIT INT TERM
	for n in "${!pid[@]}"; do stop_server "$n"; done
	[[ -n $watchdog_pid ]] && kill "$watchdog_pid" 2>/dev/null || true
	if [[ $rc -ne 0 && $rc -ne 130 && $rc -ne 143 ]]; then
		for f in "$tmp"/*/beacon.log; do
			[[ -f $f ]] || continue
			log "$f (last 15 lines):"
			tail -n 15 "$f" >&2 || true
		done
	fi
	if [[ $KEEP_TMP == 1 || ($rc -ne 0 && $rc -ne 130 && $rc -ne 143) ]]; then
		log "work files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
