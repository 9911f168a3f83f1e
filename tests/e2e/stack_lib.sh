# SPDX-License-Identifier: MIT
# Helpers of the whole-stack scenarios (tests/e2e/stack_*.sh): the
# three-namespace topology of lib_netns.sh with the real gateway inside
# the gateway namespace:
#
#   gw namespace:   nats-server -js (127.0.0.1:4222 of that namespace),
#                   egw-applier (DRY_RUN=false), egw-flowlog, egw-natsd
#   root namespace: egw-api + nginx on a free loopback port (lib_api.sh);
#                   they only need the database and the applier's UNIX
#                   socket, which are files and cross namespaces
#
# Source after lib.sh, lib_netns.sh and lib_api.sh, then call stack_env.
# Every process is started as "ip netns exec NS PROGRAM &" (not through a
# shell function, which would fork a subshell): ip execs the program, so $!
# is the program's own PID, tracked and stopped by that PID.

# stack_env: the gateway's environment for every component, under $T.
stack_env() {
	need_cmd sqlite3 jq curl nginx nats-server
	applier_env
	api_env
	export EGW_DB_PATH="$EGW_STATE_DIR/egw.db"
	export NATS_URL="nats://127.0.0.1:4222"
	PROBE=$(egw_bin tests/e2e/natsprobe)
}

# nprobe ARGS...: natsprobe inside the gateway namespace (where NATS is).
nprobe() { in_gw "$PROBE" "$@"; }

stack_start_nats() {
	mkdir -p "$T/nats"
	ip netns exec "$NS_GW" nats-server -js -a 127.0.0.1 -p 4222 -sd "$T/nats" \
		>> "$T/nats.log" 2>&1 &
	NATS_PID=$!
	track_pid "$NATS_PID"
	within 10 nprobe jsinfo ||
		{ echo "Bail out! nats-server did not start in $NS_GW"; exit 99; }
}

# component_pid NAME: the pid in NAME's component_status row
component_pid() {
	db "SELECT pid FROM component_status WHERE component = '$1'"
}

stack_start_flowlog() {
	ip netns exec "$NS_GW" "$(egw_bin egw-flowlog)" >> "$T/flowlog.log" 2>&1 &
	FLOWLOG_PID=$!
	track_pid "$FLOWLOG_PID"
	within 10 flowlog_up ||
		{ echo "Bail out! egw-flowlog did not report"; exit 99; }
}
flowlog_up() { [ "$(component_pid flowlog)" = "$FLOWLOG_PID" ]; }

natsd_up() {
	db_is "SELECT pid || ',' || json_extract(info, '\$.running') || ','
		|| json_extract(info, '\$.connected') FROM component_status
		WHERE component = 'natsd'" "$NATSD_PID,1,1"
}

stack_start_natsd() {
	ip netns exec "$NS_GW" "$(egw_bin egw-natsd)" >> "$T/natsd.log" 2>&1 &
	NATSD_PID=$!
	track_pid "$NATSD_PID"
	within 15 natsd_up ||
		{ echo "Bail out! egw-natsd did not connect"; exit 99; }
}

# stack_subscribe NAME SUBJECT: a natsprobe subscriber in the background,
# every message one JSON line in $T/NAME.jsonl; returns once subscribed.
stack_subscribe() {
	rm -f "$T/$1.ready"
	ip netns exec "$NS_GW" "$PROBE" sub "$2" 100000 300000 "$T/$1.ready" > "$T/$1.jsonl" 2>> "$T/natsprobe.log" &
	track_pid $!
	within 10 test -e "$T/$1.ready" ||
		{ echo "Bail out! natsprobe did not subscribe to $2"; exit 99; }
}

# within SECONDS CMD...: poll CMD (every 50 ms at most 1000 times) until it
# succeeds, bounded by the wall clock too, however slow CMD is.
within() {
	_end=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
	shift
	_n=0
	while [ $_n -lt 1000 ]; do
		"$@" > /dev/null 2>&1 && return 0
		[ $(( $(date +%s%N) / 1000000 )) -ge $_end ] && return 1
		sleep 0.05
		_n=$((_n + 1))
	done
	return 1
}

# now_ms: wall clock in milliseconds (shared by every namespace)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# traffic tcp|udp SRC SPORT DST DPORT [COUNT]: from the scenario host with
# a fixed source port (below the ephemeral range, so nothing else uses it).
# tcp: one connect with a 0.5 s timeout (before the first SYN
# retransmission), prints "connected" or "timeout"; udp: COUNT datagrams.
traffic() {
	in_scen /usr/bin/python3 - "$@" <<'PY'
import socket, sys, time
kind, src, sport, dst, dport = sys.argv[1:6]
count = int(sys.argv[6]) if len(sys.argv) > 6 else 1
af = socket.AF_INET6 if ":" in dst else socket.AF_INET
if kind == "tcp":
	s = socket.socket(af, socket.SOCK_STREAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind((src, int(sport))); s.settimeout(0.5)
	try:
		s.connect((dst, int(dport))); print("connected")
	except OSError:
		print("timeout")
else:
	s = socket.socket(af, socket.SOCK_DGRAM)
	s.bind((src, int(sport)))
	t0 = time.monotonic()
	for i in range(count):
		if time.monotonic() - t0 > 20: break
		s.sendto(b"x", (dst, int(dport)))
PY
}
