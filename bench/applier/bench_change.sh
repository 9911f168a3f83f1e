#!/bin/bash
# SPDX-License-Identifier: MIT
# Benchmark (not a test): egw-applier's full reconcile and one policy change
# with N policies loaded, inside a throwaway namespace.
#   EGW_TOP_SRCDIR=... EGW_TOP_BUILDDIR=... bench/applier/bench_change.sh [N...]
# Prints: reconcile ms (applier, libnftables, one transaction) vs `nft -f`
# of the same rendered text in a fresh namespace; median and p99 of 30
# single-policy changes (applier-side: read DB + libnftnl batch) and the
# end-to-end time from the write returning to applied_generation catching up.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_netns.sh"
e2e_init bench_applier
need_root
need_cmd sqlite3 nft
CHANGES=${CHANGES:-30}
[ $# -gt 0 ] || set -- 1 100 1000 10000

dur_of() { # last "dur_ms" of a log line matching $1
	grep "$1" "$T/applier.log" | tail -1 | sed 's/.*"dur_ms":"\([0-9.]*\)".*/\1/'
}
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if(i<1)i=1; print a[i]}'; }

echo "N reconcile_ms nft_f_ms ratio change_med_ms change_p99_ms e2e_med_ms e2e_p99_ms"
for N in "$@"; do
	rm -rf "$T/state" "$T/run" "$T/applier.log"
	NS_GW=$(make_netns "gw$N")
	EGW_RECONCILE_INTERVAL=3600 EGW_MANAGED_SOURCES=100.64.0.0/10 applier_env
	policy put-many "$N" bench
	start_applier
	applied || { echo "Bail out! not applied"; exit 99; }
	stop_applier
	# full reconcile from an empty table: one libnftables transaction
	in_gw nft delete table inet forge_egress
	start_applier
	applied
	rec=$(dur_of '"trigger":"start"')
	db "SELECT rendered_ruleset FROM applier_state" > "$T/ruleset.nft"
	NS2=$(make_netns "k$N")
	t0=$(date +%s%N)
	ip netns exec "$NS2" nft -f "$T/ruleset.nft" || echo "# nft -f failed"
	t1=$(date +%s%N)
	nftf=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b-a)/1e6}')
	ip netns del "$NS2"
	: > "$T/chg"; : > "$T/e2e"
	for i in $(seq 1 "$CHANGES"); do
		port=$((1000 + i))
		s0=$(date +%s%N)
		policy put "{\"scenario_id\":\"bench-1\",\"profile\":\"custom\",\"sources\":[\"100.100.0.1/32\"],\"allowed_ports\":[$port]}"
		applied
		s1=$(date +%s%N)
		awk -v a="$s0" -v b="$s1" 'BEGIN {printf "%.1f\n", (b-a)/1e6}' >> "$T/e2e"
		dur_of '"applied changes"' >> "$T/chg"
		grep "applied changes" "$T/applier.log" | tail -1 >> "$T/lines"
	done
	stop_applier
	ip netns del "$NS_GW"
	printf "%s %s %s %s %s %s %s %s\n" "$N" "$rec" "$nftf" \
		"$(awk -v a="$rec" -v b="$nftf" 'BEGIN {printf "%.2f", a/b}')" \
		"$(pct 50 < "$T/chg")" "$(pct 99 < "$T/chg")" \
		"$(pct 50 < "$T/e2e")" "$(pct 99 < "$T/e2e")"
done
