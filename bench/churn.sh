#!/usr/bin/env bash
# DNS tail latency under registration churn (issue 16's aim: at 50,000
# instances, DNS p99 ≤ 1.5 ms at 5,000 q/s on a client agent while 300
# registrations/s churn the catalog). Loopback only: a server on 127.0.92.1
# and a client agent on 127.0.92.2, each with its own ports from PORT_BASE.
# SERVICES × INSTANCES instances on NODES nodes are registered through the
# server's catalog API (bench/cmd/register); once the client agent's replica
# holds them all, dnsperf sends QPS queries a second for random services to
# the client agent's DNS for DURATION seconds, once quiet and once while
# bench/cmd/churn re-registers RATE instances a second through the server;
# then the same against the server's DNS (SERVER_DNS=1), and two controls
# (CONTROLS=1): CoreDNS's whoami plugin in the client agent's process (the
# same runtime, heap and replica, no catalog read), and whoami in a process
# of its own without a catalog (127.0.92.3: the floor of dnsperf, CoreDNS
# and this machine). Per-query latencies come from dnsperf -v.
#
#   bash bench/churn.sh       # from the repository root (or anywhere)
#
# Knobs (environment): SERVICES (10000), INSTANCES (5), NODES (1000), QPS
# (dnsperf -Q, 5000), RATE (churn operations/s, 300), MODE (what a churn
# write changes: meta, tag, port or dereg; meta), WORKERS (churn writes in
# flight at most, 32), DURATION (s per dnsperf run, 30), CLIENTS (dnsperf -c,
# 8), INFLIGHT (dnsperf -q, 100), SLOW_MS (1.5: the latency a query counts as
# slow above, for the GC attribution), SERVER_DNS (1: also measure the
# server's DNS), CONTROLS (1: the two whoami controls), PROFILE (1: CPU
# profiles of the client agent during its two discovery runs, and both
# agents' allocation profiles during its churn run, through CoreDNS's pprof
# plugin; 0: none), GCTRACE (1: the agents run with
# GODEBUG=gctrace=1; the report counts their GC cycles per run and how many
# slow queries fell in one), PIN (0: unpinned; 1: the server and the churn
# tool on CPU 0, the client agent and the floor process on CPU 1, dnsperf
# free: the client agent gets a core of its own, as it would with its
# server on another machine), PORT_BASE (29200), WAIT_QUIET (seconds to wait
# for other processes to leave the CPUs alone, 0), KEEP_TMP (1 keeps the
# work directory), MAX_SECONDS (hard bound on the whole run).
# See bench/README.md ("DNS under churn") for what is measured and how to
# read it.
set -euo pipefail

SERVICES=${SERVICES:-10000}
INSTANCES=${INSTANCES:-5}
NODES=${NODES:-1000}
QPS=${QPS:-5000}
RATE=${RATE:-300}
MODE=${MODE:-meta}
WORKERS=${WORKERS:-32}
DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-8}
INFLIGHT=${INFLIGHT:-100}
SLOW_MS=${SLOW_MS:-1.5}
SERVER_DNS=${SERVER_DNS:-1}
CONTROLS=${CONTROLS:-1}
PROFILE=${PROFILE:-1}
GCTRACE=${GCTRACE:-1}
PIN=${PIN:-0}
PORT_BASE=${PORT_BASE:-29200}
WAIT_QUIET=${WAIT_QUIET:-0}
QUIET_CORES=${QUIET_CORES:-0.25}
KEEP_TMP=${KEEP_TMP:-0}
MAX_SECONDS=${MAX_SECONDS:-$((900 + WAIT_QUIET + 8 * (DURATION + 20)))}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results_dir="$repo/bench/results"
tmp=$(mktemp -d /tmp/beacon-churn.XXXXXX)
watchdog_pid=""
declare -A pid=()    # name -> pid of an agent the cleanup stops (empty when stopped)
declare -A pstart=() # name -> the agent's start, in epoch seconds (for its gctrace times)
declare -A bg=()     # pid -> what: churn, curl, dnsperf running now (the trap stops them)

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
# lib.sh's cleanup stops the agents; the helpers go first.
churn_cleanup() {
	local rc=$? p
	set +e # (exit "$rc") below must not end the script here
	for p in "${!bg[@]}"; do kill "$p" 2>/dev/null; done
	(exit "$rc")
	cleanup
}
trap churn_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_watchdog

# machine_ticks: "idle+iowait steal" over all cores, from /proc/stat. The
# machine's busy time is wall × CPUs minus idle: this kernel counts idle
# time exactly (NOHZ) but user and system time by ticks, which miss most of
# a bursty load such as a DNS server's (at 5,000 q/s, /proc/stat's busy
# fields counted a third of what the processes' own times did).
machine_ticks() { awk '/^cpu / { print $5 + $6, $9; exit }' /proc/stat; }
ncpu=$(grep -c '^cpu[0-9]' /proc/stat)
# proc_ticks PID: user+system clock ticks of a process.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# proc_start PID: when the process started, epoch seconds (10 ms resolution).
proc_start() {
	awk -v now="$(date +%s.%N)" -v h="$clk_tck" 'FILENAME == "/proc/uptime" { up = $1; next } { st = $22 }
		END { printf "%.3f", now - up + st / h }' /proc/uptime "/proc/$1/stat"
}
# child_cpu: CPU seconds of this shell's finished children (in child_cpu_s).
# bash's `times` must run in this shell, not in a $(…) subshell.
child_cpu() {
	times >"$tmp/times"
	child_cpu_s=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }' "$tmp/times")
}

# --- 1. tools, binaries, ports, background load ---------------------------------
need_dnsperf
command -v curl >/dev/null || die "curl is needed"
[[ $MODE =~ ^(meta|tag|port|dereg)$ ]] || die "MODE must be meta, tag, port or dereg, not '$MODE'"
cd "$repo"
log "building beacon (go build .), bench/cmd/register and bench/cmd/churn"
build_bench register churn

# Ports: the server's DNS, HTTP, RPC, serf LAN, serf WAN, pprof; the client
# agent's DNS, HTTP, serf LAN, pprof (a client listens on no RPC or WAN
# port); the floor process's DNS.
base=$(free_port_block 11)
S_DNS=$base S_HTTP=$((base + 1)) S_RPC=$((base + 2)) S_LAN=$((base + 3)) S_WAN=$((base + 4)) S_PPROF=$((base + 5))
C_DNS=$((base + 6)) C_HTTP=$((base + 7)) C_LAN=$((base + 8)) C_PPROF=$((base + 9)) F_DNS=$((base + 10))
declare -A a_pprof=([server]=$S_PPROF [client]=$C_PPROF)
S_BIND=127.0.92.1 C_BIND=127.0.92.2 F_BIND=127.0.92.3

declare -A cpus=() # name -> the CPUs it is pinned to (PIN=1)
if [[ $PIN == 1 ]]; then
	if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
		cpus=([server]=0 [churn]=0 [client]=1 [floor]=1)
	else
		log "PIN=1 needs 2 CPUs and taskset; running unpinned"
		PIN=0
	fi
fi
# on NAME: the command prefix that pins NAME (nothing when unpinned).
on() { [[ -n ${cpus[$1]:-} ]] && echo "taskset -c ${cpus[$1]}" || true; }

wait_quiet
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "background load before the run: $bg_load cores busy; load average $load_before"

# --- 2. the agents -----------------------------------------------------------------
# launch NAME: starts beacon on $tmp/NAME/Corefile (with gctrace when asked).
launch() {
	local godebug=${GODEBUG:-}
	[[ $GCTRACE == 1 ]] && godebug=${godebug:+$godebug,}gctrace=1
	# shellcheck disable=SC2046 # on's words are meant to split
	GODEBUG=$godebug $(on "$1") "$tmp/beacon" agent -conf "$tmp/$1/Corefile" >"$tmp/$1/beacon.log" 2>&1 &
	pid[$1]=$!
	pstart[$1]=$(proc_start "${pid[$1]}")
}
# agent NAME ROLE BIND DNS HTTP LAN PPROF [RPC WAN]: writes its Corefile and starts it.
agent() {
	local name=$1 role=$2 bind=$3 dns=$4 http=$5 lan=$6 pprof=$7 rpc=${8:-} wan=${9:-}
	mkdir -p "$tmp/$name"
	{
		echo "consul:$dns {"
		echo "    bind $bind"
		echo "    discovery {"
		echo "        datacenter dc1"
		echo "        node $name"
		echo "        data_dir $tmp/$name/data"
		echo "        bind $bind"
		echo "        http 127.0.0.1:$http"
		echo "        serf_lan $bind:$lan"
		if [[ $role == server ]]; then
			echo "        rpc $bind:$rpc"
			echo "        serf_wan $bind:$wan"
			echo "        server"
			echo "        bootstrap_expect 1"
		else
			echo "        join $S_BIND:$S_LAN"
		fi
		echo "    }"
		if [[ $PROFILE == 1 ]]; then echo "    pprof 127.0.0.1:$pprof"; fi
		echo "}"
		# The control in the client agent's process: same runtime and heap, no catalog read.
		if [[ $role == client && $CONTROLS == 1 ]]; then printf 'whoami.test:%s {\n    bind %s\n    whoami\n}\n' "$dns" "$bind"; fi
	} >"$tmp/$name/Corefile"
	launch "$name"
}

log "starting the server ($S_BIND: DNS $S_DNS, HTTP 127.0.0.1:$S_HTTP, RPC $S_RPC)"
agent server server "$S_BIND" "$S_DNS" "$S_HTTP" "$S_LAN" "$S_PPROF" "$S_RPC" "$S_WAN"
deadline=$((SECONDS + 60))
until curl -fsS --max-time 5 -X PUT -d ready "http://127.0.0.1:$S_HTTP/v1/kv/ready" >/dev/null 2>&1; do
	kill -0 "${pid[server]}" 2>/dev/null || die "the server exited during start-up"
	((SECONDS < deadline)) || die "the server accepted no write within 60s"
	sleep 0.25
done
log "starting the client agent ($C_BIND: DNS $C_DNS, HTTP 127.0.0.1:$C_HTTP)"
agent client client "$C_BIND" "$C_DNS" "$C_HTTP" "$C_LAN" "$C_PPROF"
if [[ $CONTROLS == 1 ]]; then
	log "starting the floor process (whoami only, $F_BIND: DNS $F_DNS)"
	mkdir -p "$tmp/floor"
	printf 'whoami.test:%s {\n    bind %s\n    whoami\n}\n' "$F_DNS" "$F_BIND" >"$tmp/floor/Corefile"
	launch floor
fi

# --- 3. the catalog ------------------------------------------------------------------
log "registering $SERVICES services × $INSTANCES instances on $NODES nodes"
reg_out=$(timeout 900 "$tmp/register" -http "127.0.0.1:$S_HTTP" -services "$SERVICES" -instances "$INSTANCES" \
	-nodes "$NODES" -concurrency 16) || die "registration failed: $reg_out"
log "$reg_out"
reg_rate=$(sed -n 's/.*: \([0-9]*\) registrations\/s.*/\1/p' <<<"$reg_out")

# index HTTPPORT [QUERY]: the X-Consul-Index of /v1/catalog/services (0 when unreachable).
index() {
	curl -fsS --max-time 5 -o /dev/null -D - "http://127.0.0.1:$1/v1/catalog/services${2:-}" 2>/dev/null |
		awk 'tolower($1) == "x-consul-index:" { i = $2 + 0 } END { print i + 0 }'
}
# caught_up SECONDS: polls until the client agent's replica has the server's
# index (taken once, at the start); prints the time it took, fails after SECONDS.
caught_up() {
	local want t0 now
	want=$(index "$S_HTTP")
	((want > 0)) || { log "the server gives no index"; return 1; }
	t0=$(date +%s.%N)
	while :; do
		kill -0 "${pid[client]}" 2>/dev/null || { log "the client agent exited"; return 1; }
		now=$(date +%s.%N)
		(($(index "$C_HTTP" '?stale') >= want)) && break
		awk -v a="$t0" -v b="$now" -v l="$1" 'BEGIN { exit !(b - a < l) }' || return 1
		sleep 0.05
	done
	awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'
}
log "waiting for the client agent's replica to reach the server's index"
caught_up 120 >/dev/null || die "the client agent's replica did not reach the server's index within 120 s"
n_services=$(curl -fsS --max-time 10 "http://127.0.0.1:$C_HTTP/v1/catalog/services?stale" | tr ',' '\n' | grep -c ':' || true)
((n_services >= SERVICES + 1)) || die "the client agent's replica holds $n_services services, not $((SERVICES + 1))"
log "the client agent's replica holds the catalog ($n_services services)"

# --- 4. query files, warm-up -------------------------------------------------------------
# Random services, a fresh random sequence per run (awk's srand(seed)), and
# every service once for the warm-up, which fills the plugin's answer cache.
gen_queries() { # SEED
	awk -v n=$((QPS * DURATION + QPS)) -v s="$SERVICES" -v seed="$1" \
		'BEGIN { srand(seed); for (i = 0; i < n; i++) printf "svc%04d.service.consul A\n", int(rand() * s) }'
}
awk -v s="$SERVICES" 'BEGIN { for (i = 0; i < s; i++) printf "svc%04d.service.consul A\n", i }' >"$tmp/q.all"
echo "whoami.test A" >"$tmp/q.whoami"

# The targets: what answers (the process whose GC counts), where, and what is asked.
targets=(client)
[[ $CONTROLS == 1 ]] && targets+=(whoami)
[[ $SERVER_DNS == 1 ]] && targets+=(server)
[[ $CONTROLS == 1 ]] && targets+=(floor)
declare -A t_proc=([client]=client [whoami]=client [server]=server [floor]=floor)
declare -A t_addr=([client]=$C_BIND [whoami]=$C_BIND [server]=$S_BIND [floor]=$F_BIND)
declare -A t_port=([client]=$C_DNS [whoami]=$C_DNS [server]=$S_DNS [floor]=$F_DNS)
declare -A t_name=([client]="client agent, discovery" [whoami]="client agent, whoami" [server]="server, discovery" [floor]="floor: whoami alone")
for t in client server; do
	[[ $t == server && $SERVER_DNS != 1 ]] && continue
	timeout 120 dnsperf -s "${t_addr[$t]}" -p "${t_port[$t]}" -d "$tmp/q.all" -n 1 -c "$CLIENTS" -T 1 -q "$INFLIGHT" \
		-Q 20000 -t 2 >"$tmp/warmup.$t" 2>&1 || { cat "$tmp/warmup.$t" >&2; die "dnsperf warm-up against the $t failed"; }
	grep -q 'Queries lost: *0 ' "$tmp/warmup.$t" || log "warm-up against the $t: $(grep 'Queries lost' "$tmp/warmup.$t")"
done

# --- 5. the runs -----------------------------------------------------------------------
# gc_lines NAME: how many gctrace lines the agent's log holds.
gc_lines() { grep -c '^gc [0-9]' "$tmp/$1/beacon.log" || true; }
# gc_summary NAME FROM TO CPU_S: "cycles mark_clock_ms max_stw_ms gc_cpu_ms
# gc_cpu_pct" of the agent's gctrace lines FROM+1..TO (gc_cpu: all of the
# cycles' CPU, assists, dedicated, fractional and idle marking, as a share of
# the agent's CPU_S).
gc_summary() {
	(($3 > $2)) || { echo "0 0.0 0.000 0 0.0"; return; }
	grep '^gc [0-9]' "$tmp/$1/beacon.log" | sed -n "$(($2 + 1)),${3}p" | awk -v cpu="$4" '
		{ for (i = 1; i <= NF; i++) if ($(i + 1) == "ms" && $(i + 2) ~ /^clock/) c = $i; else if ($(i + 1) == "ms" && $(i + 2) ~ /^cpu/) u = $i
		  split(c, a, "+"); mark += a[2]; s = (a[1] > a[3] ? a[1] : a[3]); if (s > stw) stw = s
		  gsub("/", "+", u); k = split(u, b, "+"); for (j = 1; j <= k; j++) gcpu += b[j]; n++ }
		END { printf "%d %.1f %.3f %.0f %.1f", n, mark, stw, gcpu, (cpu > 0 ? gcpu / 10 / cpu : 0) }'
}
# gc_attribution "NAME..." PERF T0: "slow slow_in_gc window_pct": the queries
# of the dnsperf output PERF slower than SLOW_MS, how many of them were
# answered during a GC cycle of one of the agents NAME (±30 ms: the times
# are aligned to within some 10 ms), and how much of the run those windows
# cover. dnsperf started at T0 (epoch seconds) and paces its queries at QPS,
# so the i-th answer came at about T0 + i/QPS.
gc_attribution() {
	local n
	for n in $1; do
		{ grep '^gc [0-9]' "$tmp/$n/beacon.log" || true; } | awk -v ps="${pstart[$n]}" -v t0="$3" '{
			at = $3; sub(/^@/, "", at); sub(/s$/, "", at)
			for (i = 1; i <= NF; i++) if ($(i + 1) == "ms" && $(i + 2) ~ /^clock/) c = $i
			split(c, a, "+"); s = ps + at - t0; printf "%.4f %.4f\n", s, s + (a[1] + a[2] + a[3]) / 1000 }'
	done | sort -g >"$tmp/gcw"
	# The windows, widened and merged where they overlap; the answers come in time order.
	awk -v q="$QPS" -v d="$DURATION" -v m=0.03 -v thr="$SLOW_MS" '
		NR == FNR { a = $1 - m; b = $2 + m; if (b < 0 || a > d) next
			if (n > 0 && a <= e[n]) { if (b > e[n]) e[n] = b } else { n++; s[n] = a; e[n] = b } next }
		$1 == ">" && $2 != "T" && NF >= 5 { i++; t = i / q; while (j < n && e[j + 1] < t) j++
			if ($NF * 1000 > thr) { slow++; if (j < n && t >= s[j + 1]) ingc++ } }
		END { for (k = 1; k <= n; k++) { a = (s[k] < 0 ? 0 : s[k]); b = (e[k] > d ? d : e[k]); if (b > a) cov += b - a }
			printf "%d %d %.1f", slow, ingc, cov * 100 / d }' "$tmp/gcw" "$2"
}

# run LABEL TARGET CHURN: one dnsperf run against TARGET; with CHURN=1 while
# bench/cmd/churn writes. Its figures go to $tmp/res.LABEL.
run() {
	local label=$1 target=$2 churn=$3 proc q s0 s1 c0 c1 f0=0 f1=0 m0 m1 w0 w1 k0 k1 g0 g1 prof_pid="" churn_pid="" secs a p
	local alloc_pids=()
	proc=${t_proc[$target]}
	if [[ $target == whoami || $target == floor ]]; then q=$tmp/q.whoami; else
		q=$tmp/q.$label
		gen_queries "$((RANDOM + 1))" >"$q"
	fi
	if [[ $churn == 1 ]]; then
		# shellcheck disable=SC2046
		$(on churn) "$tmp/churn" -http "127.0.0.1:$S_HTTP" -services "$SERVICES" -instances "$INSTANCES" -nodes "$NODES" \
			-rate "$RATE" -workers "$WORKERS" -mode "$MODE" -seed "$((RANDOM + 1))" -duration "$((DURATION + 4))s" \
			>"$tmp/churn.$label" 2>"$tmp/churn.$label.err" &
		churn_pid=$!
		bg[$churn_pid]=churn
		deadline=$((SECONDS + 30))
		until grep -qs '^started' "$tmp/churn.$label.err"; do
			kill -0 "$churn_pid" 2>/dev/null || {
				unset "bg[$churn_pid]"
				cat "$tmp/churn.$label" "$tmp/churn.$label.err" >&2
				die "churn exited before its first write"
			}
			((SECONDS < deadline)) || die "churn made no write within 30 s"
			sleep 0.05
		done
	fi
	g0=$(gc_lines "$proc")
	s0=$(proc_ticks "${pid[server]}") c0=$(proc_ticks "${pid[client]}") m0=$(machine_ticks) w0=$(date +%s.%N)
	[[ -n ${pid[floor]:-} ]] && f0=$(proc_ticks "${pid[floor]}")
	child_cpu
	k0=$child_cpu_s
	if [[ $PROFILE == 1 && $target == client ]]; then
		secs=$((DURATION > 4 ? DURATION - 2 : 1))
		curl -fsS --max-time $((secs + 30)) -o "$tmp/cpu.$label.pprof" \
			"http://127.0.0.1:$C_PPROF/debug/pprof/profile?seconds=$secs" >/dev/null 2>&1 &
		prof_pid=$!
		bg[$prof_pid]=curl
		if [[ $churn == 1 ]]; then
			# What each agent allocates while the churn runs: its GC work
			# grows with that.
			for a in server client; do
				curl -fsS --max-time $((secs + 30)) -o "$tmp/allocs.$a.pprof" \
					"http://127.0.0.1:${a_pprof[$a]}/debug/pprof/allocs?seconds=$secs" >/dev/null 2>&1 &
				alloc_pids+=($!)
				bg[$!]=curl
			done
		fi
	fi
	# In the background, so that a signal's trap runs at once rather than after dnsperf.
	timeout $((DURATION + 60)) dnsperf -s "${t_addr[$target]}" -p "${t_port[$target]}" -d "$q" -l "$DURATION" -c "$CLIENTS" \
		-T 1 -q "$INFLIGHT" -Q "$QPS" -t 2 -v >"$tmp/perf.$label" 2>&1 &
	local perf_pid=$!
	bg[$perf_pid]=dnsperf
	local rc=0
	wait "$perf_pid" || rc=$?
	unset "bg[$perf_pid]"
	((rc == 0)) || { tail -n 30 "$tmp/perf.$label" >&2; die "dnsperf $label failed"; }
	w1=$(date +%s.%N)
	s1=$(proc_ticks "${pid[server]}") c1=$(proc_ticks "${pid[client]}") m1=$(machine_ticks)
	[[ -n ${pid[floor]:-} ]] && f1=$(proc_ticks "${pid[floor]}")
	child_cpu
	k1=$child_cpu_s
	g1=$(gc_lines "$proc")
	if [[ -n $prof_pid ]]; then
		wait "$prof_pid" || log "the CPU profile of $label could not be fetched"
		unset "bg[$prof_pid]"
	fi
	for p in "${alloc_pids[@]}"; do
		wait "$p" || log "an allocation profile of $label could not be fetched"
		unset "bg[$p]"
	done
	local churn_line="" churn_cpu=0
	if [[ -n $churn_pid ]]; then
		rc=0
		wait "$churn_pid" || rc=$?
		unset "bg[$churn_pid]"
		((rc == 0)) || { cat "$tmp/churn.$label" "$tmp/churn.$label.err" >&2; die "churn failed"; }
		churn_line=$(grep '^churn ' "$tmp/churn.$label")
		# The churn tool's CPU, prorated to the dnsperf run.
		churn_cpu=$(awk -v l="$churn_line" -v w="$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')" 'BEGIN {
			n = split(l, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
			print (v["seconds"] > 0 ? v["cpu_s"] * w / v["seconds"] : 0) }')
	fi
	for p in server client floor; do
		[[ -z ${pid[$p]:-} ]] || kill -0 "${pid[$p]}" 2>/dev/null || die "the $p died during $label"
	done
	# Latencies: "> RCODE name type seconds" per answered query, "> T …" per timeout.
	awk '$1 == ">" && $2 != "T" && NF >= 5 { print $NF * 1000 }' "$tmp/perf.$label" | sort -g >"$tmp/lat.$label"
	local pcts proc_cpu_s
	pcts=$(awk '{ v[NR] = $1 } END {
		n = NR; split("0.5 0.9 0.99 0.999", q, " ")
		for (i = 1; i <= 4; i++) { k = int(q[i] * n + 0.5); if (k < 1) k = 1; if (k > n) k = n; printf "%.3f ", v[k] }
		printf "%.3f %d", v[n], n }' "$tmp/lat.$label")
	case $proc in
	server) proc_cpu_s=$(awk -v a="$s0" -v b="$s1" -v h="$clk_tck" 'BEGIN { printf "%.3f", (b - a) / h }') ;;
	client) proc_cpu_s=$(awk -v a="$c0" -v b="$c1" -v h="$clk_tck" 'BEGIN { printf "%.3f", (b - a) / h }') ;;
	*) proc_cpu_s=$(awk -v a="$f0" -v b="$f1" -v h="$clk_tck" 'BEGIN { printf "%.3f", (b - a) / h }') ;;
	esac
	{
		echo "pcts $pcts"
		awk '/Queries sent:/ { print "sent", $3 } /Queries completed:/ { print "completed", $3 }
			/Queries lost:/ { l = $4; gsub(/[()%]/, "", l); print "lost", $3, l }
			/Queries per second:/ { printf "qps %.0f\n", $4 }
			/Response codes:/ { r = $0; sub(/.*codes: */, "", r); gsub(/ /, "_", r); print "rcodes", r }' "$tmp/perf.$label"
		# cores: server client floor dnsperf churn other steal
		awk -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" -v f0="$f0" -v f1="$f1" -v m0="$m0" -v m1="$m1" -v w0="$w0" -v w1="$w1" \
			-v k0="$k0" -v k1="$k1" -v ch="$churn_cpu" -v h="$clk_tck" -v n="$ncpu" 'BEGIN {
			split(m0, a, " "); split(m1, b, " "); wall = w1 - w0
			srv = (s1 - s0) / h; cli = (c1 - c0) / h; flo = (f1 - f0) / h; perf = k1 - k0
			busy = wall * n - (b[1] - a[1]) / h; steal = (b[2] - a[2]) / h
			printf "cores %.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", srv / wall, cli / wall, flo / wall, perf / wall, ch / wall,
				(busy - srv - cli - flo - perf - ch) / wall, steal / wall }'
		echo "gc $(gc_summary "$proc" "$g0" "$g1" "$proc_cpu_s")"
		# dnsperf sends for DURATION seconds from its start, and exits once the answers are in.
		local t0
		t0=$(awk -v w="$w1" -v d="$DURATION" 'BEGIN { printf "%.3f", w - d }')
		echo "gcslow $(gc_attribution "$proc" "$tmp/perf.$label" "$t0")"
		echo "gcslowall $(gc_attribution "${!pid[*]}" "$tmp/perf.$label" "$t0")"
		echo "churn $churn_line"
	} >"$tmp/res.$label"
}

# val LABEL KEY [FIELD]: a figure of a run (FIELD 2 by default); fields LABEL KEY: the line without its key.
val() { awk -v k="$2" -v f="${3:-2}" '$1 == k { print $f; exit }' "$tmp/res.$1"; }
fields() { awk -v k="$2" '$1 == k { sub(/^[^ ]+ ?/, ""); print; exit }' "$tmp/res.$1"; }
kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1" | head -n 1; }

labels=()
declare -A l_target=() l_churn=()
for t in "${targets[@]}"; do
	for c in 0 1; do
		label=$t-$([[ $c == 1 ]] && echo churn || echo quiet)
		log "$label: ${DURATION}s at $QPS q/s, ${t_name[$t]}$([[ $c == 1 ]] && echo ", $RATE $MODE re-registrations/s")"
		run "$label" "$t" "$c"
		labels+=("$label") l_target[$label]=$t l_churn[$label]=$c
		read -r p50 p90 p99 p999 pmax _ < <(fields "$label" pcts)
		read -r _ sc cc fc _ _ oc st < <(awk '$1 == "cores"' "$tmp/res.$label")
		log "  p50 $p50, p90 $p90, p99 $p99, p99.9 $p999, max $pmax ms; $(val "$label" qps) q/s, lost $(val "$label" lost 3)%; cores: server $sc, client $cc, floor $fc, other $oc"
		if [[ $c == 1 ]]; then
			cl=$(fields "$label" churn)
			log "  churn: $(kv "$cl" rate) ops/s ($(kv "$cl" errors) errors, $(kv "$cl" late) late), write p50 $(kv "$cl" p50_ms) ms, p99 $(kv "$cl" p99_ms) ms"
			catchup=$(caught_up 60) || die "the client agent's replica did not catch up within 60 s after the churn"
			echo "catchup $catchup" >>"$tmp/res.$label"
			log "  the client agent's replica had the server's index ${catchup} s after the churn ended"
		fi
	done
done

mem() { awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "%.0f %.0f\n", r / 1024, h / 1024 }' "/proc/${pid[$1]}/status"; }
read -r rss_c hwm_c < <(mem client)
read -r rss_s hwm_s < <(mem server)
for n in floor client server; do stop_server "$n"; done

# --- 6. profiles ---------------------------------------------------------------------------
stamp=$(date -u +%Y-%m-%d-%H%M%S)
mkdir -p "$results_dir"
# cum_share PROFILE FUNCTION...: the cumulative share of each function in the profile (0% when absent).
cum_share() {
	local prof=$1
	shift
	timeout 120 go tool pprof -top -cum -nodecount=1000 "$tmp/beacon" "$prof" 2>/dev/null | awk -v want="$*" '
		BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) v[w[i]] = "0%" }
		($NF in v) { v[$NF] = $5 }
		END { for (i = 1; i <= n; i++) printf "%s ", v[w[i]] }'
}
# The functions the report breaks the client agent's CPU into.
prof_funcs=(runtime.gcBgMarkWorker runtime.gcAssistAlloc runtime.mallocgc
	'github.com/miekg/dns.(*Server).serveUDPPacket' 'github.com/beacon-dns/beacon/plugin.(*Discovery).ServeDNS'
	'github.com/beacon-dns/beacon/plugin.(*Discovery).readService'
	'github.com/beacon-dns/beacon/raftstore.(*Replica).run' 'github.com/beacon-dns/beacon/raftstore.(*FSM).applyCommand')
prof_top="" prof_cum=""
declare -A prof_total=() prof_shares=() alloc_top=()
if [[ $PROFILE == 1 ]]; then
	for l in client-quiet client-churn; do
		[[ -s $tmp/cpu.$l.pprof ]] || continue
		cp "$tmp/cpu.$l.pprof" "$results_dir/churn-$stamp-$l.cpu.pprof"
		prof_total[$l]=$(timeout 120 go tool pprof -top -nodecount=1 "$tmp/beacon" "$tmp/cpu.$l.pprof" 2>/dev/null |
			sed -n 's/^Duration: \(.*\)/\1/p')
		prof_shares[$l]=$(cum_share "$tmp/cpu.$l.pprof" "${prof_funcs[@]}")
	done
	if [[ -s $tmp/cpu.client-churn.pprof ]]; then
		prof_top=$(timeout 120 go tool pprof -top -nodecount=15 "$tmp/beacon" "$tmp/cpu.client-churn.pprof" 2>/dev/null |
			sed -n '/flat%/,$p' || true)
		prof_cum=$(timeout 120 go tool pprof -top -cum -nodecount=30 "$tmp/beacon" "$tmp/cpu.client-churn.pprof" 2>/dev/null |
			sed -n '/flat%/,$p' || true)
	fi
	# Allocation during the client agent's churn run, by the function that allocated.
	for a in server client; do
		[[ -s $tmp/allocs.$a.pprof ]] || continue
		cp "$tmp/allocs.$a.pprof" "$results_dir/churn-$stamp-$a.allocs.pprof"
		alloc_top[$a]=$(timeout 120 go tool pprof -sample_index=alloc_space -top -nodecount=20 "$tmp/beacon" "$tmp/allocs.$a.pprof" 2>/dev/null |
			sed -n '/^Showing nodes/p; /flat%/,$p' || true)
	done
fi

# --- 7. report -----------------------------------------------------------------------------
report="$results_dir/churn-$stamp.md"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
met() { awk -v v="$1" 'BEGIN { print (v + 0 <= 1.5) ? "met" : "MISSED" }'; }
display() { echo "${t_name[${l_target[$1]}]}, $([[ ${l_churn[$1]} == 1 ]] && echo churn || echo quiet)"; }
{
	echo "# beacon DNS under registration churn, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) cores ($cpu_model), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr), $(go version | cut -d' ' -f3-), $(dnsperf -h 2>&1 | awk '/^Version/ { print "dnsperf " $2 }')"
	echo "- load before the run: $bg_load cores busy (of $(nproc)), load average $load_before; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- catalog: $SERVICES services × $INSTANCES instances = $((SERVICES * INSTANCES)) on $NODES nodes, registered through the server's catalog API at $reg_rate registrations/s (16 in flight)"
	echo "- one server ($S_BIND, bootstrap_expect 1) and one client agent ($C_BIND, its replica fed by the server's change stream)$([[ $CONTROLS == 1 ]] && echo ", and the floor process ($F_BIND, a beacon with only a whoami block)"), $([[ $PIN == 1 ]] && echo "pinned: the server and the churn tool on CPU 0, the client agent and the floor process on CPU 1 (GOMAXPROCS 1 for them), dnsperf free" || echo "unpinned, GOMAXPROCS $(nproc)"); GODEBUG gctrace=$([[ $GCTRACE == 1 ]] && echo 1 || echo 0)"
	echo "- dnsperf: UDP, \`-Q $QPS -l $DURATION -c $CLIENTS -T 1 -q $INFLIGHT -t 2 -v\`: random \`svcNNNN.service.consul A\` (a fresh sequence per run; $INSTANCES A records an answer) after a warm-up asking every service once, or \`whoami.test A\`; latencies are dnsperf's per-query ones (\`-v\`); lost queries are not in the percentiles"
	echo "- churn: bench/cmd/churn, \`-rate $RATE -workers $WORKERS -mode $MODE\`: random instances of the catalog re-registered through the server's \`PUT /v1/catalog/register\`$([[ $MODE == meta ]] && echo ", each write changing the instance's Meta value (the A answer stays the same; the plugin's cached answer for the service is invalidated)"); it starts before dnsperf and ends 4 s after"
	echo
	echo "| run | p50 (ms) | p90 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | p99 ≤ 1.5 ms | answered | lost | q/s | churn ops/s (errors, late) | churn write p50 / p99 (ms) | server cores | client agent cores | floor cores | dnsperf cores | churn tool cores | other processes + steal (cores) |"
	echo "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"
	for l in "${labels[@]}"; do
		read -r p50 p90 p99 p999 pmax n < <(fields "$l" pcts)
		read -r _ sc cc fc pc chc oc st < <(awk '$1 == "cores"' "$tmp/res.$l")
		cl=$(fields "$l" churn)
		crate="—" clat="—"
		[[ $cl == *mode=* ]] && crate="$(kv "$cl" rate) ($(kv "$cl" errors), $(kv "$cl" late))" clat="$(kv "$cl" p50_ms) / $(kv "$cl" p99_ms)"
		other=$oc # busy (all but idle, so steal too) less the processes named
		verdict=$([[ ${l_target[$l]} == client ]] && met "$p99" || echo "(control)")
		[[ ${l_target[$l]} == server ]] && verdict="($(met "$p99") on the server)"
		echo "| $(display "$l") | $p50 | $p90 | $p99 | $p999 | $pmax | $verdict | $n | $(val "$l" lost 2) ($(val "$l" lost 3)%) | $(val "$l" qps) | $crate | $clat | $sc | $cc | $fc | $pc | $chc | $other |"
	done
	echo
	echo "Response codes: $(for l in "${labels[@]}"; do printf '%s: %s; ' "$l" "$(val "$l" rcodes | tr '_' ' ')"; done)"
	echo
	for l in "${labels[@]}"; do
		[[ ${l_churn[$l]} == 1 ]] && echo "After the $l run the client agent's replica had the server's index $(val "$l" catchup) s after the churn ended."
	done
	echo
	if [[ $GCTRACE == 1 ]]; then
		echo "Garbage collection in the process answering, during each run (gctrace). GC CPU: all of the cycles' CPU (assists; dedicated, fractional and idle marking) as a share of the process's CPU in the run. Slow queries in a GC cycle: of the queries slower than $SLOW_MS ms, those answered while a GC cycle ran (±30 ms) — of the process answering, or of any of the beacon processes (server, client agent$([[ $CONTROLS == 1 ]] && echo ", floor")) — against the share of the run those windows cover: if GC had nothing to do with the slow queries, the two would be about equal."
		echo
		echo "| run | GC cycles | concurrent mark, total (ms) | longest stop-the-world (ms) | GC CPU (ms) | GC CPU share | queries > $SLOW_MS ms | … in a GC cycle of the process answering | its GC cycles' share of the run | … in a GC cycle of any beacon process | their share of the run |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%d (%.0f%%)", a, a * 100 / b; else print "—" }'; }
		for l in "${labels[@]}"; do
			read -r n mark stw gcpu share < <(fields "$l" gc)
			read -r slow ingc cover < <(fields "$l" gcslow)
			read -r _ ingc_all cover_all < <(fields "$l" gcslowall)
			echo "| $(display "$l") | $n | $mark | $stw | $gcpu | $share% | $slow | $(pct "$ingc" "$slow") | $cover% | $(pct "$ingc_all" "$slow") | $cover_all% |"
		done
		echo
	fi
	echo "Memory at the end: client agent VmRSS $rss_c MB (VmHWM $hwm_c MB), server VmRSS $rss_s MB (VmHWM $hwm_s MB)."
	if [[ -n ${prof_shares[client-churn]:-} ]]; then
		echo
		echo "## CPU profile of the client agent"
		echo
		echo "Where the client agent's CPU went during its two discovery runs (cumulative share of the profile's samples; \`go tool pprof -top -cum\`):"
		echo
		echo "| run | profile | GC background marking (\`gcBgMarkWorker\`) | GC mark assists (\`gcAssistAlloc\`) | allocation (\`mallocgc\`) | DNS serving (\`serveUDPPacket\`) | … the plugin (\`ServeDNS\`) | … its cache misses (\`readService\`) | replica following the server (\`Replica.run\`) | … applying writes (\`FSM.applyCommand\`) |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		for l in client-quiet client-churn; do
			[[ -n ${prof_shares[$l]:-} ]] || continue
			echo "| $(display "$l") | ${prof_total[$l]} | $(tr -s ' ' '\n' <<<"${prof_shares[$l]}" | sed '/^$/d' | paste -sd'|' | sed 's/|/ | /g') |"
		done
		echo
		echo "During the churn run, top 15 by flat time (\`go tool pprof -top\`):"
		echo
		echo '```'
		echo "$prof_top"
		echo '```'
		echo
		echo "By cumulative time (top 30):"
		echo
		echo '```'
		echo "$prof_cum"
		echo '```'
		echo
		echo "Profiles: \`bench/results/churn-$stamp-client-*.cpu.pprof\` (\`go tool pprof -top\` reads them without the binary)."
	fi
	for a in server client; do
		[[ -n ${alloc_top[$a]:-} ]] || continue
		echo
		echo "## What the $a allocated during the client agent's churn run"
		echo
		echo "\`go tool pprof -sample_index=alloc_space -top\` of \`/debug/pprof/allocs?seconds=N\` over the CPU profile's window (\`bench/results/churn-$stamp-$a.allocs.pprof\`):"
		echo
		echo '```'
		echo "${alloc_top[$a]}"
		echo '```'
	done
} >"$report"
cat "$report"
log "report written to $report"
