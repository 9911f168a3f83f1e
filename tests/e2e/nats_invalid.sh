#!/bin/bash
# SPDX-License-Identifier: MIT
# Every invalid scenario event shape, through JetStream: terminated (not
# redelivered, nothing left pending), recorded once as an "event.rejected"
# audit event with its reason (in SQLite and on the AUDIT stream), and no
# policy changes.  A valid event after them is still applied.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_invalid
start_nats
egw_env
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"
export EGW_MAX_BODY=2048

quiet "$PROBE" stream-add SCENARIOS scenario.created,scenario.completed ||
	{ echo "Bail out! cannot create the scenario stream"; exit 99; }
start_natsd
ok "bound to the durable consumers" wait_until 5 natsd_info_is created_mode durable

N=0
bad() {	# bad SUBJECT BODY
	N=$((N + 1))
	printf '%s' "$2" | "$PROBE" jspub "$1" - > /dev/null ||
		{ echo "Bail out! publish failed"; exit 99; }
}
bad scenario.created ''
bad scenario.created 'not json'
bad scenario.created '[1,2,3]'
bad scenario.created '"a string"'
bad scenario.created 'null'
bad scenario.created '{"scenario_id":"t1"} {"scenario_id":"t2"}'
bad scenario.created '{"network_id":"n"}'
bad scenario.created '{"scenario_id":42}'
bad scenario.created '{"scenario_id":"has space"}'
bad scenario.created '{"scenario_id":"t3","track":["cissp"]}'
bad scenario.created '{"scenario_id":"t4","surprise":true}'
bad scenario.created '{"scenario_id":"t5","profile":"no-such-profile"}'
bad scenario.created '{"scenario_id":"t6","profile":"custom","allowed_hosts":["10.0.0.300"]}'
bad scenario.created '{"scenario_id":"t7","profile":"custom","allowed_ports":[0]}'
bad scenario.created '{"scenario_id":"t8","custom_rules":[{"proto":"tcp","dest":"1.2.3.4 accept"}]}'
bad scenario.created '{"scenario_id":"t9","sources":["100.64.0.1/8"]}'
bad scenario.created '{"scenario_id":"t10","interfaces":["eth0; flush ruleset"]}'
bad scenario.created '{"scenario_id":"t11","mode":"yolo"}'
bad scenario.created "{\"a\":$(printf '[%.0s' $(seq 40))1$(printf ']%.0s' $(seq 40))}"
bad scenario.created "{\"scenario_id\":\"t12\",\"network_id\":\"$(head -c 3000 /dev/zero | tr '\0' a)\"}"
N=$((N + 1))
printf '{"scenario_id":"t13\0"}' | "$PROBE" jspub scenario.created - > /dev/null
bad scenario.completed '{}'
bad scenario.completed '{"scenario_id":17}'
bad scenario.completed '{"scenario_id":"t14","why":"because"}'
bad scenario.completed '{"scenario_id":"../etc"}'
bad scenario.completed '{{'
diag "$N invalid events published"

last=$(stream_last_seq SCENARIOS)
ok "every invalid event recorded as event.rejected" wait_until 15 q_eq \
	"SELECT count(*) FROM outbox WHERE type = 'event.rejected'" "$N"
ok "created consumer: everything acknowledged (terminated)" wait_until 5 \
	consumer_is SCENARIOS egress_gateway_created num_ack_pending 0
ok "completed consumer: everything acknowledged (terminated)" wait_until 5 \
	consumer_is SCENARIOS egress_gateway_completed num_ack_pending 0
ok "created consumer: ack floor reached the stream's end" wait_until 5 \
	consumer_is SCENARIOS egress_gateway_created ack_floor_stream_seq "$((last - 5))"
ok "no policy was created" q_is "SELECT count(*) FROM policies" 0
ok "no history was written" q_is "SELECT count(*) FROM policy_history" 0
ok "desired generation unchanged" q_is "SELECT desired_generation FROM applier_state" 0
ok "every rejection names a reason and the subject" q_is \
	"SELECT count(*) FROM outbox WHERE type = 'event.rejected'
	 AND json_extract(payload, '$.reason') <> ''
	 AND json_extract(payload, '$.subject') IN ('scenario.created', 'scenario.completed')" "$N"
ok "rejections carry the offending path" q_is \
	"SELECT json_extract(payload, '$.details[0].path') FROM outbox
	 WHERE type = 'event.rejected' AND scenario_id = 't5'" "/profile"
ok "a bad source prefix is reported at its path" q_is \
	"SELECT count(*) FROM outbox WHERE type = 'event.rejected' AND scenario_id = 't9'
	 AND json_extract(payload, '$.details[0].path') LIKE '/sources/0%'" 1
ok "component_status counts the rejections" wait_until 5 natsd_info_is rejected "$N"

# Not redelivered: after longer than the NAK delay nothing more is recorded.
sleep 2
ok "no redelivery: still exactly N rejections" q_is \
	"SELECT count(*) FROM outbox WHERE type = 'event.rejected'" "$N"
ok "no redelivery: consumer counts none" consumer_is SCENARIOS egress_gateway_created num_redelivered 0

"$PROBE" jspub scenario.created '{"scenario_id":"fine-1","track":"cissp"}' > /dev/null
ok "a valid event after the invalid ones is applied" wait_until 10 q_eq \
	"SELECT profile FROM policies WHERE scenario_id = 'fine-1'" training-updates
ok "rejections reached the AUDIT stream" wait_until 10 bash -c \
	'[ "$("$0" stream-dump AUDIT | grep -c "\"type\":\"event.rejected\"")" = "$1" ]' "$PROBE" "$N"
ok "Nats-Msg-Id equals the payload's event_id" stream_ids_consistent AUDIT
ok "egw-natsd still running" kill -0 "$NATSD_PID"
e2e_done
