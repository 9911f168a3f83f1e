#!/bin/bash
# SPDX-License-Identifier: MIT
# Benchmark (not a test): forwarding through the gateway namespace with
# 10,000 policies loaded vs no ruleset.
#
#   cd build && EGW_TOP_SRCDIR=.. EGW_TOP_BUILDDIR=. ../bench/applier/bench_forward.sh [N]
#   (N policies, default 10000; SECS=5 per measurement, REPS=3, medians)
#
# scen (100.64.1.2) -> gw (forwarding; the table under test) -> out
# (203.0.113.10: iperf3 server and an accept-and-close listener).
# Three gateway states:
#   none     no table at all (no conntrack either)
#   ct-only  a table with only "ct state established,related accept" in
#            forward: what connection tracking alone costs
#   egw      egw-applier's table with N policies (alternating none /
#            training-updates); the client's own policy allows TCP 5201
#            and 8081, so every new connection walks the whole path:
#            source map, shard verdict map, allowlist lookup, counter,
#            rate-limited log, accept
# Prints Gbit/s (iperf3, one TCP stream) and new connections/s
# (egw-connrate, 2 client processes, reset on close) and the ratios.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init bench_forward
need_root
need_cmd iperf3 nft sqlite3
N=${1:-10000}
SECS=${SECS:-5}
REPS=${REPS:-3}
[ "$SECS" -le 30 ] || SECS=30
CONNRATE=$(egw_bin bench/applier/egw-connrate)
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if(i<1)i=1; print a[i]}'; }

netns_topology
ip netns exec "$NS_OUT" iperf3 -s -B 203.0.113.10 -D --logfile "$T/iperf3.log" --pidfile "$T/iperf3.pid"
wait_for 10 test -s "$T/iperf3.pid" || { echo "Bail out! iperf3 -s"; exit 99; }
track_pid "$(cat "$T/iperf3.pid")"
ip netns exec "$NS_OUT" "$CONNRATE" serve 203.0.113.10 8081 > "$T/serve.log" 2>&1 &
track_pid $!
wait_for 10 grep -q ready "$T/serve.log" || { echo "Bail out! connrate serve"; exit 99; }

measure() { # measure LABEL: REPS rounds of iperf3 and connection rate
	: > "$T/g"; : > "$T/c"
	for rep in $(seq 1 "$REPS"); do
		in_scen iperf3 -c 203.0.113.10 -B 100.64.1.2 -t "$SECS" -J > "$T/ip.json" 2>&1 || true
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$T/ip.json" >> "$T/g" 2>/dev/null || echo 0 >> "$T/g"
		in_scen "$CONNRATE" connect 100.64.1.2 203.0.113.10 8081 "$SECS" 2 | awk '{print $1; if ($2 > 0) print "# failures " $2 > "/dev/stderr"}' >> "$T/c"
	done
	G[$1]=$(pct 50 < "$T/g")
	C[$1]=$(pct 50 < "$T/c")
	diag "$1: Gbit/s $(tr '\n' ' ' < "$T/g")| conn/s $(tr '\n' ' ' < "$T/c")"
}
declare -A G C

measure none

in_gw nft -f - <<'NFT'
table inet egw_ctonly {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ct state established,related accept
	}
}
NFT
measure ct-only
in_gw nft delete table inet egw_ctonly

EGW_RECONCILE_INTERVAL=3600 EGW_MANAGED_SOURCES=100.64.0.0/10 applier_env
policy put-many "$N" bench
# the client's policy: an id in the middle of the range would be the same
# cost; put it last so it is the newest mark
policy put '{"scenario_id":"client","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[5201,8081]}'
start_applier
wait_for 300 gen_applied || { echo "Bail out! not applied"; exit 99; }
elems=$(grep '"trigger":"start"' "$T/applier.log" | tail -1 | sed -n 's/.*"elements":"\([0-9]*\)".*/\1/p')
diag "egw: $N policies + client loaded ($elems elements)"
measure egw
allowed=$(db "SELECT allowed_packets FROM policy_counters WHERE scenario_id='client'")
stop_applier

printf "%-8s %8s %8s %10s %8s\n" state Gbit/s ratio conn/s ratio
for s in none ct-only egw; do
	printf "%-8s %8s %8s %10s %8s\n" "$s" "${G[$s]}" \
		"$(awk -v a="${G[$s]}" -v b="${G[none]}" 'BEGIN {printf "%.2f", a/b}')" "${C[$s]}" \
		"$(awk -v a="${C[$s]}" -v b="${C[none]}" 'BEGIN {printf "%.2f", a/b}')"
done
diag "egw vs ct-only: throughput $(awk -v a="${G[egw]}" -v b="${G[ct-only]}" 'BEGIN {printf "%.2f", a/b}'), connections $(awk -v a="${C[egw]}" -v b="${C[ct-only]}" 'BEGIN {printf "%.2f", a/b}')"
diag "allowed packets counted for the client (read every 5 s): ${allowed:-none yet}"
