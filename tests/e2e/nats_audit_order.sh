#!/bin/bash
# SPDX-License-Identifier: MIT
# audit.egress keeps the outbox order in a stream that others publish to
# as well (AUDIT holds audit.*).  Every publish names the message it must
# follow; a foreign message makes the server refuse the next one out of
# turn, and egw-natsd goes on one publish at a time.  Every
# event still arrives exactly once, in outbox order: after the refusal,
# with a foreign publisher running throughout, and with nats-server killed
# by SIGKILL in the middle of the drain.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_audit_order
start_nats
egw_env
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"

quiet "$NATSD" -n || { echo "Bail out! bad configuration"; exit 99; }
start_natsd
ok "AUDIT in use, publishes chained to their predecessors" \
	wait_until 5 natsd_info_is audit_order chained

drained() {
	wait_until "$1" q_eq "SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 0
}

# Phase 1: our events, then one foreign message in the stream.
# One transaction, so that one window takes all 300.
"$OUTBOXGEN" "$DB" 300 0 300 > "$T/ids" 2>> "$T/outboxgen.log" ||
	{ echo "Bail out! generator failed"; exit 99; }
ok "300 events delivered" drained 20
ok "each but the first named its predecessor" audit_expectations AUDIT 299
ok "a foreign message lands in AUDIT" quiet "$PROBE" jspub audit.other '{"foreign":"between"}'

# Phase 2: between windows, a new window's first publish follows acked
# rows and names nothing, so the foreign message just sits in between.
"$OUTBOXGEN" "$DB" 2000 0 200 >> "$T/ids" 2>> "$T/outboxgen.log" ||
	{ echo "Bail out! generator failed"; exit 99; }
ok "2000 more delivered" drained 30
audit_ids AUDIT > "$T/stream.ids"
ok "every event once, in outbox order" cmp -s "$T/ids" "$T/stream.ids"
ok "no event stored out of turn" audit_expectations AUDIT 2000

# Phase 3: a foreign publisher throughout a burst, and nats-server killed
# in the middle of the drain.  Its messages land while our publishes are
# in flight: the server refuses ours out of turn, and egw-natsd goes on
# one at a time.
"$PROBE" jspub-many audit.other 3000 1 > "$T/foreign.out" 2> "$T/foreign.log" &
FOREIGN_PID=$!
track_pid "$FOREIGN_PID"
ok "the foreign publisher is running" wait_until 10 bash -c \
	'[ "$("$0" stream-info AUDIT | python3 -c "import sys, json; print(json.load(sys.stdin)[\"messages\"])")" -ge 2320 ]' "$PROBE"
# 20,000 rows, as nats_audit_dedup.sh and nats_outage.sh: on a fast VM
# egw-natsd drains ~5,000 a second even one at a time, and 6,000 could
# all be delivered before a loaded CI's poll saw 3,300 and killed the
# server (seen once in the ASan build).
BURST=20000
"$OUTBOXGEN" "$DB" "$BURST" 0 500 >> "$T/ids" 2>> "$T/outboxgen.log" ||
	{ echo "Bail out! generator failed"; exit 99; }
ok "the server refused a publish out of turn" wait_until 20 \
	grep -q "refused a publish out of turn" "$T/natsd.log"
ok "egw-natsd now publishes one at a time" \
	wait_until 5 natsd_info_is audit_order one-at-a-time
kill_nats_mid_drain 20 3300
i=0
while kill -0 "$FOREIGN_PID" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
ok "foreign publisher finished" bash -c '! kill -0 "$0" 2>/dev/null' "$FOREIGN_PID"
"$PROBE" stream-dump AUDIT > "$T/dump"
ok "foreign messages interleaved with ours" python3 -c '
import sys, json
subj = [json.loads(l)["subject"] for l in open(sys.argv[1])]
runs = sum(1 for a, b in zip(subj, subj[1:]) if a != b)
sys.exit(0 if runs > 10 else 1)' "$T/dump"
audit_ids AUDIT > "$T/stream.ids"
ok "after the foreign publisher and SIGKILL: every event once, in outbox order" \
	same_events "$T/ids" "$T/stream.ids"
ok "no event stored out of turn" audit_expectations AUDIT 2000
ok "component_status: backlog 0" wait_until 5 natsd_info_is backlog 0
ok "egw-natsd still running" kill -0 "$NATSD_PID"
e2e_done
