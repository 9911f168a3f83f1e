#!/bin/bash
# SPDX-License-Identifier: MIT
# 64 concurrent writers x 20 upserts on 8 overlapping scenarios through a
# real nginx and a 4-worker pool: no 5xx, no "database is locked" reaching
# a client, no lost update (each scenario's revisions are unique and
# gap-free, every writer sees them increase), the final state is the write
# with the highest revision, and history matches.  Bounded by `timeout`.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_api.sh"
e2e_init api_concurrency
need_cmd sqlite3 timeout

export EGW_AUTH=off
WRITERS=64 PER=20 SCEN=8
start_api 4
start_nginx
mkdir -p "$T/w"

writer() {
	w=$1
	for i in $(seq 1 $PER); do
		s=cc-$(( (w + i) % SCEN ))
		port=$(( 1000 + w * PER + i ))
		code=$(curl -sS -o "$T/w/$w.body" -w '%{http_code}' --max-time 30 \
			-H 'Content-Type: application/json' -X POST \
			--data-binary "{\"scenario_id\":\"$s\",\"profile\":\"custom\",\"allowed_ports\":[$port]}" \
			"$API/v1/policies" 2>>"$T/w/$w.err") || code=000
		rev=$(grep -o '"revision":[0-9]*' "$T/w/$w.body" | head -n1 | cut -d: -f2)
		echo "$w $s $port $code ${rev:-none}" >> "$T/w/$w.out"
		cat "$T/w/$w.body" >> "$T/w/all.bodies"
		echo >> "$T/w/all.bodies"
	done
}

start=$(date +%s)
pids=
for w in $(seq 1 $WRITERS); do
	writer "$w" &
	pids="$pids $!"
done
# Bounded: the whole load must finish within 180 s.
deadline=$(( start + 180 ))
for p in $pids; do
	while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 0.2; done
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
elapsed=$(( $(date +%s) - start ))
cat "$T"/w/*.out > "$T/results"
diag "$(wc -l < "$T/results") writes in ${elapsed}s"

ok "all $((WRITERS * PER)) writes answered within the bound" test "$(wc -l < "$T/results")" -eq $((WRITERS * PER))
ok "no 5xx and no transport failure" bash -c "! awk '\$4 !~ /^20[01]\$/' '$T/results' | grep -q ."
ok "no 'database is locked' reaching a client" bash -c "! grep -qi 'locked' '$T/w/all.bodies'"
ok "no busy error reaching a client" bash -c "! grep -q '\"code\":\"busy\"' '$T/w/all.bodies'"

for n in $(seq 0 $((SCEN - 1))); do
	s=cc-$n
	awk -v s=$s '$2 == s { print $5 }' "$T/results" | sort -n > "$T/revs.$s"
	writes=$(wc -l < "$T/revs.$s")
	ok "$s: $writes revisions, all distinct" test "$(sort -u "$T/revs.$s" | wc -l)" -eq "$writes"
	ok "$s: revisions 1..$writes without gaps (no lost update)" test "$(seq 1 "$writes" | tr '\n' ' ')" = "$(tr '\n' ' ' < "$T/revs.$s")"
	last_port=$(awk -v s=$s '$2 == s { print $5, $3 }' "$T/results" | sort -n | tail -n1 | cut -d' ' -f2)
	api GET "/v1/policies/$s"
	ok "$s: final state is the last write (port $last_port, revision $writes)" \
		jqe ".allowed_ports == [$last_port] and .revision == $writes"
	ok "$s: one history row per write" test "$(sqlite3 "$EGW_STATE_DIR/egw.db" "SELECT count(*) FROM policy_history WHERE scenario_id='$s'")" -eq "$writes"
done
# Each writer's own successive writes to one scenario see growing revisions.
ok "every writer saw strictly increasing revisions per scenario" bash -c \
	"awk '{ k = \$1 \" \" \$2; if (k in last && \$5 + 0 <= last[k]) bad = 1; last[k] = \$5 + 0 } END { exit bad }' '$T/results'"
ok "generation counts every write" test "$(sqlite3 "$EGW_STATE_DIR/egw.db" 'SELECT desired_generation FROM applier_state')" -eq $((WRITERS * PER))
ok "no worker died under load" test "$(grep -c 'killed by signal\|exited with status' "$T/api.log")" -eq 0
e2e_done
