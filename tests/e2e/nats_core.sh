#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-natsd without JetStream: it starts before any NATS server exists and
# keeps retrying; against a core-only nats-server it uses core
# subscriptions and core publish + flush (a subscriber on audit.egress
# sees the events with their Nats-Msg-Id); with JetStream but
# EGW_CREATE_STREAMS=false and no stream on audit.*, it creates nothing and
# falls back to core publish as well.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_core
need_cmd nats-server
egw_env
NATS_PORT=$(free_port)
export NATS_URL="nats://127.0.0.1:$NATS_PORT"
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"

# No server yet: egw-natsd must come up anyway and report itself offline.
start_natsd
ok "egw-natsd runs with no NATS server" natsd_info_is connected 0
"$OUTBOXGEN" "$DB" 1 0 > "$T/offline.ids" || { echo "Bail out! outboxgen"; exit 99; }
ok "backlog visible while offline" wait_until 5 natsd_info_is backlog 1

nats-server -a 127.0.0.1 -p "$NATS_PORT" > "$T/nats.log" 2>&1 &
NATS_PID=$!
track_pid "$NATS_PID"
ok "connects once the server appears" wait_until 20 natsd_info_is connected 1
ok "no JetStream detected" wait_until 5 natsd_info_is jetstream 0
ok "audit falls back to core publish" natsd_info_is audit_mode core
ok "scenario.created through a core subscription" natsd_info_is created_mode core
ok "offline backlog flushed with core publish" wait_until 10 q_eq \
	"SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 0

"$PROBE" sub audit.egress 3 15000 "$T/sub.ready" > "$T/sub.out" 2> "$T/sub.log" &
SUB_PID=$!
track_pid "$SUB_PID"
wait_until 10 test -e "$T/sub.ready" || { echo "Bail out! subscriber not ready"; exit 99; }

"$PROBE" pub scenario.created '{"scenario_id":"core-1","network_id":"n1","track":"cissp"}'
ok "core event applied" wait_until 10 q_eq \
	"SELECT profile FROM policies WHERE scenario_id = 'core-1'" training-updates
"$PROBE" pub scenario.created '{"scenario_id":"core-2","allowed_ports":"all"}'
ok "invalid core event recorded" wait_until 10 q_eq \
	"SELECT count(*) FROM outbox WHERE type = 'event.rejected' AND scenario_id = 'core-2'" 1
ok "invalid core event changed nothing" q_is \
	"SELECT count(*) FROM policies WHERE scenario_id = 'core-2'" 0
"$PROBE" pub scenario.completed '{"scenario_id":"core-1"}'
ok "core completed applied" wait_until 10 q_eq \
	"SELECT enabled FROM policies WHERE scenario_id = 'core-1'" 0

i=0
while kill -0 "$SUB_PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
ok "subscriber got three audit events" test "$(wc -l < "$T/sub.out")" -eq 3
ok "in order: created, rejected, completed" bash -c 'python3 -c "
import sys, json
t = [json.loads(l)[\"data\"][\"type\"] for l in open(sys.argv[1])]
sys.exit(0 if t == [\"policy.created\", \"event.rejected\", \"policy.completed\"] else 1)" "$0"' "$T/sub.out"
ok "core messages carry Nats-Msg-Id = event_id" bash -c 'python3 -c "
import sys, json
for l in open(sys.argv[1]):
    m = json.loads(l)
    assert m[\"msg_id\"] == m[\"data\"][\"event_id\"], m" "$0"' "$T/sub.out"
ok "published ids match the outbox" bash -c '
	diff <(python3 -c "
import sys, json
for l in open(sys.argv[1]): print(json.loads(l)[\"msg_id\"])" "$0") \
	<(sqlite3 "$1" "SELECT event_id FROM outbox ORDER BY id LIMIT -1 OFFSET 1")' "$T/sub.out" "$DB"

# A core event that cannot be applied now (the write lock held past every
# attempt's busy timeout) is lost: core NATS keeps no copy to redeliver.
# Said so (not "will retry"), and counted.  The lock is held until the
# bridge has said so, however long its other writes queued before it.
hold_write_lock
"$PROBE" pub scenario.created '{"scenario_id":"core-lost","track":"cissp"}'
ok "a core event that could not be applied is said to be lost" \
	wait_until 120 grep -q 'over core NATS not applied and not redelivered' "$T/natsd.log"
touch "$T/release"
wait "$HOLD_PID"
ok "... counted in egw-natsd's report (dropped)" wait_until 15 natsd_info_is dropped 1
sleep 1
ok "... and not applied later" q_is \
	"SELECT count(*) FROM policies WHERE scenario_id = 'core-lost'" 0

# JetStream present, but EGW_CREATE_STREAMS=false and no stream on audit.*.
stop_natsd
kill -TERM "$NATS_PID"
wait "$NATS_PID" 2>/dev/null
start_nats
EGW_CREATE_STREAMS=false start_natsd
ok "JetStream detected" wait_until 10 natsd_info_is jetstream 1
ok "EGW_CREATE_STREAMS=false: audit uses core publish" natsd_info_is audit_mode core
ok "EGW_CREATE_STREAMS=false: no AUDIT stream created" \
	bash -c '"$0" stream-info AUDIT > /dev/null 2>&1; [ $? -eq 1 ]' "$PROBE"
"$PROBE" sub audit.egress 1 15000 "$T/sub2.ready" > "$T/sub2.out" 2>> "$T/sub.log" &
SUB_PID=$!
track_pid "$SUB_PID"
wait_until 10 test -e "$T/sub2.ready" || { echo "Bail out! subscriber not ready"; exit 99; }
"$PROBE" pub scenario.created '{"scenario_id":"core-3","track":"netplus"}'
ok "event applied without any stream" wait_until 10 q_eq \
	"SELECT profile FROM policies WHERE scenario_id = 'core-3'" none
i=0
while kill -0 "$SUB_PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
ok "its audit event arrived by core publish" grep -q '"scenario_id":"core-3"' "$T/sub2.out"
ok "egw-natsd still running" kill -0 "$NATSD_PID"

# JetStream present but the AUDIT stream cannot be created (a stream of
# that name holds other subjects): audit events wait in the outbox, they
# are not published by core NATS and called delivered with no stream
# storing them; once the name is free the stream is created and they go.
stop_natsd
"$PROBE" stream-add AUDIT audit.other || { echo "Bail out! stream-add"; exit 99; }
undelivered() { q "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"; }
u0=$(undelivered)
start_natsd
"$OUTBOXGEN" "$DB" 3 0 > /dev/null || { echo "Bail out! outboxgen"; exit 99; }
ok "stream creation refused: audit mode 'waiting'" wait_until 10 natsd_info_is audit_mode waiting
ok "the refusal is logged with the server's reason" \
	wait_until 5 grep -q "create stream AUDIT: .*in use" "$T/natsd.log"
ok "meanwhile scenario events still come in" wait_until 10 natsd_info_is created_mode core
"$PROBE" pub scenario.created '{"scenario_id":"core-4","track":"netplus"}'
ok "... and are applied" wait_until 10 q_eq \
	"SELECT profile FROM policies WHERE scenario_id = 'core-4'" none
sleep 2
ok "meanwhile nothing is marked delivered ($(undelivered) waiting)" test "$(undelivered)" -ge $((u0 + 3))
"$PROBE" stream-delete AUDIT || { echo "Bail out! stream-delete"; exit 99; }
ok "once the name is free: the stream is created, audit mode jetstream" \
	wait_until 40 natsd_info_is audit_mode jetstream
ok "and the waiting events are delivered" wait_until 15 q_eq \
	"SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 0
ok "into the AUDIT stream" bash -c '"$0" stream-info AUDIT | grep -q "\"messages\":[1-9]"' "$PROBE"

# A server that takes JetStream API requests and never answers them (here
# a silent subscriber on \$JS.API.>, on a core-only server): JetStream's
# presence is unknown, so audit events wait instead of going out by core
# publish; when the requests are refused (no responders) core is certain.
stop_natsd
kill -TERM "$NATS_PID"
wait "$NATS_PID" 2>/dev/null
nats-server -a 127.0.0.1 -p "$NATS_PORT" > "$T/nats3.log" 2>&1 &
NATS_PID=$!
track_pid "$NATS_PID"
wait_until 10 "$PROBE" pub x.ready '{}' || { echo "Bail out! nats-server"; exit 99; }
"$PROBE" sub '$JS.API.>' 1000 60000 "$T/silent.ready" > /dev/null 2>&1 &
SILENT_PID=$!
track_pid "$SILENT_PID"
wait_until 10 test -e "$T/silent.ready" || { echo "Bail out! silent responder"; exit 99; }
u0=$(undelivered)
start_natsd
"$OUTBOXGEN" "$DB" 3 0 > /dev/null || { echo "Bail out! outboxgen"; exit 99; }
ok "JetStream requests time out: audit mode 'waiting'" wait_until 15 natsd_info_is audit_mode waiting
sleep 3
ok "meanwhile nothing is marked delivered ($(undelivered) waiting)" test "$(undelivered)" -ge $((u0 + 3))
kill -TERM "$SILENT_PID"; wait "$SILENT_PID" 2>/dev/null
ok "no responders: audit falls back to core publish" wait_until 40 natsd_info_is audit_mode core
ok "and the waiting events are published" wait_until 15 q_eq \
	"SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 0
e2e_done
