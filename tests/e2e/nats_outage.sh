#!/bin/bash
# SPDX-License-Identifier: MIT
# A steady stream of audit events while nats-server is stopped for a few
# seconds and restarted on the same port with the same store: egw-natsd
# keeps running, shows the backlog and the lost connection in
# component_status, reconnects by itself, and afterwards the AUDIT stream
# holds every event exactly once, in the order the outbox got them, each
# stored right after the event its publish named.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_outage
start_nats
egw_env
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"

EVENTS=400		# 400 transactions, one event each, every 15 ms: ~6 s
quiet "$NATSD" -n || { echo "Bail out! bad configuration"; exit 99; }
start_natsd
ok "AUDIT stream in use" wait_until 5 natsd_info_is audit_mode jetstream

"$OUTBOXGEN" "$DB" "$EVENTS" 15 > "$T/generated.ids" 2> "$T/outboxgen.log" &
GEN_PID=$!
track_pid "$GEN_PID"
ok "events flow before the outage" wait_until 10 bash -c \
	'[ "$("$0" stream-info AUDIT | python3 -c "import sys, json; print(json.load(sys.stdin)[\"messages\"])")" -ge 20 ]' "$PROBE"

stop_nats
ok "egw-natsd notices the outage" wait_until 10 natsd_info_is connected 0
ok "backlog grows and is visible while NATS is down" wait_until 10 bash -c \
	'[ "$(sqlite3 "$0" "SELECT json_extract(info, \"\$.backlog\") FROM component_status
	     WHERE component = \"natsd\"")" -gt 0 ]' "$DB"
ok "undelivered rows visible in v_undelivered_outbox" bash -c \
	'[ "$(sqlite3 "$0" "SELECT count(*) FROM v_undelivered_outbox")" -gt 0 ]' "$DB"
sleep 2
ok "egw-natsd keeps running without NATS" kill -0 "$NATSD_PID"
restart_nats
ok "egw-natsd reconnects by itself" wait_until 20 natsd_info_is connected 1

# Let the generator finish (bounded), then the outbox must drain.
i=0
while kill -0 "$GEN_PID" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
ok "generator finished" bash -c '! kill -0 "$0" 2>/dev/null' "$GEN_PID"
ok "generator produced every event" test "$(wc -l < "$T/generated.ids")" -eq "$EVENTS"
ok "outbox drained after the restart" wait_until 30 q_eq \
	"SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 0

"$PROBE" stream-dump AUDIT | python3 -c '
import sys, json
for l in sys.stdin: print(json.loads(l)["msg_id"])' > "$T/stream.ids"
ok "AUDIT holds $EVENTS events" test "$(wc -l < "$T/stream.ids")" -eq "$EVENTS"
ok "no event twice" test "$(sort -u "$T/stream.ids" | wc -l)" -eq "$EVENTS"
ok "every event once, in outbox order (ids identical)" cmp -s "$T/generated.ids" "$T/stream.ids"
ok "Nats-Msg-Id equals the payload's event_id" stream_ids_consistent AUDIT
# A window's first publish follows acked ones and names nothing.
ok "the server checked the place of publishes" audit_expectations AUDIT 100
ok "payload sequence numbers are in order" bash -c '"$0" stream-dump AUDIT | python3 -c "
import sys, json
s = [json.loads(l)[\"data\"][\"seq\"] for l in sys.stdin]
sys.exit(0 if s == list(range(len(s))) else 1)"' "$PROBE"
ok "component_status counted a reconnect" wait_until 5 bash -c \
	'[ "$(sqlite3 "$0" "SELECT json_extract(info, \"\$.reconnects\") FROM component_status
	     WHERE component = \"natsd\"")" -ge 1 ]' "$DB"
ok "component_status: published = $EVENTS" wait_until 5 natsd_info_is published "$EVENTS"
ok "component_status: backlog 0" natsd_info_is backlog 0

# Phase 2: a burst drained in large batches and nats-server killed with
# SIGKILL in the middle (acks lost in flight): still exactly once, in order.
BURST=20000
"$OUTBOXGEN" "$DB" "$BURST" 0 500 > "$T/burst.ids" 2>> "$T/outboxgen.log" ||
	{ echo "Bail out! generator failed"; exit 99; }
kill_nats_mid_drain 10 "$((EVENTS + 2000))"
cat "$T/generated.ids" "$T/burst.ids" > "$T/all.ids"
"$PROBE" stream-dump AUDIT | python3 -c '
import sys, json
for l in sys.stdin: print(json.loads(l)["msg_id"])' > "$T/stream2.ids"
ok "AUDIT holds $((EVENTS + BURST)) events" test "$(wc -l < "$T/stream2.ids")" -eq "$((EVENTS + BURST))"
ok "after SIGKILL: every event once, in outbox order" cmp -s "$T/all.ids" "$T/stream2.ids"
if ! cmp -s "$T/all.ids" "$T/stream2.ids"; then
	diag "first differences (outbox order vs stream order):"
	diff "$T/all.ids" "$T/stream2.ids" | head -n 12 | sed 's/^/# /'
	grep -E 'not delivered|stored before|reconnect|disconnect' "$T/natsd.log" |
		tail -n 12 | sed 's/^/# /'
fi
ok "after SIGKILL: the server checked the place of publishes" \
	audit_expectations AUDIT "$((BURST / 2))"
ok "egw-natsd still running" kill -0 "$NATSD_PID"
e2e_done
