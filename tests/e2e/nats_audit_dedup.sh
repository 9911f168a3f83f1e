#!/bin/bash
# SPDX-License-Identifier: MIT
# audit.egress stays exactly-once without JetStream's de-duplication: the
# AUDIT stream here forgets message ids after one second, nats-server is
# killed by SIGKILL in the middle of a drain (publishes stored, their acks
# lost) and comes back only after that second.  egw-natsd must learn from
# the stream which rows it already holds rather than publish them again;
# every event must arrive once, in outbox order.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_audit_dedup
start_nats
egw_env
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"

quiet "$PROBE" stream-add AUDIT 'audit.*' 1000 ||
	{ echo "Bail out! cannot create the AUDIT stream"; exit 99; }
ok "AUDIT forgets message ids after 1 s" bash -c \
	'"$0" stream-info AUDIT | python3 -c "import sys, json; sys.exit(0 if json.load(sys.stdin)[\"duplicate_window_ms\"] == 1000 else 1)"' "$PROBE"
quiet "$NATSD" -n || { echo "Bail out! bad configuration"; exit 99; }
start_natsd
ok "egw-natsd uses the existing AUDIT stream" \
	wait_until 5 natsd_info_is audit_order chained

BURST=20000
"$OUTBOXGEN" "$DB" "$BURST" 0 500 > "$T/ids" 2>> "$T/outboxgen.log" ||
	{ echo "Bail out! generator failed"; exit 99; }
# 3 s between the kill and the restart: every id stored before the kill
# has left the 1 s window when egw-natsd reconnects.
kill_nats_mid_drain 20 2000 3
audit_ids AUDIT > "$T/stream.ids"
ok "every event once, in outbox order, with the de-duplication window expired" \
	same_events "$T/ids" "$T/stream.ids"
ok "no event stored out of turn" audit_expectations AUDIT 1000
ok "component_status: backlog 0" wait_until 5 natsd_info_is backlog 0
ok "egw-natsd still running" kill -0 "$NATSD_PID"
e2e_done
