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
# the lock is released.  The same with a completion as the second
# message; and a lab's successor on its network before its completion.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_event_order
need_cmd jq
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

# A completion is a message the scenario acted on too, recorded with its
# place: the created message NAKed while the database was busy comes back
# after the scenario's completion was acted on, is older than it and
# changes nothing, by the record alone (so also once retention or a
# delete has removed the completed row; test_nats_bridge shows that).
hold_write_lock
# Both at once, while the database is held: whichever the bridge takes
# first, the completion (or its redelivery, queued earlier) is acted on
# before the created message's redelivery once the lock is released.
oseq=$("$PROBE" jspub scenario.created '{"scenario_id":"ord-2","profile":"none","network_id":"n-ord2"}' | jq -r .seq)
cseq=$("$PROBE" jspub scenario.completed '{"scenario_id":"ord-2"}' | jq -r .seq)
ok "ord-2: the created message ($oseq) meets a busy database and is NAKed" \
	wait_until 90 grep -q "js:SCENARIOS:$oseq: negatively acknowledged" "$T/natsd.log"
touch "$T/release"
wait "$HOLD_PID"
ok "ord-2: the completion is acted on (a completed tombstone)" \
	wait_until 10 q_eq "SELECT count(*) FROM policies WHERE scenario_id = 'ord-2' AND completed_at IS NOT NULL AND enabled = 0" 1
ok "ord-2: the completion's place in the stream ($cseq) is recorded" \
	q_is "SELECT count(*) FROM scenario_event_digests WHERE scenario_id = 'ord-2' AND stream = 'SCENARIOS' AND stream_seq = ${cseq:-0}" 1
ok "ord-2: the created message comes back and is older than the completion" \
	wait_until 15 grep -q 'scenario ord-2: created event SCENARIOS:[0-9]* is older than one acted on already; ignored' "$T/natsd.log"
ok "ord-2: ... and changed nothing" q_is \
	"SELECT enabled || '|' || (completed_at IS NOT NULL) FROM policies WHERE scenario_id = 'ord-2'" "0|1"

# A lab's successor on the same network, published before the lab's
# completion is acted on (created and completed messages come through two
# consumers, so this happens even in order): it is redelivered while the
# network is held, not rejected, and applies once the lab completes.
"$PROBE" jspub scenario.created '{"scenario_id":"lab-a","profile":"none","network_id":"n-lab"}' > /dev/null
ok "lab-a holds network n-lab" \
	wait_until 10 q_eq "SELECT count(*) FROM policies WHERE scenario_id = 'lab-a'" 1
"$PROBE" jspub scenario.created '{"scenario_id":"lab-b","profile":"none","network_id":"n-lab"}' > /dev/null
ok "lab-b meets lab-a's claim and is redelivered" \
	wait_until 10 grep -q 'scenario lab-b: .*redelivered up to 60 times' "$T/natsd.log"
ok "... not rejected" q_is \
	"SELECT count(*) FROM outbox WHERE type = 'event.rejected' AND scenario_id = 'lab-b'" 0
"$PROBE" jspub scenario.completed '{"scenario_id":"lab-a"}' > /dev/null
ok "lab-b applies once lab-a has completed" \
	wait_until 10 q_eq "SELECT enabled || '|' || network_id FROM policies WHERE scenario_id = 'lab-b'" "1|n-lab"

last=$(stream_last_seq SCENARIOS)
ok "every message was acknowledged, the older one too" \
	wait_until 10 consumer_is SCENARIOS egress_gateway_created ack_floor_stream_seq "$last"
stop_natsd
e2e_done
