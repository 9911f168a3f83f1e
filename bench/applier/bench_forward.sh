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
# Runtime: loading N policies (~20-50 s at 10,000) plus REPS x 3 x 2 x SECS.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init bench_forward
need_root
need_cmd iperf3 nft sqlite3
N=${1:-10000}
SECS=${SECS:-5}
REPS=${REPS:-5}
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

one() { # one LABEL: one iperf3 run and one connection-rate run
	in_scen iperf3 -c 203.0.113.10 -B 100.64.1.2 -t "$SECS" -J > "$T/ip.json" 2>&1 || true
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$T/ip.json" >> "$T/g.$1" 2>/dev/null || echo 0 >> "$T/g.$1"
	in_scen "$CONNRATE" connect 100.64.1.2 203.0.113.10 8081 "$SECS" 2 | awk '{print $1}' >> "$T/c.$1"
}

EGW_RECONCILE_INTERVAL=3600 EGW_MANAGED_SOURCES=100.64.0.0/10 applier_env
policy put-many "$N" bench
# the client's own policy: the newest mark; every policy costs the same
policy put '{"scenario_id":"client","profile":"custom","sources":["100.64.1.2/32"],"allowed_hosts":["203.0.113.10"],"allowed_ports":[5201,8081]}'

# The three states take turns in every round, so that load from elsewhere
# on the machine spreads over all of them; medians are printed.
for rep in $(seq 1 "$REPS"); do
	one none
	in_gw nft -f - <<'NFT'
table inet egw_ctonly {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ct state established,related accept
	}
}
NFT
	one ct-only
	in_gw nft delete table inet egw_ctonly
	: > "$T/applier.log"
	start_applier
	wait_for 300 gen_applied && wait_for 120 grep -q '"trigger":"start"' "$T/applier.log" ||
		{ echo "Bail out! not applied"; exit 99; }
	[ "$rep" -gt 1 ] || diag "egw: $N policies + client loaded ($(sed -n 's/.*"elements":"\([0-9]*\)".*/\1/p' "$T/applier.log" | tail -1) elements)"
	one egw
	allowed=$(db "SELECT allowed_packets FROM policy_counters WHERE scenario_id='client'")
	stop_applier
	in_gw nft delete table inet forge_egress
done
declare -A G C
for s in none ct-only egw; do
	G[$s]=$(pct 50 < "$T/g.$s")
	C[$s]=$(pct 50 < "$T/c.$s")
	diag "$s: Gbit/s $(tr '\n' ' ' < "$T/g.$s")| conn/s $(tr '\n' ' ' < "$T/c.$s")"
done

printf "%-8s %8s %8s %10s %8s\n" state Gbit/s ratio conn/s ratio
for s in none ct-only egw; do
	printf "%-8s %8s %8s %10s %8s\n" "$s" "${G[$s]}" \
		"$(awk -v a="${G[$s]}" -v b="${G[none]}" 'BEGIN {printf "%.2f", a/b}')" "${C[$s]}" \
		"$(awk -v a="${C[$s]}" -v b="${C[none]}" 'BEGIN {printf "%.2f", a/b}')"
done
diag "egw vs ct-only: throughput $(awk -v a="${G[egw]}" -v b="${G[ct-only]}" 'BEGIN {printf "%.2f", a/b}'), connections $(awk -v a="${C[egw]}" -v b="${C[ct-only]}" 'BEGIN {printf "%.2f", a/b}')"
diag "allowed packets counted for the client (read every 5 s): ${allowed:-none yet}"
