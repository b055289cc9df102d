#!/bin/sh
# beacon's container entrypoint (POSIX sh; the runtime image is Alpine).
#
#   (no arguments) | agent   run the agent: with the mounted Corefile
#                            ($BEACON_COREFILE, default /etc/beacon/Corefile)
#                            when there is one, else with a Corefile rendered
#                            from the BEACON_* variables below
#   render                   print the Corefile the variables make, and exit
#   agent -conf FILE ...     run the agent with that Corefile
#   anything else            run `beacon ARGS...` (members, kv, keygen, ...)
#
# The variables (deploy/README.md has the table):
#   BEACON_MODE              server or client (default server)
#   BEACON_DATACENTER        default dc1
#   BEACON_NODE              default the container's host name
#   BEACON_BIND              the address gossip and RPC listen on and
#                            advertise; default the host name's address
#   BEACON_JOIN              gossip addresses to join, space or comma
#                            separated: host:port, host (port 8301), IP
#   BEACON_BOOTSTRAP_EXPECT  servers to wait for (servers; default 1)
#   BEACON_RELAY             1: a client agent that relays the state stream
#                            to other client agents (on port 8300)
#   BEACON_ENCRYPT           the gossip key (`beacon keygen`)
#   BEACON_UPSTREAM          resolvers for every other name, space or
#                            comma separated (default /etc/resolv.conf)
#   BEACON_HTTP              the HTTP API's address (default 0.0.0.0:8500)
#   BEACON_DNS_PORT          default 53
#   BEACON_DNS_BIND          addresses DNS listens on (default all)
#   BEACON_DATA_DIR          default /var/lib/beacon (the image's volume)
set -eu

die() {
	echo "docker-entrypoint: $*" >&2
	exit 1
}

# words turns a space- or comma-separated list into single-space words.
words() {
	echo "$1" | tr ',' ' ' | tr -s ' \t\n' '   ' | sed 's/^ //; s/ $//'
}

render() {
	mode=${BEACON_MODE:-server}
	dc=${BEACON_DATACENTER:-dc1}
	node=${BEACON_NODE:-$(hostname)}
	bind=${BEACON_BIND:-}
	if [ -z "$bind" ]; then
		bind=$(hostname -i 2>/dev/null | tr ' ' '\n' | grep -v '^127\.' | grep -v ':' | head -n 1 || true)
		[ -n "$bind" ] || die "BEACON_BIND is not set and the host name $(hostname) has no IPv4 address to take"
	fi
	port=${BEACON_DNS_PORT:-53}
	upstream=$(words "${BEACON_UPSTREAM:-/etc/resolv.conf}")
	join=""
	for j in $(words "${BEACON_JOIN:-}"); do
		case $j in
		*:*) ;;        # host:port or IP:port (IPv6 needs [addr]:port)
		*) j=$j:8301 ;; # Consul's default LAN gossip port
		esac
		join="$join $j"
	done
	join=${join# }
	case $mode in
	server | client) ;;
	*) die "BEACON_MODE must be server or client, not \"$mode\"" ;;
	esac
	[ "$mode" = client ] && [ -z "$join" ] && die "a client agent needs BEACON_JOIN: the servers' (or any agent's) gossip addresses"
	case ${BEACON_RELAY:-0} in
	0) relay="" ;;
	1) relay=1 ;;
	*) die "BEACON_RELAY must be 0 or 1, not \"$BEACON_RELAY\"" ;;
	esac
	[ -n "$relay" ] && [ "$mode" = server ] && die "BEACON_RELAY=1 is for client agents: servers stream to client agents already"

	dnsbind=""
	[ -n "${BEACON_DNS_BIND:-}" ] && dnsbind="    bind $(words "$BEACON_DNS_BIND")
"
	cat <<EOF
# Rendered by docker-entrypoint.sh from the BEACON_* variables: a $mode agent.
consul:$port $dc:$port {
${dnsbind}    discovery {
        datacenter $dc
        node $node
        data_dir ${BEACON_DATA_DIR:-/var/lib/beacon}
EOF
	if [ "$mode" = server ]; then
		echo "        server"
		echo "        bootstrap_expect ${BEACON_BOOTSTRAP_EXPECT:-1}"
	fi
	[ -n "$relay" ] && echo "        relay"
	echo "        bind $bind"
	echo "        http ${BEACON_HTTP:-0.0.0.0:8500}"
	[ -n "$join" ] && echo "        join $join"
	[ -n "${BEACON_ENCRYPT:-}" ] && echo "        encrypt $BEACON_ENCRYPT"
	cat <<EOF
    }
    # No cache here: the plugin keeps its own, invalidated by every change.
    errors
}
.:$port {
${dnsbind}    forward . $upstream
    loop
    cache 30
    errors
}
EOF
}

run_agent() {
	conf=${BEACON_COREFILE:-/etc/beacon/Corefile}
	if [ ! -f "$conf" ]; then
		conf=${BEACON_RENDERED:-${TMPDIR:-/tmp}/beacon.Corefile}
		render >"$conf"
		echo "docker-entrypoint: no Corefile at ${BEACON_COREFILE:-/etc/beacon/Corefile}; rendered $conf from the BEACON_* variables:" >&2
		cat "$conf" >&2
	fi
	exec beacon agent -conf "$conf"
}

case ${1:-agent} in
render)
	render
	;;
agent)
	if [ $# -le 1 ]; then
		run_agent
	fi
	exec beacon "$@"
	;;
*)
	exec beacon "$@"
	;;
esac
