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

# One curl per writer doing its 20 requests in order (a config file with
# one block per request), so the load is 64 client processes, not 1,280.
for w in $(seq 1 $WRITERS); do
	for i in $(seq 1 $PER); do
		s=cc-$(( (w + i) % SCEN ))
		port=$(( 1000 + w * PER + i ))
		echo "$w $i $s $port" >> "$T/plan"
		cat <<CFG
url = "$API/v1/policies"
request = "POST"
header = "Content-Type: application/json"
data-binary = "{\\"scenario_id\\":\\"$s\\",\\"profile\\":\\"custom\\",\\"allowed_ports\\":[$port]}"
output = "$T/w/$w.$i.body"
write-out = "$w $i %{http_code}\\n"
max-time = 30
next
CFG
	done > "$T/w/$w.cfg"
done

start=$(date +%s)
pids=
for w in $(seq 1 $WRITERS); do
	curl -sS -K "$T/w/$w.cfg" > "$T/w/$w.out" 2>>"$T/w/$w.err" &
	pids="$pids $!"
done
# Bounded: the whole load must finish within 240 s.
deadline=$(( start + 240 ))
for p in $pids; do
	while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 0.2; done
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
elapsed=$(( $(date +%s) - start ))
# results: writer scenario port status revision
(cd "$T/w" && grep -o '"revision":[0-9]*' -- *.body) | sed 's/\.body:"revision":/ /' |
	awk '{ split($1, a, "."); print a[1], a[2], $2 }' | sort > "$T/revs"
cat "$T"/w/*.out | sort > "$T/codes"
awk 'NR == FNR { plan[$1 " " $2] = $3 " " $4; next }
	{ k = $1 " " $2; if (k in plan) print k, plan[k], $3 }' "$T/plan" "$T/codes" | sort > "$T/coded"
# join on "writer request": writer request scenario port status revision
awk 'NR == FNR { rev[$1 " " $2] = $3; next }
	{ r = rev[$1 " " $2]; print $1, $3, $4, $5, (r == "" ? "none" : r), $2 }' "$T/revs" "$T/coded" |
	sort -k1,1n -k6,6n > "$T/results"
cat "$T"/w/*.body > "$T/w/all.bodies" 2>/dev/null
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
