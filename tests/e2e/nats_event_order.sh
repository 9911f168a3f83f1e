#!/bin/bash
# SPDX-License-Identifier: MIT
# A scenario.created message NAKed while the database was busy comes back
# after a delay; when the producer's next created message for the same
# scenario is acted on in between, the old one must not undo it when it
# returns.  A real nats-server -js and egw-natsd; the database is held
# busy by another connection (BEGIN IMMEDIATE) until the bridge gives up
# on the first message; the second one is published at once, well inside
# the first one's NAK delay (1 s), and meets the lock too, so the bridge is
# waiting on it with the second message when the first comes back; then
# the lock is released.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_event_order
start_nats
egw_env
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"

ok "scenario stream created by the producer side" \
	"$PROBE" stream-add SCENARIOS scenario.created,scenario.completed
start_natsd
"$PROBE" jspub scenario.created '{"scenario_id":"warm-1","profile":"none","network_id":"n-warm"}' > /dev/null
ok "the bridge takes created events" \
	wait_until 10 q_eq "SELECT count(*) FROM policies WHERE scenario_id = 'warm-1'" 1

# Hold the database's write lock until $T/release appears.
hold_write_lock

"$PROBE" jspub scenario.created '{"scenario_id":"ord-1","profile":"none","network_id":"n-old"}' > /dev/null
ok "the first message meets a busy database and is NAKed" \
	wait_until 60 sh -c "[ \"\$(grep -c 'js:SCENARIOS:[0-9]*: negatively acknowledged' '$T/natsd.log')\" -ge 1 ]"
"$PROBE" jspub scenario.created '{"scenario_id":"ord-1","profile":"external-api","network_id":"n-new"}' > /dev/null
sleep 1.5	# the first message is back in the queue behind the second
touch "$T/release"
wait "$HOLD_PID"
ok "the producer's next message is acted on" \
	wait_until 10 q_eq "SELECT profile FROM policies WHERE scenario_id = 'ord-1'" external-api
ok "the first message comes back and is recognised as older" \
	wait_until 15 grep -q 'scenario ord-1: created event SCENARIOS:[0-9]* is older than one acted on already; ignored' "$T/natsd.log"
ok "... it changed nothing" q_is \
	"SELECT profile || '|' || network_id FROM policies WHERE scenario_id = 'ord-1'" "external-api|n-new"
ok "... and is not recorded as accepted" q_is \
	"SELECT count(*) FROM scenario_event_digests WHERE scenario_id = 'ord-1'" 1
ok "the accepted message's place in the stream is recorded" q_is \
	"SELECT stream || '|' || (stream_seq > 2) || '|' || (stream_ts > 0) FROM scenario_event_digests
	 WHERE scenario_id = 'ord-1'" "SCENARIOS|1|1"
last=$(stream_last_seq SCENARIOS)
ok "every message was acknowledged, the older one too" \
	wait_until 10 consumer_is SCENARIOS egress_gateway_created ack_floor_stream_seq "$last"
stop_natsd
e2e_done
