#!/bin/bash
# SPDX-License-Identifier: MIT
# Chaos: the whole gateway under egw-supervisor inside a network namespace
# (local nats-server with JetStream, egw-applier enforcing with
# DRY_RUN=false, the API pool behind nginx, egw-natsd, egw-flowlog), a
# steady bounded write load through the API, and SIGKILL to components in
# random order for a bounded period.  Afterwards:
#  - every write the API acknowledged (2xx) is in the database as written;
#  - the applier caught up (applied generation == desired generation) and
#    the kernel table equals the rendering of the database: a fresh
#    egw-applier started on a copy of the database in a second, clean
#    namespace produces the same table (sets, maps, elements, chains and
#    rules; handles left out);
#  - every audit event of the outbox reached the AUDIT stream exactly once
#    (event ids counted on the stream: none missing, none twice).
# CHAOS_SECONDS (default 20) bounds the kill period; the load stops with it.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
. "$EGW_TOP_SRCDIR/tests/e2e/lib_hardening.sh"
e2e_init chaos
need_root
need_cmd nginx nats-server curl ip nft sqlite3 jq python3

secs=${CHAOS_SECONDS:-20}
ns=$(make_netns chaos)
chmod 755 "$T"
export EGW_STATE_DIR="$T/state" EGW_RUN_DIR="$T/run"
export EGW_HTTP_LISTEN=127.0.0.1:18089 EGW_WORKERS=2 EGW_SPARE_WORKERS=2 EGW_AUTH=off
export EGW_USER=nobody EGW_NGINX_RENDER="$EGW_TOP_SRCDIR/scripts/render-nginx-conf"
export EGW_RECONCILE_INTERVAL=2 DRY_RUN=false EGW_NFLOG_GROUP=7
export EGW_DNS_SERVERS=198.51.100.20 EGW_MANAGED_SOURCES=100.64.0.0/10
unset NATS_URL
sup="$EGW_TOP_BUILDDIR/egw-supervisor"
PROBE=$(egw_bin tests/e2e/natsprobe)
DB=$EGW_STATE_DIR/egw.db
q() { sqlite3 -cmd '.timeout 5000' "$DB" "$1"; }
in_ns() { ip netns exec "$ns" "$@"; }
probe() { in_ns env NATS_URL=nats://127.0.0.1:14222 "$PROBE" "$@"; }
health_ok() { [ "$(in_ns curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:18089/health)" = 200 ]; }

ip netns exec "$ns" "$sup" --local-nats 14222 run > "$T/supervisor.log" 2>&1 &
SUP_PID=$!
track_pid "$SUP_PID"
ok "gateway up under egw-supervisor" wait_for 30 health_ok
ok "every child running" wait_for 15 "$sup" status
ok "the kernel table exists in the namespace" wait_for 15 in_ns nft list table inet forge_egress
ok "AUDIT stream exists" wait_for 15 probe stream-info AUDIT

# --- load: unique creates, one every ~20 ms, for the whole chaos period ----
cat > "$T/load.sh" <<'SH'
# runs inside the namespace: POST policies, log the acknowledged ones
end=$(( $(date +%s) + $1 )); i=0
while [ "$(date +%s)" -lt "$end" ] && [ $i -lt 5000 ]; do
	i=$((i + 1))
	a=$(( i / 250 )) b=$(( i % 250 + 1 ))
	body="{\"scenario_id\":\"chaos-$i\",\"profile\":\"custom\",\"sources\":[\"100.64.$((100 + a)).$b/32\"],\"allowed_ports\":[$((1000 + i))]}"
	code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$body" http://127.0.0.1:18089/v1/policies)
	case $code in 2*) echo "chaos-$i $((1000 + i))" ;; *) echo "$i $code" >&2 ;; esac
	sleep 0.02
done
SH
in_ns bash "$T/load.sh" "$((secs + 5))" > "$T/acked" 2> "$T/failed" &
LOAD_PID=$!
track_pid "$LOAD_PID"

# --- chaos: SIGKILL a random component every 0.5-2 s ------------------------
child_pid() { cat "$EGW_RUN_DIR/$1.pid" 2>/dev/null; }
sleep 2
end=$(( $(date +%s) + secs )); kills=0
: > "$T/kills"
while [ "$(date +%s)" -lt "$end" ] && [ $kills -lt 100 ]; do
	case $(( $(od -An -N1 -tu1 /dev/urandom) % 7 )) in
	0) c=egw-applier ;; 1) c=egw-natsd ;; 2) c=nats-server ;; 3) c=egw-api ;;
	4) c=nginx ;; 5) c=egw-flowlog ;; 6) c=worker ;;
	esac
	if [ "$c" = worker ]; then
		p=$(pgrep -P "$(child_pid egw-api)" 2>/dev/null | head -n1)
	else
		p=$(child_pid "$c")
	fi
	if [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; then
		kills=$((kills + 1))
		echo "$c $p" >> "$T/kills"
	fi
	sleep "0.$(( 5 + $(od -An -N1 -tu1 /dev/urandom) % 15 ))"
done
diag "$kills SIGKILLs: $(awk '{ print $1 }' "$T/kills" | sort | uniq -c | tr '\n' ' ')"
wait "$LOAD_PID"
acked=$(wc -l < "$T/acked")
diag "load: $acked writes acknowledged, $(wc -l < "$T/failed") refused or failed during the chaos"
ok "components were killed ($kills)" test "$kills" -ge 5
# Whether the gateway served writes between the kills at all, not a rate:
# the kills are random, and four runs acknowledged 174, 49, 131 and 102
# (49 failed the old bound of 50 in a fresh-clone run).
ok "the load got writes through ($acked)" test "$acked" -ge 25

# --- recovery ------------------------------------------------------------------
ok "gateway healthy again" wait_for 30 health_ok
ok "every child running again" wait_for 30 "$sup" status
caught_up() {
	[ "$(q 'SELECT desired_generation = applied_generation FROM applier_state')" = 1 ]
}
ok "the applier caught up with the desired generation" wait_for 60 caught_up
backlog0() { [ "$(q 'SELECT count(*) FROM outbox WHERE delivered_at IS NULL')" = 0 ]; }
ok "the outbox drained to NATS" wait_for 60 backlog0
# Once seen failing under a full suite's load (2026-11-30; not since):
# what egw-natsd said last, and what is still undelivered, for next time.
if ! backlog0; then
	diag "undelivered (count|max attempts|an error): $(q "SELECT count(*), coalesce(max(attempts), 0), coalesce(max(last_error), '') FROM outbox WHERE delivered_at IS NULL")"
	grep '"proc":"nats"' "$T/supervisor.log" | tail -n 30 | sed 's/^/# natsd: /'
fi

# --- no acknowledged write missing ------------------------------------------------
missing=0
while read -r sid port; do
	got=$(q "SELECT d.port_lo FROM policies p JOIN policy_destinations d ON d.policy_id = p.id
		WHERE p.scenario_id = '$sid' AND d.origin = 'port'")
	[ "$got" = "$port" ] || { missing=$((missing + 1)); diag "acknowledged $sid ($port) is '$got'"; }
done < "$T/acked"
ok "every acknowledged write is in the database ($acked checked, $missing missing)" test "$missing" -eq 0

# --- kernel == rendering of the database ---------------------------------------------
sqlite3 "$DB" ".backup '$T/copy.db'" || { echo "Bail out! cannot copy the database"; exit 99; }
ns2=$(make_netns fresh)
mkdir -p "$T/state2" "$T/run2"
cp "$T/copy.db" "$T/state2/egw.db"
EGW_STATE_DIR="$T/state2" EGW_RUN_DIR="$T/run2" ip netns exec "$ns2" \
	"$(egw_bin egw-applier)" > "$T/fresh-applier.log" 2>&1 &
track_pid $!
fresh_done() {
	[ "$(sqlite3 -cmd '.timeout 5000' "$T/state2/egw.db" \
		'SELECT applied_generation > 0 AND desired_generation = applied_generation FROM applier_state')" = 1 ]
}
ok "a fresh applier rendered the copy" wait_for 60 fresh_done
norm() {	# the table without handles, elements sorted
	ip netns exec "$1" nft -j list table inet forge_egress |
		jq -S -c '.nftables[] | del(.metainfo) | select(. != {}) | walk(if type == "object" then del(.handle) else . end)
			| (if .set.elem then .set.elem |= sort else . end)
			| (if .map.elem then .map.elem |= sort else . end)' | sort
}
norm "$ns" > "$T/kernel.json"
norm "$ns2" > "$T/rendered.json"
ok "kernel table equals the rendering of the database" same_file "$T/rendered.json" "$T/kernel.json"
elems() { jq -s '[.[] | (.set.elem // .map.elem // []) | length] | add' < "$1"; }
diag "kernel: $(wc -l < "$T/kernel.json") objects, $(elems "$T/kernel.json") elements"
ok "kernel holds every policy's source ($(q 'SELECT count(*) FROM policies'))" \
	test "$(jq -s '[.[] | select(.map.name == "src4" or .map.name == "srch4") | (.map.elem // [])[]] | length' < "$T/kernel.json")" \
	-eq "$(q "SELECT count(*) FROM policy_sources WHERE kind = 'prefix'")"

# --- audit events: none lost, none duplicated ---------------------------------------------
q "SELECT event_id FROM outbox ORDER BY event_id" > "$T/outbox.ids"
probe stream-dump AUDIT | jq -r '.data.event_id // empty' > "$T/stream.all"
sort "$T/stream.all" > "$T/stream.ids"
dups=$(uniq -d "$T/stream.ids" | wc -l)
lost=$(comm -23 "$T/outbox.ids" <(sort -u "$T/stream.ids") | wc -l)
extra=$(comm -13 "$T/outbox.ids" <(sort -u "$T/stream.ids") | wc -l)
diag "audit: $(wc -l < "$T/outbox.ids") events in the outbox, $(wc -l < "$T/stream.all") on the stream"
ok "no audit event lost ($lost)" test "$lost" -eq 0
ok "no audit event duplicated on NATS ($dups)" test "$dups" -eq 0
ok "no event on the stream that the outbox does not know ($extra)" test "$extra" -eq 0
ok "one policy.created event per created policy" test \
	"$(q "SELECT count(*) FROM outbox WHERE type = 'policy.created'")" -eq "$(q 'SELECT count(*) FROM policies')"

kill -TERM "$SUP_PID"
stopped() { ! kill -0 "$SUP_PID" 2>/dev/null; }
ok "supervisor stops cleanly after the chaos" wait_for 30 stopped
e2e_done
