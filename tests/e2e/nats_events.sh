#!/bin/bash
# SPDX-License-Identifier: MIT
# egw-natsd with a real nats-server -js: scenario events become policies
# through the durable consumers (including events published before the
# bridge started and while it was down), redelivered and duplicate events
# change nothing twice, completion disables and later expires a policy,
# and every resulting audit event reaches the AUDIT stream once, in outbox
# order, with Nats-Msg-Id = event_id.
. "$EGW_TOP_SRCDIR/tests/e2e/lib.sh"
e2e_init nats_events
start_nats
egw_env
. "$EGW_TOP_SRCDIR/tests/e2e/nats_lib.sh"
export EGW_COMPLETED_RETENTION=8s

ok "egw-natsd -n accepts the configuration" quiet "$NATSD" -n
ok "egw-natsd -n refuses a bad NATS_URL (exit 2)" \
	bash -c 'NATS_URL=http://example.invalid "$0" -n 2>/dev/null; [ $? -eq 2 ]' "$NATSD"
ok "egw-natsd -n refuses extra arguments" bash -c '! "$0" extra 2>/dev/null' "$NATSD"

ok "scenario stream created by the producer side" \
	"$PROBE" stream-add SCENARIOS scenario.created,scenario.completed

# Published before egw-natsd ever ran: the durable consumer must find it.
"$PROBE" jspub scenario.created \
	'{"scenario_id":"early-1","network_id":"net-e1","track":"cissp"}' > /dev/null
start_natsd
ok "event published before the first start is applied" \
	wait_until 10 q_eq "SELECT profile || '|' || enabled FROM policies
	    WHERE scenario_id = 'early-1'" "training-updates|1"
ok "created events come through a durable consumer" \
	wait_until 5 natsd_info_is created_mode durable
ok "completed events come through a durable consumer" natsd_info_is completed_mode durable
ok "audit mode is JetStream" natsd_info_is audit_mode jetstream
ok "AUDIT stream created on audit.*" quiet "$PROBE" stream-info AUDIT
ok "AUDIT stream bounded by EGW_AUDIT_MAX_AGE (30 days by default)" \
	bash -c '"$0" stream-info AUDIT | jq -e ".max_age_s == 2592000" > /dev/null' "$PROBE"

"$PROBE" jspub scenario.created '{"scenario_id":"np-1","network_id":"net-1","track":"netplus"}' > /dev/null
"$PROBE" jspub scenario.created '{"scenario_id":"odd-1","track":"basket-weaving"}' > /dev/null
"$PROBE" jspub scenario.created '{"scenario_id":"cu-1","network_id":"net-3","track":"cissp",
	"profile":"custom","allowed_hosts":["192.0.2.10","198.51.100.0/24"],"allowed_ports":[443],
	"sources":["100.64.3.0/24"],"mode":"audit"}' > /dev/null
ok "netplus -> none" wait_until 10 q_eq \
	"SELECT profile FROM policies WHERE scenario_id = 'np-1'" none
ok "unknown track -> default ('*' row, none)" wait_until 10 q_eq \
	"SELECT profile FROM policies WHERE scenario_id = 'odd-1'" none
ok "explicit profile and allowlist win over the track" wait_until 10 q_eq \
	"SELECT profile || '|' || mode FROM policies WHERE scenario_id = 'cu-1'" "custom|audit"
ok "explicit hosts and ports stored" q_is \
	"SELECT count(*) FROM policy_destinations d JOIN policies p ON p.id = d.policy_id
	 WHERE p.scenario_id = 'cu-1'" 3
ok "explicit sources stored" q_is \
	"SELECT value FROM policy_sources s JOIN policies p ON p.id = s.policy_id
	 WHERE p.scenario_id = 'cu-1'" "100.64.3.0/24"

# The same event again (a producer retry, or a redelivery): no change.
gen0=$(q "SELECT desired_generation FROM applier_state")
for i in 1 2 3; do
	"$PROBE" jspub scenario.created '{"scenario_id":"np-1","network_id":"net-1","track":"netplus"}' > /dev/null
done
last=$(stream_last_seq SCENARIOS)
ok "duplicates acknowledged" wait_until 10 consumer_is SCENARIOS egress_gateway_created ack_floor_stream_seq "$last"
ok "duplicates: revision stays 1" q_is "SELECT revision FROM policies WHERE scenario_id = 'np-1'" 1
ok "duplicates: one history row" q_is \
	"SELECT count(*) FROM policy_history WHERE scenario_id = 'np-1'" 1
ok "duplicates: desired generation unchanged" q_is \
	"SELECT desired_generation FROM applier_state" "$gen0"

# Completion: disabled (fail closed), stamped; again = no change; a late
# created event does not reopen it.
"$PROBE" jspub scenario.completed '{"scenario_id":"np-1"}' > /dev/null
ok "completed -> disabled with completed_at" wait_until 10 q_eq \
	"SELECT enabled || '|' || (completed_at IS NOT NULL) FROM policies
	 WHERE scenario_id = 'np-1'" "0|1"
"$PROBE" jspub scenario.completed '{"scenario_id":"np-1"}' > /dev/null
"$PROBE" jspub scenario.created '{"scenario_id":"np-1","network_id":"net-1","track":"cissp"}' > /dev/null
last=$(stream_last_seq SCENARIOS)
ok "late events acknowledged" wait_until 10 consumer_is SCENARIOS egress_gateway_created \
	ack_floor_stream_seq "$last"
ok "completed consumer caught up" wait_until 10 consumer_is SCENARIOS egress_gateway_completed \
	num_pending 0
ok "late created did not reopen the completed scenario" q_is \
	"SELECT count(*) FROM policy_history WHERE scenario_id = 'np-1'
	 AND operation NOT IN ('create', 'complete', 'expire')" 0
ok "completion recorded once" q_is \
	"SELECT count(*) FROM policy_history WHERE scenario_id = 'np-1' AND operation = 'complete'" 1

# Events published while egw-natsd is down are applied after it starts.
stop_natsd
"$PROBE" jspub scenario.created '{"scenario_id":"down-1","network_id":"net-d","track":"cissp"}' > /dev/null
"$PROBE" jspub scenario.completed '{"scenario_id":"early-1"}' > /dev/null
ok "nothing applied while egw-natsd is down" q_is \
	"SELECT count(*) FROM policies WHERE scenario_id = 'down-1'" 0
restart_ts=$(now_ts)
start_natsd
ok "created published while down applied after restart" wait_until 10 q_eq \
	"SELECT profile || enabled FROM policies WHERE scenario_id = 'down-1'" "training-updates1"
ok "completed published while down applied after restart" wait_until 10 q_eq \
	"SELECT enabled FROM policies WHERE scenario_id = 'early-1'" 0

# Retention: completed policies are deleted after EGW_COMPLETED_RETENTION.
ok "completed policies expire after the retention" wait_until 40 q_eq \
	"SELECT count(*) FROM policies WHERE scenario_id IN ('np-1', 'early-1')" 0
ok "expiry recorded as policy.expired events" wait_until 5 q_eq \
	"SELECT count(*) FROM outbox WHERE type = 'policy.expired'" 2
ok "an active policy is not expired" q_is \
	"SELECT count(*) FROM policies WHERE scenario_id = 'down-1'" 1

# Audit: everything in the outbox reached AUDIT once, in id order.
ok "outbox drained" wait_until 10 q_eq "SELECT count(*) FROM outbox WHERE delivered_at IS NULL" 0
q "SELECT event_id FROM outbox ORDER BY id" > "$T/outbox.ids"
"$PROBE" stream-dump AUDIT | python3 -c '
import sys, json
for l in sys.stdin: print(json.loads(l)["msg_id"])' > "$T/stream.ids"
ok "AUDIT holds every outbox event once, in order" cmp -s "$T/outbox.ids" "$T/stream.ids"
ok "9 audit events (5 created, 2 completed, 2 expired)" test "$(wc -l < "$T/stream.ids")" -eq 9
ok "Nats-Msg-Id equals the payload's event_id" stream_ids_consistent AUDIT
ok "payload keeps the earlier service's fields" bash -c '"$0" stream-dump AUDIT | python3 -c "
import sys, json
need = {\"timestamp\", \"scenario_id\", \"action\", \"src_ip\", \"dst_ip\", \"dst_port\",
        \"protocol\", \"reason\", \"network_id\", \"event_id\", \"type\"}
for l in sys.stdin:
    d = json.loads(l)[\"data\"]
    assert need <= set(d), d
"' "$PROBE"
ok "policy lifecycle types published" bash -c '"$0" stream-dump AUDIT | grep -c "\"type\":\"policy.created\"" | grep -qx 5' "$PROBE"
ok "component_status counts what this run published" \
	wait_until 5 natsd_info_is published \
	"$(q "SELECT count(*) FROM outbox WHERE delivered_at >= '$restart_ts'")"
ok "component_status: no failed publish" natsd_info_is failed 0
ok "component_status backlog is 0" natsd_info_is backlog 0
ok "no event was redelivered" consumer_is SCENARIOS egress_gateway_created num_redelivered 0
ok "egw-natsd still running" kill -0 "$NATSD_PID"
stop_natsd
ok "egw-natsd recorded its stop" natsd_info_is running 0

# The created consumer re-made with "deliver all" (server state lost, or
# an operator's reset) replays every created event.  Those already acted
# on stay done: an operator's disable holds, expired scenarios stay gone
# (they came back re-enabled before).
POLICY=$(egw_bin tests/e2e/egw-policy)
quiet "$POLICY" disable down-1 || { echo "Bail out! disable"; exit 99; }
"$PROBE" consumer-delete SCENARIOS egress_gateway_created ||
	{ echo "Bail out! consumer-delete"; exit 99; }
replay_ts=$(now_ts)
start_natsd
last=$(stream_last_seq SCENARIOS)
ok "replay: the re-created consumer went through the whole stream" \
	wait_until 15 consumer_is SCENARIOS egress_gateway_created ack_floor_stream_seq "$last"
ok "replay: the operator's disable holds" q_is \
	"SELECT enabled FROM policies WHERE scenario_id = 'down-1'" 0
ok "replay: expired scenarios stay gone" q_is \
	"SELECT count(*) FROM policies WHERE scenario_id IN ('np-1', 'early-1')" 0
ok "replay: no policy changed" q_is \
	"SELECT count(*) FROM policy_history WHERE ts >= '$replay_ts'" 0
stop_natsd

# A consumer of that name made by someone else, with acks that are not
# explicit ("none": nothing is ever redelivered): not used, said so, and
# completed events wait in the stream (the scenario stays as it is) until
# it is gone and egw-natsd makes its own.
"$PROBE" consumer-delete SCENARIOS egress_gateway_completed ||
	{ echo "Bail out! consumer-delete"; exit 99; }
"$PROBE" consumer-add SCENARIOS egress_gateway_completed scenario.completed none _x.completed ||
	{ echo "Bail out! consumer-add"; exit 99; }
"$PROBE" jspub scenario.completed '{"scenario_id":"down-1"}' > /dev/null
start_natsd
ok "foreign consumer without explicit acks: refused, the reason in last_error" \
	wait_until 10 sh -c "sqlite3 '$DB' \"SELECT json_extract(info, '\\\$.last_error') FROM component_status WHERE component = 'natsd'\" | grep -q 'ack policy is not explicit'"
ok "... completed events not consumed through it" natsd_info_is completed_mode none
ok "... the scenario is not completed meanwhile" q_is \
	"SELECT completed_at IS NULL FROM policies WHERE scenario_id = 'down-1'" 1
"$PROBE" consumer-delete SCENARIOS egress_gateway_completed ||
	{ echo "Bail out! consumer-delete"; exit 99; }
ok "once it is gone: egw-natsd's own consumer, durable" wait_until 45 natsd_info_is completed_mode durable
ok "... and the waiting completed event is applied" wait_until 10 q_eq \
	"SELECT completed_at IS NOT NULL FROM policies WHERE scenario_id = 'down-1'" 1
stop_natsd
# One that delivers headers only: every body would arrive empty, and each
# event would be rejected for good.
"$PROBE" consumer-delete SCENARIOS egress_gateway_completed ||
	{ echo "Bail out! consumer-delete"; exit 99; }
"$PROBE" consumer-add SCENARIOS egress_gateway_completed scenario.completed \
	explicit _x.completed 0 headers-only ||
	{ echo "Bail out! consumer-add"; exit 99; }
start_natsd
ok "foreign consumer delivering headers only: refused, the reason in last_error" \
	wait_until 10 sh -c "sqlite3 '$DB' \"SELECT json_extract(info, '\\\$.last_error') FROM component_status WHERE component = 'natsd'\" | grep -q 'headers only'"
ok "... completed events not consumed through it" natsd_info_is completed_mode none
stop_natsd
e2e_done
