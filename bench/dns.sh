#!/usr/bin/env bash
# DNS benchmark of beacon: discovery plugin vs CoreDNS's file and whoami
# plugins, in one beacon process on one port, under dnsperf.
#
#   bash bench/dns.sh            # from the repository root (or anywhere)
#
# Knobs (environment): DURATION (s per dnsperf run, 15), ROUNDS (2), CLIENTS (8),
# INFLIGHT (dnsperf -q, 100), THREADS (dnsperf -T, 1), MAXQPS (dnsperf -Q, 200000),
# SERVICES (1000), INSTANCES (3), NQUERIES (10000), PORT_BASE (28600),
# PROFILE (auto: CPU-profile the discovery A load when a target is missed;
# 1: always; 0: never), PIN (1: beacon on CPU 0, dnsperf on CPU 1), KEEP_TMP (1),
# WAIT_QUIET (seconds to wait for a machine without other load, 0),
# ROLE (server: the measured beacon is the single server; client: it is a
# client agent, its replica fed by a separate server process),
# MAX_SECONDS (hard bound on the whole run).
# See bench/README.md for what is measured and how to read it.
set -euo pipefail

DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-2}
CLIENTS=${CLIENTS:-8}
INFLIGHT=${INFLIGHT:-100}
THREADS=${THREADS:-1}
MAXQPS=${MAXQPS:-200000}
SERVICES=${SERVICES:-1000}
INSTANCES=${INSTANCES:-3}
NQUERIES=${NQUERIES:-10000}
PORT_BASE=${PORT_BASE:-28600}
PROFILE=${PROFILE:-auto}
PIN=${PIN:-0}
KEEP_TMP=${KEEP_TMP:-0}
ROLE=${ROLE:-server}
[[ $ROLE == server || $ROLE == client ]] || { echo "ROLE must be server or client" >&2; exit 2; }
# Seconds to wait, before starting, for other processes to leave the CPUs
# alone (< QUIET_CORES busy); 0 just measures and reports the background load.
WAIT_QUIET=${WAIT_QUIET:-0}
QUIET_CORES=${QUIET_CORES:-0.25}
# The whole run stops by itself after this many seconds, whatever happens.
MAX_SECONDS=${MAX_SECONDS:-$((1500 + WAIT_QUIET + ROUNDS * 5 * (DURATION + 5)))}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results_dir="$repo/bench/results"
tmp=$(mktemp -d /tmp/beacon-bench.XXXXXX)
beacon_pid="" perf_pid="" watchdog_pid="" server_pid=""

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
# machine_ticks: "busy total irq+softirq steal" over all cores, from /proc/stat.
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t, $7 + $8, $9; exit }' /proc/stat; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $perf_pid ]] && kill "$perf_pid" 2>/dev/null || true
	if [[ -n $beacon_pid ]] && kill -0 "$beacon_pid" 2>/dev/null; then
		kill -TERM "$beacon_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$beacon_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$beacon_pid" 2>/dev/null || true
		wait "$beacon_pid" 2>/dev/null || true
	fi
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	[[ -n $watchdog_pid ]] && kill "$watchdog_pid" 2>/dev/null || true
	if [[ $rc -ne 0 && $rc -ne 130 && $rc -ne 143 && -f $tmp/beacon.log ]]; then
		log "beacon log (last 30 lines):"
		tail -n 30 "$tmp/beacon.log" >&2 || true
	fi
	# Kept for a look after a failure; not after an interrupt (130, 143).
	if [[ $KEEP_TMP == 1 || ($rc -ne 0 && $rc -ne 130 && $rc -ne 143) ]]; then
		log "work files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_watchdog

# --- 1. tools and binaries -------------------------------------------------
need_dnsperf
command -v curl >/dev/null || die "curl is needed"
cd "$repo"
log "building beacon (go build .)"
build_bench register dnscheck

# Ports: DNS, HTTP, RPC, serf LAN, serf WAN, pprof, and the separate
# server's DNS, HTTP, RPC, serf LAN and WAN (ROLE=client); the first free
# block.
base=$(free_port_block 12)
DNS_PORT=$base HTTP_PORT=$((base + 1)) RPC_PORT=$((base + 2))
LAN_PORT=$((base + 3)) WAN_PORT=$((base + 4)) PPROF_PORT=$((base + 5))
S_DNS_PORT=$((base + 6)) S_HTTP_PORT=$((base + 7)) S_RPC_PORT=$((base + 8))
S_LAN_PORT=$((base + 9)) S_WAN_PORT=$((base + 10))

# Background load: other processes on the 2 cores depress and blur every figure.
wait_quiet
log "background load before the run: $bg_load cores"

# --- 2. Corefile, zone file, query files -------------------------------------
pprof_line=""
[[ $PROFILE != 0 ]] && pprof_line="    pprof 127.0.0.1:$PPROF_PORT"
role_lines="        server
        bootstrap_expect 1"
if [[ $ROLE == client ]]; then
	role_lines="        join 127.0.0.1:$S_LAN_PORT"
	mkdir -p "$tmp/server"
	cat >"$tmp/server/Corefile" <<EOF
consul:$S_DNS_PORT {
    bind 127.0.0.1
    discovery {
        datacenter dc1
        node bench-server
        data_dir $tmp/server/data
        server
        bootstrap_expect 1
        bind 127.0.0.1
        http 127.0.0.1:$S_HTTP_PORT
        rpc 127.0.0.1:$S_RPC_PORT
        serf_lan 127.0.0.1:$S_LAN_PORT
        serf_wan 127.0.0.1:$S_WAN_PORT
    }
}
EOF
fi
cat >"$tmp/Corefile" <<EOF
consul:$DNS_PORT {
    bind 127.0.0.1
$pprof_line
    discovery {
        datacenter dc1
        node bench
        data_dir $tmp/data
$role_lines
        bind 127.0.0.1
        http 127.0.0.1:$HTTP_PORT
        rpc 127.0.0.1:$RPC_PORT
        serf_lan 127.0.0.1:$LAN_PORT
        serf_wan 127.0.0.1:$WAN_PORT
    }
}
file.test:$DNS_PORT {
    bind 127.0.0.1
    file $tmp/file.test.zone
}
whoami.test:$DNS_PORT {
    bind 127.0.0.1
    whoami
}
EOF

"$tmp/register" -zonefile "$tmp/file.test.zone" -origin file.test. -dc dc1 \
	-services "$SERVICES" -instances "$INSTANCES" >&2

# The same random sequence of services for both zones (awk's srand(seed)).
gen_queries() { # zone type
	awk -v n="$NQUERIES" -v s="$SERVICES" -v z="$1" -v t="$2" \
		'BEGIN { srand(20240601); for (i = 0; i < n; i++) printf "svc%04d.service.%s %s\n", int(rand() * s), z, t }'
}
gen_queries consul A >"$tmp/q.discovery-A"
gen_queries consul SRV >"$tmp/q.discovery-SRV"
gen_queries file.test A >"$tmp/q.file-A"
gen_queries file.test SRV >"$tmp/q.file-SRV"
for _ in $(seq "$NQUERIES"); do echo "whoami.test A"; done >"$tmp/q.whoami-A"

# --- 3. start beacon, register the catalog -----------------------------------
beacon_cmd=("$tmp/beacon" agent -conf "$tmp/Corefile")
perf_prefix=()
if [[ $PIN == 1 ]]; then
	beacon_cmd=(taskset -c 0 "${beacon_cmd[@]}")
	perf_prefix=(taskset -c 1)
fi
reg_port=$HTTP_PORT
if [[ $ROLE == client ]]; then
	log "starting the server: HTTP 127.0.0.1:$S_HTTP_PORT"
	"$tmp/beacon" agent -conf "$tmp/server/Corefile" >"$tmp/server/beacon.log" 2>&1 &
	server_pid=$!
	reg_port=$S_HTTP_PORT
fi
log "starting beacon ($ROLE): DNS 127.0.0.1:$DNS_PORT, HTTP 127.0.0.1:$HTTP_PORT"
"${beacon_cmd[@]}" >"$tmp/beacon.log" 2>&1 &
beacon_pid=$!

deadline=$((SECONDS + 60))
leader=""
while :; do
	kill -0 "$beacon_pid" 2>/dev/null || die "beacon exited during start-up"
	[[ -z $server_pid ]] || kill -0 "$server_pid" 2>/dev/null || die "the server exited during start-up"
	leader=$(curl -fsS --max-time 2 "http://127.0.0.1:$reg_port/v1/status/leader" 2>/dev/null || true)
	[[ -n $leader && $leader != '""' ]] && break
	((SECONDS < deadline)) || die "no leader after 60s (/v1/status/leader: '${leader}')"
	sleep 0.25
done
log "leader: $leader"

reg_out=$(timeout 300 "$tmp/register" -http "127.0.0.1:$reg_port" -services "$SERVICES" \
	-instances "$INSTANCES" -concurrency 16) || die "registration failed: $reg_out"
log "$reg_out"
reg_rate=$(sed -n 's/.*: \([0-9]*\) registrations\/s.*/\1/p' <<<"$reg_out")

mem() { # prints "VmRSS VmHWM" in MB
	awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { printf "%.1f %.1f\n", r / 1024, h / 1024 }' "/proc/$beacon_pid/status"
}
sleep 2
read -r rss_reg hwm_reg < <(mem)
log "memory after registration: VmRSS ${rss_reg} MB, VmHWM ${hwm_reg} MB"

# Are the answers the same? (Also waits for the registrations to be readable.)
check_ok=0
for _ in $(seq 20); do
	if timeout 60 "$tmp/dnscheck" -server "127.0.0.1:$DNS_PORT" -services "$SERVICES" \
		-instances "$INSTANCES" >"$tmp/dnscheck.out" 2>&1; then
		check_ok=1
		break
	fi
	sleep 0.5
done
cat "$tmp/dnscheck.out" >&2
[[ $check_ok == 1 ]] || die "discovery and file answers differ; not benchmarking"
"$tmp/dnscheck" -server "127.0.0.1:$DNS_PORT" -show svc0000 >"$tmp/sample.txt" 2>&1 || true

# --- 4. dnsperf runs ---------------------------------------------------------
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$beacon_pid/stat"; }
# child_cpu: CPU seconds of this shell's finished children. bash's `times`
# must run in this shell, not in a $(…) subshell, whose child times start at 0.
child_cpu() {
	times >"$tmp/times"
	child_cpu_s=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }' "$tmp/times")
}

# run_perf NAME OUTFILE [seconds]: one dnsperf run against q.NAME, with CPU
# use appended to dnsperf's output: beacon's, dnsperf's, and the machine's
# (so that other processes competing for the 2 cores show up).
run_perf() {
	local name=$1 out=$2 secs=${3:-$DURATION} t0 t1 m0 m1 c0 c1 w0 w1
	t0=$(cpu_ticks) m0=$(machine_ticks) w0=$(date +%s.%N)
	child_cpu
	c0=$child_cpu_s
	"${perf_prefix[@]}" dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$tmp/q.$name" -l "$secs" \
		-c "$CLIENTS" -T "$THREADS" -q "$INFLIGHT" -Q "$MAXQPS" -t 2 >"$out" 2>&1 &
	perf_pid=$!
	wait "$perf_pid" || { perf_pid=""; cat "$out" >&2; die "dnsperf $name failed"; }
	perf_pid=""
	t1=$(cpu_ticks) m1=$(machine_ticks) w1=$(date +%s.%N)
	child_cpu
	c1=$child_cpu_s
	awk -v t=$((t1 - t0)) -v h="$clk_tck" -v w0="$w0" -v w1="$w1" -v c0="$c0" -v c1="$c1" \
		-v m0="$m0" -v m1="$m1" -v n="$(grep -c '^cpu[0-9]' /proc/stat)" 'BEGIN {
			split(m0, a, " "); split(m1, b, " "); wall = w1 - w0
			# Busy is wall × CPUs minus idle: the busy fields of /proc/stat miss
			# most of a bursty load (see busy_cores in lib.sh).
			srv = t / h; perf = c1 - c0; busy = n * wall - ((b[2] - a[2]) - (b[1] - a[1])) / h
			irq = (b[3] - a[3]) / h; steal = (b[4] - a[4]) / h
			# Tick accounting: irq/softirq time shows in the stime of the
			# interrupted task too, so only steal is subtracted from busy.
			printf "Server CPU (s): %.3f\nServer cores: %.2f\ndnsperf cores: %.2f\nSoftirq cores: %.2f\nSteal cores: %.2f\nOther cores: %.2f\n",
				srv, srv / wall, perf / wall, irq / wall, steal / wall, (busy - srv - perf - steal) / wall }' >>"$out"
}

# field FILE -> "qps avg_latency_ms lost_pct noerror_pct resp_size server_cpu_s completed
#                server_cores perf_cores other_cores softirq_cores steal_cores"
field() {
	awk '
		/Queries completed:/ { done = $3 }
		/Queries lost:/ { lost = $4; gsub(/[()%]/, "", lost) }
		/Response codes:/ { if (match($0, /NOERROR [0-9]+ \(([0-9.]+)%\)/)) { s = substr($0, RSTART, RLENGTH); sub(/.*\(/, "", s); sub(/%\)/, "", s); noerr = s } else noerr = 0 }
		/Average packet size:/ { resp = $NF }
		/Queries per second:/ { qps = $4 }
		/Average Latency \(s\):/ { lat = $4 * 1000 }
		/Server CPU \(s\):/ { cpu = $4 }
		/Server cores:/ { sc = $3 }
		/dnsperf cores:/ { pc = $3 }
		/Softirq cores:/ { ic = $3 }
		/Steal cores:/ { st = $3 }
		/Other cores:/ { oc = $3 }
		END { printf "%s %.3f %s %s %s %s %s %s %s %s %s %s\n", qps, lat, lost, noerr, resp, cpu, done, sc, pc, oc, ic, st }' "$1"
}

benches=(discovery-A file-A whoami-A discovery-SRV file-SRV)
log "warm-up: 3s of each"
for b in "${benches[@]}"; do run_perf "$b" "$tmp/warmup.$b" 3; done

for r in $(seq "$ROUNDS"); do
	# Interleaved, order rotated per round, so drift hits every benchmark.
	order=("${benches[@]:$(((r - 1) % ${#benches[@]}))}" "${benches[@]:0:$(((r - 1) % ${#benches[@]}))}")
	for b in "${order[@]}"; do
		log "round $r: $b (${DURATION}s)"
		run_perf "$b" "$tmp/perf.$r.$b"
		read -r qps lat lost noerr _ _ _ < <(field "$tmp/perf.$r.$b")
		log "  $qps q/s, avg latency $lat ms, lost $lost%, NOERROR $noerr%"
	done
done

read -r rss_end hwm_end < <(mem)
log "memory after DNS runs: VmRSS ${rss_end} MB, VmHWM ${hwm_end} MB"

# --- 5. summary ----------------------------------------------------------------
declare -A mean_qps cpu_us
mean() { awk '{ s += $1; n++ } END { printf "%.'"$1"'f", n ? s / n : 0 }'; }
table='| benchmark | '
for r in $(seq "$ROUNDS"); do table+="QPS run $r | "; done
table+='mean QPS | avg latency (ms) | beacon CPU (µs/query) | beacon cores | dnsperf cores | other processes + steal (cores) | lost | NOERROR | response (bytes) |'$'\n''|---|'
for r in $(seq "$ROUNDS"); do table+='---:|'; done
table+='---:|---:|---:|---:|---:|---:|---:|---:|---:|'$'\n'
for b in "${benches[@]}"; do
	row="| ${b/-/ } | " lmax=0 nmin=100 resp=0
	: >"$tmp/agg"
	for r in $(seq "$ROUNDS"); do
		read -r qps lat lost noerr resp cpu done sc pc oc ic st < <(field "$tmp/perf.$r.$b")
		row+="$(printf '%.0f' "$qps") | "
		echo "$qps $lat $cpu $done $sc $pc $(awk -v o="$oc" -v s="$st" 'BEGIN { print o + s }')" >>"$tmp/agg"
		awk -v o="$oc" -v s="$st" 'BEGIN { print o + s }' >>"$tmp/other"
		lmax=$(awk -v a="$lmax" -v b="$lost" 'BEGIN { print (b > a) ? b : a }')
		nmin=$(awk -v a="$nmin" -v b="$noerr" 'BEGIN { print (b < a) ? b : a }')
	done
	mean_qps[$b]=$(awk '{ print $1 }' "$tmp/agg" | mean 0)
	cpu_us[$b]=$(awk '{ c += $3; d += $4 } END { printf "%.1f", d ? c * 1e6 / d : 0 }' "$tmp/agg")
	row+="${mean_qps[$b]} | $(awk '{ print $2 }' "$tmp/agg" | mean 3) | ${cpu_us[$b]}"
	row+=" | $(awk '{ print $5 }' "$tmp/agg" | mean 2) | $(awk '{ print $6 }' "$tmp/agg" | mean 2)"
	row+=" | $(awk '{ print $7 }' "$tmp/agg" | mean 2) | ${lmax}% | ${nmin}% | $resp |"
	table+="$row"$'\n'
done

other_mean=$(mean 2 <"$tmp/other")
noisy=""
if awk -v o="$other_mean" -v q="$QUIET_CORES" 'BEGIN { exit !(o >= q) }'; then
	noisy="**Noisy run:** other processes (or the hypervisor, as steal) took $other_mean cores on average during the DNS runs (2 cores in all), so QPS is depressed and varies run to run; beacon CPU per query is the steadier comparison."
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
r_file=$(ratio "${mean_qps[discovery-A]}" "${mean_qps[file-A]}")
r_whoami=$(ratio "${mean_qps[discovery-A]}" "${mean_qps[whoami-A]}")
r_srv=$(ratio "${mean_qps[discovery-SRV]}" "${mean_qps[file-SRV]}")
c_file=$(ratio "${cpu_us[discovery-A]}" "${cpu_us[file-A]}")
c_whoami=$(ratio "${cpu_us[discovery-A]}" "${cpu_us[whoami-A]}")
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 >= t + 0) ? "met" : "MISSED" }'; }
v_file=$(verdict "$r_file" 1.00)
v_whoami=$(verdict "$r_whoami" 0.90)
# The same targets in beacon CPU per query, which is what QPS reflects when
# beacon is the bottleneck, and which other load on the machine disturbs less.
vc_file=$(awk -v v="$c_file" 'BEGIN { print (v + 0 <= 1.00) ? "met" : "MISSED" }')
vc_whoami=$(awk -v v="$c_whoami" 'BEGIN { print (v + 0 <= 1 / 0.90) ? "met" : "MISSED" }')
v_rss=$(awk -v m="$hwm_end" 'BEGIN { print (m <= 80) ? "met" : "MISSED" }')

# --- 6. profile (when asked, or when a target is missed) -----------------------
profile_txt="" profile_cum="" profile_own=""
missed=0
[[ "$v_file $v_whoami $vc_file $vc_whoami" == *MISSED* ]] && missed=1
if [[ $PROFILE == 1 || ($PROFILE == auto && $missed == 1) ]]; then
	log "profiling: CPU profile of beacon during a discovery A run"
	psecs=$((DURATION > 6 ? DURATION - 4 : 2))
	run_perf discovery-A "$tmp/perf.profile" &
	prof_job=$!
	sleep 2
	curl -fsS --max-time $((psecs + 30)) -o "$tmp/cpu.pprof" \
		"http://127.0.0.1:$PPROF_PORT/debug/pprof/profile?seconds=$psecs" || log "profile fetch failed"
	wait "$prof_job" || true
	if [[ -s $tmp/cpu.pprof ]]; then
		profile_txt=$(timeout 120 go tool pprof -top -nodecount=25 "$tmp/beacon" "$tmp/cpu.pprof" 2>/dev/null || true)
		profile_cum=$(timeout 120 go tool pprof -top -cum -nodecount=25 "$tmp/beacon" "$tmp/cpu.pprof" 2>/dev/null |
			sed '/^File:/,/^Duration:/d' || true)
		# The plugin's own share: its calls, without writing the answer.
		profile_own=$(timeout 120 go tool pprof -top -cum -nodecount=25 -focus='beacon/plugin' -ignore='WriteMsg' \
			"$tmp/beacon" "$tmp/cpu.pprof" 2>/dev/null | sed '/^File:/,/^Duration:/d' || true)
	fi
fi

# --- 7. report -----------------------------------------------------------------
stamp=$(date +%Y-%m-%d-%H%M%S)
mkdir -p "$results_dir"
report="$results_dir/dns-$stamp.md"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
	echo "# beacon DNS benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) cores ($cpu_model), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"
	echo "- $(go version | cut -d' ' -f3-), $(dnsperf -h 2>&1 | awk '/^Version/ { print "dnsperf " $2 }')"
	echo "- catalog: $SERVICES services × $INSTANCES instances = $((SERVICES * INSTANCES)) instances; registered at ${reg_rate} registrations/s (catalog API, concurrency 16)"
	if [[ $ROLE == client ]]; then
		echo "- measured: a **client agent** (ROLE=client), its replica streamed from a separate server process that took the registrations; that server's CPU (idle but for heartbeats) counts in \"other processes\", and PIN does not pin it"
	else
		echo "- measured: the single server (ROLE=server)"
	fi
	echo "- background load before the run: $bg_load cores busy (of $(nproc)); during the runs: see \"other processes + steal\""
	echo "- dnsperf: -l $DURATION -c $CLIENTS -T $THREADS -q $INFLIGHT -Q $MAXQPS, UDP, $NQUERIES queries per file (random services), $ROUNDS interleaved rounds after a 3 s warm-up; dnsperf and beacon share the machine$([[ $PIN == 1 ]] && echo ' (pinned: beacon CPU 0, dnsperf CPU 1)')"
	echo
	echo "$table"
	[[ -n $noisy ]] && { echo "$noisy"; echo; }
	echo "| ratio | value | target |"
	echo "|---|---:|---|"
	echo "| discovery A / file A (QPS) | $r_file | ≥ 1.00: $v_file |"
	echo "| discovery A / whoami A (QPS) | $r_whoami | ≥ 0.90: $v_whoami |"
	echo "| discovery SRV / file SRV (QPS) | $r_srv | |"
	echo "| discovery A / file A (beacon CPU per query) | $c_file | ≤ 1.00 (same target in CPU): $vc_file |"
	echo "| discovery A / whoami A (beacon CPU per query) | $c_whoami | ≤ 1.11 (= 90% in CPU): $vc_whoami |"
	echo
	echo "| beacon memory | VmRSS (MB) | VmHWM (MB) |"
	echo "|---|---:|---:|"
	echo "| after registration | $rss_reg | $hwm_reg |"
	echo "| after DNS runs | $rss_end | $hwm_end |"
	echo
	if ((SERVICES * INSTANCES <= 3000)); then
		echo "RSS target (≤ 80 MB with $((SERVICES * INSTANCES)) instances, peak VmHWM): $v_rss"
	else
		# The 80 MB aim is for 3,000 instances; here the process also holds
		# the file plugin's copy of every record.
		echo "RSS: the agent's own memory at this size is measured by bench/memory.sh (this process also holds the file plugin's zone)."
	fi
	echo
	echo "Response sizes as dnscheck saw them (no EDNS0, as dnsperf sends):"
	echo
	echo '```'
	grep '^response size' "$tmp/dnscheck.out" || true
	echo '```'
	if [[ -n $profile_txt ]]; then
		echo
		echo "## CPU profile, discovery A load (top 25, flat)"
		echo
		echo '```'
		echo "$profile_txt"
		echo '```'
		echo
		echo "### by cumulative time (top 25)"
		echo
		echo '```'
		echo "$profile_cum"
		echo '```'
		echo
		echo "### the discovery plugin's own work (focus beacon/plugin, WriteMsg ignored; cumulative, top 25)"
		echo
		echo '```'
		echo "$profile_own"
		echo '```'
		cp "$tmp/cpu.pprof" "$results_dir/dns-$stamp.cpu.pprof"
		echo
		echo "Profile: bench/results/dns-$stamp.cpu.pprof (\`go tool pprof -top\` reads it without the binary)."
	fi
	echo
	echo "## Sample responses (svc0000)"
	echo
	echo '```'
	cat "$tmp/sample.txt"
	echo '```'
} >"$report"
cat "$report"
log "report written to $report"
