#!/bin/bash
# SPDX-License-Identifier: MIT
# Flow-log ingestion benchmark: how many NFLOG events per second egw-flowlog
# writes to SQLite (egress_log + outbox "flow" rows) with zero overruns, and
# the ratio of logged rows to packets counted by the nft counter with the
# rate limit lifted.  Target: ratio >= 0.99 at 20,000 events/s.
#
#   bench/flowlog/run.sh [RATE ...]     (default: 5000 10000 20000 40000 max)
#
# Everything runs in namespaces this script creates (sender -> gateway whose
# table inet forge_egress logs and drops every packet); each step sends for
# DURATION seconds (default 5) at a paced rate, "max" sends unpaced.
# Bounded: every step stops after DURATION + 20 s at the latest.
# Environment: EGW_TOP_BUILDDIR (default ./build), DURATION.
set -u
here=$(cd "$(dirname "$0")" && pwd)
EGW_TOP_SRCDIR=${EGW_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
EGW_TOP_BUILDDIR=${EGW_TOP_BUILDDIR:-$EGW_TOP_SRCDIR/build}
export EGW_TOP_SRCDIR EGW_TOP_BUILDDIR
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init bench_flowlog
need_root
need_cmd nft ip python3 sqlite3
PY=$(python3 -c 'import sys; print(sys.executable)')
DURATION=${DURATION:-5}
RATES=${*:-5000 10000 20000 40000 max}
GROUP=$(( 100 + $$ % 900 ))

egw_env
export EGW_DB_PATH="$T/state/egw.db" EGW_NFLOG_GROUP=$GROUP EGW_LOG_LEVEL=warn
DB=$EGW_DB_PATH
"$(egw_bin egw-admin)" migrate > "$T/admin.log" 2>&1 || exit 99
sqlite3 "$DB" "INSERT INTO policies (id, scenario_id, network_id, profile, generation,
	created_at, updated_at) VALUES (1, 'bench', 'net-bench', 'none', 1,
	'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')" || exit 99

CL=$(make_netns cl)
GW=$(make_netns gw)
ip link add c0 netns "$CL" type veth peer name g1 netns "$GW" || exit 99
ip -n "$CL" link set c0 up
ip -n "$GW" link set g1 up
SINK=$(make_netns sink)
ip link add s0 netns "$SINK" type veth peer name g2 netns "$GW" || exit 99
ip -n "$SINK" link set s0 up
ip -n "$GW" link set g2 up
ip -n "$CL" addr add 100.64.1.2/24 dev c0
ip -n "$CL" route add default via 100.64.1.1
ip -n "$GW" addr add 100.64.1.1/24 dev g1
ip -n "$GW" addr add 203.0.113.1/24 dev g2
ip netns exec "$GW" sysctl -qw net.ipv4.ip_forward=1
# A permanent neighbour so forwarded packets reach the forward hook
# without resolution (they are dropped there anyway).
ip -n "$GW" neigh add 203.0.113.10 lladdr 02:00:00:00:00:10 dev g2 nud permanent
ip -n "$CL" neigh add 100.64.1.1 lladdr "$(ip -n "$GW" -br link show g1 | awk '{print $3}')" dev c0 nud permanent
ip netns exec "$GW" nft -f - <<EOF || exit 99
table inet forge_egress {
	counter deny_1 { }
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ip saddr 100.64.1.0/24 meta mark set 1
		meta mark 1 log prefix "egw:d:1:default" group $GROUP
		meta mark 1 counter name deny_1 drop
	}
}
EOF

ip netns exec "$GW" "$(egw_bin egw-flowlog)" >> "$T/flowlog.log" 2>&1 &
FLOWLOG_PID=$!
track_pid "$FLOWLOG_PID"
reported() { [ "$(sqlite3 "$DB" "SELECT pid FROM component_status WHERE component='flowlog'")" = "$FLOWLOG_PID" ]; }
wait_for 10 reported || { echo "Bail out! egw-flowlog did not start"; exit 99; }

q() { sqlite3 -batch -noheader "$DB" "$1"; }
info() { q "SELECT json_extract(info, '\$.$1') FROM component_status WHERE component='flowlog'"; }
counter() {
	ip netns exec "$GW" nft -j list counter inet forge_egress deny_1 |
		"$PY" -c 'import json,sys; d=json.load(sys.stdin)["nftables"]; print([o["counter"]["packets"] for o in d if "counter" in o][0])'
}
# The queue is empty and everything received is written (heartbeat row
# only: polling count(*) would compete with the writer for the 2 cores).
drained() {
	[ "$(q "SELECT json_extract(info, '\$.queue_depth') = 0 AND
		json_extract(info, '\$.written') + json_extract(info, '\$.write_dropped') =
		json_extract(info, '\$.received') AND json_extract(info, '\$.received') >= $1
		FROM component_status WHERE component='flowlog'")" = 1 ]
}
cpu_ms() {	# utime + stime of egw-flowlog, in ms
	awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$FLOWLOG_PID/stat"
}

printf '%-6s %8s %8s %8s %7s %6s %7s %8s %8s %8s %9s\n' rate sent counted logged lost enobuf ratio "sent/s" "rows/s" "db_r/s" "rows/cpu_s"
for rate in $RATES; do
	c0=$(counter); r0=$(q "SELECT count(*) FROM egress_log")
	l0=$(info lost); e0=$(info enobufs); v0=$(info received)
	wm0=$(info write_ms); cpu0=$(cpu_ms)
	t_start=$(date +%s%N)
	out=$(ip netns exec "$CL" timeout $((DURATION + 20)) "$PY" - "$rate" "$DURATION" <<'PY'
import socket, sys, time
rate, dur = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("100.64.1.2", 0))
dst = ("203.0.113.10", 9)
sent, t0 = 0, time.monotonic()
while True:
	el = time.monotonic() - t0
	if el >= dur: break
	target = sent + 256 if rate == "max" else int(int(rate) * el)
	while sent < target:
		s.sendto(b"x", dst); sent += 1
	if rate != "max": time.sleep(0.0005)
print(sent, round(time.monotonic() - t0, 3))
PY
)
	sent=${out% *}; secs=${out#* }
	c1=$(counter)
	counted=$((c1 - c0))
	sleep 0.2	# the kernel flushes its NFLOG batch within 10 ms
	wait_for 60 drained $(( v0 + counted - ($(info lost) - l0) ))
	t_end=$(date +%s%N)
	r1=$(q "SELECT count(*) FROM egress_log")
	logged=$((r1 - r0)); lost=$(( $(info lost) - l0 ))
	[ "$rate" = 20000 ] && ratio20k=$("$PY" -c "print($logged / $counted if $counted else 0)") &&
		lost20k=$lost
	"$PY" - "$rate" "$sent" "$counted" "$logged" "$lost" $(( $(info enobufs) - e0 )) \
		"$secs" $(( (t_end - t_start) / 1000000 )) $(( $(info write_ms) - wm0 )) \
		$(( $(cpu_ms) - cpu0 )) <<'PY'
import sys
rate, sent, counted, logged, lost, enobufs, secs, wall_ms, write_ms, cpu_ms = sys.argv[1:]
sent, counted, logged, secs = int(sent), int(counted), int(logged), float(secs)
ratio = logged / counted if counted else 0
wall, wms, cpu = int(wall_ms) / 1000, max(int(write_ms), 1) / 1000, max(int(cpu_ms), 1) / 1000
print(f"{rate:<6} {sent:8d} {counted:8d} {logged:8d} {lost:>7} {enobufs:>6} {ratio:7.4f} "
      f"{sent / secs:8.0f} {logged / wall:8.0f} {logged / wms:8.0f} {logged / cpu:9.0f}")
PY
done
echo "# rows/s: rows / (send + drain time); db_r/s: rows / time inside batch"
echo "# transactions; rows/cpu_s: rows / egw-flowlog CPU time (both threads)."
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
if [ -n "${ratio20k:-}" ]; then
	ok "ratio logged/counted at 20,000 events/s >= 0.99 ($ratio20k)" \
		"$PY" -c "import sys; sys.exit(0 if $ratio20k >= 0.99 else 1)"
	ok "zero losses at 20,000 events/s" test "$lost20k" -eq 0
fi
echo "# flowlog: $(q "SELECT info FROM component_status WHERE component='flowlog'")"
e2e_done
